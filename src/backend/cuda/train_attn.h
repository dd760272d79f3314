/* train_attn.h — the fused causal flash attention of the CUDA trainer (train_attn.cu), used by
 * train_cuda.cu's attention ops. C++ (nvcc) only; not part of the public API.
 * Not: a general attention API (causal GQA of the training layout only). */
#ifndef BN_TRAIN_ATTN_H
#define BN_TRAIN_ATTN_H
#include <cuda_runtime.h>

/* Device pointers; layouts as backend.h's attention ops: q, o, dout, dq [B*T][H*hd]; k, v, dk,
 * dv [B*T][KH*hd]; lse, D [B*H][T] fp32 scratch (lse written by the forward, read by the
 * backward; D written and read by the backward). H % KH == 0. */
typedef struct {
    const float *q, *k, *v;
    float *o, *lse, *D;
    const float *dout;
    float *dq, *dk, *dv;
    int B, T, H, KH, hd;
} bn_fa_args;

/* 1 when head dim hd has a kernel (32, 64, 128). */
int bn_fa_supported(int hd);
/* o and lse from q, k, v. split 1: operands as two bf16 terms (about 2^-16 relative), 0: one
 * bf16 term. Asynchronous on st; returns the launch error (cudaErrorInvalidValue for an
 * unsupported hd). */
cudaError_t bn_fa_forward(const bn_fa_args *a, int split, cudaStream_t st);
/* dq, dk, dv (written) from q, k, v, o, lse (the forward's), dout; D is scratch. */
cudaError_t bn_fa_backward(const bn_fa_args *a, int split, cudaStream_t st);
#endif
