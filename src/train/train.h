/* train.h — the training model: a BitNet b1.58 transformer with float32 master weights,
 * gradients and AdamW moments, and llm.c-style forward/backward function pairs.
 *
 * What it is: all parameters live in one float32 buffer (params), laid out tensor after tensor
 * in the order of m->tp[]; grads, adam_m and adam_v use the same layout. A packed frozen base
 * (LoRA, bn_train_model_new_packed) keeps only the norms there: its BitLinear matrices stay in
 * the kernel set's packed form (forward: the int8 x ternary GEMM of inference; dX = dY W_deq in
 * float with W unpacked one BN_FZ_TILE-row tile at a time), embedding and head as loaded.
 * Gradient checkpointing (bn_train_set_grad_checkpoint) keeps only each layer's input and
 * recomputes the layer at the start of its backward. Forward quantizes every
 * BitLinear weight per tensor (absmean, ternary) and every BitLinear input per token (absmax,
 * int8) exactly as transformers' AutoBitLinear in online mode, and keeps the activations that
 * backward needs. Backward is the straight-through estimator (gradients pass the quantizers
 * unchanged; dW = dY^T x_deq, dX = dY W_deq). With no_quant the same model runs in full
 * precision. Work is split over the model's thread pool (bn_pool_run); results do not depend on
 * the thread count except for the order of float sums in gradient reductions, which is fixed.
 * What it is not: an inference engine (see model.c), or a graph framework. Never prints. */
#ifndef BITNET_TRAIN_H
#define BITNET_TRAIN_H
#include "io/config.h"
#include "core/threads.h"
#include "backend/cpu/kernels/kernels.h"

typedef enum { BN_PK_EMBED = 0, BN_PK_NORM = 1, BN_PK_LINEAR = 2, BN_PK_HEAD = 3 } bn_pkind;

typedef struct bn_tparam {
    char name[96];          /* HF name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int ndim;               /* 1 or 2 */
    int64_t shape[2];       /* [out, in] for matrices, [n] for norms */
    size_t off, numel;      /* offset into params (floats), element count */
    bn_pkind kind;
    int slot, layer;        /* arch.h bn_slot, and layer index (-1 for globals) */
} bn_tparam;

typedef struct bn_tlayer {  /* indices into tp[] */
    int in_norm, q, k, v, attn_sub, o, post_norm, gate, up, ffn_sub, down;
} bn_tlayer;

/* A frozen matrix of a packed LoRA base (bn_train_model_new_packed), kept outside params. */
typedef struct bn_tfrozen {
    void *data;             /* BitLinear: the kernel set's packed ternary form (k->pack, 2 bits a
                             * weight); embedding/head: the tensor as loaded (dtype wdt) */
    int wdt;                /* BN_W_F32/F16/BF16 (kernels.h) for embedding/head; -1: packed ternary */
    float scale;            /* packed ternary: W_deq[r][k] = W[r][k] * scale */
} bn_tfrozen;

typedef struct bn_train_model {
    bn_config cfg;
    int no_quant;
    int n_tp; bn_tparam *tp;
    bn_tlayer *L;
    int embed, final_norm, head;        /* head: -1 when tied to embed */
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v;
    float *wq;                          /* dequantized BitLinear weights (same layout; only linear slots used) */
    const bn_kernels *k;                /* kernel set: GEMM micro-kernel and AdamW rows */
    const struct bn_train_ops *ops;     /* forward/backward ops (backend.h); bn_train_ops_cpu() */
    bn_pool *pool;
    float **ws;                         /* per-thread GEMM workspace */
    /* activations for the current (B, T) */
    int B, T, cap_bt;
    struct bn_tacts *a;
    int32_t *targets;                   /* [B*T] copy of the last forward's targets */
    int have_targets;
    int n_targets;                      /* the last forward's targets that count (>= 0) */
    float loss;
    struct bn_lora *lora;               /* adapters (lora.h) added after each targeted BitLinear; not owned */
    void *gpu;                          /* the device ops' state (train_cuda.cu); NULL on the CPU */
    /* packed frozen base (NULL otherwise): fz[i].data set for every BitLinear matrix, the
     * embedding and the head, whose params slots are then empty (tp[i].off = 0, not in n_params);
     * fzbuf/fzq: BN_FZ_TILE rows of the widest such matrix, as float and int8 (per-call tiles). */
    bn_tfrozen *fz;
    float *fzbuf; int8_t *fzq;
    int8_t *fxq; float *fxs; int32_t *fyi; int cap_fq;   /* packed BitLinear forward: int8 inputs
                             * [cap_fq][kpad(widest in)], their scales, int32 products [cap_fq][widest out] */
    int grad_ckpt;                      /* 1: keep only each layer's input; backward recomputes the layer */
    int int_fwd;                        /* 1 (the packed base's default): packed BitLinear forward
                                         * through the int8 x ternary GEMM, as inference; 0: float
                                         * GEMM over unpacked tiles (= the float W_deq base, bit for bit) */
} bn_train_model;
/* Rows per tile when a frozen matrix is unpacked for a GEMM: the float GEMM's KC (gemm_f32.c),
 * so the tiled products add their partial sums exactly as one untiled bn_sgemm does. */
#define BN_FZ_TILE 512

/* A zero model of the given shape (norm weights 1, everything else 0). n_threads >= 1.
 * kernels: the CPU kernel set by name (NULL or "" = bn_kernels_default()); a name that is not
 * available here is BITNET_ERR_UNSUPPORTED. */
bitnet_status bn_train_model_new_ex(const bn_config *cfg, int no_quant, int n_threads, const char *kernels,
                                    bn_train_model **out);
/* The same with the default kernel set. */
bitnet_status bn_train_model_new(const bn_config *cfg, int no_quant, int n_threads, bn_train_model **out);
/* Fill with a fresh random init like HF's: linear and embedding weights ~ N(0, std), norms 1.
 * Deterministic in seed. */
void bn_train_model_init_random(bn_train_model *m, uint64_t seed, float std);
/* Read a folder's config.json and its master weights (F32/BF16/F16, either naming family, named
 * and shaped by the arch table, arch.h; a NaN/inf value is a FORMAT error naming the tensor). */
bitnet_status bn_train_model_from_dir(const char *dir, int no_quant, int n_threads, bn_train_model **out);
/* The same on the kernel set named kernels (NULL or "": the default). */
bitnet_status bn_train_model_from_dir_ex(const char *dir, int no_quant, int n_threads, const char *kernels, bn_train_model **out);
/* Load master weights of the same shapes from a folder's model.safetensors into m->params. */
bitnet_status bn_train_model_load_weights(bn_train_model *m, const char *dir);
void bn_train_model_free(bn_train_model *m);
/* Freeze the base for adapter training: BitLinear weights are ternarized once (params then hold
 * W_deq = ternary / scale, or stay float in no_quant mode) and grads, AdamW moments and wq are
 * freed (NULL): backward then computes only activation gradients (dX through the frozen
 * matrices, as a float GEMM over W_deq) and the adapters' gradients. Idempotent. */
bitnet_status bn_train_model_freeze(bn_train_model *m);
/* A frozen model of the given shape for adapter training on a packed base: params hold only the
 * norms (1); m->fz[] has a slot for every BitLinear matrix, the embedding and the head, which the
 * caller fills (bn_train_model_from_dir_frozen). No grads, moments or wq. Not no_quant. */
bitnet_status bn_train_model_new_packed(const bn_config *cfg, int n_threads, const char *kernels, bn_train_model **out);
/* Gradient checkpointing on (1) or off (0): with it, forward keeps only each layer's input and
 * backward recomputes the layer's activations first; gradients are bit-identical either way.
 * Takes effect at the next forward (the activations are re-allocated). */
void bn_train_set_grad_checkpoint(bn_train_model *m, int on);
/* Index of the parameter named name, -1 if none. */
int bn_train_param_index(const bn_train_model *m, const char *name);

/* Forward over inputs[B*T] (ids < vocab). targets[B*T] may be NULL (then *loss is untouched and
 * backward cannot run); a negative target (BN_TARGET_IGNORE) is ignored: it adds no loss and no
 * gradient (the chat SFT mask, data.h). Returns BITNET_ERR_ARG for a bad id, BITNET_ERR_NUMERIC
 * for a NaN/inf loss. loss: mean cross-entropy over the positions whose target is >= 0 (0 when
 * none is; m->n_targets counts them). */
#define BN_TARGET_IGNORE (-1)
bitnet_status bn_train_forward(bn_train_model *m, const int32_t *inputs, const int32_t *targets,
                               int B, int T, float *loss);
/* Logits of the last forward: float[B*T][vocab]. Valid until backward (which overwrites them).
 * On a device trainer (m->gpu) this is device memory. */
const float *bn_train_logits(const bn_train_model *m);
/* Backward of the last forward with targets; adds grad_scale * d(loss)/d(param) into m->grads
 * (grad_scale lets gradient accumulation average micro-batches). */
bitnet_status bn_train_backward(bn_train_model *m, float grad_scale);
void bn_train_zero_grad(bn_train_model *m);

/* Write dir/config.json (bn_config_save) and dir/model.safetensors (float32 master weights, HF
 * names), each atomically. dir must exist. */
bitnet_status bn_train_save_weights(const bn_train_model *m, const char *dir);
/* Write the gradients as float32 safetensors under the parameter names (atomically). */
bitnet_status bn_train_save_grads(const bn_train_model *m, const char *path);

/* Model FLOPs per token for forward+backward, 6 * (non-embedding matrix params + head) —
 * the llm.c/PaLM "6N" convention without attention. */
double bn_train_flops_per_token(const bn_train_model *m);
#endif
