/* train_plan.c — bitnet_train_plan (bitnet_train.h): the memory a trainer will use, from the
 * config and the params alone (nothing is allocated or loaded), for `bitnet train --dry-run`.
 * The activation count mirrors ensure_acts() in train.c (keep the two in step); the adapter
 * count mirrors bn_lora_new(). Not: a measurement (see docs/PERFORMANCE.md for measured RSS). */
#include "bitnet_train.h"
#include "io/config.h"
#include "arch/arch.h"

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
    int64_t n = 0, nl = 0, n_ad = 0, sh[2];
    for (int sl = 0; sl < BN_SLOTS; sl++) {
        if (sl == BN_S_HEAD && c.tied) continue;
        int nd = bn_arch_shape(&c, (bn_slot)sl, sh);
        int64_t e = sh[0] * (nd == 2 ? sh[1] : 1);
        n += sl < BN_LAYER_SLOTS ? (int64_t)c.n_layers * R16(e) : R16(e);
        for (int k = 0; k < 7; k++)
            if ((int)lin[k] == sl && (tg & (1u << k))) {
                nl += (int64_t)c.n_layers * (R16((int64_t)p.lora_rank * sh[1]) + R16(sh[0] * (int64_t)p.lora_rank));
                n_ad += c.n_layers;
            }
    }
    int64_t B = p.batch, T = p.seq, bt = B * T;
    int64_t C = c.hidden_size, Q = (int64_t)c.n_heads * c.head_dim, KV = (int64_t)c.n_kv_heads * c.head_dim;
    int64_t I = c.intermediate_size, V = c.vocab_size, H = c.n_heads, hd2 = c.head_dim / 2;
    int64_t mx = C > Q ? C : Q; if (I > mx) mx = I;
    int64_t per_layer = R16(bt * C) * 3 + R16(bt) * 4 + R16(bt * Q) * 3 + R16(bt * KV) * 2 + R16(B * H * T * T) + R16(bt * C) + R16(bt * I) * 4;
    int64_t acts = per_layer * c.n_layers + R16(bt * C) * 3 + R16(bt) * 2 + R16(bt * V) + R16(bt * mx) * 3
                 + R16(bt * Q) + R16(bt * KV) * 2 + R16(T * hd2) * 2 + R16(bt) + R16((int64_t)nth * T * T);
    out->weights = n * 4;
    if (!lora && !p.no_quant) out->weights += n * 4;           /* the dequantized ternary copy (wq) */
    out->grads = lora ? 0 : n * 4;
    out->optimizer = lora ? 0 : n * 8;
    out->adapters = lora ? nl * 4 * 4 : 0;                     /* params, grads, AdamW m and v */
    out->activations = acts * 4 + bt * 8 + (lora ? (n_ad + 1) * bt * p.lora_rank * 4 : 0);
    out->total = out->weights + out->grads + out->optimizer + out->adapters + out->activations;
    return BITNET_OK;
}
