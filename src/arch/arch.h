/* arch.h — the one description of the BitNet b1.58 architecture's tensors: for every layer
 * slot and global tensor, its name in each checkpoint naming scheme and its logical shape from
 * the config. The loader (loader.c), the trainer (train.c) and the exporter (train_export.c)
 * all name and shape tensors through this table.
 *
 * Naming schemes:
 *   BN_NAMES_BITNET  — Hugging Face 2B-4T ("model_type": "bitnet"), both the packed checkpoint
 *                      (BitLinear weights stored as 2B-4T uint8 + "<name>_scale", ternary.h)
 *                      and the bf16/f32 master checkpoint (same names, float weights);
 *   BN_NAMES_1BITLLM — 1bitLLM (llama-typed): sub-norms are inner_attn_ln / ffn_layernorm;
 *   BN_NAMES_GGUF    — llama.cpp's "bitnet" arch names (blk.N.*), for a GGUF reader to come.
 * Shapes are logical, row-major [out, in] for matrices (GGUF stores dims reversed; a GGUF
 * reader must flip them). Not: a file reader (safetensors.h) or a model (model.h, train.h). */
#ifndef BITNET_ARCH_H
#define BITNET_ARCH_H
#include "io/config.h"
#include "io/safetensors.h"

typedef enum {
    BN_NAMES_BITNET = 0, BN_NAMES_1BITLLM = 1, BN_NAMES_GGUF = 2, BN_NAMES_COUNT
} bn_naming;

/* Tensor slots: the 11 per-layer slots in their parameter order, then the globals. */
typedef enum {
    BN_S_ATTN_NORM = 0, BN_S_Q, BN_S_K, BN_S_V, BN_S_ATTN_SUB_NORM, BN_S_O,
    BN_S_FFN_NORM, BN_S_GATE, BN_S_UP, BN_S_FFN_SUB_NORM, BN_S_DOWN,
    BN_LAYER_SLOTS,                        /* = 11 */
    BN_S_EMBED = BN_LAYER_SLOTS, BN_S_FINAL_NORM, BN_S_HEAD,
    BN_SLOTS
} bn_slot;

/* Values equal train.h's bn_pkind (BN_PK_EMBED .. BN_PK_HEAD). */
typedef enum { BN_TK_EMBED = 0, BN_TK_NORM = 1, BN_TK_LINEAR = 2, BN_TK_HEAD = 3 } bn_tkind;

/* The naming scheme of a config's checkpoint family. */
bn_naming bn_arch_naming(const bn_config *c);
/* Kind of a slot: NORM (float [n]), LINEAR (ternary BitLinear [out, in]), EMBED / HEAD
 * (float [vocab, hidden]). */
bn_tkind bn_arch_kind(bn_slot s);
/* Short name of a slot ("attn_norm", "q", ..., "embed", "final_norm", "head"). */
const char *bn_arch_slot_name(bn_slot s);
/* Write the tensor name of slot s (layer l for layer slots, ignored for globals) in scheme nm
 * into buf[n]. Returns buf. */
const char *bn_arch_tensor_name(bn_naming nm, bn_slot s, int l, char *buf, size_t n);
/* Logical shape of slot s under config c: returns ndim (1 or 2) and fills shape[0..ndim-1]. */
int bn_arch_shape(const bn_config *c, bn_slot s, int64_t shape[2]);

/* Float tensor dtypes (F32/F16/BF16) as a bn_st_get mask. */
#define BN_FLOAT_DTYPES ((1u << BN_F32) | (1u << BN_F16) | (1u << BN_BF16))
/* Fetch tensor name from st, check it is a float tensor of shape[ndim], convert it into
 * dst[numel] float32 and check every value is finite. Errors name the file and tensor. */
bitnet_status bn_arch_read_f32(const bn_st *st, const char *name, int ndim, const int64_t *shape, float *dst);
/* Check every value of a float tensor (F32/F16/BF16, read in place) is finite. */
bitnet_status bn_arch_check_finite(const bn_tensor *t);
#endif
