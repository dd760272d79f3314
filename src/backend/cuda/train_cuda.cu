/* train_cuda.cu — the CUDA training ops (backend.h bn_train_ops) for train.c's forward and
 * backward, plus the step around them: per-step absmean ternarization of the master weights,
 * gradient norm and AdamW over all parameters on the device.
 *
 * What it is: bn_train_cuda_attach() gives a bn_train_model a device state (struct gt below):
 * fp32 master weights, gradients and AdamW moments on the GPU (same flat layout as m->params,
 * which stays the host mirror that checkpoints read and write through the sync op), the bf16
 * ternary values of every BitLinear weight, scratch, one stream and one cuBLAS handle. Pointers
 * train.c passes into m->params / m->grads (P(m, i), G(m, i)) are translated to the device
 * copies; activations come from the alloc op (device memory).
 * Numerics: the same math as the CPU ops (train.c) within float rounding.
 *   - BitLinear forward: int8 activation values and ternary weight values are exact in int8
 *     and bf16; cuBLAS int8 x int8 -> int32 (default; bf16 x bf16 -> fp32 with knob i8=0 or
 *     where the int8 GEMM's alignment rules fail) gives the exact integer sums (K <= 2^24/127),
 *     then y = acc / s_act * scale. The dequantized floats (x_q) are not written (backend.h).
 *   - BitLinear backward (STE): dX = mean * (dY @ T), dW += (dY / s_act)^T @ q with dY split in
 *     bf16 terms, hi = bf16(dY), lo = bf16(dY - hi), ... one GEMM each (T and q are exact in
 *     bf16), fp32 sums: 1 term (bf16 products, as autocast) by default and in fast mode, 3 (all
 *     24 bits) in the parity mode; tests/cuda/test_cuda_train.c measures the error against the
 *     goldens.
 *   - attention (batched GEMMs over a materialized [B,H,T,T] probability matrix, as the CPU
 *     keeps it): the forward in full fp32, because its output feeds the activation quantizer
 *     (TF32's 2^-11 rounding flips int8 values and moves the step-0 gradients of the golden
 *     model by 3e-2 relative L2); the backward and the LM head in TF32 tensor cores.
 *     BITNET_TRAIN_PREC_PARITY: head and attention all fp32, dY in 3 terms;
 *     BITNET_TRAIN_PREC_FAST: what bf16 autocast rounds: the attention is train_attn.cu's
 *     bf16-input flash kernels (knob fa=2) and the LM head multiplies bf16 copies of x, W and
 *     dlogits (knob hbf=1; cross-entropy writes the bf16 dlogits on the way), fp32 sums
 *     (measured, not within the golden bounds).
 *   - flash attention (train_attn.cu, bf16 tensor cores, no [B,H,T,T] matrix): the fast mode's
 *     (bf16 inputs); in the other modes opt-in through the measuring knobs of
 *     bn_train_cuda_attach_ex (train_cuda.h) only. Measured on the
 *     H200 at the 1b shape (T = 1024, 16 heads of 128): forward 1.0 ms vs 1.4 (two-term split) but backward 2.3 ms vs 1.2 per layer, and
 *     even the two-term forward (2^-16 relative) moves the golden master's step-0 logits by
 *     8e-3: that model flips an int8 activation at ~2e-6 of relative noise in the attention
 *     output (CPU experiment), so only an fp32-exact forward passes its bounds.
 *   - norms, RoPE, gating, cross-entropy: fp32 kernels, one block per row where rows reduce.
 *     Work moved between ops without changing the bits (knobs of train_cuda.h, each tested
 *     against its off state): with fa 2 the RoPE runs inside the attention's bf16 conversion
 *     of q, k and its dq, dk stores (rf); the gating backward writes the gate / up BitLinear
 *     backward's bf16 dY (gf) and leaves its fp32 dg / du unwritten (gw 0, backend.h); the
 *     rmsnorm forward loops over rows with the next one prefetched (rpf); the residual copy before a += BitLinear is done by its epilogue
 *     (cf); AdamW sums |W| for the next weight quantization (ws); zero_grad only marks the gradients
 *     zero and each tensor's first dW GEMM writes with beta 0, the ops that add zeroing theirs
 *     first (lz); the FFN sub-norm's backward can run inside the gating backward's pass with its
 *     dx (dh) in registers, unwritten (rg, backend.h; off by default, slower), and the gating
 *     forward runs inside the sub-norm forward's pass (gn).
 *   - AdamW: bn_adam_ref's float operations in the same order, without FMA contraction, so a
 *     step from the same gradients gives the CPU's bits (scalar or float4 passes, knob ov; ov
 *     sums |W| and the squared gradients in another fixed order).
 * Sums are in a fixed order except the embedding gradient (atomicAdd over the batch's tokens).
 * What it is not: flash attention in the default and parity modes (the T x T matrix is kept, like the CPU path), LoRA, or data
 * parallel (one GPU). Ops are asynchronous on the stream; an op that fails records its error
 * for the status op and later ops still run on whatever memory exists (never a crash: every
 * allocation failure turns the op into a no-op). */
extern "C" {
#include "bitnet_train.h"
#include "train/train.h"
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "backend/cuda/train_cuda.h"
#include "backend/cpu/layers.h"
}
#include "backend/cuda/train_attn.h"
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

typedef __nv_bfloat16 bf16;
#define CH 16384            /* elements per chunk of the weight-quant and AdamW passes */
#define NORM_CH 65536       /* the CPU's fixed gradient-norm chunks */

typedef struct { size_t off; int n, tp; } chunk;
/* The int8 values (as bf16) and scales of one quantized activation buffer, keyed by its
 * dequantized float buffer x (what rmsnorm_fwd got as yq and linear_* receive as x); q8: the
 * same as int8 (i8 only). */
typedef struct { const float *x; bf16 *q; float *s; int8_t *q8; size_t cap_q, cap_s, cap_q8; } shadow;

enum { RK_NONE = 0, RK_PENDING = 1, RK_UNDONE = 2 };
/* gf: glu_bwd writes the gate / up BitLinear backward's bf16 dY operands itself; gw: it then
 * writes the fp32 dg / du as well (0, the default: left unwritten, backend.h), uw: pk's dy
 * buffers are unwritten (linear_bwd must take the operands). yx: the input
 * key x and width of each BitLinear output y (linear_fwd); pk[0] / pk[1]: the operands ready
 * for dy = dg / du with input x ([bf16(dy) | bf16(dy / s)], k_dy_conv's split-1 layout), valid
 * for the next two linear_bwd calls (train.c's gate then up). */
struct gt_glu {
    int gf, gw, uw;
    struct { const float *y, *x; int out; } *yx; int nyx, capyx;
    struct { const float *dy, *x; } pk[2];
    bf16 *pb; size_t cap_pb;    /* [2][2][N][I]: the dg, then the du operands */
};
struct gt {
    int dev;
    cudaStream_t st;
    cublasHandle_t cb;
    cublasComputeType_t fct;    /* fp32 GEMMs (head, attention backward): TF32 or full fp32 */
    cublasComputeType_t afct;   /* attention forward (feeds the activation quantizers): fp32 */
    int split;                  /* BitLinear backward: dY as a sum of this many bf16 terms (1..3) */
    int split_dx;               /* of which the dX product uses the first split_dx (1..split) */
    bitnet_status err;
    float *p, *g, *m, *v;       /* [n_params] */
    bf16 *wb;                   /* [n_params]: ternary values of linear slots */
    int i8;                     /* BitLinear forward as an int8 x int8 -> int32 GEMM (same exact sums) */
    int keep_yq;                /* rmsnorm_fwd with yq writes y and yq too (0: only the quantized copy) */
    int8_t *wi8;                /* [n_params] (i8): ternary values as int8 */
    int32_t *ioz;               /* {0, 1} (i8 GEMM constants) */
    float *wscale, *wg;         /* [n_tp]: mean |W| (W_deq = t * mean), its inverse */
    int *lin, *decay;           /* [n_tp] flags */
    chunk *ck; int nck;         /* chunks of every tensor */
    int *tp_c0, *tp_nc;         /* [n_tp]: first chunk, count */
    size_t *numel;              /* [n_tp] */
    double *part;               /* [max(nck, norm chunks)] */
    double *norm_d;
    float *one_zero;            /* {0, 1} */
    int32_t *ids; size_t cap_ids;
    int32_t *tg; size_t cap_tg;
    float *rowloss; size_t cap_rl;
    float *rcos, *rsin; int rT;
    bf16 *dyb, *dys; size_t cap_dy;
    float *tmp; size_t cap_tmp;
    float *dP; size_t cap_dP;
    float *dwpart; size_t cap_dw;
    int rms;                    /* rmsnorm kernels that hold each row in registers (1, default) or the strided ones (0) */
    int nsm, rms_nb[7];         /* SM count; the backward rows kernel's resident blocks per SM (per V class), 0: not asked yet */
    int rpf, rms_nbf[7];        /* rpf: the rmsnorm forward rows kernel loops over rows, prefetching the next (same bits); its rms_nb */
    void **ptrs; size_t cap_ptrs;
    shadow *sh; int nsh, capsh;
    int fa, fa_fs, fa_bs;       /* flash attention (train_attn.cu): 0 off, 1 fp32 inputs (split knobs), 2 bf16 inputs */
    bf16 *fab; size_t cap_fab;  /* fa 2: bf16 copies of q, k, v (and dout in the backward) */
    int hbf;                    /* LM head GEMMs on bf16 operands (the fast mode) */
    bf16 *hx, *hw, *hdl; size_t cap_hx, cap_hw, cap_hdl;   /* hbf: bf16 x [N][C], W [V][C], dlogits [N][V] */
    const float *hx_key, *hdl_key;                         /* the x / logits buffers hx / hdl hold */
    struct { const float *att, *out; } *fo; int nfo, capfo;   /* attention output of each att buffer */
    int rmw;                    /* rmsnorm forward of D 2049..6144 on 1024 threads (the rows kernel, <= 6 values a thread) */
    int vec;                    /* BitLinear epilogue, dY conversion, gating forward 4 elements a thread (same bits) */
    int fao;                    /* fa 2: the attention kernels' longest-first / cp.async / ldmatrix variant (bn_fb_args.opt; same bits) */
    int rf;                     /* fa 2: RoPE folded into the attention (forward: into q, k's bf16 conversion; backward: into dq, dk's store) */
    struct { const float *x; int st; } *rk; int nrk, caprk;   /* rf: buffers whose RoPE is deferred (st RK_PENDING) or already undone (RK_UNDONE) */
    struct gt_glu gl;
    int cf;                     /* copy then BitLinear forward += into the copy: the epilogue adds to the copy's source (no copy) */
    struct { float *dst; const float *src; size_t n; } pc;   /* cf: the deferred copy */
    int ws;                     /* AdamW also writes the per-chunk |W| sums of the weights it wrote (k_wsum's, same order) */
    double *wpart; int wpart_ok;   /* [nck]: those sums; wpart_ok: they are the current weights' (the next wquant skips k_wsum) */
    int lz;                     /* lazy zero_grad: tensors marked zero (gz), their first gradient write overwrites (gz_* below) */
    unsigned char *gz; int ngz; /* [n_tp] host flags: 1 = this tensor's gradient is logically zero, its memory stale; ngz: how many */
    int *zck; int nzck;         /* [nzck] the chunks of the norm weights (only ever added into): lz zeroes them at once, one launch */
    int ov, al4;                /* ov: the optimizer-side passes on float4 (k_*4); al4: every tensor offset a multiple of 4 */
    int rg;                     /* an rmsnorm backward (acc 0, rows kernel) deferred; the gating backward on its dx takes it over (same bits) */
    struct { const float *dy, *x, *w, *rstd; float *dx, *dw; int N, D; } rb;   /* rg: the deferred rmsnorm backward (dx NULL: none) */
    int gn;                     /* a gating forward deferred; the rmsnorm forward (rows kernel) of its output takes it over (same bits) */
    struct { const float *g, *u; float *h; size_t n; int silu; } gfw;   /* gn: the deferred gating forward (h NULL: none) */
};

static void note(struct gt *g, bitnet_status s) { if (s && !g->err) g->err = s; }
static int cu_ok(struct gt *g, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 1;
    cudaGetLastError();
    note(g, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: %s: %s", what, cudaGetErrorString(e)));
    return 0;
}
/* cf: the copy op's deferred copy (dst NULL: none), issued now. */
static void copy_flush(struct gt *g) {
    if (!g->err) cu_ok(g, cudaMemcpyAsync(g->pc.dst, g->pc.src, g->pc.n * sizeof(float), cudaMemcpyDeviceToDevice, g->st), "device copy");
    g->pc.dst = NULL;
}
static void rb_flush(struct gt *g);
static void gfw_flush(struct gt *g);
/* The device state; every op starts here, so a deferred copy (op_copy) is issued before any op
 * but the BitLinear forward that takes it over, a deferred rmsnorm backward (rg) before any op
 * but the gating backward that takes it over, and a deferred gating forward (gn) before any op
 * but the rmsnorm forward that takes it over. */
static struct gt *GT(const bn_train_model *m) {
    struct gt *g = (struct gt *)m->gpu;
    if (g && g->pc.dst) copy_flush(g);
    if (g && g->rb.dx) rb_flush(g);
    if (g && g->gfw.h) gfw_flush(g);
    return g;
}
static int cb_ok(struct gt *g, cublasStatus_t e, const char *what) {
    if (e == CUBLAS_STATUS_SUCCESS) return 1;
    note(g, bn_err(BITNET_ERR_UNSUPPORTED, "cublas: %s: status %d", what, (int)e));
    return 0;
}
#define LAUNCHED(g, what) cu_ok(g, cudaGetLastError(), what)
/* Grow device scratch *p to at least bytes (contents lost); 0 on failure (error noted). */
static int need(struct gt *g, void **p, size_t *cap, size_t bytes, const char *what) {
    if (*cap >= bytes && *p) return 1;
    if (*p) { cudaStreamSynchronize(g->st); cudaFree(*p); *p = NULL; *cap = 0; }
    bitnet_status s = bn_cu_malloc(p, bytes, what);
    if (s) { note(g, s); return 0; }
    *cap = bytes;
    return 1;
}
#define NEED(g, ptr, cap, bytes, what) need(g, (void **)&(ptr), &(cap), (bytes), what)
/* Room for element n of a host array *a of *cap elements of el bytes (grown to twice, from 64);
 * 0 with the error noted when out of memory. */
static int grow(struct gt *g, void **a, int *cap, int n, size_t el) {
    if (n < *cap) return 1;
    int nc = *cap ? 2 * *cap : 64;
    void *p = realloc(*a, (size_t)nc * el);
    if (!p) { note(g, bn_err(BITNET_ERR_NOMEM, "out of memory")); return 0; }
    *a = p; *cap = nc;
    return 1;
}
#define GROW(g, arr, cap, n) grow(g, (void **)&(arr), &(cap), (n), sizeof *(arr))
/* Lazy zero_grad (knob lz): op_zero_grad only marks every tensor's gradient logically zero (gz).
 * gz_take(t): 1 when tensor t is marked, then unmarked: the caller's write must overwrite all of
 * t's gradient (a GEMM with beta 0); gz_zero(t): a marked t is zeroed now (for ops that add);
 * gz_flush: every marked tensor zeroed (before anything reads the gradients), adjacent ones in
 * one memset. */
static int gz_take(struct gt *g, int t) {
    if (!g->ngz || !g->gz[t]) return 0;
    g->gz[t] = 0; g->ngz--;
    return 1;
}
static void gz_zero(const bn_train_model *m, struct gt *g, int t) {
    if (gz_take(g, t) && !g->err) cu_ok(g, cudaMemsetAsync(g->g + m->tp[t].off, 0, m->tp[t].numel * sizeof(float), g->st), "zeroing gradients");
}
static void gz_flush(const bn_train_model *m, struct gt *g) {
    for (int i = 0; i < m->n_tp && g->ngz; i++) {
        if (!g->gz[i]) continue;
        size_t a = m->tp[i].off, b = a + m->tp[i].numel;
        g->gz[i] = 0; g->ngz--;
        while (i + 1 < m->n_tp && g->gz[i + 1] && m->tp[i + 1].off == b) { i++; g->gz[i] = 0; g->ngz--; b += m->tp[i].numel; }
        if (!g->err) cu_ok(g, cudaMemsetAsync(g->g + a, 0, (b - a) * sizeof(float), g->st), "zeroing gradients");
    }
}
/* Device pointer for a pointer train.c passes: into m->params / m->grads -> the device copies.
 * A gradient pointer is one an op adds into (rmsnorm_bwd's dw): a lazily zeroed tensor it lies
 * in is zeroed first. */
static float *tr(const bn_train_model *m, const float *p) {
    struct gt *g = GT(m);
    if (p >= m->params && p < m->params + m->n_params) return g->p + (p - m->params);
    if (m->grads && p >= m->grads && p < m->grads + m->n_params) {
        size_t o = (size_t)(p - m->grads);
        for (int i = 0; i < m->n_tp && g->ngz; i++) if (o >= m->tp[i].off && o < m->tp[i].off + m->tp[i].numel) gz_zero(m, g, i);
        return g->g + o;
    }
    return (float *)p;
}
static int blocks(size_t n, int th) { size_t b = (n + th - 1) / th; return (int)(b > 65535 * 16 ? 65535 * 16 : b); }
/* rf: the RoPE state of buffer x (RK_*) and setting it (RK_NONE forgets x). */
static int rk_state(struct gt *g, const float *x) {
    for (int i = 0; i < g->nrk; i++) if (g->rk[i].x == x) return g->rk[i].st;
    return RK_NONE;
}
static void rk_set(struct gt *g, const float *x, int st) {
    for (int i = 0; i < g->nrk; i++) if (g->rk[i].x == x) { g->rk[i].st = st; return; }
    if (st == RK_NONE) return;
    if (!GROW(g, g->rk, g->caprk, g->nrk)) return;
    g->rk[g->nrk].x = x; g->rk[g->nrk++].st = st;
}
/* The input key x and width of BitLinear output y (linear_fwd's record), or NULL. */
static const float *yx_find(struct gt *g, const float *y, int *out) {
    for (int i = 0; i < g->gl.nyx; i++) if (g->gl.yx[i].y == y) { *out = g->gl.yx[i].out; return g->gl.yx[i].x; }
    return NULL;
}
static void yx_note(struct gt *g, const float *y, const float *x, int out) {
    for (int i = 0; i < g->gl.nyx; i++) if (g->gl.yx[i].y == y) { g->gl.yx[i].x = x; g->gl.yx[i].out = out; return; }
    if (!GROW(g, g->gl.yx, g->gl.capyx, g->gl.nyx)) return;
    g->gl.yx[g->gl.nyx].y = y; g->gl.yx[g->gl.nyx].x = x; g->gl.yx[g->gl.nyx++].out = out;
}

/* ---------------------------------------------------------------- reductions */
__device__ float warp_sum(float v) { for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
__device__ float warp_max(float v) { for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
__device__ double warp_sumd(double v) { for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
/* Block-wide sum / max (blockDim.x a multiple of 32, <= 1024); every thread gets the result. */
__device__ float block_sum(float v) {
    __shared__ float sm[32];
    v = warp_sum(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = threadIdx.x < (unsigned)nw ? sm[threadIdx.x] : 0.f;
    if (threadIdx.x < 32) v = warp_sum(v);
    if (threadIdx.x == 0) sm[0] = v;
    __syncthreads();
    return sm[0];
}
__device__ float block_max(float v) {
    __shared__ float sm[32];
    v = warp_max(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = threadIdx.x < (unsigned)nw ? sm[threadIdx.x] : -INFINITY;
    if (threadIdx.x < 32) v = warp_max(v);
    if (threadIdx.x == 0) sm[0] = v;
    __syncthreads();
    return sm[0];
}
__device__ double block_sumd(double v) {
    __shared__ double sm[32];
    v = warp_sumd(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = threadIdx.x < (unsigned)nw ? sm[threadIdx.x] : 0.0;
    if (threadIdx.x < 32) v = warp_sumd(v);
    if (threadIdx.x == 0) sm[0] = v;
    __syncthreads();
    return sm[0];
}

/* ---------------------------------------------------------------- GEMMs (row-major) */
/* C[M][N] (ldc) = alpha op(A) op(B) + beta C, op(A) [M][K] (A is [K][M] when ta), op(B) [K][N]
 * (B is [N][K] when tb): bn_sgemm's argument order. alpha, beta: device floats. */
static void gemm(struct gt *g, int ta, int tb, int M, int N, int K, const void *A, cudaDataType at, int lda,
                 const void *B, cudaDataType bt, int ldb, const float *alpha, const float *beta, float *C, int ldc,
                 cublasComputeType_t ct) {
    if (g->err || M <= 0 || N <= 0 || K <= 0) return;
    cb_ok(g, cublasGemmEx(g->cb, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, alpha,
                          B, bt, ldb, A, at, lda, beta, C, CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT), "GEMM");
}
static void gemm_batched(struct gt *g, int ta, int tb, int M, int N, int K, void *const *A, int lda, void *const *B, int ldb,
                         const float *beta, void *const *C, int ldc, int count, cublasComputeType_t ct) {
    if (g->err) return;
    cb_ok(g, cublasGemmBatchedEx(g->cb, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, g->one_zero + 1,
                                 (const void *const *)B, CUDA_R_32F, ldb, (const void *const *)A, CUDA_R_32F, lda, beta,
                                 (void *const *)C, CUDA_R_32F, ldc, count, ct, CUBLAS_GEMM_DEFAULT), "batched GEMM");
}

/* ---------------------------------------------------------------- weight quantization */
__global__ void k_wfin(const double *part, const int *c0, const int *nc, const chunk *ck, const int *lin, int ntp,
                       float *wscale, float *wg, const size_t *numel) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= ntp || !lin[t]) return;
    double s = 0;
    for (int c = c0[t]; c < c0[t] + nc[t]; c++) s += part[c];
    float mean = (float)(s / (double)(numel[t] ? numel[t] : 1));
    if (mean < 1e-5f) mean = 1e-5f;
    wscale[t] = mean; wg[t] = 1.0f / mean;
}
/* ov: k_wfin with one block a tensor (blockIdx.x = tensor), its chunk sums added strided over the
 * threads and then across the block (another order than k_wfin's one thread a tensor). */
__global__ void k_wfin4(const double *part, const int *c0, const int *nc, const int *lin, float *wscale, float *wg, const size_t *numel) {
    int t = blockIdx.x;
    if (!lin[t]) return;
    double s = 0;
    for (int c = c0[t] + threadIdx.x; c < c0[t] + nc[t]; c += blockDim.x) s += part[c];
    s = block_sumd(s);
    if (threadIdx.x) return;
    float mean = (float)(s / (double)(numel[t] ? numel[t] : 1));
    if (mean < 1e-5f) mean = 1e-5f;
    wscale[t] = mean; wg[t] = 1.0f / mean;
}
/* The ternary value of weight p at inverse scale g: clamp(rint(p g), -1, 1). */
__device__ __forceinline__ float wq_el(float p, float g) {
    float r = rintf(__fmul_rn(p, g));
    return r > 1.f ? 1.f : r < -1.f ? -1.f : r;
}
/* part[chunk] = sum of |p| over a BitLinear chunk, in k_adam's order: with vec (ov; every chunk
 * offset a multiple of 4) thread t takes elements 4j..4j+3 for j = t, t + blockDim, ..., then the
 * tail one element a thread; without, all of the chunk as that tail. */
__global__ void k_wsum(const float *__restrict__ p, const chunk *ck, const int *lin, double *part, int vec) {
    chunk c = ck[blockIdx.x];
    if (!lin[c.tp]) return;
    double s = 0;
    int n4 = vec ? c.n >> 2 : 0;
    const float4 *p4 = (const float4 *)(p + c.off);
#pragma unroll 2
    for (int j = threadIdx.x; j < n4; j += blockDim.x) { float4 x = p4[j]; s += fabsf(x.x); s += fabsf(x.y); s += fabsf(x.z); s += fabsf(x.w); }
    for (int j = 4 * n4 + threadIdx.x; j < c.n; j += blockDim.x) s += fabsf(p[c.off + j]);
    s = block_sumd(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
/* wb (and wi when given) = the ternary values of a BitLinear chunk (wq_el); vec as k_wsum's. */
__global__ void k_wq(const float *__restrict__ p, const chunk *ck, const int *lin, const float *wg, bf16 *__restrict__ wb, int8_t *__restrict__ wi, int vec) {
    chunk c = ck[blockIdx.x];
    if (!lin[c.tp]) return;
    float g = wg[c.tp];
    int n4 = vec ? c.n >> 2 : 0;
    const float4 *p4 = (const float4 *)(p + c.off);
#pragma unroll 2
    for (int j = threadIdx.x; j < n4; j += blockDim.x) {
        float4 x = p4[j];
        float r0 = wq_el(x.x, g), r1 = wq_el(x.y, g), r2 = wq_el(x.z, g), r3 = wq_el(x.w, g);
        __nv_bfloat162 *b2 = (__nv_bfloat162 *)(wb + c.off + 4 * (size_t)j);
        b2[0] = __floats2bfloat162_rn(r0, r1); b2[1] = __floats2bfloat162_rn(r2, r3);
        if (wi) *(char4 *)(wi + c.off + 4 * (size_t)j) = make_char4((signed char)r0, (signed char)r1, (signed char)r2, (signed char)r3);
    }
    for (int j = 4 * n4 + threadIdx.x; j < c.n; j += blockDim.x) {
        float r = wq_el(p[c.off + j], g);
        wb[c.off + j] = __float2bfloat16(r);
        if (wi) wi[c.off + j] = (int8_t)r;
    }
}
static void op_wquant(bn_train_model *m) {
    struct gt *g = GT(m);
    if (m->no_quant || g->err) return;
    int v4 = g->ov && g->al4;
    if (!g->wpart_ok)   /* else: AdamW wrote them */
        k_wsum<<<g->nck, 256, 0, g->st>>>(g->p, g->ck, g->lin, g->wpart, v4);
    g->wpart_ok = g->ws;
    if (v4) k_wfin4<<<m->n_tp, 256, 0, g->st>>>(g->wpart, g->tp_c0, g->tp_nc, g->lin, g->wscale, g->wg, g->numel);
    else k_wfin<<<(m->n_tp + 127) / 128, 128, 0, g->st>>>(g->wpart, g->tp_c0, g->tp_nc, g->ck, g->lin, m->n_tp, g->wscale, g->wg, g->numel);
    k_wq<<<g->nck, 256, 0, g->st>>>(g->p, g->ck, g->lin, g->wg, g->wb, g->wi8, v4);
    LAUNCHED(g, "weight quantization");
}

/* ---------------------------------------------------------------- rmsnorm (+ quant) */
/* Row r: rstd, y = w * (x * rstd); with yq: s = 127 / max|y|, q = clamp(rint(y s)), yq = q / s,
 * qb = q (bf16, exact), q8 = q (int8, when given), sc[r] = s. With yq, y and yq themselves are
 * written only when keep (backend.h: train.c only passes them on as keys; the BitLinear ops
 * read qb / q8 and sc), y recomputed in the last pass with the same roundings. One block per row. */
__global__ void __launch_bounds__(1024) k_rms_fwd(const float *x, const float *w, float *y, float *rstd, float *yq, bf16 *qb, int8_t *q8, float *sc,
                          int D, float eps, int keep) {
    size_t r = blockIdx.x;
    const float *xr = x + r * D; float *yr = y + r * D;
    float ss = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    float rs = 1.0f / sqrtf(ss / (float)D + eps);
    float mx = 0;
    int wy = keep || !yq;
    for (int i = threadIdx.x; i < D; i += blockDim.x) { float v = __fmul_rn(w[i], __fmul_rn(xr[i], rs)); if (wy) yr[i] = v; mx = fmaxf(mx, fabsf(v)); }
    if (threadIdx.x == 0) rstd[r] = rs;
    if (!yq) return;
    mx = block_max(mx);
    if (!(mx >= 1e-5f)) mx = 1e-5f;
    float s = 127.0f / mx;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float q = rintf(__fmul_rn(__fmul_rn(w[i], __fmul_rn(xr[i], rs)), s));
        q = q > 127.f ? 127.f : q < -128.f ? -128.f : q;
        if (keep) yq[r * D + i] = q / s;
        qb[r * D + i] = __float2bfloat16(q);
        if (q8) q8[r * D + i] = (int8_t)q;
    }
    if (threadIdx.x == 0) sc[r] = s;
}
/* ---------------------------------------------------------------- rmsnorm, rows in registers */
/* The same two ops as k_rms_fwd / k_rms_dx above with the same per-thread element sets (i =
 * threadIdx.x + j blockDim.x), the same expressions and the same block sums, so the same bits;
 * the row (x, and dy in the backward) is read from memory once and held in V registers per
 * thread (V >= D / blockDim.x). Instances V in {1, 2, 4, 6, 8, 12, 16}: rms_vclass. */
/* The rmsnorm kernels' block size for rows of D (the strided kernels' and the rows kernels' base). */
static int rms_threads(int D) { return D >= 1024 ? 512 : D >= 256 ? 256 : 128; }
static int rms_vclass(int D, int th) {
    static const int vs[7] = {1, 2, 4, 6, 8, 12, 16};
    for (int c = 0; c < 7; c++) if (D <= vs[c] * th) return c;
    return -1;
}
/* gn: the gating forward whose output h is the rmsnorm forward's x (glu_fwd(g, u, h) then
 * rmsnorm_fwd(x = h)), done in k_rms_fwd_p<V, true>: h = act(g) * u written and normed from registers. */
struct glu_fwd_rows { const float *g, *u; float *h; int silu; };
__device__ __forceinline__ float glu_fwd1(float x, float u, int silu);
/* k_rms_fwd (the same bits: each thread's elements, expressions and block sums) for rows
 * blockIdx.x, + gridDim.x, ... (N rows): w held in registers across rows, and the next row's x
 * loaded before this row's block sums, so the loads overlap the barriers (rpf; V <= 6). A grid
 * of N blocks runs one row per block, nothing prefetched (rpf 0). G (gn): x is ga.h, made here
 * from ga.g and ga.u (those prefetched instead). */
template <int V, bool G = false>
__global__ void __launch_bounds__(1024) k_rms_fwd_p(const float *x, const float *w, float *y, float *rstd, float *yq, bf16 *qb, int8_t *q8, float *sc,
                            int N, int D, float eps, int keep, glu_fwd_rows ga = glu_fwd_rows()) {
    float wv[V], xn[V], un[G ? V : 1];   /* G: xn holds the next row's gate values, un its up values */
    int wy = keep || !yq;
    const float *xs = G ? ga.g : x;
#pragma unroll
    for (int j = 0; j < V; j++) {
        int i = threadIdx.x + j * blockDim.x;
        wv[j] = i < D ? w[i] : 0.f; xn[j] = i < D && blockIdx.x < (unsigned)N ? xs[(size_t)blockIdx.x * D + i] : 0.f;
        if (G) un[j % (G ? V : 1)] = i < D && blockIdx.x < (unsigned)N ? ga.u[(size_t)blockIdx.x * D + i] : 0.f;
    }
    for (int r = blockIdx.x; r < N; r += gridDim.x) {
        float xv[V];
#pragma unroll
        for (int j = 0; j < V; j++) {
            int i = threadIdx.x + j * blockDim.x;
            xv[j] = G ? glu_fwd1(xn[j], un[j % (G ? V : 1)], ga.silu) : xn[j];
            if (G && i < D) ga.h[(size_t)r * D + i] = xv[j];
        }
        if (r + (int)gridDim.x < N)
#pragma unroll
            for (int j = 0; j < V; j++) {
                int i = threadIdx.x + j * blockDim.x;
                xn[j] = i < D ? xs[(size_t)(r + gridDim.x) * D + i] : 0.f;
                if (G) un[j % (G ? V : 1)] = i < D ? ga.u[(size_t)(r + gridDim.x) * D + i] : 0.f;
            }
        float ss = 0;
#pragma unroll
        for (int j = 0; j < V; j++) if (threadIdx.x + j * blockDim.x < D) ss += xv[j] * xv[j];
        ss = block_sum(ss);
        float rs = 1.0f / sqrtf(ss / (float)D + eps);
        float mx = 0;
        size_t o = (size_t)r * D;
#pragma unroll
        for (int j = 0; j < V; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i < D) { float v = __fmul_rn(wv[j], __fmul_rn(xv[j], rs)); if (wy) y[o + i] = v; mx = fmaxf(mx, fabsf(v)); xv[j] = v; }
        }
        if (threadIdx.x == 0) rstd[r] = rs;
        if (!yq) continue;
        mx = block_max(mx);
        if (!(mx >= 1e-5f)) mx = 1e-5f;
        float s = 127.0f / mx;
#pragma unroll
        for (int j = 0; j < V; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i >= D) break;
            float q = rintf(__fmul_rn(xv[j], s));
            q = q > 127.f ? 127.f : q < -128.f ? -128.f : q;
            if (keep) yq[o + i] = q / s;
            qb[o + i] = __float2bfloat16(q);
            if (q8) q8[o + i] = (int8_t)q;
        }
        if (threadIdx.x == 0) sc[r] = s;
    }
}
/* rg: the gating backward that reads the rmsnorm backward's dx as its dh (glu_bwd(g, u, dh = dx,
 * dg, du)), done in k_rms_bwd_r<V, true> on each dx element in registers: dg, du (fp32, when wf)
 * and (cv) the gate / up BitLinear backward's bf16 operands pg, pu as k_glu_bwd_cv writes them
 * (s: the activation scales [N] of their input; pg + n, pu + n: the dY / s halves). */
struct glu_rows { const float *g, *u, *s; float *dg, *du; bf16 *pg, *pu; size_t n; int silu, cv, wf; };
__device__ __forceinline__ void glu_bwd1(float x, float d, float uu, int silu, float &dg, float &du);
/* dx rows as k_rms_dx (same bits) for rows blockIdx.x, + gridDim.x, ..., and (part given)
 * part[blockIdx.x][c] = the sum over those rows of dy x rstd (the gamma gradient's partials,
 * reduced by k_rms_dw_fin2): dy, x and w are read once. G (rg): dx is not written but fed to
 * the gating backward of ga (glu_rows; acc 0), the same dx bits in registers. */
template <int V, bool G = false>
__global__ void __launch_bounds__(V <= 6 ? 1024 : 512) k_rms_bwd_r(const float *dy, const float *x, const float *w, const float *rstd, float *dx, float *part,
                            int N, int D, int acc, glu_rows ga = glu_rows()) {
    float wv[V], pw[V];   /* G: w read from the cache where used (registers for the gate / up values instead) */
#pragma unroll
    for (int j = 0; j < V; j++) { int i = threadIdx.x + j * blockDim.x; wv[j] = i < D && !G ? w[i] : 0.f; pw[j] = 0.f; }
    constexpr bool PF = V <= 4;   /* the next row's dy, x loaded before this row's sums (registers allow it up to V 4) */
    float dn[PF ? V : 1], xn[PF ? V : 1];
    if (PF && blockIdx.x < (unsigned)N)
#pragma unroll
        for (int j = 0; j < (PF ? V : 1); j++) {
            int i = threadIdx.x + j * blockDim.x;
            dn[j] = i < D ? dy[(size_t)blockIdx.x * D + i] : 0.f; xn[j] = i < D ? x[(size_t)blockIdx.x * D + i] : 0.f;
        }
    for (int r = blockIdx.x; r < N; r += gridDim.x) {
        const float *d = dy + (size_t)r * D, *xr = x + (size_t)r * D; float *o = dx + (size_t)r * D;
        float dv[V], xv[V], dot = 0;
#pragma unroll
        for (int j = 0; j < V; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (PF) { dv[j] = dn[j % (PF ? V : 1)]; xv[j] = xn[j % (PF ? V : 1)]; }
            else { dv[j] = i < D ? d[i] : 0.f; xv[j] = i < D ? xr[i] : 0.f; }
        }
        if (PF && r + (int)gridDim.x < N)
#pragma unroll
            for (int j = 0; j < (PF ? V : 1); j++) {
                int i = threadIdx.x + j * blockDim.x;
                size_t rn = (size_t)(r + gridDim.x) * D;
                dn[j] = i < D ? dy[rn + i] : 0.f; xn[j] = i < D ? x[rn + i] : 0.f;
            }
        float gv[G ? V : 1], uv[G ? V : 1], st = 1.f;   /* G: this row's gate / up values, loaded before the block sum */
        if (G) {
#pragma unroll
            for (int j = 0; j < (G ? V : 1); j++) {
                int i = threadIdx.x + j * blockDim.x;
                gv[j] = i < D ? ga.g[(size_t)r * D + i] : 0.f; uv[j] = i < D ? ga.u[(size_t)r * D + i] : 0.f;
            }
            if (ga.cv) st = ga.s[r];
        }
#pragma unroll
        for (int j = 0; j < V; j++) { int i = threadIdx.x + j * blockDim.x; if (i < D) dot += dv[j] * (G ? __ldg(w + i) : wv[j]) * xv[j]; }
        dot = block_sum(dot);
        float rs = rstd[r], k = dot * rs * rs * rs / (float)D;
#pragma unroll
        for (int j = 0; j < V; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i >= D) break;
            float v = rs * dv[j] * (G ? __ldg(w + i) : wv[j]) - k * xv[j];
            if (G) {   /* k_glu_bwd_cv's element on dh = v */
                float a, b;
                size_t e = (size_t)r * D + i;
                glu_bwd1(gv[j % (G ? V : 1)], v, uv[j % (G ? V : 1)], ga.silu, a, b);
                if (ga.wf) { ga.dg[e] = a; ga.du[e] = b; }
                if (ga.cv) {
                    ga.pg[e] = __float2bfloat16(a); ga.pg[ga.n + e] = __float2bfloat16(a / st);
                    ga.pu[e] = __float2bfloat16(b); ga.pu[ga.n + e] = __float2bfloat16(b / st);
                }
            } else o[i] = acc ? o[i] + v : v;
            pw[j] += dv[j] * xv[j] * rs;
        }
    }
    if (!part) return;
#pragma unroll
    for (int j = 0; j < V; j++) { int i = threadIdx.x + j * blockDim.x; if (i < D) part[(size_t)blockIdx.x * D + i] = pw[j]; }
}
/* dw[c] += sum over k < splits of part[k][c]; block (32, 32), grid D / 32. */
__global__ void k_rms_dw_fin2(const float *part, float *dw, int D, int splits) {
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = 0;
    if (c < D) for (int k = threadIdx.y; k < splits; k += 32) s += part[(size_t)k * D + c];
    __shared__ float sm[32][33];
    sm[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < D) {
        for (int k = 1; k < 32; k++) s += sm[k][threadIdx.x];
        dw[c] += s;
    }
}
#define RMS_V(c, F, ...) switch (c) { case 0: F<1>__VA_ARGS__; break; case 1: F<2>__VA_ARGS__; break; case 2: F<4>__VA_ARGS__; break; \
    case 3: F<6>__VA_ARGS__; break; case 4: F<8>__VA_ARGS__; break; case 5: F<12>__VA_ARGS__; break; default: F<16>__VA_ARGS__; break; }
template <int V> static void *rms_bwd_fn() { return (void *)k_rms_bwd_r<V>; }
template <int V> static void *rms_fwd_fn() { return (void *)k_rms_fwd_p<V>; }
/* Resident blocks of th threads of the backward (fwd: the forward prefetch) rows kernel of
 * class c, times the SM count (asked once per class and kernel). */
static int rms_bwd_nb(struct gt *g, int c, int th, int fwd = 0) {
    int *nbc = fwd ? g->rms_nbf : g->rms_nb;
    if (!nbc[c]) {
        void *f = NULL; int nb = 0;
        if (fwd) { RMS_V(c, f = rms_fwd_fn, ()) } else { RMS_V(c, f = rms_bwd_fn, ()) }
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, th, 0) != cudaSuccess || nb < 1) { cudaGetLastError(); nb = 1; }
        if (!g->nsm && cudaDeviceGetAttribute(&g->nsm, cudaDevAttrMultiProcessorCount, g->dev) != cudaSuccess) { cudaGetLastError(); g->nsm = 1; }
        nbc[c] = nb;
    }
    return nbc[c] * (g->nsm > 0 ? g->nsm : 1);
}
static shadow *shadow_for(struct gt *g, const float *x, size_t nq, size_t ns) {
    for (int i = 0; i < g->nsh; i++) if (g->sh[i].x == x) {
        shadow *h = &g->sh[i];
        if (!NEED(g, h->q, h->cap_q, nq * sizeof(bf16), "quantized activations") || !NEED(g, h->s, h->cap_s, ns * sizeof(float), "activation scales")) return NULL;
        if (g->i8 && !NEED(g, h->q8, h->cap_q8, nq, "quantized activations")) return NULL;
        return h;
    }
    if (!ns) return NULL;   /* lookup only */
    if (!GROW(g, g->sh, g->capsh, g->nsh)) return NULL;
    shadow *h = &g->sh[g->nsh++];
    memset(h, 0, sizeof *h); h->x = x;
    if (!NEED(g, h->q, h->cap_q, nq * sizeof(bf16), "quantized activations") || !NEED(g, h->s, h->cap_s, ns * sizeof(float), "activation scales")) return NULL;
    if (g->i8 && !NEED(g, h->q8, h->cap_q8, nq, "quantized activations")) return NULL;
    return h;
}
static shadow *shadow_find(struct gt *g, const float *x) {
    for (int i = 0; i < g->nsh; i++) if (g->sh[i].x == x) return &g->sh[i];
    return NULL;
}
template <int V> static void rms_fwd_glu_launch(struct gt *g, int nb, int th, const float *w, float *y, float *rstd, float *yq, bf16 *qb, int8_t *q8,
                                                float *sc, int N, int D, float eps, glu_fwd_rows ga) {
    k_rms_fwd_p<V, true><<<nb, th, 0, g->st>>>(ga.h, w, y, rstd, yq, qb, q8, sc, N, D, eps, g->keep_yq, ga);
}
static void op_rms_fwd(bn_train_model *m, const float *x, const float *w, float *y, float *rstd, float *yq, int N, int D) {
    struct gt *g = (struct gt *)m->gpu;
    /* rows kernel up to 4 values a thread: at 12 (D 5632, 512 threads) it measured 3.67 ms for
     * the 1b step's 18 calls against the strided kernel's 3.24 (fewer rows resident) */
    int th = rms_threads(D);
    if (g->rmw && D > 2048 && D <= 6144) th = 1024;   /* rmw: wide rows on 1024 threads, <= 6 values a thread (1b: D 5632) */
    int c = g->rms ? rms_vclass(D, th) : -1;
    if (c > (th == 1024 ? 3 : 2)) c = -1;
    glu_fwd_rows ga = {g->gfw.g, g->gfw.u, g->gfw.h, g->gfw.silu};
    int gn = g->gfw.h && g->gfw.h == x && c >= 0 && g->gfw.n == (size_t)N * D;   /* gn: the deferred gating forward into x, taken over */
    if (gn) g->gfw.h = NULL;
    g = GT(m);
    if (g->err || N <= 0) return;
    shadow *h = NULL;
    if (yq && !(h = shadow_for(g, yq, (size_t)N * D, (size_t)N))) return;
    if (c >= 0) {   /* rpf: rows loop with the next row prefetched (same bits); else a block per row */
        int nb = g->rpf ? rms_bwd_nb(g, c, th, 1) : N; if (nb > N) nb = N;
        if (gn) { RMS_V(c, rms_fwd_glu_launch, (g, nb, th, tr(m, w), y, rstd, yq, h ? h->q : NULL, h && g->i8 ? h->q8 : NULL, h ? h->s : NULL, N, D, m->cfg.norm_eps, ga)) }
        else { RMS_V(c, k_rms_fwd_p, <<<nb, th, 0, g->st>>>(x, tr(m, w), y, rstd, yq, h ? h->q : NULL, h && g->i8 ? h->q8 : NULL, h ? h->s : NULL, N, D, m->cfg.norm_eps, g->keep_yq)) }
    } else k_rms_fwd<<<N, th, 0, g->st>>>(x, tr(m, w), y, rstd, yq, h ? h->q : NULL, h && g->i8 ? h->q8 : NULL, h ? h->s : NULL, D, m->cfg.norm_eps, g->keep_yq);
    LAUNCHED(g, gn ? "gating + rmsnorm forward" : "rmsnorm forward");
}
__global__ void k_rms_dx(const float *dy, const float *x, const float *w, const float *rstd, float *dx, int D, int acc) {
    size_t r = blockIdx.x;
    const float *d = dy + r * D, *xr = x + r * D; float *o = dx + r * D;
    float dot = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) dot += d[i] * w[i] * xr[i];
    dot = block_sum(dot);
    float rs = rstd[r], k = dot * rs * rs * rs / (float)D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = rs * d[i] * w[i] - k * xr[i];
        o[i] = acc ? o[i] + v : v;
    }
}
/* part[split][c] = sum over rows of the split of dy x rstd; block (32, 8), grid (D/32, splits). */
__global__ void k_rms_dw_part(const float *dy, const float *x, const float *rstd, float *part, int N, int D, int rows) {
    int c = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
    float s = 0;
    if (c < D) for (int r = r0 + threadIdx.y; r < r1; r += 8) s += dy[(size_t)r * D + c] * x[(size_t)r * D + c] * rstd[r];
    __shared__ float sm[8][33];
    sm[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < D) {
        for (int k = 1; k < 8; k++) s += sm[k][threadIdx.x];
        part[(size_t)blockIdx.y * D + c] = s;
    }
}
__global__ void k_rms_dw_fin(const float *part, float *dw, int D, int splits) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= D) return;
    float s = 0;
    for (int k = 0; k < splits; k++) s += part[(size_t)k * D + c];
    dw[c] += s;
}
/* The rmsnorm backward's launch geometry: threads *tb and the rows kernel's class (-1: the
 * strided kernels). */
static int rms_bwd_class(struct gt *g, int D, int *tb) {
    *tb = D > 2048 && D <= 6144 ? 1024 : rms_threads(D);   /* 1024 threads: V <= 6, twice the warps */
    return g->rms ? rms_vclass(D, *tb) : -1;
}
template <int V> static void rms_glu_launch(struct gt *g, int nb, int tb, const float *dy, const float *x, const float *w, const float *rstd,
                                            float *dx, float *part, int N, int D, glu_rows ga) {
    k_rms_bwd_r<V, true><<<nb, tb, 0, g->st>>>(dy, x, w, rstd, dx, part, N, D, 0, ga);
}
/* op_rms_bwd's kernels (w, dw device pointers); ga given (rg): the rows kernel with the gating
 * backward on dx instead of writing dx (acc 0; the grid and so the gamma partials as without). */
static void rms_bwd_run(struct gt *g, const float *dy, const float *x, const float *w, const float *rstd,
                        float *dx, float *dw, int N, int D, int acc, const glu_rows *ga = NULL) {
    int tb, c = rms_bwd_class(g, D, &tb), th = rms_threads(D);
    if (c >= 0) {   /* one pass: dx and the gamma partials, then one reduction */
        int nb = rms_bwd_nb(g, c, tb); if (nb > N) nb = N;
        if (dw && !NEED(g, g->dwpart, g->cap_dw, (size_t)nb * D * sizeof(float), "norm gradient scratch")) return;
        float *part = dw ? g->dwpart : NULL;
        if (ga) { RMS_V(c, rms_glu_launch, (g, nb, tb, dy, x, w, rstd, dx, part, N, D, *ga)) }
        else { RMS_V(c, k_rms_bwd_r, <<<nb, tb, 0, g->st>>>(dy, x, w, rstd, dx, part, N, D, acc)) }
        if (dw) k_rms_dw_fin2<<<(D + 31) / 32, dim3(32, 32), 0, g->st>>>(g->dwpart, dw, D, nb);
        LAUNCHED(g, "rmsnorm backward");
        return;
    }
    if (dw) {
        int splits = (N + 127) / 128; if (splits > 256) splits = 256;
        int rows = (N + splits - 1) / splits;
        if (!NEED(g, g->dwpart, g->cap_dw, (size_t)splits * D * sizeof(float), "norm gradient scratch")) return;
        k_rms_dw_part<<<dim3((D + 31) / 32, splits), dim3(32, 8), 0, g->st>>>(dy, x, rstd, g->dwpart, N, D, rows);
        k_rms_dw_fin<<<(D + 255) / 256, 256, 0, g->st>>>(g->dwpart, dw, D, splits);
    }
    k_rms_dx<<<N, th, 0, g->st>>>(dy, x, w, rstd, dx, D, acc);
    LAUNCHED(g, "rmsnorm backward");
}
/* rg: the deferred rmsnorm backward, issued now (unfused). */
static void rb_flush(struct gt *g) {
    float *dx = g->rb.dx;
    g->rb.dx = NULL;
    if (!g->err) rms_bwd_run(g, g->rb.dy, g->rb.x, g->rb.w, g->rb.rstd, dx, g->rb.dw, g->rb.N, g->rb.D, 0);
}
static void op_rms_bwd(bn_train_model *m, const float *dy, const float *x, const float *w, const float *rstd,
                       float *dx, float *dw, int N, int D, int acc) {
    struct gt *g = GT(m);
    if (g->err || N <= 0) return;
    int tb;
    const float *wd = tr(m, w); float *dwd = dw ? tr(m, dw) : NULL;
    if (g->rg && !acc && dx && rms_bwd_class(g, D, &tb) >= 0) {   /* deferred: GT issues it, or op_glu_bwd takes it over */
        g->rb.dy = dy; g->rb.x = x; g->rb.w = wd; g->rb.rstd = rstd; g->rb.dw = dwd; g->rb.N = N; g->rb.D = D; g->rb.dx = dx;
        return;
    }
    rms_bwd_run(g, dy, x, wd, rstd, dx, dwd, N, D, acc);
}

/* ---------------------------------------------------------------- BitLinear */
/* y[t][o] (=, or += when acc) tmp[t][o] * scale / s[t]; block t (grid-stride over rows). */
__global__ void k_lin_epi(const float *tmp, float *y, const float *s, const float *scale, int N, int out, int acc) {
    float sc = *scale;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        const float *a = tmp + (size_t)t * out; float *o = y + (size_t)t * out;
        float st = s[t];
        for (int i = threadIdx.x; i < out; i += blockDim.x) { float v = __fmul_rn(__fdiv_rn(a[i], st), sc); o[i] = acc ? __fadd_rn(o[i], v) : v; }
    }
}
/* The same from int32 sums: y[t][o] (=, or +=) (float)acc[t][o] / s[t] * scale; acc may be y. */
__global__ void k_lin_epi_i(const int32_t *acc_, float *y, const float *s, const float *scale, int N, int out, int acc) {
    float sc = *scale;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        const int32_t *a = acc_ + (size_t)t * out; float *o = y + (size_t)t * out;
        float st = s[t];
        for (int i = threadIdx.x; i < out; i += blockDim.x) { float v = __fmul_rn(__fdiv_rn((float)a[i], st), sc); o[i] = acc ? __fadd_rn(o[i], v) : v; }
    }
}
/* k_lin_epi_i with 4 elements a thread (vec; out % 4 == 0, 16-byte aligned rows): the same
 * expression per element; with acc, y = base + the product (base: y itself, or the source of a
 * copy into y that this replaces). */
__global__ void k_lin_epi_i4(const int32_t *acc_, float *y, const float *base, const float *s, const float *scale, int N, int out, int acc) {
    float sc = *scale;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        const int4 *a = (const int4 *)(acc_ + (size_t)t * out); float4 *o = (float4 *)(y + (size_t)t * out);
        const float4 *bs = (const float4 *)(base + (size_t)t * out);
        float st = s[t];
        for (int i = threadIdx.x; i < out / 4; i += blockDim.x) {
            int4 q = a[i];
            float4 v = make_float4(__fmul_rn(__fdiv_rn((float)q.x, st), sc), __fmul_rn(__fdiv_rn((float)q.y, st), sc),
                                   __fmul_rn(__fdiv_rn((float)q.z, st), sc), __fmul_rn(__fdiv_rn((float)q.w, st), sc));
            if (acc) { float4 p = bs[i]; v = make_float4(__fadd_rn(p.x, v.x), __fadd_rn(p.y, v.y), __fadd_rn(p.z, v.z), __fadd_rn(p.w, v.w)); }
            o[i] = v;
        }
    }
}
/* dy as split bf16 terms: for k < split, b[2k n + i] = bf16 of what terms < k left of dy, and
 * b[(2k+1) n + i] the same for dy / s[t] (2 terms carry 16 mantissa bits, 3 all 24); n = N out,
 * block t (grid-stride over rows). */
__global__ void k_dy_conv(const float *dy, const float *s, bf16 *b, int N, int out, int split) {
    size_t n = (size_t)N * out;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        float st = s[t];
        for (int j = threadIdx.x; j < out; j += blockDim.x) {
            size_t i = (size_t)t * out + j;
            float d = dy[i], e = d / st;
            for (int k = 0; k < split; k++) {
                bf16 h = __float2bfloat16(d), hs = __float2bfloat16(e);
                b[2 * k * n + i] = h; b[(2 * k + 1) * n + i] = hs;
                d -= __bfloat162float(h); e -= __bfloat162float(hs);
            }
        }
    }
}
/* k_dy_conv with 4 elements a thread (vec; out % 4 == 0): the same expressions. */
__global__ void k_dy_conv4(const float *dy, const float *s, bf16 *b, int N, int out, int split) {
    size_t n = (size_t)N * out;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        float st = s[t];
        for (int j = threadIdx.x; j < out / 4; j += blockDim.x) {
            size_t i = (size_t)t * out + 4 * j;
            float4 v = *(const float4 *)(dy + i);
            float d[4] = {v.x, v.y, v.z, v.w}, e[4];
#pragma unroll
            for (int c = 0; c < 4; c++) e[c] = d[c] / st;
            for (int k = 0; k < split; k++) {
                bf16 h[4], hs[4];
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    h[c] = __float2bfloat16(d[c]); hs[c] = __float2bfloat16(e[c]);
                    d[c] -= __bfloat162float(h[c]); e[c] -= __bfloat162float(hs[c]);
                }
                __nv_bfloat162 *ph = (__nv_bfloat162 *)(b + 2 * k * n + i), *ps = (__nv_bfloat162 *)(b + (2 * k + 1) * n + i);
                ph[0] = __halves2bfloat162(h[0], h[1]); ph[1] = __halves2bfloat162(h[2], h[3]);
                ps[0] = __halves2bfloat162(hs[0], hs[1]); ps[1] = __halves2bfloat162(hs[2], hs[3]);
            }
        }
    }
}
static void op_lin_fwd(bn_train_model *m, const float *x, int widx, float *y, int N, int acc) {
    struct gt *g = (struct gt *)m->gpu;
    int out = (int)m->tp[widx].shape[0], in = (int)m->tp[widx].shape[1];
    const float *base = y;   /* cf: a deferred copy into y of exactly these rows is taken over by the int8 epilogue below */
    if (g->pc.dst == y && acc && g->pc.n == (size_t)N * out) { base = g->pc.src; g->pc.dst = NULL; }
    g = GT(m);
    if (g->err) return;
    shadow *h = m->no_quant ? NULL : shadow_find(g, x);
    size_t off = m->tp[widx].off;
    int i8 = h && g->i8 && h->q8 && off % 16 == 0 && in % 4 == 0 && out % 4 == 0, v4 = g->vec && ((uintptr_t)y | (uintptr_t)base) % 16 == 0;
    if (base != y && !(i8 && v4)) { g->pc.dst = y; g->pc.src = base; g->pc.n = (size_t)N * out; copy_flush(g); base = y; }   /* not taken over: copy now */
    if (g->nrk) rk_set(g, y, RK_NONE);   /* new values in y: no RoPE pending on them */
    if (g->gl.gf && !acc) yx_note(g, y, x, out);
    if (!h && !m->no_quant) { note(g, bn_err(BITNET_ERR_ARG, "cuda training: a BitLinear input that no rmsnorm quantized")); return; }
    if (!h) {   /* full precision (no_quant): fp32 operands */
        gemm(g, 0, 1, N, out, in, x, CUDA_R_32F, in, g->p + off, CUDA_R_32F, in, g->one_zero + 1, g->one_zero + acc, y, out, g->fct);
        return;
    }
    float *dst = y;
    if (acc) { if (!NEED(g, g->tmp, g->cap_tmp, (size_t)N * out * sizeof(float), "BitLinear scratch")) return; dst = g->tmp; }
    if (i8) {   /* int8 tensor cores: the same integer sums */
        cb_ok(g, cublasGemmEx(g->cb, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, g->ioz + 1, g->wi8 + off, CUDA_R_8I, in, h->q8, CUDA_R_8I, in,
                              g->ioz, dst, CUDA_R_32I, out, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT), "int8 GEMM");
        if (v4) k_lin_epi_i4<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>((const int32_t *)dst, y, base, h->s, g->wscale + widx, N, out, acc);
        else k_lin_epi_i<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>((const int32_t *)dst, y, h->s, g->wscale + widx, N, out, acc);
        LAUNCHED(g, "BitLinear forward");
        return;
    }
    gemm(g, 0, 1, N, out, in, h->q, CUDA_R_16BF, in, g->wb + off, CUDA_R_16BF, in, g->one_zero + 1, g->one_zero, dst, out, CUBLAS_COMPUTE_32F);
    k_lin_epi<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>(dst, y, h->s, g->wscale + widx, N, out, acc);
    LAUNCHED(g, "BitLinear forward");
}
static void op_lin_bwd(bn_train_model *m, const float *dy, const float *x, int widx, float *dx, int N, int acc_dx) {
    struct gt *g = GT(m);
    if (g->err) return;
    int out = (int)m->tp[widx].shape[0], in = (int)m->tp[widx].shape[1];
    size_t off = m->tp[widx].off;
    shadow *h = m->no_quant ? NULL : shadow_find(g, x);
    if (!h && !m->no_quant) { note(g, bn_err(BITNET_ERR_ARG, "cuda training: a BitLinear input that no rmsnorm quantized")); return; }
    if (!h) {
        gemm(g, 1, 0, out, in, N, dy, CUDA_R_32F, out, x, CUDA_R_32F, in, g->one_zero + 1, g->one_zero + !gz_take(g, widx), g->g + off, in, g->fct);
        if (dx) gemm(g, 0, 0, N, in, out, dy, CUDA_R_32F, out, g->p + off, CUDA_R_32F, in, g->one_zero + 1, g->one_zero + acc_dx, dx, in, g->fct);
        return;
    }
    size_t n = (size_t)N * out;
    const bf16 *pre = NULL;   /* gf: the operands glu_bwd wrote for this dy (same bits as k_dy_conv's) */
    for (int i = 0; i < 2; i++)
        if (g->gl.pk[i].dy == dy && g->gl.pk[i].x == x && g->split == 1) { pre = g->gl.pb + 2 * (size_t)i * n; g->gl.pk[i].dy = NULL; break; }
    if (!pre && g->gl.uw && (g->gl.pk[0].dy == dy || g->gl.pk[1].dy == dy)) {   /* never in train.c's order (backend.h) */
        note(g, bn_err(BITNET_ERR_ARG, "cuda training: a BitLinear backward on a gating gradient that glu_bwd left unwritten"));
        return;
    }
    if (!pre) g->gl.pk[0].dy = g->gl.pk[1].dy = NULL;   /* valid only for the linear_bwd calls right after glu_bwd */
    if (!pre) {
        if (!NEED(g, g->dyb, g->cap_dy, 2 * (size_t)g->split * n * sizeof(bf16), "gradient scratch")) return;
        if (g->vec && out % 4 == 0 && (uintptr_t)dy % 16 == 0) k_dy_conv4<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>(dy, h->s, g->dyb, N, out, g->split);
        else k_dy_conv<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>(dy, h->s, g->dyb, N, out, g->split);
        LAUNCHED(g, "BitLinear backward");
    }
    int z = gz_take(g, widx);   /* lazily zeroed gradient: the first dW product overwrites it (beta 0) */
    for (int k = 0; k < g->split; k++) {   /* hi, then the remainders: q and the ternary values are exact in bf16 */
        const bf16 *b = pre ? pre : g->dyb + 2 * k * n;
        gemm(g, 1, 0, out, in, N, b + n, CUDA_R_16BF, out, h->q, CUDA_R_16BF, in, g->one_zero + 1, g->one_zero + (k || !z), g->g + off, in, CUBLAS_COMPUTE_32F);
        if (dx && k < g->split_dx) gemm(g, 0, 0, N, in, out, b, CUDA_R_16BF, out, g->wb + off, CUDA_R_16BF, in, g->wscale + widx, g->one_zero + (k ? 1 : acc_dx), dx, in, CUBLAS_COMPUTE_32F);
    }
}

/* ---------------------------------------------------------------- rope */
__global__ void k_rope(float *x, const float *cs, const float *sn, size_t n, int nh, int hd, int T, int inv) {
    int h2 = hd / 2;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / ((size_t)nh * h2); int rem = (int)(i % ((size_t)nh * h2)), h = rem / h2, j = rem % h2;
        int t = (int)(r % T);
        float *p = x + r * nh * hd + h * hd;
        float x1 = p[j], x2 = p[j + h2], co = cs[t * h2 + j], si = inv ? -sn[t * h2 + j] : sn[t * h2 + j];
        p[j] = __fsub_rn(__fmul_rn(x1, co), __fmul_rn(x2, si));
        p[j + h2] = __fadd_rn(__fmul_rn(x2, co), __fmul_rn(x1, si));
    }
}
static int use_fa(bn_train_model *m);
/* The RoPE of this model folds into the attention ops (fa 2 with knob rf: train.c ropes q and
 * k right before attn_fwd, and dq, dk right after attn_bwd, and nothing else reads them). */
static int rope_folds(bn_train_model *m) { struct gt *g = GT(m); return g->rf && g->fa == 2 && use_fa(m) && m->cfg.head_dim % 8 == 0; }
/* The RoPE tables [T][hd/2] of m->T on the device (made on first use); 0 on failure (noted). */
static int rope_tables(bn_train_model *m) {
    struct gt *g = GT(m);
    int T = m->T, hd = m->cfg.head_dim, h2 = hd / 2;
    if (g->rT != T) {
        size_t nb = (size_t)T * h2 * sizeof(float);
        float *hc = (float *)malloc(2 * nb);
        if (!hc) { note(g, bn_err(BITNET_ERR_NOMEM, "out of memory")); return 0; }
        bn_rope_tables(m->cfg.rope_theta, hd, T, hc, hc + (size_t)T * h2);
        cudaFree(g->rcos); g->rcos = NULL; g->rsin = NULL;
        bitnet_status s = bn_cu_malloc((void **)&g->rcos, 2 * nb, "RoPE tables");
        if (!s) s = bn_cu_h2d(g->rcos, hc, 2 * nb, g->st);
        if (!s) s = bn_cu_sync(g->st);
        free(hc);
        if (s) { note(g, s); return 0; }
        g->rsin = g->rcos + (size_t)T * h2; g->rT = T;
    }
    return 1;
}
/* Rotate-half RoPE in place (backend.h), or with rope_folds: the forward rotation of q / k is
 * left to the attention ops (x marked RK_PENDING: attn_fwd and attn_bwd convert it to bf16
 * through the rotation, which gives the bits of rotating here first), and the inverse of a dq /
 * dk that attn_bwd already wrote through it (RK_UNDONE) is skipped. */
static void op_rope(bn_train_model *m, float *x, int N, int nh, int inv) {
    struct gt *g = GT(m);
    if (g->err || !rope_tables(m)) return;
    int T = m->T, hd = m->cfg.head_dim, h2 = hd / 2;
    if (inv && rk_state(g, x) == RK_UNDONE) { rk_set(g, x, RK_NONE); return; }
    if (!inv && rope_folds(m) && N == m->B * T && (nh == m->cfg.n_heads || nh == m->cfg.n_kv_heads)) { rk_set(g, x, RK_PENDING); return; }
    if (g->nrk) rk_set(g, x, RK_NONE);
    size_t n = (size_t)N * nh * h2;
    k_rope<<<blocks(n, 256), 256, 0, g->st>>>(x, g->rcos, g->rsin, n, nh, hd, T, inv);
    LAUNCHED(g, "rope");
}

/* ---------------------------------------------------------------- attention */
/* Pointer arrays for the batched GEMMs: batch i = (g, b, kh), query head h = kh * grp + g, so
 * the B*KH entries of one g touch each kv slice once (dK, dV are summed over g in turn).
 * Slots: 0 q, 1 k, 2 v, 3 att, 4 out, 5 dout, 6 dq, 7 dk, 8 dv, 9 dP; row-indexed slots (q, att,
 * out, dout, dq, dP) start at row r0 = blockIdx.y * T / nb of the causal row block blockIdx.y,
 * whose arrays are ptrs + blockIdx.y * 10 * n. */
#define ATT_NB 4            /* causal row blocks: block i sees keys [0, (i+1) T / 4) */
typedef struct { float *b[10]; } att_bases;
__global__ void k_att_ptrs(att_bases a, void **ptrs, int B, int H, int KH, int T, int hd, int nb) {
    int n = B * H, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int grp = H / KH, BK = B * KH, gi = i / BK, r = i % BK, b = r / KH, kh = r % KH, h = kh * grp + gi;
    size_t Q = (size_t)H * hd, KV = (size_t)KH * hd, r0 = (size_t)blockIdx.y * T / nb;
    size_t qo = (size_t)b * T * Q + (size_t)h * hd + r0 * Q, ko = (size_t)b * T * KV + (size_t)kh * hd, po = ((size_t)b * H + h) * T * T + r0 * T;
    size_t off[10] = {qo, ko, ko, po, qo, qo, qo, ko, ko, po};
    void **o = ptrs + (size_t)blockIdx.y * 10 * n;
    for (int s = 0; s < 10; s++) o[(size_t)s * n + i] = a.b[s] ? (void *)(a.b[s] + off[s]) : NULL;
}
/* Row of P [rows][T], t = row % T: p_j = softmax(s_j * scale) over j <= t, 0 after. */
__global__ void k_softmax_causal(float *P, int T, float scale) {
    size_t r = blockIdx.x; int t = (int)(r % T);
    float *p = P + r * T;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) mx = fmaxf(mx, p[j] * scale);
    mx = block_max(mx);
    float s = 0;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) { float e = expf(p[j] * scale - mx); p[j] = e; s += e; }
    s = block_sum(s);
    float inv = 1.0f / s;
    for (int j = threadIdx.x; j < T; j += blockDim.x) p[j] = j <= t ? p[j] * inv : 0.f;
}
/* dS = P (dP - sum_j P dP) scale over j <= t, 0 after; in place on dP. */
__global__ void k_dsoftmax(const float *P, float *dP, int T, float scale) {
    size_t r = blockIdx.x; int t = (int)(r % T);
    const float *p = P + r * T; float *d = dP + r * T;
    float s = 0;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) s += p[j] * d[j];
    s = block_sum(s);
    for (int j = threadIdx.x; j < T; j += blockDim.x) d[j] = j <= t ? p[j] * (d[j] - s) * scale : 0.f;
}
static int att_nb(int T) { return T >= 4 * ATT_NB ? ATT_NB : 1; }
static void **att_ptrs(bn_train_model *m, att_bases a) {
    struct gt *g = GT(m);
    const bn_config *c = &m->cfg;
    int n = m->B * c->n_heads, nb = att_nb(m->T);
    if (!NEED(g, g->ptrs, g->cap_ptrs, (size_t)nb * 10 * n * sizeof(void *), "attention pointer arrays")) return NULL;
    k_att_ptrs<<<dim3((n + 127) / 128, nb), 128, 0, g->st>>>(a, g->ptrs, m->B, c->n_heads, c->n_kv_heads, m->T, c->head_dim, nb);
    return LAUNCHED(g, "attention pointers") ? g->ptrs : NULL;
}
/* Flash attention (train_attn.cu) for this model's shape: the att buffer [B][H][T][T] holds the
 * row statistics instead of P (lse [B*H][T], then D [B*H][T]: T >= 2 makes room). */
static int use_fa(bn_train_model *m) { return GT(m)->fa && m->T >= 2 && bn_fa_supported(m->cfg.head_dim); }
static bn_fa_args fa_args(bn_train_model *m, const float *q, const float *k, const float *v, const float *att) {
    const bn_config *c = &m->cfg;
    bn_fa_args a;
    memset(&a, 0, sizeof a);
    a.q = q; a.k = k; a.v = v; a.lse = (float *)att; a.D = (float *)att + (size_t)m->B * c->n_heads * m->T;
    a.B = m->B; a.T = m->T; a.H = c->n_heads; a.KH = c->n_kv_heads; a.hd = c->head_dim;
    return a;
}
/* fa 2: q, k, v converted to bf16 into g->fab (and room for dout's copy when bwd); 0 on failure
 * (error noted). lse, D in att as fa_args. */
static int fb_args(bn_train_model *m, const float *q, const float *k, const float *v, const float *att, int bwd, bn_fb_args *a) {
    struct gt *g = GT(m);
    const bn_config *c = &m->cfg;
    size_t nq = (size_t)m->B * m->T * c->n_heads * c->head_dim, nk = (size_t)m->B * m->T * c->n_kv_heads * c->head_dim;
    if (!NEED(g, g->fab, g->cap_fab, (2 * nq + 2 * nk) * sizeof(bf16), "attention bf16 operands")) return 0;
    memset(a, 0, sizeof *a);
    bf16 *qb = g->fab, *kb = qb + nq, *vb = kb + nk;
    size_t rows = (size_t)m->B * m->T;
    /* q, k with their RoPE pending (op_rope) are rotated on the way */
    cudaError_t eq = rk_state(g, q) == RK_PENDING ? bn_fb_convert_rope(q, qb, rows, c->n_heads, c->head_dim, m->T, g->rcos, g->rsin, g->st) : bn_fb_convert(q, qb, nq, g->st);
    cudaError_t ek = rk_state(g, k) == RK_PENDING ? bn_fb_convert_rope(k, kb, rows, c->n_kv_heads, c->head_dim, m->T, g->rcos, g->rsin, g->st) : bn_fb_convert(k, kb, nk, g->st);
    if (!cu_ok(g, eq, "bf16 conversion") || !cu_ok(g, ek, "bf16 conversion") || !cu_ok(g, bn_fb_convert(v, vb, nk, g->st), "bf16 conversion")) return 0;
    a->qb = qb; a->kb = kb; a->vb = vb; a->dob = bwd ? vb + nk : NULL;
    a->lse = (float *)att; a->D = (float *)att + (size_t)m->B * c->n_heads * m->T;
    a->B = m->B; a->T = m->T; a->H = c->n_heads; a->KH = c->n_kv_heads; a->hd = c->head_dim;
    a->opt = g->fao;
    return 1;
}
/* Remember out as the attention output of att (the backward's D = rowsum(dO * O) reads it). */
static void fa_note_out(struct gt *g, const float *att, const float *out) {
    for (int i = 0; i < g->nfo; i++) if (g->fo[i].att == att) { g->fo[i].out = out; return; }
    if (!GROW(g, g->fo, g->capfo, g->nfo)) return;
    g->fo[g->nfo].att = att; g->fo[g->nfo++].out = out;
}
static void op_attn_fwd(bn_train_model *m, const float *q, const float *k, const float *v, float *att, float *out) {
    struct gt *g = GT(m);
    if (g->err) return;
    if (use_fa(m) && g->fa == 2) {
        bn_fb_args a;
        if (!fb_args(m, q, k, v, att, 0, &a)) return;
        a.o = out;
        fa_note_out(g, att, out);
        cu_ok(g, bn_fb_forward(&a, g->st), "flash attention forward");
        return;
    }
    if (use_fa(m)) {
        bn_fa_args a = fa_args(m, q, k, v, att);
        a.o = out;
        fa_note_out(g, att, out);
        cu_ok(g, bn_fa_forward(&a, g->fa_fs, g->st), "flash attention forward");
        return;
    }
    const bn_config *c = &m->cfg;
    int T = m->T, hd = c->head_dim, Q = c->n_heads * hd, KV = c->n_kv_heads * hd, n = m->B * c->n_heads;
    att_bases a = {{(float *)q, (float *)k, (float *)v, att, out, NULL, NULL, NULL, NULL, NULL}};
    void **p = att_ptrs(m, a);
    if (!p) return;
    int nb = att_nb(T);
#define PA(s) (p + ((size_t)ib * 10 + (s)) * n)
#define ROWS int r0 = ib * T / nb, r1 = (ib + 1) * T / nb, mb = r1 - r0; (void)r0
    /* row block ib: S = Q K^T over keys [0, r1) only; the softmax zeroes the keys after each row */
    for (int ib = 0; ib < nb; ib++) { ROWS; gemm_batched(g, 0, 1, mb, r1, hd, PA(0), Q, PA(1), KV, g->one_zero, PA(3), T, n, g->afct); }
    k_softmax_causal<<<n * T, T >= 512 ? 256 : 128, 0, g->st>>>(att, T, 1.0f / sqrtf((float)hd));
    LAUNCHED(g, "softmax");
    for (int ib = 0; ib < nb; ib++) { ROWS; gemm_batched(g, 0, 0, mb, hd, r1, PA(3), T, PA(2), KV, g->one_zero, PA(4), Q, n, g->afct); }
}
static void op_attn_bwd(bn_train_model *m, const float *q, const float *k, const float *v, const float *att,
                        const float *dout, float *dq, float *dk, float *dv) {
    struct gt *g = GT(m);
    if (g->err) return;
    if (use_fa(m) && g->fa == 2) {
        bn_fb_args a;
        if (!fb_args(m, q, k, v, att, 1, &a)) return;
        for (int i = 0; i < g->nfo; i++) if (g->fo[i].att == att) a.o = (float *)g->fo[i].out;
        if (!a.o) { note(g, bn_err(BITNET_ERR_ARG, "cuda training: attention backward without its forward")); return; }
        a.dout = dout; a.dq = dq; a.dk = dk; a.dv = dv;
        int undo = rk_state(g, q) == RK_PENDING && rk_state(g, k) == RK_PENDING;   /* the forward's RoPE was folded: fold its inverse too */
        if (undo) { a.rcos = g->rcos; a.rsin = g->rsin; }
        if (cu_ok(g, bn_fb_backward(&a, g->st), "flash attention backward") && undo) { rk_set(g, dq, RK_UNDONE); rk_set(g, dk, RK_UNDONE); }
        return;
    }
    if (use_fa(m)) {
        bn_fa_args a = fa_args(m, q, k, v, att);
        for (int i = 0; i < g->nfo; i++) if (g->fo[i].att == att) a.o = (float *)g->fo[i].out;
        if (!a.o) { note(g, bn_err(BITNET_ERR_ARG, "cuda training: attention backward without its forward")); return; }
        a.dout = dout; a.dq = dq; a.dk = dk; a.dv = dv;
        cu_ok(g, bn_fa_backward(&a, g->fa_bs, g->st), "flash attention backward");
        return;
    }
    const bn_config *c = &m->cfg;
    int T = m->T, hd = c->head_dim, Q = c->n_heads * hd, KV = c->n_kv_heads * hd, n = m->B * c->n_heads;
    int grp = c->n_heads / c->n_kv_heads, bk = m->B * c->n_kv_heads;
    if (!NEED(g, g->dP, g->cap_dP, (size_t)n * T * T * sizeof(float), "attention gradient scratch")) return;
    att_bases a = {{(float *)q, (float *)k, (float *)v, (float *)att, NULL, (float *)dout, dq, dk, dv, g->dP}};
    void **p = att_ptrs(m, a);
    if (!p) return;
    int nb = att_nb(T);
    /* row blocks as in the forward; dK and dV sum over row blocks (the last spans every key, so
     * it writes them first) and over the heads of a group */
    for (int ib = 0; ib < nb; ib++) { ROWS; gemm_batched(g, 0, 1, mb, r1, hd, PA(5), Q, PA(2), KV, g->one_zero, PA(9), T, n, g->fct); }  /* dP = dO V^T */
    for (int gi = 0; gi < grp; gi++)                                                                                                    /* dV (+)= P^T dO */
        for (int ib = nb - 1; ib >= 0; ib--) { ROWS; gemm_batched(g, 1, 0, r1, hd, mb, PA(3) + gi * bk, T, PA(5) + gi * bk, Q, g->one_zero + (gi > 0 || ib < nb - 1), PA(8) + gi * bk, KV, bk, g->fct); }
    k_dsoftmax<<<n * T, T >= 512 ? 256 : 128, 0, g->st>>>(att, g->dP, T, 1.0f / sqrtf((float)hd));
    LAUNCHED(g, "softmax backward");
    for (int ib = 0; ib < nb; ib++) { ROWS; gemm_batched(g, 0, 0, mb, hd, r1, PA(9), T, PA(1), KV, g->one_zero, PA(6), Q, n, g->fct); }  /* dQ = dS K */
    for (int gi = 0; gi < grp; gi++)                                                                                                    /* dK (+)= dS^T Q */
        for (int ib = nb - 1; ib >= 0; ib--) { ROWS; gemm_batched(g, 1, 0, r1, hd, mb, PA(9) + gi * bk, T, PA(0) + gi * bk, Q, g->one_zero + (gi > 0 || ib < nb - 1), PA(7) + gi * bk, KV, bk, g->fct); }
#undef PA
#undef ROWS
}

/* ---------------------------------------------------------------- gated FFN activation */
/* One element of the gating forward: gate value x, up value u -> h. */
__device__ __forceinline__ float glu_fwd1(float x, float u, int silu) {
    if (silu) return x / (1.0f + expf(-x)) * u;
    float r = x > 0 ? x : 0;
    return __fmul_rn(__fmul_rn(r, r), u);
}
__global__ void k_glu_fwd(const float *g, const float *u, float *h, size_t n, int silu) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) h[i] = glu_fwd1(g[i], u[i], silu);
}
/* One element of the gating backward: gate value x, up value uu, dh = d -> dg, du. */
__device__ __forceinline__ void glu_bwd1(float x, float d, float uu, int silu, float &dg, float &du) {
    if (silu) {
        float sg = 1.0f / (1.0f + expf(-x)), f = x * sg;
        du = d * f; dg = d * uu * (sg * (1.0f + x * (1.0f - sg)));
    } else {
        float r = x > 0 ? x : 0;
        du = d * r * r; dg = d * uu * 2.0f * r;
    }
}
__global__ void k_glu_bwd(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n, int silu) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float a, b;
        glu_bwd1(g[i], dh[i], u[i], silu, a, b);
        dg[i] = a; du[i] = b;
    }
}
/* k_glu_bwd on rows [N][I] (I % 4 == 0, 4 elements a thread), and the gate / up BitLinear
 * backward's bf16 operands on the way, as k_dy_conv (split 1) writes them from dg / du with the
 * activation scales s [N] of their input: pg = [bf16(dg) | bf16(dg / s[t])], pu the same for
 * du (each [2][N][I]); dg / du themselves only when wf (the bf16 operands do not depend on it).
 * Block t, grid-stride over rows. */
__global__ void k_glu_bwd_cv(const float *g, const float *u, const float *dh, float *dg, float *du, const float *s,
                             bf16 *pg, bf16 *pu, int N, int I, int silu, int wf) {
    size_t n = (size_t)N * I;
    for (int t = blockIdx.x; t < N; t += gridDim.x) {
        float st = s[t];
        for (int j = threadIdx.x; j < I / 4; j += blockDim.x) {
            size_t i = (size_t)t * I + 4 * j;
            float4 x4 = *(const float4 *)(g + i), d4 = *(const float4 *)(dh + i), u4 = *(const float4 *)(u + i);
            float xs[4] = {x4.x, x4.y, x4.z, x4.w}, ds[4] = {d4.x, d4.y, d4.z, d4.w}, us[4] = {u4.x, u4.y, u4.z, u4.w}, a[4], b[4];
            bf16 ah[4], as[4], bh[4], bs[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                glu_bwd1(xs[e], ds[e], us[e], silu, a[e], b[e]);
                ah[e] = __float2bfloat16(a[e]); as[e] = __float2bfloat16(a[e] / st);
                bh[e] = __float2bfloat16(b[e]); bs[e] = __float2bfloat16(b[e] / st);
            }
            if (wf) { *(float4 *)(dg + i) = make_float4(a[0], a[1], a[2], a[3]); *(float4 *)(du + i) = make_float4(b[0], b[1], b[2], b[3]); }
            __nv_bfloat162 *P[4] = {(__nv_bfloat162 *)(pg + i), (__nv_bfloat162 *)(pg + n + i), (__nv_bfloat162 *)(pu + i), (__nv_bfloat162 *)(pu + n + i)};
            const bf16 *V[4] = {ah, as, bh, bs};
#pragma unroll
            for (int k = 0; k < 4; k++) { P[k][0] = __halves2bfloat162(V[k][0], V[k][1]); P[k][1] = __halves2bfloat162(V[k][2], V[k][3]); }
        }
    }
}
/* k_glu_fwd with 4 elements a thread (vec; n4 = n / 4 groups, 16-byte aligned buffers). */
__global__ void k_glu_fwd4(const float4 *g, const float4 *u, float4 *h, size_t n4, int silu) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 a = g[i], b = u[i];
        float xs[4] = {a.x, a.y, a.z, a.w}, us[4] = {b.x, b.y, b.z, b.w}, o[4];
#pragma unroll
        for (int e = 0; e < 4; e++) o[e] = glu_fwd1(xs[e], us[e], silu);
        h[i] = make_float4(o[0], o[1], o[2], o[3]);
    }
}
/* gn: the deferred gating forward, issued now (unfused). */
static void gfw_flush(struct gt *g) {
    float *h = g->gfw.h;
    g->gfw.h = NULL;
    if (g->err) return;
    int n = (int)g->gfw.n, silu = g->gfw.silu;
    const float *g_ = g->gfw.g, *u = g->gfw.u;
    if (g->vec && n % 4 == 0 && ((uintptr_t)g_ | (uintptr_t)u | (uintptr_t)h) % 16 == 0)
        k_glu_fwd4<<<blocks((size_t)n / 4, 256), 256, 0, g->st>>>((const float4 *)g_, (const float4 *)u, (float4 *)h, (size_t)n / 4, silu);
    else k_glu_fwd<<<blocks(n, 256), 256, 0, g->st>>>(g_, u, h, (size_t)n, silu);
    LAUNCHED(g, "gating");
}
static void op_glu_fwd(bn_train_model *m, const float *g_, const float *u, float *h, int n) {
    struct gt *g = GT(m);
    if (g->err || n <= 0) return;
    g->gfw.g = g_; g->gfw.u = u; g->gfw.n = (size_t)n; g->gfw.silu = m->cfg.act == BN_ACT_SILU; g->gfw.h = h;
    if (!g->gn) gfw_flush(g);   /* gn: deferred: GT issues it, or op_rms_fwd takes it over */
}
/* gf: the quantized input x [N][I] of the BitLinear outputs g_ and u when the gating backward
 * can write the gate / up backward's operands for them (the backward takes dY in one term; v4:
 * I % 4 == 0), with its shadow *h and the operand scratch gl.pb [2][2][n]; NULL otherwise. */
static const float *glu_cv_x(bn_train_model *m, struct gt *g, const float *g_, const float *u, int n, int v4, int *I, shadow **h) {
    int Iu = 0;
    const float *x = g->gl.gf && g->split == 1 && !m->no_quant ? yx_find(g, g_, I) : NULL;
    if (!x || yx_find(g, u, &Iu) != x || Iu != *I || (v4 && *I % 4) || n % *I) return NULL;
    *h = shadow_find(g, x);
    if (!*h || !NEED(g, g->gl.pb, g->gl.cap_pb, 4 * (size_t)n * sizeof(bf16), "gradient scratch")) return NULL;
    return x;
}
/* gf: k_glu_bwd_cv when glu_cv_x finds the input x; 1 when it ran (pk set for dg and du; those
 * written only with gw), 0: take k_glu_bwd. */
static int glu_bwd_cv(bn_train_model *m, const float *g_, const float *u, const float *dh, float *dg, float *du, int n) {
    struct gt *g = GT(m);
    int I = 0;
    shadow *h = NULL;
    const float *x = glu_cv_x(m, g, g_, u, n, 1, &I, &h);
    if (!x) return 0;
    size_t nn = (size_t)n;
    int N = n / I;
    k_glu_bwd_cv<<<N < 65535 * 4 ? N : 65535 * 4, 256, 0, g->st>>>(g_, u, dh, dg, du, h->s, g->gl.pb, g->gl.pb + 2 * nn, N, I, m->cfg.act == BN_ACT_SILU, g->gl.gw);
    if (!LAUNCHED(g, "gating backward")) return 1;
    g->gl.pk[0].dy = dg; g->gl.pk[0].x = x; g->gl.pk[1].dy = du; g->gl.pk[1].x = x;
    g->gl.uw = !g->gl.gw;
    return 1;
}
/* rg: the deferred rmsnorm backward (its dx is dh, n = its N D) and this gating backward in one
 * pass (rms_bwd_run with glu_rows): dh is not written (backend.h); dg / du as op_glu_bwd writes
 * them (fp32 unless the gf operands are written and gw is 0). */
static void glu_bwd_rg(bn_train_model *m, struct gt *g, const float *g_, const float *u, float *dg, float *du, int n) {
    float *dh = g->rb.dx;
    g->rb.dx = NULL;   /* taken over */
    int I = 0;
    shadow *h = NULL;
    const float *x = g->err ? NULL : glu_cv_x(m, g, g_, u, n, 0, &I, &h);
    if (g->err) return;
    int cv = x && I == g->rb.D;
    glu_rows ga = {g_, u, cv ? h->s : NULL, dg, du, cv ? g->gl.pb : NULL, cv ? g->gl.pb + 2 * (size_t)n : NULL, (size_t)n,
                   m->cfg.act == BN_ACT_SILU, cv, !cv || g->gl.gw};
    rms_bwd_run(g, g->rb.dy, g->rb.x, g->rb.w, g->rb.rstd, dh, g->rb.dw, g->rb.N, g->rb.D, 0, &ga);
    if (g->err || !cv) return;
    g->gl.pk[0].dy = dg; g->gl.pk[0].x = x; g->gl.pk[1].dy = du; g->gl.pk[1].x = x;
    g->gl.uw = !g->gl.gw;
}
static void op_glu_bwd(bn_train_model *m, const float *g_, const float *u, const float *dh, float *dg, float *du, int n) {
    struct gt *g = (struct gt *)m->gpu;
    int rg = g->rb.dx && g->rb.dx == dh && (size_t)g->rb.N * g->rb.D == (size_t)n;   /* rg: the rmsnorm backward that writes dh, taken over */
    if (!rg) g = GT(m);
    if (g->err) { g->rb.dx = NULL; return; }
    g->gl.pk[0].dy = g->gl.pk[1].dy = NULL; g->gl.uw = 0;
    if (rg) { glu_bwd_rg(m, g, g_, u, dg, du, n); return; }
    if (glu_bwd_cv(m, g_, u, dh, dg, du, n)) return;
    k_glu_bwd<<<blocks(n, 256), 256, 0, g->st>>>(g_, u, dh, dg, du, (size_t)n, m->cfg.act == BN_ACT_SILU);
    LAUNCHED(g, "gating backward");
}

/* ---------------------------------------------------------------- embedding, cross-entropy, head */
static int32_t *upload_ids(struct gt *g, int32_t **d, size_t *cap, const int32_t *h, int N) {
    if (!NEED(g, *d, *cap, (size_t)N * sizeof(int32_t), "token ids")) return NULL;
    return cu_ok(g, cudaMemcpyAsync(*d, h, (size_t)N * sizeof(int32_t), cudaMemcpyHostToDevice, g->st), "copy ids") ? *d : NULL;
}
__global__ void k_embed_fwd(const float *E, const int32_t *ids, float *x, int C) {
    size_t r = blockIdx.x;
    const float *e = E + (size_t)ids[r] * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) x[r * C + i] = e[i];
}
__global__ void k_embed_bwd(float *dE, const int32_t *ids, const float *dx, int C) {
    size_t r = blockIdx.x;
    float *d = dE + (size_t)ids[r] * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) atomicAdd(d + i, dx[r * C + i]);
}
static void op_embed_fwd(bn_train_model *m, int widx, const int32_t *ids, int N, float *x) {
    struct gt *g = GT(m);
    if (g->err) return;
    int32_t *d = upload_ids(g, &g->ids, &g->cap_ids, ids, N);
    if (!d) return;
    k_embed_fwd<<<N, 128, 0, g->st>>>(g->p + m->tp[widx].off, d, x, m->cfg.hidden_size);
    LAUNCHED(g, "embedding");
}
static void op_embed_bwd(bn_train_model *m, int widx, const int32_t *ids, int N, const float *dx) {
    struct gt *g = GT(m);
    if (g->err) return;
    int32_t *d = upload_ids(g, &g->ids, &g->cap_ids, ids, N);
    if (!d) return;
    gz_zero(m, g, widx);   /* the scatter adds: a lazily zeroed gradient is zeroed first */
    k_embed_bwd<<<N, 128, 0, g->st>>>(g->g + m->tp[widx].off, d, dx, m->cfg.hidden_size);
    LAUNCHED(g, "embedding backward");
}
/* Row r of logits [N][V]: loss[r] = logsumexp - l[tg]; bwd: l = (softmax - onehot) * dscale.
 * A negative target (a masked position, backend.h) gives loss 0 and a zero gradient row. */
__global__ void k_ce(float *logits, const int32_t *tg, float *loss, int V, float dscale, int bwd, bf16 *lb) {
    size_t r = blockIdx.x;
    float *l = logits + r * V;
    if (tg[r] < 0) {
        if (!bwd) { if (threadIdx.x == 0) loss[r] = 0.f; }
        else for (int i = threadIdx.x; i < V; i += blockDim.x) { l[i] = 0.f; if (lb) lb[r * V + i] = __float2bfloat16(0.f); }
        return;
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, l[i]);
    mx = block_max(mx);
    float s = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(l[i] - mx);
    s = block_sum(s);
    int t = tg[r];
    if (!bwd) { if (threadIdx.x == 0) loss[r] = (float)(log((double)s) + mx - l[t]); return; }
    float inv = (float)(1.0 / (double)s);
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float d = expf(l[i] - mx) * inv * dscale - (i == t ? dscale : 0.f);
        l[i] = d;
        if (lb) lb[r * V + i] = __float2bfloat16(d);
    }
}
static void op_ce_fwd(bn_train_model *m, float *logits, const int32_t *tg, float *rowloss, int N) {
    struct gt *g = GT(m);
    if (g->err) return;
    int32_t *d = upload_ids(g, &g->tg, &g->cap_tg, tg, N);
    if (!d || !NEED(g, g->rowloss, g->cap_rl, (size_t)N * sizeof(float), "row losses")) return;
    k_ce<<<N, 512, 0, g->st>>>(logits, d, g->rowloss, m->cfg.vocab_size, 0, 0, NULL);
    if (LAUNCHED(g, "cross-entropy")) note(g, bn_cu_d2h(rowloss, g->rowloss, (size_t)N * sizeof(float), g->st));
}
static void op_ce_bwd(bn_train_model *m, float *logits, const int32_t *tg, int N, float dscale) {
    struct gt *g = GT(m);
    if (g->err) return;
    int32_t *d = upload_ids(g, &g->tg, &g->cap_tg, tg, N);
    if (!d) return;
    bf16 *lb = NULL;   /* hbf: the bf16 copy the head's backward reads, written on the way */
    g->hdl_key = NULL;
    if (g->hbf && NEED(g, g->hdl, g->cap_hdl, (size_t)N * m->cfg.vocab_size * sizeof(bf16), "head gradient (bf16)")) { lb = g->hdl; g->hdl_key = logits; }
    k_ce<<<N, 512, 0, g->st>>>(logits, d, NULL, m->cfg.vocab_size, dscale, 1, lb);
    LAUNCHED(g, "cross-entropy backward");
}
/* hbf: x -> g->hx and the head's weights -> g->hw in bf16; 0 when the shape does not suit the
 * conversion (hidden size not a multiple of 4: the caller takes the fp32 path) or on failure
 * (error noted). */
static int head_bf16(bn_train_model *m, int widx, const float *x, int N) {
    struct gt *g = GT(m);
    size_t nx = (size_t)N * m->cfg.hidden_size, nw = (size_t)m->cfg.vocab_size * m->cfg.hidden_size;
    g->hx_key = NULL;
    if (g->err || m->cfg.hidden_size % 4 || !NEED(g, g->hx, g->cap_hx, nx * sizeof(bf16), "head input (bf16)") ||
        !NEED(g, g->hw, g->cap_hw, nw * sizeof(bf16), "head weights (bf16)")) return 0;
    if (!cu_ok(g, bn_fb_convert(x, g->hx, nx, g->st), "bf16 conversion") || !cu_ok(g, bn_fb_convert(g->p + m->tp[widx].off, g->hw, nw, g->st), "bf16 conversion")) return 0;
    g->hx_key = x;
    return 1;
}
static void op_head_fwd(bn_train_model *m, int widx, const float *x, float *logits, int N) {
    struct gt *g = GT(m);
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    if (g->hbf && head_bf16(m, widx, x, N)) {   /* bf16 x bf16 products, fp32 sums (autocast's head) */
        gemm(g, 0, 1, N, V, C, g->hx, CUDA_R_16BF, C, g->hw, CUDA_R_16BF, C, g->one_zero + 1, g->one_zero, logits, V, CUBLAS_COMPUTE_32F);
        return;
    }
    gemm(g, 0, 1, N, V, C, x, CUDA_R_32F, C, g->p + m->tp[widx].off, CUDA_R_32F, C, g->one_zero + 1, g->one_zero, logits, V, g->fct);
}
static void op_head_bwd(bn_train_model *m, int widx, const float *dl, const float *x, float *dx, int N) {
    struct gt *g = GT(m);
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    size_t off = m->tp[widx].off;
    if (g->hbf && g->hdl_key == dl && g->hx_key == x) {   /* the bf16 copies of op_head_fwd and op_ce_bwd (same step) */
        gemm(g, 1, 0, V, C, N, g->hdl, CUDA_R_16BF, V, g->hx, CUDA_R_16BF, C, g->one_zero + 1, g->one_zero + !gz_take(g, widx), g->g + off, C, CUBLAS_COMPUTE_32F);
        gemm(g, 0, 0, N, C, V, g->hdl, CUDA_R_16BF, V, g->hw, CUDA_R_16BF, C, g->one_zero + 1, g->one_zero, dx, C, CUBLAS_COMPUTE_32F);
        return;
    }
    gemm(g, 1, 0, V, C, N, dl, CUDA_R_32F, V, x, CUDA_R_32F, C, g->one_zero + 1, g->one_zero + !gz_take(g, widx), g->g + off, C, g->fct);
    gemm(g, 0, 0, N, C, V, dl, CUDA_R_32F, V, g->p + off, CUDA_R_32F, C, g->one_zero + 1, g->one_zero, dx, C, g->fct);
}

/* ---------------------------------------------------------------- memory, optimizer, sync */
static float *op_alloc(bn_train_model *m, size_t n) {
    void *p = NULL;
    bitnet_status s = bn_cu_malloc(&p, n * sizeof(float), "training activations");
    return s ? NULL : (float *)p;
}
static void op_free(bn_train_model *m, float *p) {
    if (!p) return;
    struct gt *g = GT(m);
    cudaStreamSynchronize(g->st);
    for (int i = 0; i < g->nsh; i++) { cudaFree(g->sh[i].q); cudaFree(g->sh[i].s); cudaFree(g->sh[i].q8); }   /* keyed by these buffers */
    g->nsh = 0; g->nfo = 0; g->nrk = 0; g->gl.nyx = 0; g->gl.pk[0].dy = g->gl.pk[1].dy = NULL;
    cudaFree(p);
}
static void op_copy(bn_train_model *m, float *dst, const float *src, size_t n) {
    struct gt *g = GT(m);
    if (g->cf && !g->err && dst != src) { g->pc.dst = dst; g->pc.src = src; g->pc.n = n; return; }   /* deferred: GT issues it, or op_lin_fwd takes it over */
    if (!g->err) cu_ok(g, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, g->st), "device copy");
}
__global__ void k_zero_chunks(float *g, const chunk *ck, const int *sel) {
    chunk c = ck[sel[blockIdx.x]];
    for (int i = threadIdx.x; i < c.n; i += blockDim.x) g[c.off + i] = 0.f;
}
/* lz: the norm weights' gradients (small, only added into) zeroed by one launch, every other
 * tensor marked logically zero (gz_take / gz_zero / gz_flush above); else one memset. */
static void op_zero_grad(bn_train_model *m) {
    struct gt *g = GT(m);
    if (g->lz && g->gz) {
        g->ngz = 0;
        for (int i = 0; i < m->n_tp; i++) g->ngz += g->gz[i] = m->tp[i].kind != BN_PK_NORM;
        if (g->nzck && !g->err) { k_zero_chunks<<<g->nzck, 256, 0, g->st>>>(g->g, g->ck, g->zck); LAUNCHED(g, "zeroing gradients"); }
        return;
    }
    if (!g->err) cu_ok(g, cudaMemsetAsync(g->g, 0, m->n_params * sizeof(float), g->st), "zeroing gradients");
}
__global__ void k_sum_parts(const double *part, int n, double *out) {
    double s = 0;
    for (int i = 0; i < n; i++) s += part[i];
    *out = sqrt(s);
}
/* part[block] = sum of g^2 over the block's NORM_CH elements (double); vec (ov): on float4 loads,
 * as k_wsum's (another order: not the CPU's order either way). */
__global__ void k_sumsq(const float *__restrict__ g, size_t n, double *part, int vec) {
    size_t a = (size_t)blockIdx.x * NORM_CH, b = a + NORM_CH < n ? a + NORM_CH : n;
    int n4 = vec ? (int)((b - a) >> 2) : 0;
    const float4 *g4 = (const float4 *)(g + a);
    double s = 0;
#pragma unroll 2
    for (int j = threadIdx.x; j < n4; j += blockDim.x) {
        float4 x = g4[j];
        s += (double)x.x * x.x; s += (double)x.y * x.y; s += (double)x.z * x.z; s += (double)x.w * x.w;
    }
    for (size_t i = a + 4 * (size_t)n4 + threadIdx.x; i < b; i += blockDim.x) s += (double)g[i] * g[i];
    s = block_sumd(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
/* ov: k_sum_parts on one block, strided then across the block (another order). */
__global__ void k_sum_parts4(const double *part, int n, double *out) {
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    s = block_sumd(s);
    if (threadIdx.x == 0) *out = sqrt(s);
}
static double op_grad_norm(bn_train_model *m) {
    struct gt *g = GT(m);
    if (g->err) return NAN;
    gz_flush(m, g);
    int nc = (int)((m->n_params + NORM_CH - 1) / NORM_CH);
    k_sumsq<<<nc, 512, 0, g->st>>>(g->g, m->n_params, g->part, g->ov);
    if (g->ov) k_sum_parts4<<<1, 1024, 0, g->st>>>(g->part, nc, g->norm_d);
    else k_sum_parts<<<1, 1, 0, g->st>>>(g->part, nc, g->norm_d);
    double r = NAN;
    if (LAUNCHED(g, "gradient norm")) note(g, bn_cu_d2h(&r, g->norm_d, sizeof r, g->st));
    return r;
}
typedef struct { float coef, decay, step_size, bc2s, omb1, b2, omb2, eps; } adam_args;
/* One element of bn_adam_ref: p, m, v updated in place from gradient g, every float operation
 * rounded as the CPU rounds it (no FMA contraction). */
__device__ __forceinline__ void adam_el(float &p, float &m, float &v, float g, const adam_args &a, float decay) {
    if (a.coef < 1.0f) g = __fmul_rn(g, a.coef);
    p = __fmul_rn(p, decay);
    m = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), a.omb1));
    v = __fadd_rn(__fmul_rn(v, a.b2), __fmul_rn(__fmul_rn(a.omb2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), a.bc2s), a.eps);
    p = __fadd_rn(p, __fdiv_rn(__fmul_rn(-a.step_size, m), denom));
}
/* AdamW over one chunk: with vec (ov; every chunk offset a multiple of 4) on float4 loads and
 * stores, thread t taking elements 4j..4j+3 for j = t, t + blockDim, ..., then the chunk's tail
 * one element a thread; without, all of the chunk as that tail. The same element arithmetic
 * (same bits) either way, and |p| summed in that order, which k_wsum repeats. */
__global__ void k_adam(float *__restrict__ pp, const float *__restrict__ gg, float *__restrict__ mm, float *__restrict__ vv,
                       const chunk *ck, const int *dec, adam_args a, const int *lin, double *wpart, int vec) {
    chunk c = ck[blockIdx.x];
    float decay = dec[c.tp] ? a.decay : 1.0f;
    double ws = 0;
    int n4 = vec ? c.n >> 2 : 0;
    float4 *p4 = (float4 *)(pp + c.off), *m4 = (float4 *)(mm + c.off), *v4 = (float4 *)(vv + c.off);
    const float4 *g4 = (const float4 *)(gg + c.off);
#pragma unroll 2
    for (int j = threadIdx.x; j < n4; j += blockDim.x) {
        float4 g = g4[j], p = p4[j], m = m4[j], v = v4[j];
        adam_el(p.x, m.x, v.x, g.x, a, decay); adam_el(p.y, m.y, v.y, g.y, a, decay);
        adam_el(p.z, m.z, v.z, g.z, a, decay); adam_el(p.w, m.w, v.w, g.w, a, decay);
        p4[j] = p; m4[j] = m; v4[j] = v;
        ws += fabsf(p.x); ws += fabsf(p.y); ws += fabsf(p.z); ws += fabsf(p.w);
    }
    for (int j = 4 * n4 + threadIdx.x; j < c.n; j += blockDim.x) {
        size_t i = c.off + j;
        float p = pp[i], m = mm[i], v = vv[i];
        adam_el(p, m, v, gg[i], a, decay);
        pp[i] = p; mm[i] = m; vv[i] = v;
        ws += fabsf(p);
    }
    if (!wpart || !lin[c.tp]) return;   /* uniform over the block: the block sum below sees every thread */
    ws = block_sumd(ws);
    if (threadIdx.x == 0) wpart[blockIdx.x] = ws;
}
static void op_adamw(bn_train_model *m, float coef, float lr, float beta1, float beta2, float eps, float wd, int64_t t) {
    struct gt *g = GT(m);
    if (g->err) return;
    double bc1 = 1.0 - pow((double)beta1, (double)t), bc2s = sqrt(1.0 - pow((double)beta2, (double)t));
    adam_args a = {coef, wd != 0.0f ? 1.0f - lr * wd : 1.0f, (float)(lr / bc1), (float)bc2s, 1.0f - beta1, beta2, 1.0f - beta2, eps};
    int ws = g->ws && !m->no_quant;
    gz_flush(m, g);
    k_adam<<<g->nck, 256, 0, g->st>>>(g->p, g->g, g->m, g->v, g->ck, g->decay, a, g->lin, ws ? g->wpart : NULL, g->ov && g->al4);
    g->wpart_ok = LAUNCHED(g, "AdamW") && ws;
}
static bitnet_status op_sync(bn_train_model *m, int to_host) {
    struct gt *g = GT(m);
    size_t b = m->n_params * sizeof(float);
    bitnet_status s = g->err;
    g->err = BITNET_OK;
    if (s) return s;
    cudaMemcpyKind k = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    if (!to_host) g->wpart_ok = 0;   /* new weights: the next wquant sums them */
    if (to_host) gz_flush(m, g);
    float *h[4] = {m->params, m->adam_m, m->adam_v, m->grads}, *d[4] = {g->p, g->m, g->v, g->g};
    for (int i = 0; i < (to_host ? 4 : 3) && !s; i++)
        if (cudaMemcpyAsync(to_host ? (void *)h[i] : (void *)d[i], to_host ? (void *)d[i] : (void *)h[i], b, k, g->st) != cudaSuccess ||
            cudaStreamSynchronize(g->st) != cudaSuccess) {
            cudaGetLastError();
            s = bn_err(BITNET_ERR_UNSUPPORTED, "cuda: copying the training state %s the GPU", to_host ? "from" : "to");
        }
    return s;
}
static bitnet_status op_status(bn_train_model *m) {
    struct gt *g = GT(m);
    bitnet_status s = g->err;
    g->err = BITNET_OK;
    return s;
}
static void op_release(bn_train_model *m) {
    struct gt *g = GT(m);
    if (!g) return;
    if (g->st) cudaStreamSynchronize(g->st);
    for (int i = 0; i < g->nsh; i++) { cudaFree(g->sh[i].q); cudaFree(g->sh[i].s); cudaFree(g->sh[i].q8); }
    free(g->sh); free(g->fo); free(g->rk); free(g->gl.yx); free(g->gz);
    void *d[] = {g->p, g->g, g->m, g->v, g->wb, g->wscale, g->lin, g->ck, g->tp_c0, g->tp_nc, g->part, g->norm_d,
                 g->one_zero, g->ids, g->tg, g->rowloss, g->rcos, g->dyb, g->tmp, g->dP, g->dwpart, g->ptrs, g->numel,
                 g->wi8, g->ioz, g->fab, g->hx, g->hw, g->hdl, g->gl.pb, g->wpart, g->zck};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) if (d[i]) cudaFree(d[i]);
    if (g->cb) cublasDestroy(g->cb);
    if (g->st) cudaStreamDestroy(g->st);
    cudaGetLastError();   /* nothing of this model's failures may leak into the next one's status */
    free(g);
    m->gpu = NULL;
    m->ops = bn_train_ops_cpu();
}

static const bn_train_ops CUDA_TRAIN = {
    "cuda",
    op_rms_fwd, op_rms_bwd, op_lin_fwd, op_lin_bwd, op_rope, op_attn_fwd, op_attn_bwd, op_glu_fwd, op_glu_bwd,
    op_embed_fwd, op_embed_bwd, op_ce_fwd, op_ce_bwd, op_head_fwd, op_head_bwd,
    op_alloc, op_free, op_copy, op_wquant, op_zero_grad, op_grad_norm, op_adamw, op_sync, op_status, op_release,
};

/* ---------------------------------------------------------------- attach */
/* Chunk tables, flags and per-tensor data on the host, then one upload. */
static bitnet_status build_tables(bn_train_model *m, struct gt *g) {
    int ntp = m->n_tp, nck = 0;
    for (int i = 0; i < ntp; i++) nck += (int)((m->tp[i].numel + CH - 1) / CH);
    chunk *ck = (chunk *)malloc((size_t)nck * sizeof *ck);
    int *fl = (int *)malloc(4 * (size_t)ntp * sizeof(int));
    size_t *numel = (size_t *)malloc((size_t)ntp * sizeof(size_t));
    if (!ck || !fl || !numel) { free(ck); free(fl); free(numel); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    int *lin = fl, *dec = fl + ntp, *c0 = fl + 2 * ntp, *nc = fl + 3 * ntp;
    int k = 0, nz = 0;
    for (int i = 0; i < ntp; i++) {
        const bn_tparam *p = &m->tp[i];
        if (p->kind == BN_PK_NORM) nz += (int)((p->numel + CH - 1) / CH);
        lin[i] = p->kind == BN_PK_LINEAR; dec[i] = p->kind == BN_PK_LINEAR || p->kind == BN_PK_HEAD;
        c0[i] = k; numel[i] = p->numel;
        for (size_t o = 0; o < p->numel; o += CH) ck[k++] = chunk{p->off + o, (int)(p->numel - o < CH ? p->numel - o : CH), i};
        nc[i] = k - c0[i];
    }
    g->nck = nck;
    int *zl = (int *)malloc((size_t)(nz ? nz : 1) * sizeof(int));
    if (!zl) { free(ck); free(fl); free(numel); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    g->nzck = 0;
    for (int j = 0; j < nck; j++) if (m->tp[ck[j].tp].kind == BN_PK_NORM) zl[g->nzck++] = j;
    g->al4 = 1;
    for (int i = 0; i < ntp; i++) if (m->tp[i].off % 4) g->al4 = 0;
    int nnorm = (int)((m->n_params + NORM_CH - 1) / NORM_CH), np = nck > nnorm ? nck : nnorm;
    bitnet_status s = bn_cu_malloc((void **)&g->ck, (size_t)nck * sizeof *ck, "chunk table");
    if (!s) s = bn_cu_malloc((void **)&g->lin, 2 * (size_t)ntp * sizeof(int), "flags");
    if (!s) s = bn_cu_malloc((void **)&g->tp_c0, (size_t)ntp * sizeof(int), "flags");
    if (!s) s = bn_cu_malloc((void **)&g->tp_nc, (size_t)ntp * sizeof(int), "flags");
    if (!s) s = bn_cu_malloc((void **)&g->numel, (size_t)ntp * sizeof(size_t), "flags");
    if (!s) s = bn_cu_malloc((void **)&g->part, (size_t)np * sizeof(double), "partial sums");
    if (!s) s = bn_cu_malloc((void **)&g->norm_d, sizeof(double), "norm");
    if (!s) s = bn_cu_malloc((void **)&g->wpart, (size_t)nck * sizeof(double), "weight sums");
    if (!s) s = bn_cu_malloc((void **)&g->wscale, 2 * (size_t)ntp * sizeof(float), "weight scales");
    if (!s) s = bn_cu_malloc((void **)&g->one_zero, 2 * sizeof(float), "constants");
    if (!s && nz) s = bn_cu_malloc((void **)&g->zck, (size_t)nz * sizeof(int), "chunk table");
    if (!s && nz) s = bn_cu_h2d(g->zck, zl, (size_t)nz * sizeof(int), g->st);
    if (!s) {
        g->decay = g->lin + ntp; g->wg = g->wscale + ntp;
        float oz[2] = {0.f, 1.f};
        s = bn_cu_h2d(g->ck, ck, (size_t)nck * sizeof *ck, g->st);
        if (!s) s = bn_cu_h2d(g->lin, fl, 2 * (size_t)ntp * sizeof(int), g->st);
        if (!s) s = bn_cu_h2d(g->tp_c0, c0, (size_t)ntp * sizeof(int), g->st);
        if (!s) s = bn_cu_h2d(g->tp_nc, nc, (size_t)ntp * sizeof(int), g->st);
        if (!s) s = bn_cu_h2d(g->numel, numel, (size_t)ntp * sizeof(size_t), g->st);
        if (!s) s = bn_cu_h2d(g->one_zero, oz, sizeof oz, g->st);
        if (!s) s = bn_cu_sync(g->st);
    }
    free(ck); free(fl); free(numel); free(zl);
    return s;
}

/* The measuring knobs of bn_train_cuda_attach_ex (train_cuda.h) over the defaults in g. */
static void knobs(struct gt *g, const char *e) {
    if (!e) return;
    int v;
    const char *p;
    if ((p = strstr(e, "fa=")) && sscanf(p + 3, "%d", &v) == 1) g->fa = v == 2 ? 2 : v != 0;
    if ((p = strstr(e, "fs=")) && sscanf(p + 3, "%d", &v) == 1) g->fa_fs = v != 0;
    if ((p = strstr(e, "bs=")) && sscanf(p + 3, "%d", &v) == 1) g->fa_bs = v != 0;
    if ((p = strstr(e, "split=")) && sscanf(p + 6, "%d", &v) == 1 && v >= 1 && v <= 3) g->split = g->split_dx = v;
    if ((p = strstr(e, "dxs=")) && sscanf(p + 4, "%d", &v) == 1 && v >= 1 && v <= g->split) g->split_dx = v;
    if ((p = strstr(e, "i8=")) && sscanf(p + 3, "%d", &v) == 1) g->i8 = v != 0;
    if ((p = strstr(e, "keep=")) && sscanf(p + 5, "%d", &v) == 1) g->keep_yq = v != 0;
    if ((p = strstr(e, "hbf=")) && sscanf(p + 4, "%d", &v) == 1) g->hbf = v != 0;
    if ((p = strstr(e, "rms=")) && sscanf(p + 4, "%d", &v) == 1) g->rms = v != 0;
    if ((p = strstr(e, "rf=")) && sscanf(p + 3, "%d", &v) == 1) g->rf = v != 0;
    if ((p = strstr(e, "fao=")) && sscanf(p + 4, "%d", &v) == 1) g->fao = v != 0;
    if ((p = strstr(e, "gf=")) && sscanf(p + 3, "%d", &v) == 1) g->gl.gf = v != 0;
    if ((p = strstr(e, "gw=")) && sscanf(p + 3, "%d", &v) == 1) g->gl.gw = v != 0;
    if ((p = strstr(e, "rpf=")) && sscanf(p + 4, "%d", &v) == 1) g->rpf = v != 0;
    if ((p = strstr(e, "vec=")) && sscanf(p + 4, "%d", &v) == 1) g->vec = v != 0;
    if ((p = strstr(e, "rmw=")) && sscanf(p + 4, "%d", &v) == 1) g->rmw = v != 0;
    if ((p = strstr(e, "cf=")) && sscanf(p + 3, "%d", &v) == 1) g->cf = v != 0;
    if ((p = strstr(e, "ws=")) && sscanf(p + 3, "%d", &v) == 1) g->ws = v != 0;
    if ((p = strstr(e, "lz=")) && sscanf(p + 3, "%d", &v) == 1) g->lz = v != 0;
    if ((p = strstr(e, "ov=")) && sscanf(p + 3, "%d", &v) == 1) g->ov = v != 0;
    if ((p = strstr(e, "rg=")) && sscanf(p + 3, "%d", &v) == 1) g->rg = v != 0;
    if ((p = strstr(e, "gn=")) && sscanf(p + 3, "%d", &v) == 1) g->gn = v != 0;
}

extern "C" bitnet_status bn_train_cuda_attach(bn_train_model *m, int dev, int precision) {
    return bn_train_cuda_attach_ex(m, dev, precision, NULL);
}
extern "C" bitnet_status bn_train_cuda_attach_ex(bn_train_model *m, int dev, int precision, const char *kn) {
    if (m->gpu) return BITNET_OK;
    if (precision < BITNET_TRAIN_PREC_DEFAULT || precision > BITNET_TRAIN_PREC_PARITY) return bn_err(BITNET_ERR_ARG, "cuda training: unknown precision %d", precision);
    if (m->lora || !m->grads) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda training: LoRA / frozen models run on the CPU only");
    if (m->a) return bn_err(BITNET_ERR_ARG, "cuda training: attach before the first forward");
    bitnet_status s = bn_cu_device_open(dev, NULL, 0, NULL, NULL, NULL);
    if (s) return s;
    struct gt *g = (struct gt *)calloc(1, sizeof *g);
    if (!g) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    g->dev = dev;
    int fp32 = precision == BITNET_TRAIN_PREC_PARITY, fast = precision == BITNET_TRAIN_PREC_FAST;
    g->fct = fp32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    g->afct = fast ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    g->split = fp32 ? 3 : 1;   /* 1 term: golden step-0 gradients 3.7e-3 (bound 1e-2); 2 terms: 4e-4, 1b backward 1.5x longer */
    g->split_dx = g->split;
    g->fa = fast ? 2 : 0; g->fa_fs = !fast; g->fa_bs = 0;   /* flash attention: the fast mode only, bf16 inputs (see the header) */
    g->hbf = fast;   /* the fast mode: bf16 LM head */
    g->ws = 1;    /* AdamW sums |W| for the next wquant: the same sums (tested) */
    g->rg = 0;    /* the FFN sub-norm's backward done in the gating backward's pass (dh in registers): the same bits (tested), 0.5 ms slower (1b) */
    g->gn = 1;    /* the gating forward done in the FFN sub-norm forward's pass (h normed from registers): the same bits (tested) */
    g->cf = 1;    /* the residual copy taken over by the BitLinear epilogue that adds into it: the same bits */
    g->rmw = 1;   /* D 5632 rmsnorm forward on 1024 threads (sums in another order than on 512) */
    g->vec = 1;   /* 4-element epilogue / conversion / gating kernels: the same bits (tested) */
    g->gl.gf = 1; /* glu_bwd writes the gate / up backward's bf16 dY (split 1): k_dy_conv's bits (tested) */
    g->gl.gw = 0; /* ... and then leaves the fp32 dg / du unwritten (backend.h allows it; nothing reads them) */
    g->fao = 1;   /* with fa 2: attention kernels longest blocks first, cp.async tiles, ldmatrix: the same bits (tested) */
    g->rf = 1;    /* with fa 2 (the fast mode): RoPE folded into the attention ops, the same bits (tested) */
    g->rpf = 1;   /* rmsnorm forward rows kernel: a loop over rows with the next one prefetched, the same bits (tested) */
    g->rms = 1;   /* rmsnorm rows in registers: the same forward / dx bits (tested), dx and dw in one pass */
    g->i8 = 1;   /* int8 BitLinear forward: the bf16 path's bits (tested), 1b step 3.7% faster (H200) */
    g->lz = 1;   /* lazy zero_grad: the first dW write overwrites (beta 0), the same bits (tested) */
    g->ov = 1;   /* float4 AdamW / norm / weight-quant passes: AdamW's bits (tested), |W| and norm sums in another order */
    knobs(g, kn);
    m->gpu = g;   /* op_release below frees whatever was made */
    size_t b = m->n_params * sizeof(float);
    if (cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking) != cudaSuccess) { cudaGetLastError(); s = bn_err(BITNET_ERR_UNSUPPORTED, "cuda: cannot create a stream"); }
    if (!s && cublasCreate(&g->cb) != CUBLAS_STATUS_SUCCESS) s = bn_err(BITNET_ERR_UNSUPPORTED, "cublas: cannot create a handle (is libcublas installed?)");
    if (!s && (cublasSetStream(g->cb, g->st) != CUBLAS_STATUS_SUCCESS || cublasSetPointerMode(g->cb, CUBLAS_POINTER_MODE_DEVICE) != CUBLAS_STATUS_SUCCESS))
        s = bn_err(BITNET_ERR_UNSUPPORTED, "cublas: cannot set up the handle");
    if (!s) s = bn_cu_malloc((void **)&g->p, b, "master weights");
    if (!s) s = bn_cu_malloc((void **)&g->g, b, "gradients");
    if (!s) s = bn_cu_malloc((void **)&g->m, b, "AdamW moments");
    if (!s) s = bn_cu_malloc((void **)&g->v, b, "AdamW moments");
    if (!s && !m->no_quant) s = bn_cu_malloc((void **)&g->wb, m->n_params * sizeof(bf16), "ternary weights");
    if (m->no_quant) g->i8 = 0;
    if (!s && g->i8) s = bn_cu_malloc((void **)&g->wi8, m->n_params, "ternary weights (int8)");
    if (!s && g->i8) s = bn_cu_malloc((void **)&g->ioz, 2 * sizeof(int32_t), "constants");
    if (!s && g->i8) { int32_t oz[2] = {0, 1}; s = bn_cu_h2d(g->ioz, oz, sizeof oz, g->st); }
    if (!s) s = build_tables(m, g);
    if (!s && !(g->gz = (unsigned char *)calloc((size_t)m->n_tp, 1))) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_cu_memset(g->g, 0, b, g->st);
    if (!s) { m->ops = &CUDA_TRAIN; s = op_sync(m, 0); }
    if (s) { op_release(m); return s; }
    return BITNET_OK;
}

/* The device gradients [n_params] and the stream every training op runs on, for the
 * data-parallel all-reduce (dist_nccl.cu), which must run in that stream's order. */
extern "C" bitnet_status bn_train_cuda_grads(bn_train_model *m, float **grads, void **stream) {
    struct gt *g = GT(m);
    if (!g || m->ops != &CUDA_TRAIN) return bn_err(BITNET_ERR_UNSUPPORTED, "data parallel: the model is not on a CUDA device");
    gz_flush(m, g);   /* the caller reads them */
    *grads = g->g; *stream = (void *)g->st;
    return BITNET_OK;
}
