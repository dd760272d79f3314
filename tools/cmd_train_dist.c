/* cmd_train_dist.c — the ranks of a data-parallel `bitnet train` (train_dist.h): read from the
 * environment (torchrun / mpirun style) or forked here by --nproc N, which then waits for them.
 * Not: the collectives or the data sharding (the library's, bitnet_train_params.world_size). */
#include "cli.h"
#include "train_dist.h"
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

/* *out = the environment variable name as an int in [lo, hi]; 0: unset; -1: malformed (printed). */
static int env_int(const char *name, int lo, int hi, int *out) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end; long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) { fprintf(stderr, "bitnet: train: %s=%s is not an integer in [%d, %d]\n", name, v, lo, hi); return -1; }
    *out = (int)x;
    return 1;
}

/* The device of a rank: --device cuda picks GPU LOCAL_RANK, cuda:N keeps N (every rank on N). */
static int rank_device(train_rank *rk, const char *device) {
    if (!device || strncmp(device, "cuda", 4) || (device[4] && device[4] != ':')) {
        fprintf(stderr, "bitnet: train: data-parallel training runs on GPUs: pass --device cuda (got %s)\n", device ? device : "none, the CPU");
        return 2;
    }
    if (device[4]) snprintf(rk->device, sizeof rk->device, "%s", device);
    else snprintf(rk->device, sizeof rk->device, "cuda:%d", rk->local_rank);
    return 0;
}

/* Fork n ranks; the parent waits. See train_dist.h. */
static int launch(train_rank *rk, int n, const char *device, const char *outdir, int *launched) {
    pid_t *pid = calloc((size_t)n, sizeof *pid);
    if (!pid) { fprintf(stderr, "bitnet: train: out of memory\n"); return 1; }
    snprintf(rk->id_path, sizeof rk->id_path, "%s/.nccl-id-%ld", outdir, (long)getpid());
    fflush(stdout); fflush(stderr);
    int started = 0, rc = 0;
    for (int r = 0; r < n; r++) {
        pid_t p = fork();
        if (p == 0) {   /* a rank: carry on with the run */
            free(pid);
            rk->rank = rk->local_rank = r; rk->world = n;
            char b[16];
            snprintf(b, sizeof b, "%d", r); setenv("RANK", b, 1); setenv("LOCAL_RANK", b, 1);
            snprintf(b, sizeof b, "%d", n); setenv("WORLD_SIZE", b, 1);
            return rank_device(rk, device);
        }
        if (p < 0) { fprintf(stderr, "bitnet: train: cannot start rank %d: %s\n", r, strerror(errno)); rc = 1; break; }
        pid[started++] = p;
    }
    *launched = 1;
    struct sigaction ign = {0}, old;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ign, &old);   /* Ctrl-C reaches the ranks, which save and exit 130 */
    if (rc) for (int i = 0; i < started; i++) kill(pid[i], SIGTERM);
    for (int left = started; left > 0;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) { if (errno == EINTR) continue; break; }
        int i = 0;
        while (i < started && pid[i] != p) i++;
        if (i == started) continue;
        pid[i] = 0; left--;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (code && !rc) {
            rc = code;
            if (code != 130) fprintf(stderr, "bitnet: train: rank %d exited with %d; stopping the other ranks\n", i, code);
            for (int j = 0; j < started; j++) if (pid[j] && code != 130) kill(pid[j], SIGTERM);
        }
    }
    sigaction(SIGINT, &old, NULL);
    unlink(rk->id_path);   /* rank 0 removes it once all joined; a failed start may leave it */
    free(pid);
    return rc;
}

int train_rank_setup(train_rank *rk, int nproc, const char *device, int batch, const char *outdir, int *launched) {
    memset(rk, 0, sizeof *rk);
    *launched = 0;
    int rank = 0, world = 0, local = -1;
    int hr = env_int("RANK", 0, 65535, &rank), hw = env_int("WORLD_SIZE", 1, 65536, &world), hl = env_int("LOCAL_RANK", 0, 65535, &local);
    if (hr < 0 || hw < 0 || hl < 0) return 2;
    if (nproc > 0 && (hr || hw)) { fprintf(stderr, "bitnet: train: --nproc starts the ranks itself; RANK/WORLD_SIZE are set in the environment already\n"); return 2; }
    if (nproc == 0 && hr != hw) { fprintf(stderr, "bitnet: train: data parallel needs both RANK and WORLD_SIZE in the environment (one is set)\n"); return 2; }
    int n = nproc > 0 ? nproc : world;
    if (n == 0) return 0;   /* alone */
    if (batch % n) { fprintf(stderr, "bitnet: train: --batch %d is the global micro-batch and must be a multiple of the %d ranks\n", batch, n); return 2; }
    setenv("NCCL_NVLS_ENABLE", "0", 0);   /* NVLink multicast off unless the user says otherwise */
    if (nproc > 0) {
        int e = rank_device(rk, device);   /* checked once, before forking */
        return e ? e : launch(rk, nproc, device, outdir, launched);
    }
    if (rank >= world) { fprintf(stderr, "bitnet: train: RANK=%d is not below WORLD_SIZE=%d\n", rank, world); return 2; }
    rk->rank = rank; rk->world = world; rk->local_rank = hl ? local : rank;
    const char *idf = getenv("BITNET_NCCL_ID_FILE");
    if (idf && *idf) snprintf(rk->id_path, sizeof rk->id_path, "%s", idf);
    else snprintf(rk->id_path, sizeof rk->id_path, "%s/.nccl-id", outdir);
    return rank_device(rk, device);
}
