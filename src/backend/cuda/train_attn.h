/* train_attn.h — the fused causal flash attention of the CUDA trainer (train_attn.cu), used by
 * train_cuda.cu's attention ops. C++ (nvcc) only; not part of the public API.
 * Not: a general attention API (causal GQA of the training layout only). */
#ifndef BN_TRAIN_ATTN_H
#define BN_TRAIN_ATTN_H
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stddef.h>

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

/* The bf16-input variant (one bf16 term, as bn_fa_* with split 0, but faster: the operands are
 * converted once per op, not per tile): qb, kb, vb, dob the bf16 copies of q, k, v, dout in the
 * same layouts (bn_fb_convert writes q, k, v; the backward writes dob itself from dout). */
typedef struct {
    const __nv_bfloat16 *qb, *kb, *vb;
    __nv_bfloat16 *dob;
    float *o, *lse, *D;
    const float *dout;
    float *dq, *dk, *dv;
    int B, T, H, KH, hd;
    /* NULL, or RoPE tables cos, sin [T][hd/2] (bn_rope_tables): the backward then writes dq and
     * dk through the inverse rotate-half RoPE at each row's position (row % T), the bits of
     * writing them and running train_cuda.cu's rope op (inv = 1) on them after. */
    const float *rcos, *rsin;
    /* 1: the kernels that launch the longest blocks first, double-buffer their streamed tiles
     * (cp.async) and load fragments by ldmatrix; 0: the plain ones. The same bits (the same
     * mma sequence and sums); a switch for A/B timing (train_cuda.h knob fao). */
    int opt;
} bn_fb_args;
/* out[i] = bf16(in[i]) (round to nearest even), i < n; n % 4 == 0. */
cudaError_t bn_fb_convert(const float *in, __nv_bfloat16 *out, size_t n, cudaStream_t st);
/* out[r][h*hd + j] = bf16 of the rotate-half RoPE of in's row r, head h at position r % T
 * (tables cos, sin [T][hd/2]; the expressions of train_cuda.cu's rope op, inv = 0), r < rows,
 * h < nh; hd % 8 == 0. */
cudaError_t bn_fb_convert_rope(const float *in, __nv_bfloat16 *out, size_t rows, int nh, int hd, int T,
                               const float *rcos, const float *rsin, cudaStream_t st);
/* o, lse from qb, kb, vb. */
cudaError_t bn_fb_forward(const bn_fb_args *a, cudaStream_t st);
/* dob = bf16(dout), D, then dq, dk, dv (written) from qb, kb, vb, o, lse (the forward's), dob. */
cudaError_t bn_fb_backward(const bn_fb_args *a, cudaStream_t st);
#endif
