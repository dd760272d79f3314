/* config.h — a model's hyper-parameters, parsed and range-checked from HF config.json.
 * Shared by inference (model.c) and training (train.c). */
#ifndef BITNET_CONFIG_H
#define BITNET_CONFIG_H
#include "core/util.h"
#include "io/files.h"

typedef enum { BN_ACT_RELU2 = 0, BN_ACT_SILU = 1 } bn_act;
/* How a stored weight_scale is applied (packed layout only). */
typedef enum { BN_LC_AUTOBITLINEAR = 0, BN_LC_BITLINEAR = 1 } bn_linear_class;
/* Which naming family: 2B-4T ("bitnet": attn_sub_norm/ffn_sub_norm) or 1bitLLM
 * ("llama" + BitnetForCausalLM: inner_attn_ln/ffn_layernorm). */
typedef enum { BN_FAM_BITNET = 0, BN_FAM_1BITLLM = 1 } bn_family;

typedef struct bn_config {
    bn_family family;
    int vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int max_pos;
    float rope_theta, norm_eps;
    bn_act act;
    int tied;
    int bos_id, eos_id;          /* eos: first of a list; -1 if absent */
    int eos_ids[8], n_eos;       /* all eos ids listed */
    bn_linear_class linear_class;
    int full_precision;          /* "full_precision": true — master weights trained in float
                                    (`train --no-quant`): no quantization_config, not ternary */
} bn_config;

/* Parse dir/config.json. Errors name the file and the field. */
bitnet_status bn_config_load(const char *dir, bn_config *c);
/* Parse the provider's config.json (closed again before returning). */
bitnet_status bn_config_load_src(const bn_src *src, bn_config *c);
/* Parse a config from JSON text (path used in messages). */
bitnet_status bn_config_parse(const char *json, const char *path, bn_config *c);
/* Write a config.json (2B-4T "bitnet" layout when family is BITNET) atomically.
 * packed: add quantization_config (autobitlinear, offline) for the packed layout;
 * otherwise (float32 master weights) quantization_config says online, torch_dtype float32;
 * c->full_precision: no quantization_config, "full_precision": true, torch_dtype float32. */
bitnet_status bn_config_save(const bn_config *c, const char *path, int packed);
#endif
