/* bitnet_bench.h — kernel micro-benchmarks of bitnet.c, for `bitnet bench --kernels`.
 * What it is: one call that times one kernel of one kernel set at one matrix shape on random
 * data and returns the numbers; the caller prints them (and measures memory bandwidth itself).
 * What it is not: a correctness test (tests/test_kernels.c is), or a model benchmark (time
 * bitnet_ctx_eval / bitnet_ctx_decode on a model, e.g. one from bitnet_model_synthetic). */
#ifndef BITNET_BENCH_H
#define BITNET_BENCH_H
#include "bitnet.h"
#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The kernel to time: the packed ternary GEMM of BitLinear, or the LM head (bf16 weights with
 * f32 activations, or its q8/q4 quantized forms). */
typedef enum bitnet_bench_op {
    BITNET_BENCH_TERNARY = 0, BITNET_BENCH_HEAD_BF16 = 1, BITNET_BENCH_HEAD_Q8 = 2, BITNET_BENCH_HEAD_Q4 = 3
} bitnet_bench_op;

typedef struct bitnet_bench_kernel_result {
    size_t weight_bytes;   /* bytes of one copy of the weights in the kernel's layout */
    double gemv_gb_per_s;  /* one activation row, weights cycled through >= 512 MiB of copies
                            * (read from DRAM): weight bytes read per second / 1e9 */
    int gemm_n;            /* activation rows of the GEMM measurement (128) */
    double gemm_gops;      /* gemm_n rows, weights hot: 2 ops per multiply-add, / 1e9 per second */
} bitnet_bench_kernel_result;

/* Time op of kernel set `kernels` (a name from bitnet_kernel_sets(); NULL or "" = the default)
 * on a rows x cols weight matrix with n_threads threads: GEMV for at least 0.5 s and one pass
 * over every copy, GEMM for at least 0.5 s (ternary) or one call (heads). Allocates about
 * 512 MiB plus the weights while it runs. Errors: ARG (bad shape or thread count, unknown op),
 * UNSUPPORTED (kernel set not available here), NOMEM. */
bitnet_status bitnet_bench_kernel(const char *kernels, bitnet_bench_op op, int rows, int cols, int n_threads,
                                  bitnet_bench_kernel_result *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif
