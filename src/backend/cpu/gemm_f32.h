/* gemm_f32.h — cache-blocked float32 GEMM for training (forward and backward matrix products).
 *
 * What it is: C[M,N] = (accumulate ? C : 0) + op(A)[M,K] @ op(B)[K,N], all row-major, where
 *     op(A)[i,k] = ta ? A[k*lda + i] : A[i*lda + k]
 *     op(B)[k,j] = tb ? B[j*ldb + k] : B[k*ldb + j]
 * BLIS-style: blocks of A and B are packed into panels (packing absorbs the transposes), and a
 * register-blocked micro-kernel (AVX-512 12x32, AVX2+FMA 6x16, or plain C 4x16) runs over them.
 * The micro-kernel is the caller's kernel set's (k->sgemm, kernels.h): the set the model was
 * given. Results are deterministic for a given set and thread count: K is never split across
 * threads, and the summation order over K is fixed.
 * What it is not: a general BLAS (no alpha/beta other than 0/1, float32 only). */
#ifndef BITNET_GEMM_F32_H
#define BITNET_GEMM_F32_H
#include <stddef.h>
#include "core/threads.h"
#include "backend/cpu/kernels/kernels.h"

/* Floats of workspace one single-threaded bn_sgemm call needs. */
size_t bn_sgemm_ws_floats(void);
/* Single-threaded GEMM (see above). ws: bn_sgemm_ws_floats() floats, 64-byte aligned.
 * M, N or K may be 0 (K == 0 with accumulate == 0 zeroes C). */
void bn_sgemm(const bn_kernels *k, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              int accumulate, float *C, int ldc, float *ws);
/* The same, split over the pool's threads (by rows of C or columns of C, whichever is larger).
 * ws[ith] is thread ith's workspace. pool may be NULL (one thread, ws[0]). */
void bn_sgemm_mt(const bn_kernels *k, bn_pool *pool, float *const *ws, int ta, int tb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, int accumulate, float *C, int ldc);
/* Name of the default kernel set's micro-kernel ("avx512", "avx2", "c"). */
const char *bn_sgemm_isa(void);
#endif
