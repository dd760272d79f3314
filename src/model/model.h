/* model.h — internal view of a loaded model: config, packed ternary matrices, float tensors.
 * The forward pass is in model.c; loading from safetensors in loader.c. */
#ifndef BITNET_MODEL_H
#define BITNET_MODEL_H
#include "io/config.h"
#include "io/safetensors.h"
#include "backend/cpu/kernels/kernels.h"
#include "io/ternary.h"
#include "backend/backend.h"
#include "arch/arch.h"

/* bn_tmat, a ternary BitLinear weight, is defined with the backend that makes it (backend.h). */
typedef struct bn_layer {
    float *attn_norm;      /* [dim]  input_layernorm */
    float *attn_sub_norm;  /* [q_dim] attn_sub_norm / inner_attn_ln */
    float *ffn_norm;       /* [dim]  post_attention_layernorm */
    float *ffn_sub_norm;   /* [ffn]  ffn_sub_norm / ffn_layernorm */
    bn_tmat wq, wk, wv, wo, wgate, wup, wdown;
} bn_layer;


struct bitnet_model {
    bn_config cfg;
    const bn_kernels *k;     /* CPU kernel set (inner loops of the CPU backend) */
    const bn_backend *be;    /* makes the weights and runs the ops (src/backend/backend.h) */
    int device_index;        /* GPU number for a device backend (cuda:N) */
    bn_st *st;               /* open checkpoint (embeddings/head may point into its mmap) */
    const void *embed;       /* [vocab, dim] of dtype embed_dt (BN_W_*) */
    int embed_dt;
    const void *head;        /* [vocab, dim] of dtype head_dt; == embed when tied */
    int head_dt;
    void *owned;             /* embedding buffer we allocated (synthetic models), else NULL */
    float *final_norm;       /* [dim] */
    int head_type;           /* bitnet_head_type; Q8/Q4 use head_q */
    uint8_t *head_q;         /* quantized head (kernels.h layouts) or NULL */
    size_t head_q_bytes;
    bn_layer *layers;        /* [n_layers] */
    struct bn_lora_ad **lora; /* LoRA adapters (lora_infer.c): [n_layers * BN_LAYER_SLOTS] chains, or NULL */
    char weight_format[32];
    int64_t n_params, n_ternary;
    size_t weight_bytes, ternary_bytes;
};

/* A model with the shapes of cfg and random ternary weights (scale ~ 1/sqrt(cols)), random
 * bf16 embeddings and unit norms, built in memory (for benchmarks). */
bitnet_status bn_model_synthetic(const bn_config *cfg, const char *kernels, uint64_t seed, bitnet_model **out);
/* The same on a device (bitnet_model_params.device: NULL/"cpu", "cuda", "cuda:N"). */
bitnet_status bn_model_synthetic_on(const bn_config *cfg, const char *kernels, uint64_t seed, const char *device, bitnet_model **out);
/* Weight bytes streamed per generated token (all ternary matrices + one head pass). */
size_t bn_model_weight_bytes_per_token(const bitnet_model *m);
/* The ternary codec (bn_ternarize, bn_pack_2b4t, bn_unpack_2b4t) is in ternary.h. */
/* LoRA at inference (lora_infer.c; host buffers, CPU backend): after the BitLinears of layer
 * `layer` in slots[nw] (bn_slot values) read x[n][cols], add each matrix's adapters to y[i][n][rows];
 * and free every adapter of m. */
void bn_lora_after(const bitnet_model *m, int layer, const int *slots, int nw, const float *x, int n, float *const *y);
void bn_lora_model_free(bitnet_model *m);
/* The float vector of norm slot s in L (an arch.h slot), and the BitLinear matrix of linear
 * slot s: how the loaders map the architecture table onto bn_layer. */
static inline float **bn_layer_vec(bn_layer *L, bn_slot s) {
    return s == BN_S_ATTN_NORM ? &L->attn_norm : s == BN_S_ATTN_SUB_NORM ? &L->attn_sub_norm
         : s == BN_S_FFN_NORM ? &L->ffn_norm : &L->ffn_sub_norm;
}
static inline bn_tmat *bn_layer_mat(bn_layer *L, bn_slot s) {
    switch (s) {
    case BN_S_Q: return &L->wq;       case BN_S_K: return &L->wk;   case BN_S_V: return &L->wv;
    case BN_S_O: return &L->wo;       case BN_S_GATE: return &L->wgate;
    case BN_S_UP: return &L->wup;     default: return &L->wdown;
    }
}
#endif
