/* lora.h — LoRA adapters for the training model (train.h): y = BitLinear(x) + (alpha/r) B A x
 * on chosen BitLinear matrices of a frozen base, with A [r, in] and B [out, r] in float32.
 *
 * What it is: a parameter table in the training model's shape (bn_tparam entries named as
 * Hugging Face PEFT names them, "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight"),
 * one float buffer each for the adapter parameters, gradients and AdamW moments, the forward and
 * backward hooks train.c calls after each BitLinear, and PEFT's adapter files (read and write).
 * The input x of the low-rank term is the BitLinear's float input, as PEFT's lora_A reads it on
 * transformers' AutoBitLinear: the norm output (input_layernorm for q/k/v, attn_sub_norm for o,
 * post_attention_layernorm for gate/up, ffn_sub_norm for down) before the per-token int8
 * activation quantizer that feeds the base GEMM (train.c keeps it for the forward and recomputes
 * it for the backward; inference, lora_infer.c, reads the same tensor). Init as PEFT's default: A ~ kaiming_uniform(a = sqrt(5)), i.e.
 * U(-1/sqrt(in), 1/sqrt(in)), from a seed; B = 0. Dropout as PEFT's lora_dropout: on the input
 * of the low-rank branch only, y = BitLinear(x) + scale B A (mask * x / (1 - p)), a fresh mask
 * per adapter and micro-batch while drop_on is set (training), identity otherwise (eval). The
 * mask of element e of adapter a is keep = u(drop_seed, drop_key, a, e) >= p with u a hash in
 * [0, 1), so backward and a checkpointed recompute regenerate it (nothing stored).
 * The frozen base's backward is PEFT's: dX = dY W_deq with dY in float (not quantized; see
 * kernels.h tgemm_t for why), the packed matrices read a tile at a time (train.c).
 * Not: an inference path (model.c), a merger (see bn_lora_merge), or a general PEFT reader (only
 * LoRA with these target names, no bias, no DoRA/rsLoRA). Never prints. */
#ifndef BITNET_LORA_H
#define BITNET_LORA_H
#include "train/train.h"

/* Target bits: 1 << bn_slot for the seven BitLinear slots (arch.h). */
#define BN_LORA_ALL_TARGETS 0
/* Parse "q,k,v,o,gate,up,down" (also the PEFT names q_proj, ..., down_proj, and "all") into a
 * mask of 1 << bn_slot. Returns 0 on an unknown name (err names it). */
int bn_lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errlen);

typedef struct bn_lora {
    int rank;
    float alpha, scale;            /* scale = alpha / rank */
    unsigned targets;              /* 1 << bn_slot */
    int n_tp; bn_tparam *tp;       /* 2 per adapter: lora_A then lora_B; slot, layer of the base */
    int *ad_of;                    /* [base n_tp]: index into tp of the A entry, or -1 */
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v;
    float *us;                     /* [n_adapters][cap_bt * rank]: scale * A x of the last forward */
    float *du;                     /* [cap_bt * rank] backward scratch */
    int cap_bt;
    float dropout;                 /* p in [0, 1) */
    int drop_on;                   /* 1: the next forwards/backwards are training (mask applied) */
    uint64_t drop_seed, drop_key;  /* the mask's seed (from bn_lora_new's), and the micro-batch's key */
    float *xd;                     /* [cap_bt * max in] dropout scratch (NULL while dropout == 0) */
    int max_in;
} bn_lora;

/* Adapters of rank r on the targeted matrices of m (mask 0: all seven), A from seed, B = 0.
 * Does not attach them (set m->lora). */
bitnet_status bn_lora_new(const bn_train_model *m, int rank, float alpha, unsigned targets, uint64_t seed, bn_lora **out);
void bn_lora_free(bn_lora *l);
/* Activation storage for B*T tokens (called by bn_train_forward). */
bitnet_status bn_lora_reserve(bn_lora *l, int BT);
/* Hooks (train.c): after base y (+)= BitLinear(x_q): y += scale (x A^T) B^T, keeping scale x A^T;
 * x [N, in] the float input (above), not x_q. */
void bn_lora_forward(bn_train_model *m, int widx, const float *x, float *y, int N);
/* After the base backward: gB += dy^T us; du = scale dy B; gA += du^T x; dx += du A (x: the
 * forward's float input, bit for bit). */
void bn_lora_backward(bn_train_model *m, int widx, const float *dy, const float *x, float *dx, int N);
void bn_lora_zero_grad(bn_lora *l);
/* Dropout probability p in [0, 1) (BITNET_ERR_ARG otherwise); takes effect at the next
 * bn_lora_reserve (the trainer's forward). */
bitnet_status bn_lora_set_dropout(bn_lora *l, float p);

/* Write dir/adapter_model.safetensors (float32, PEFT names) and dir/adapter_config.json
 * (peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, lora_dropout, target_modules,
 * base_model_name_or_path = base, may be NULL), each atomically. dir must exist. */
bitnet_status bn_lora_save(const bn_lora *l, const char *dir, const char *base);
/* Read dir's adapter_config.json (peft_type LORA; r, lora_alpha, target_modules) and
 * adapter_model.safetensors (F32/BF16/F16; every targeted matrix of every layer present with
 * its shape; nothing else). Shapes come from cfg. */
/* Read dir/adapter_config.json: rank r, lora_alpha (PEFT's default 8 when absent) and the
 * target_modules as 1 << bn_slot bits; FORMAT/UNSUPPORTED errors name the file. */
bitnet_status bn_lora_read_config(const char *dir, int *rank, float *alpha, unsigned *mask);
/* PEFT's name of base tensor name ("model.layers.0.self_attn.q_proj.weight") for part "lora_A"
 * or "lora_B": "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight". */
void bn_lora_peft_name(const char *base, const char *part, char *out, size_t n);
bitnet_status bn_lora_load(const bn_train_model *m, const char *dir, bn_lora **out);
/* A frozen base (bn_train_model_freeze) read from a folder in any layout the trainer names:
 * float master weights (ternarized here, once, unless no_quant) or the packed 2B-4T layout
 * (uint8 + weight_scale, decoded to W_deq = q * multiplier as the inference loader does it), so
 * adapters train on a model that ships packed only. kernels: as bn_train_model_new_ex. */
bitnet_status bn_train_model_from_dir_frozen(const char *dir, int no_quant, int n_threads, const char *kernels, bn_train_model **out);
#endif
