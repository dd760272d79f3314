/* train_plan.c — bitnet_train_plan (bitnet_train.h): the memory a trainer will use, from the
 * config and the params alone (nothing is allocated or loaded), for `bitnet train --dry-run`.
 * The activation count mirrors ensure_acts() in train.c (keep the two in step); the adapter
 * count mirrors bn_lora_new(); a LoRA base (not no_quant) is counted as bn_train_model_new_packed
 * keeps it: norms float32, BitLinear matrices in the kernel set's packed size, embedding/head at
 * their dtype in the folder's safetensors (2 bytes, bf16, when only a config.json is given).
 * Not: a measurement (see docs/PERFORMANCE.md for measured RSS). */
#include "bitnet_train.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "arch/arch.h"
#include "backend/cpu/kernels/kernels.h"

#define R16(x) (((x) + 15) & ~(int64_t)15)

bitnet_status bitnet_train_plan(const char *from, const bitnet_train_params *pp, bitnet_train_memory *out) {
    memset(out, 0, sizeof *out);
    bitnet_train_params p = pp ? *pp : bitnet_train_default_params();
    if (!from) return bn_err(BITNET_ERR_ARG, "train plan: no model folder or config.json given");
    bn_config c;
    bitnet_status s;
    if (bn_is_dir(from)) s = bn_config_load(from, &c);
    else {
        char *txt = NULL;
        s = bn_read_file(from, &txt, NULL);
        if (!s) { s = bn_config_parse(txt, from, &c); free(txt); }
    }
    if (s) return s;
    int lora = p.param_set == BITNET_TRAIN_LORA, nth = p.n_threads > 0 ? p.n_threads : 1;
    static const bn_slot lin[7] = {BN_S_Q, BN_S_K, BN_S_V, BN_S_O, BN_S_GATE, BN_S_UP, BN_S_DOWN};
    unsigned tg = p.lora_targets ? p.lora_targets : 127u;
    int packed = lora && !p.no_quant, full = p.grad_checkpoint ? 1 : c.n_layers;
    const bn_kernels *K = p.kernels && *p.kernels ? bn_kernels_by_name(p.kernels) : bn_kernels_default();
    if (!K) K = bn_kernels_default();
    bn_st *st = NULL;
    if (packed && bn_is_dir(from) && bn_st_open_dir(from, &st)) st = NULL;   /* unreadable: assume bf16 */
    int64_t n = 0, nl = 0, n_ad = 0, sh[2], pk = 0, max_in = 0;
    for (int sl = 0; sl < BN_SLOTS; sl++) {
        if (sl == BN_S_HEAD && c.tied) continue;
        int nd = bn_arch_shape(&c, (bn_slot)sl, sh);
        int64_t e = sh[0] * (nd == 2 ? sh[1] : 1);
        n += sl < BN_LAYER_SLOTS ? (int64_t)c.n_layers * R16(e) : R16(e);
        bn_tkind kd = bn_arch_kind((bn_slot)sl);
        if (packed && kd == BN_TK_NORM) pk += (sl < BN_LAYER_SLOTS ? (int64_t)c.n_layers : 1) * R16(e) * 4;
        else if (packed && kd == BN_TK_LINEAR) pk += (int64_t)c.n_layers * (int64_t)K->packed_size((int)sh[0], (int)sh[1]);
        else if (packed) {   /* embedding / head: as loaded */
            char nm[128];
            bn_arch_tensor_name(bn_arch_naming(&c), (bn_slot)sl, -1, nm, sizeof nm);
            const bn_tensor *t = st ? bn_st_find(st, nm) : NULL;
            pk += e * (t && t->dtype == BN_F32 ? 4 : 2);
        }
        for (int k = 0; k < 7; k++)
            if ((int)lin[k] == sl && (tg & (1u << k))) {
                if (sh[1] > max_in) max_in = sh[1];
                nl += (int64_t)c.n_layers * (R16((int64_t)p.lora_rank * sh[1]) + R16(sh[0] * (int64_t)p.lora_rank));
                n_ad += c.n_layers;
            }
    }
    int64_t B = p.batch, T = p.seq, bt = B * T;
    int64_t C = c.hidden_size, Q = (int64_t)c.n_heads * c.head_dim, KV = (int64_t)c.n_kv_heads * c.head_dim;
    int64_t I = c.intermediate_size, V = c.vocab_size, H = c.n_heads, hd2 = c.head_dim / 2;
    int64_t mx = C > Q ? C : Q; if (I > mx) mx = I;
    int64_t per_layer = R16(bt * C) * 3 + R16(bt) * 4 + R16(bt * Q) * 3 + R16(bt * KV) * 2 + R16(B * H * T * T) + R16(bt * C) + R16(bt * I) * 4;
    bn_st_free(st);
    int64_t acts = per_layer * full + R16(bt * C) * (c.n_layers - full) + R16(bt * C) * 3 + R16(bt) * 2 + R16(bt * V) + R16(bt * mx) * 3
                 + R16(bt * Q) + R16(bt * KV) * 2 + R16(T * hd2) * 2 + R16(bt) + R16((int64_t)nth * T * T)
                 + (packed ? R16(bt * mx) + R16(bt) : 0);   /* the LoRA branch's float input, recomputed in backward */
    out->weights = packed ? pk : n * 4;
    if (!lora && !p.no_quant) out->weights += n * 4;           /* the dequantized ternary copy (wq) */
    out->grads = lora ? 0 : n * 4;
    out->optimizer = lora ? 0 : n * 8;
    out->adapters = lora ? nl * 4 * 4 : 0;                     /* params, grads, AdamW m and v */
    out->activations = acts * 4 + bt * 8 + (lora ? (n_ad + 1) * bt * p.lora_rank * 4 : 0)
                     + (lora && p.lora_dropout > 0 ? R16(bt * max_in) * 4 : 0);   /* the dropout scratch */
    out->total = out->weights + out->grads + out->optimizer + out->adapters + out->activations;
    return BITNET_OK;
}
