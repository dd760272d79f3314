/* train_dist.h — which rank of a data-parallel `bitnet train` this process is (tools/cmd_train_dist.c).
 * Not: the collectives (the library's, through bitnet_train_params.world_size). */
#ifndef BITNET_TRAIN_DIST_H
#define BITNET_TRAIN_DIST_H

typedef struct train_rank {
    int rank, world, local_rank;  /* world 0: alone (no NCCL) */
    char device[32];              /* world >= 1: this rank's device ("cuda:LOCAL_RANK" for --device cuda) */
    char id_path[4096];           /* the file the NCCL unique id goes through */
} train_rank;

/* Decide this process's rank. --nproc N (N >= 1): fork N ranks here, rank r on GPU r; each child
 * returns 0 with *launched = 0 and its rank set, the parent waits for all of them (stopping the
 * others with SIGTERM when one fails), sets *launched = 1 and returns the first failure's exit
 * code (0 when all succeed). Without --nproc: RANK and WORLD_SIZE from the environment (as
 * torchrun or mpirun set them; LOCAL_RANK picks the GPU, default RANK; BITNET_NCCL_ID_FILE the id
 * file, default OUTDIR/.nccl-id), else alone. Sets NCCL_NVLS_ENABLE=0 unless set. Returns 0 or an
 * exit code after printing the problem. */
int train_rank_setup(train_rank *rk, int nproc, const char *device, int batch, const char *outdir, int *launched);
#endif
