/* backend.h — the interface between the model code (src/model.c) and the hardware that runs it,
 * at layer-op granularity: one call per BitLinear group, norm, RoPE, attention, activation, head.
 *
 * What it is: a table of function pointers (bn_backend) and the two kinds of objects it makes:
 *   - ternary weights (bn_tmat), prepared once at load time from plain int8 values; a weight
 *     records its layout and the device that holds its bytes, which only the backend reads;
 *   - an execution state (bn_exec) per inference context: worker threads, scratch, the KV cache
 *     (n_seq sequences x n_ctx positions per layer) and RoPE tables.
 * Activation buffers (float *) come from be->alloc and may live on the device: the model code
 * passes them (and pointers offset into them) to ops but never reads or writes them itself.
 * Arrays of token ids, positions and sequence ids are host memory; so are the logits the head
 * writes. Everything a kernel produces is defined by the CPU backend (src/backend/cpu/cpu.c),
 * whose inner kernels are the bn_kernels set of the model (src/kernels/kernels.h).
 * What it is not: a graph, a scheduler or an allocator of the model's float vectors (norm
 * weights and the embedding/head matrices are host memory for now; a device backend would
 * mirror them in exec_new). */
#ifndef BITNET_BACKEND_H
#define BITNET_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

/* Where a buffer's bytes live. */
enum { BN_DEV_CPU = 0, BN_DEV_CUDA = 1 };
/* Packed ternary layouts (kernels.h describes them). */
enum { BN_LAYOUT_NONE = 0, BN_LAYOUT_TERN_REF = 1, BN_LAYOUT_TERN_I16 = 2, BN_LAYOUT_TERN_CU2 = 3 /* src/backend/cuda/bn_cuda.h */,
       BN_LAYOUT_TERN_B3 = 4 /* the 1.6-bit "-b3" kernel sets */ };

/* A BitLinear weight W[rows=out, cols=in], ternary, in `layout` on `device`:
 *     y[r] = (sum_k W[r][k] * xq[k]) / s_act * scale */
typedef struct bn_tmat {
    int rows, cols;
    float scale;
    int layout, device;  /* BN_LAYOUT_*, BN_DEV_* */
    size_t bytes;        /* size of data */
    uint8_t *data;       /* owned by the backend that made it; opaque to the model code */
} bn_tmat;

typedef struct bitnet_model bitnet_model;
typedef struct bn_exec bn_exec;

/* What an execution state must hold. */
typedef struct bn_exec_shape {
    int n_ctx;      /* KV positions per sequence */
    int n_seq;      /* sequences (cache slots) */
    int nmax;       /* most tokens per op call */
    int n_threads;  /* CPU worker threads (a device backend may ignore it) */
    int kv_type;    /* bitnet_kv_type of the KV cache (the CUDA backend keeps f32 whatever it says) */
} bn_exec_shape;

typedef struct bn_backend {
    const char *name;
    int device;  /* BN_DEV_* of everything it makes */
    /* ---- weights ---- */
    /* Make w (rows, cols, scale, layout, device, bytes, data) from q: int8[rows][cols] in
     * {-1,0,1}, for model m (whose kernel set picks the layout). On failure w->data is NULL. */
    bitnet_status (*tmat_new)(const bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w);
    /* Free w's data (NULL data: nothing). */
    void (*tmat_free)(bn_tmat *w);
    /* ---- execution state ---- */
    bitnet_status (*exec_new)(const bitnet_model *m, const bn_exec_shape *sh, bn_exec **out);
    void (*exec_free)(bn_exec *e);
    /* A device float buffer of n floats (NULL on failure); freed by buf_free (NULL: nothing). */
    float *(*buf_new)(bn_exec *e, size_t n);
    void (*buf_free)(bn_exec *e, float *p);
    /* ---- ops; tensors are row-major [n][width] with rows packed (stride = width) ---- */
    /* x[n][dim] = embedding rows of ids[n] (host), as float. */
    void (*embed)(bn_exec *e, const int32_t *ids, int n, float *x);
    /* out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w, t < n; out may be x. w: [d]. */
    void (*rmsnorm)(bn_exec *e, float *out, const float *x, const float *w, int n, int d, float eps);
    /* Fused BitLinear: quantize each row of x[n][w[0]->cols] to int8 (absmax per row), then
     * y[i][n][w[i]->rows] = (W_i xq) / s_act * w[i]->scale for i < nw (nw <= 3; all w[i] share cols;
     * one pass over the weights serves all n rows). */
    void (*bitlinear)(bn_exec *e, const float *x, int n, int nw, const bn_tmat *const *w, float *const *y);
    /* Rotate-half RoPE in place on v[n][n_heads*head_dim], row t at position pos[t] (host). */
    void (*rope)(bn_exec *e, float *v, int n, int n_heads, const int32_t *pos);
    /* Causal attention of layer `layer`: store k[t], v[t] ([n][kv_dim], already roped) in the
     * cache of sequence seq[t] at position pos[t], then out[t] = softmax(q[t] K^T / sqrt(hd)) V over
     * positions 0..pos[t] of that sequence (GQA: query head h reads kv head h / (nh/nkv)).
     * q, out: [n][q_dim]. Callers guarantee positions 0..pos[t]-1 of seq[t] hold valid entries. */
    void (*attention)(bn_exec *e, int layer, const float *q, const float *k, const float *v, int n,
                      const int32_t *seq, const int32_t *pos, float *out);
    /* Gated activation in place: g[i] = act(g[i]) * u[i], i < n; act 0 = relu^2, 1 = silu. */
    void (*glu)(bn_exec *e, float *g, const float *u, size_t n, int act);
    /* x[i] += y[i], i < n. */
    void (*add)(bn_exec *e, float *x, const float *y, size_t n);
    /* LM head of the model's current head type: logits[n][vocab] (host) = x[n][dim] @ head^T. */
    void (*head)(bn_exec *e, const float *x, int n, float *logits);
    /* 1 if all of x[n] are finite, else 0. */
    int (*finite)(bn_exec *e, const float *x, size_t n);
    /* The first failure of an op since the last call (BITNET_OK if none; bn_err set), then
     * cleared. NULL for a backend whose ops cannot fail (the CPU). */
    bitnet_status (*status)(bn_exec *e);
    /* Copy the first n positions of sequence src's KV cache (every layer) over sequence dst's
     * (src != dst, n <= n_ctx); ordered after the ops before it. */
    void (*kv_copy)(bn_exec *e, int src, int dst, int n);
    /* Optional (NULL: the model code runs head and takes the argmax on the host): ids[t] (host) =
     * the first index of the largest logit of row t of head(x[n][dim]), only the ids leaving the
     * device. Returns 1, or 0 if a logit of those rows is not finite (ids then unspecified). */
    int (*head_argmax)(bn_exec *e, const float *x, int n, int32_t *ids);
} bn_backend;

/* The CPU backend (src/backend/cpu/cpu.c): the model's bn_kernels set plus a thread pool. */
const bn_backend *bn_backend_cpu(void);
/* The CUDA backend (src/backend/cuda/cuda.cu), only in `make CUDA=1` builds. */
const bn_backend *bn_backend_cuda(void);
/* Pick the backend a device string names (src/backend/pick.c): NULL, "" or "cpu" -> CPU;
 * "cuda" or "cuda:N" -> CUDA device N (0), opened and checked now. *index: the device number.
 * Errors: unknown name, a build without CUDA, no driver or GPU, no such device. */
bitnet_status bn_backend_pick(const char *device, const bn_backend **be, int *index);

/* ---- training ops: the forward ops with what backward needs saved, and their backward ----
 * The training model (bn_train_model, src/train/train.h) is the execution state: it holds the
 * parameters (P), gradients (G), dequantized BitLinear weights, threads and scratch; a weight is
 * named by its parameter index widx. Layouts are row-major, token-major [N][width], N = B*T
 * tokens in sequences of m->T; attention probabilities [B][H][T][T]. Gradients accumulate (+=)
 * into G unless said otherwise; "acc" selects dx += (1) or dx = (0). Every op's result is
 * independent of the thread count. Activation buffers come from alloc and may live on the device
 * (train.c passes them to ops and never reads them); ids, targets and rowloss are host memory.
 * A device backend (train_cuda.cu) keeps parameters, gradients and AdamW moments on the device:
 * P(m, i) / G(m, i) pointers into m->params / m->grads name the device copies, and sync moves
 * them to and from those host arrays (the checkpoint's view). */
typedef struct bn_train_model bn_train_model;
typedef struct bn_train_ops {
    const char *name;
    /* y = rmsnorm(x) * w ([N][D]), rstd[N] saved; yq (optional): the activation-quantized y, the
     * STE-saved input of the BitLinear that follows. A device backend that keeps its own
     * quantized copy (keyed by yq) may leave y and yq unwritten when yq is given: train.c only
     * passes yq on to the BitLinear ops and never reads y then. */
    void (*rmsnorm_fwd)(bn_train_model *m, const float *x, const float *w, float *y, float *rstd, float *yq, int N, int D);
    /* dx (acc) = d rmsnorm/dx . dy; dw += sum over rows dy * x * rstd. dx must not alias dy.
     * A device backend may defer a call with acc 0 and do it inside the glu_bwd right after
     * whose dh is this dx, leaving dx unwritten: train.c passes the FFN sub-norm's dx (d hmul)
     * only to that glu_bwd and never reads it itself (every other op issues a deferred call first). */
    void (*rmsnorm_bwd)(bn_train_model *m, const float *dy, const float *x, const float *w, const float *rstd,
                        float *dx, float *dw, int N, int D, int acc);
    /* BitLinear on quantized operands: y[N][out] (= or += when acc) x[N][in] @ Wq^T. */
    void (*linear_fwd)(bn_train_model *m, const float *x, int widx, float *y, int N, int acc);
    /* G[widx] += dy^T x; dx (acc_dx; NULL: skipped) = dy @ Wq (straight-through estimator). */
    void (*linear_bwd)(bn_train_model *m, const float *dy, const float *x, int widx, float *dx, int N, int acc_dx);
    /* Rotate-half RoPE in place on x[N][nh*head_dim] at position (row % T); inv = 1: backward. */
    void (*rope)(bn_train_model *m, float *x, int N, int nh, int inv);
    /* Causal GQA attention: att = softmax(q k^T / sqrt(hd)) (saved), out = att v. */
    void (*attn_fwd)(bn_train_model *m, const float *q, const float *k, const float *v, float *att, float *out);
    /* From dout: dq, dk, dv (all written, not accumulated). */
    void (*attn_bwd)(bn_train_model *m, const float *q, const float *k, const float *v, const float *att,
                     const float *dout, float *dq, float *dk, float *dv);
    /* Gated activation of the model's act (relu^2 or silu): h = act(g) * u, n elements. */
    void (*glu_fwd)(bn_train_model *m, const float *g, const float *u, float *h, int n);
    /* dg, du (written) from dh. A device backend that writes the gate / up BitLinear
     * backward's own operands for them (keyed by dg / du) may leave dg and du unwritten:
     * train.c passes them only to the gate and up linear_bwd calls right after (and to LoRA's
     * backward, which such a backend does not run) and never reads them itself. */
    void (*glu_bwd)(bn_train_model *m, const float *g, const float *u, const float *dh, float *dg, float *du, int n);
    /* x[N][C] = embedding rows ids[N] of parameter widx; backward: G[widx] rows += dx. */
    void (*embed_fwd)(bn_train_model *m, int widx, const int32_t *ids, int N, float *x);
    void (*embed_bwd)(bn_train_model *m, int widx, const int32_t *ids, int N, const float *dx);
    /* Cross-entropy of logits[N][V] against tg: rowloss[r] = logsumexp - logit[tg]; a row with
     * tg[r] < 0 (an ignored target) gets rowloss 0 and, in ce_bwd, an all-zero row. */
    void (*ce_fwd)(bn_train_model *m, float *logits, const int32_t *tg, float *rowloss, int N);
    /* In place: logits = (softmax - onehot(tg)) * dscale. */
    void (*ce_bwd)(bn_train_model *m, float *logits, const int32_t *tg, int N, float dscale);
    /* LM head (float, parameter widx = H [V][C]): logits[N][V] = x[N][C] @ H^T; backward:
     * G[widx] += dlogits^T x, dx = dlogits @ H (written). */
    void (*head_fwd)(bn_train_model *m, int widx, const float *x, float *logits, int N);
    void (*head_bwd)(bn_train_model *m, int widx, const float *dlogits, const float *x, float *dx, int N);
    /* ---- memory and the step ---- */
    /* n floats of activation memory (NULL on failure); free(NULL) does nothing. */
    float *(*alloc)(bn_train_model *m, size_t n);
    void (*free)(bn_train_model *m, float *p);
    /* dst[n] = src[n], activation buffers. */
    void (*copy)(bn_train_model *m, float *dst, const float *src, size_t n);
    /* Absmean-ternarize every BitLinear master weight for the next forward (no wq: nothing). */
    void (*wquant)(bn_train_model *m);
    /* G = 0. */
    void (*zero_grad)(bn_train_model *m);
    /* The rest is NULL on the CPU (train_loop.c runs the optimizer on the host arrays).
     * Global L2 norm of G (fixed-order double sums). */
    double (*grad_norm)(bn_train_model *m);
    /* G *= coef when coef < 1, then torch's AdamW on every parameter (bn_adam_ref's arithmetic;
     * weight decay wd on BitLinear and head matrices, none on norms and the embedding). */
    void (*adamw)(bn_train_model *m, float coef, float lr, float beta1, float beta2, float eps, float wd, int64_t t);
    /* to_host 1: device parameters, gradients and moments -> m->params/grads/adam_m/adam_v;
     * 0: parameters and moments from those host arrays to the device. */
    bitnet_status (*sync)(bn_train_model *m, int to_host);
    /* The first failure of an op since the last call (BITNET_OK if none; bn_err set), cleared. */
    bitnet_status (*status)(bn_train_model *m);
    /* Free the device state (after the activations are freed). */
    void (*release)(bn_train_model *m);
} bn_train_ops;

/* The CPU training ops (src/train/train.c, on the model's bn_kernels set and thread pool). */
const bn_train_ops *bn_train_ops_cpu(void);
/* Move training model m (no LoRA adapters, no activations yet) onto CUDA device dev: upload its
 * parameters and moments and switch m->ops to the CUDA training ops (src/backend/cuda/
 * train_cuda.cu, only in `make CUDA=1` builds). BitLinear forward products are exact (int8 x
 * ternary in bf16, fp32 sums); the rest as precision (bitnet_train.h BITNET_TRAIN_PREC_*) says.
 * On failure m is unchanged. */
bitnet_status bn_train_cuda_attach(bn_train_model *m, int dev, int precision);
/* m's device gradients [m->n_params] and the cudaStream_t its training ops run on (for the
 * data-parallel all-reduce); BITNET_ERR_UNSUPPORTED when m is not on a CUDA device. */
bitnet_status bn_train_cuda_grads(bn_train_model *m, float **grads, void **stream);
#endif
