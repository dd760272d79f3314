/* arch.c — tensor names and shapes per checkpoint family (see arch.h), and typed float reads
 * of those tensors. Not: a model; callers decide where the tensors go. */
#include "arch/arch.h"
#include <stdio.h>
#include <math.h>

/* Per slot: kind, short name, and the name in each scheme ("%d" = layer index). */
static const struct {
    bn_tkind kind;
    const char *slot;
    const char *name[BN_NAMES_COUNT];
} T[BN_SLOTS] = {
    [BN_S_ATTN_NORM]     = {BN_TK_NORM, "attn_norm", {"model.layers.%d.input_layernorm.weight", "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"}},
    [BN_S_Q]             = {BN_TK_LINEAR, "q", {"model.layers.%d.self_attn.q_proj.weight", "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight"}},
    [BN_S_K]             = {BN_TK_LINEAR, "k", {"model.layers.%d.self_attn.k_proj.weight", "model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight"}},
    [BN_S_V]             = {BN_TK_LINEAR, "v", {"model.layers.%d.self_attn.v_proj.weight", "model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight"}},
    [BN_S_ATTN_SUB_NORM] = {BN_TK_NORM, "attn_sub_norm", {"model.layers.%d.self_attn.attn_sub_norm.weight", "model.layers.%d.self_attn.inner_attn_ln.weight", "blk.%d.attn_sub_norm.weight"}},
    [BN_S_O]             = {BN_TK_LINEAR, "o", {"model.layers.%d.self_attn.o_proj.weight", "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight"}},
    [BN_S_FFN_NORM]      = {BN_TK_NORM, "ffn_norm", {"model.layers.%d.post_attention_layernorm.weight", "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"}},
    [BN_S_GATE]          = {BN_TK_LINEAR, "gate", {"model.layers.%d.mlp.gate_proj.weight", "model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight"}},
    [BN_S_UP]            = {BN_TK_LINEAR, "up", {"model.layers.%d.mlp.up_proj.weight", "model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight"}},
    [BN_S_FFN_SUB_NORM]  = {BN_TK_NORM, "ffn_sub_norm", {"model.layers.%d.mlp.ffn_sub_norm.weight", "model.layers.%d.mlp.ffn_layernorm.weight", "blk.%d.ffn_sub_norm.weight"}},
    [BN_S_DOWN]          = {BN_TK_LINEAR, "down", {"model.layers.%d.mlp.down_proj.weight", "model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight"}},
    [BN_S_EMBED]         = {BN_TK_EMBED, "embed", {"model.embed_tokens.weight", "model.embed_tokens.weight", "token_embd.weight"}},
    [BN_S_FINAL_NORM]    = {BN_TK_NORM, "final_norm", {"model.norm.weight", "model.norm.weight", "output_norm.weight"}},
    [BN_S_HEAD]          = {BN_TK_HEAD, "head", {"lm_head.weight", "lm_head.weight", "output.weight"}},
};

bn_naming bn_arch_naming(const bn_config *c) { return c->family == BN_FAM_1BITLLM ? BN_NAMES_1BITLLM : BN_NAMES_BITNET; }
bn_tkind bn_arch_kind(bn_slot s) { return T[s].kind; }
const char *bn_arch_slot_name(bn_slot s) { return T[s].slot; }

const char *bn_arch_tensor_name(bn_naming nm, bn_slot s, int l, char *buf, size_t n) {
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    if (s < BN_LAYER_SLOTS) snprintf(buf, n, T[s].name[nm], l);
    else snprintf(buf, n, "%s", T[s].name[nm]);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    return buf;
}

int bn_arch_shape(const bn_config *c, bn_slot s, int64_t shape[2]) {
    int64_t C = c->hidden_size, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t I = c->intermediate_size, V = c->vocab_size;
    static const signed char dims[BN_SLOTS][2] = {  /* 'C' hidden, 'Q', 'K' kv, 'I' ffn, 'V' vocab */
        [BN_S_ATTN_NORM] = {'C', 0}, [BN_S_Q] = {'Q', 'C'}, [BN_S_K] = {'K', 'C'}, [BN_S_V] = {'K', 'C'},
        [BN_S_ATTN_SUB_NORM] = {'Q', 0}, [BN_S_O] = {'C', 'Q'}, [BN_S_FFN_NORM] = {'C', 0},
        [BN_S_GATE] = {'I', 'C'}, [BN_S_UP] = {'I', 'C'}, [BN_S_FFN_SUB_NORM] = {'I', 0}, [BN_S_DOWN] = {'C', 'I'},
        [BN_S_EMBED] = {'V', 'C'}, [BN_S_FINAL_NORM] = {'C', 0}, [BN_S_HEAD] = {'V', 'C'},
    };
    int nd = 0;
    for (int i = 0; i < 2 && dims[s][i]; i++, nd++)
        shape[i] = dims[s][i] == 'C' ? C : dims[s][i] == 'Q' ? Q : dims[s][i] == 'K' ? KV : dims[s][i] == 'I' ? I : V;
    return nd;
}

bitnet_status bn_arch_check_finite(const bn_tensor *t) {
    const uint8_t *p = t->data;
    int64_t bad = -1;
    if (t->dtype == BN_F32) {
        for (int64_t i = 0; i < t->numel && bad < 0; i++) { uint32_t u; memcpy(&u, p + 4 * i, 4); if ((u & 0x7f800000u) == 0x7f800000u) bad = i; }
    } else if (t->dtype == BN_F16 || t->dtype == BN_BF16) {
        uint16_t e = t->dtype == BN_F16 ? 0x7c00 : 0x7f80;
        for (int64_t i = 0; i < t->numel && bad < 0; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); if ((h & e) == e) bad = i; }
    }
    if (bad >= 0) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at %lld", t->file, t->name, (long long)bad);
    return BITNET_OK;
}

bitnet_status bn_arch_read_f32(const bn_st *st, const char *name, int ndim, const int64_t *shape, float *dst) {
    const bn_tensor *t;
    bitnet_status s = bn_st_get(st, name, BN_FLOAT_DTYPES, ndim, shape, &t);
    if (s) return s;
    bn_tensor_to_f32(t, dst, 0, t->numel);
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i])) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at %lld", t->file, name, (long long)i);
    return BITNET_OK;
}
