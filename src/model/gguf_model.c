/* gguf_model.c — builds a bitnet_model from one GGUF file (bitnet.cpp's I2_S, llama.cpp's
 * TQ1_0/TQ2_0, or float BitLinear weights), read through a file provider (files.h):
 *   hyper-parameters from the "<arch>.*" keys of the architectures "bitnet" (1bitLLM
 *   conversions: silu), "bitnet-b1.58" and "bitnet-25" (2B-4T: relu2), every one range-checked;
 *   tensors named through the architecture table (arch.h, BN_NAMES_GGUF) with their logical
 *   shapes (GGUF dims are reversed; gguf.c flips them); BitLinear weights decoded to ternary
 *   (gguf.h: bn_gguf_read_linear) and packed once for the kernel set, never held as float;
 *   token_embd / output copied (F32/F16/BF16 as they are, Q8_0/Q6_K/Q4_0 dequantized to f32).
 * The file is closed again before returning (nothing points into it); as each tensor is copied
 * or repacked its file pages leave the resident set (bn_files_release), so loading peaks near
 * the model's own size, as from a folder.
 * Not: the tokenizer from GGUF metadata, or a GGUF writer. I2_S codes are read in bitnet.cpp's
 * x86 layout (what the published files use); an ARM-made I2_S file is not told apart. */
#include "model/model.h"
#include "arch/arch.h"
#include "io/files.h"
#include "model/gguf_model.h"
#include "io/gguf.h"
#include "io/ternary.h"
#include <math.h>
#include <stdio.h>

/* Make w from ternary q (loader.c: packed for m's kernel set, counted in m's sizes). */
bitnet_status bn_model_make_tmat(bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w);

static bitnet_status get_i(const bn_gguf *g, const char *arch, const char *key, int64_t lo, int64_t hi, int64_t def, int *out) {
    char k[160]; int64_t v;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (def != INT64_MIN && !bn_gguf_find_kv(g, k)) { *out = (int)def; return BITNET_OK; }
    bitnet_status s = bn_gguf_get_int(g, k, lo, hi, &v);
    if (!s) *out = (int)v;
    return s;
}
static bitnet_status get_f(const bn_gguf *g, const char *arch, const char *key, double lo, double hi, double def, float *out) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!bn_gguf_find_kv(g, k)) {
        if (def != def) return bn_err(BITNET_ERR_FORMAT, "%s: missing metadata key '%s'", bn_gguf_file(g), k);
        *out = (float)def; return BITNET_OK;
    }
    bitnet_status s = bn_gguf_get_f32(g, k, out);
    if (!s && !(*out >= lo && *out <= hi)) s = bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' = %g is out of range [%g, %g]", bn_gguf_file(g), k, *out, lo, hi);
    return s;
}

bitnet_status bn_gguf_config(const bn_gguf *g, bn_config *c) {
    const char *f = bn_gguf_file(g);
    bn_gguf_str as;
    bitnet_status s = bn_gguf_get_str(g, "general.architecture", &as);
    if (s) return s;
    char arch[64];
    if (as.n >= sizeof arch) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: general.architecture is not a BitNet architecture (bitnet, bitnet-b1.58, bitnet-25)", f);
    memcpy(arch, as.s, as.n); arch[as.n] = 0;
    memset(c, 0, sizeof *c);
    if (!strcmp(arch, "bitnet")) { c->family = BN_FAM_1BITLLM; c->act = BN_ACT_SILU; }
    else if (!strcmp(arch, "bitnet-b1.58") || !strcmp(arch, "bitnet-25")) { c->family = BN_FAM_BITNET; c->act = BN_ACT_RELU2; }
    else return bn_err(BITNET_ERR_UNSUPPORTED, "%s: general.architecture '%s' is not a BitNet architecture (bitnet, bitnet-b1.58, bitnet-25)", f, arch);
    const bn_gguf_tensor *te = bn_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", f);
    const bn_gguf_kv *toks = bn_gguf_find_kv(g, "tokenizer.ggml.tokens");
    int64_t vdef = toks && toks->type == BN_GV_ARRAY ? (int64_t)toks->arr_n : te->ne[1];
    if ((s = get_i(g, arch, "vocab_size", 1, 1 << 24, vdef, &c->vocab_size))) return s;
    if ((s = get_i(g, arch, "embedding_length", 1, 1 << 16, INT64_MIN, &c->hidden_size))) return s;
    if ((s = get_i(g, arch, "feed_forward_length", 1, 1 << 18, INT64_MIN, &c->intermediate_size))) return s;
    if ((s = get_i(g, arch, "block_count", 1, 1024, INT64_MIN, &c->n_layers))) return s;
    if ((s = get_i(g, arch, "attention.head_count", 1, 1024, INT64_MIN, &c->n_heads))) return s;
    if ((s = get_i(g, arch, "attention.head_count_kv", 1, 1024, c->n_heads, &c->n_kv_heads))) return s;
    if ((s = get_i(g, arch, "context_length", 1, 1 << 24, INT64_MIN, &c->max_pos))) return s;
    if (c->hidden_size % c->n_heads) return bn_err(BITNET_ERR_FORMAT, "%s: %s.embedding_length %d is not a multiple of %s.attention.head_count %d", f, arch, c->hidden_size, arch, c->n_heads);
    if (c->n_heads % c->n_kv_heads) return bn_err(BITNET_ERR_FORMAT, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d", f, arch, c->n_heads, c->n_kv_heads);
    c->head_dim = c->hidden_size / c->n_heads;
    int rd;
    if ((s = get_i(g, arch, "rope.dimension_count", 1, 1 << 12, c->head_dim, &rd))) return s;
    if (rd != c->head_dim) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: %s.rope.dimension_count %d differs from the head size %d (partial RoPE is not supported)", f, arch, rd, c->head_dim);
    if (c->head_dim % 2) return bn_err(BITNET_ERR_FORMAT, "%s: head size %d must be even for RoPE", f, c->head_dim);
    if ((s = get_f(g, arch, "rope.freq_base", 1.0, 1e9, 10000.0, &c->rope_theta))) return s;
    if ((s = get_f(g, arch, "attention.layer_norm_rms_epsilon", 0.0, 1.0, NAN, &c->norm_eps))) return s;
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    bn_gguf_str rt;
    if (bn_gguf_find_kv(g, k) && !bn_gguf_get_str(g, k, &rt) && !(rt.n == 4 && !memcmp(rt.s, "none", 4)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: %s (RoPE scaling) is not supported", f, k);
    c->tied = bn_gguf_find_tensor(g, "output.weight") == NULL;
    int64_t v;
    c->bos_id = c->eos_id = -1;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.bos_token_id")) {
        if ((s = bn_gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, c->vocab_size - 1, &v))) return s;
        c->bos_id = (int)v;
    }
    static const char *eos_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    for (int i = 0; i < 3; i++) {
        if (!bn_gguf_find_kv(g, eos_keys[i])) continue;
        if ((s = bn_gguf_get_int(g, eos_keys[i], 0, c->vocab_size - 1, &v))) return s;
        int dup = 0;
        for (int j = 0; j < c->n_eos; j++) dup |= c->eos_ids[j] == (int)v;
        if (!dup) c->eos_ids[c->n_eos++] = (int)v;
    }
    if (c->n_eos) c->eos_id = c->eos_ids[0];
    c->linear_class = BN_LC_AUTOBITLINEAR;   /* GGUF ternary weights are q * scale */
    return BITNET_OK;
}

/* The file's bytes [data, data+size) from provider f: tensors already copied or repacked drop
 * their pages from the resident set (bn_files_release), as the safetensors loader does. */
typedef struct { const bitnet_files *f; const void *data; size_t size; } gguf_map;
static void release(const gguf_map *mp, const bn_gguf_tensor *t) { if (t) bn_files_release(mp->f, mp->data, mp->size, t->data, t->nbytes); }

/* Copy / dequantize the [V, D] matrix t into dst (f32, or 2-byte f16/bf16 kept as is), in chunks
 * of rows whose file pages are released as soon as they are copied (so the copy and the mapped
 * file are never both resident in full); every value must be finite. */
static int mat_dt(const bn_gguf_tensor *t) { return t->type == BN_GT_F16 ? BN_W_F16 : t->type == BN_GT_BF16 ? BN_W_BF16 : BN_W_F32; }
static size_t mat_bytes(const bn_gguf_tensor *t) { return (size_t)t->numel * (mat_dt(t) == BN_W_F32 ? 4 : 2); }
static bitnet_status read_mat(const bn_gguf *g, const bn_gguf_tensor *t, const gguf_map *mp, void *dst) {
    const char *f = bn_gguf_file(g);
    if (t->type != BN_GT_F16 && t->type != BN_GT_BF16 && t->type != BN_GT_F32 && t->type != BN_GT_Q8_0 && t->type != BN_GT_Q6_K && t->type != BN_GT_Q4_0)
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; embeddings and the output head must be f32, f16, bf16, q8_0, q6_k or q4_0", f, t->name, bn_gguf_type_name(t->type));
    int64_t ne0 = t->ne[0], rows = t->numel / ne0, chunk = ((int64_t)4 << 20) / ne0 + 1;   /* ~4M values a chunk */
    size_t es = mat_dt(t) == BN_W_F32 ? 4 : 2, rb = t->nbytes / (size_t)rows;             /* bytes per row out / in */
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        uint8_t *o = (uint8_t *)dst + (size_t)(r0 * ne0) * es;
        if (es == 2) memcpy(o, t->data + (size_t)r0 * rb, (size_t)nr * rb);
        else {
            bitnet_status s = bn_gguf_decode_f32(t, r0 * ne0, nr * ne0, (float *)o);
            if (s) return bn_err_prefix(s, f);
        }
        bn_files_release(mp->f, mp->data, mp->size, t->data + (size_t)r0 * rb, (size_t)nr * rb);
        for (int64_t i = 0; i < nr * ne0; i++) {
            float x;
            if (es == 4) memcpy(&x, o + 4 * i, 4);
            else { uint16_t h; memcpy(&h, o + 2 * i, 2); x = mat_dt(t) == BN_W_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h); }
            if (!isfinite(x)) return bn_err(BITNET_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", f, t->name, (long long)(r0 * ne0 + i));
        }
    }
    return BITNET_OK;
}

static void strip_weight(const char *name, char *base, size_t n) {
    snprintf(base, n, "%s", name);
    size_t l = strlen(base);
    if (l > 7 && !strcmp(base + l - 7, ".weight")) base[l - 7] = 0;
}


static bitnet_status load_tensors(bitnet_model *m, const bn_gguf *g, const gguf_map *mp, bitnet_progress_fn progress, void *ud) {
    const bn_config *c = &m->cfg;
    const char *f = bn_gguf_file(g);
    char n[256], base[256];
    int64_t sh[2];
    bitnet_status s;
    /* embeddings and head, in one owned buffer */
    const bn_gguf_tensor *te, *th = NULL;
    if ((s = bn_gguf_get_tensor(g, "token_embd", c->vocab_size, c->hidden_size, &te))) return s;
    if (!c->tied && (s = bn_gguf_get_tensor(g, "output", c->vocab_size, c->hidden_size, &th))) return s;
    size_t eb = mat_bytes(te), hb = th ? mat_bytes(th) : 0, eba = (eb + 63) & ~(size_t)63;
    uint8_t *buf = bn_alloc(eba + hb);
    if (!buf) return bn_err(BITNET_ERR_NOMEM, "out of memory for the embeddings (%zu bytes)", eba + hb);
    m->owned = buf;
    if ((s = read_mat(g, te, mp, buf))) return s;
    m->embed = buf; m->embed_dt = mat_dt(te);
    m->weight_bytes += eb; m->n_params += te->numel;
    if (th) {
        if ((s = read_mat(g, th, mp, buf + eba))) return s;
        m->head = buf + eba; m->head_dt = mat_dt(th);
        m->weight_bytes += hb; m->n_params += th->numel;
    } else { m->head = m->embed; m->head_dt = m->embed_dt; }
    bn_arch_shape(c, BN_S_FINAL_NORM, sh);
    if (!(m->final_norm = bn_alloc((size_t)sh[0] * 4))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    strip_weight(bn_arch_tensor_name(BN_NAMES_GGUF, BN_S_FINAL_NORM, -1, n, sizeof n), base, sizeof base);
    if ((s = bn_gguf_read_float(g, base, 0, sh[0], m->final_norm))) return s;
    m->weight_bytes += (size_t)sh[0] * 4; m->n_params += sh[0];
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    int maxr = 0, maxc = 0;
    for (int si = 0; si < BN_LAYER_SLOTS; si++) {
        bn_arch_shape(c, (bn_slot)si, sh);
        if (bn_arch_kind((bn_slot)si) == BN_TK_LINEAR && sh[0] * sh[1] > (int64_t)maxr * maxc) { maxr = (int)sh[0]; maxc = (int)sh[1]; }
    }
    int8_t *q = malloc((size_t)maxr * maxc);
    if (!m->layers || !q) { free(q); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    const char *fmt = NULL;
    for (int l = 0; l < c->n_layers && !s; l++) {
        bn_layer *L = &m->layers[l];
        for (int si = 0; si < BN_LAYER_SLOTS && !s; si++) {
            bn_slot sl = (bn_slot)si;
            strip_weight(bn_arch_tensor_name(BN_NAMES_GGUF, sl, l, n, sizeof n), base, sizeof base);
            bn_arch_shape(c, sl, sh);
            if (bn_arch_kind(sl) == BN_TK_NORM) {
                float **v = bn_layer_vec(L, sl);
                if (!(*v = bn_alloc((size_t)sh[0] * 4))) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
                s = bn_gguf_read_float(g, base, 0, sh[0], *v);
                m->weight_bytes += (size_t)sh[0] * 4; m->n_params += sh[0];
                continue;
            }
            float scale;
            s = bn_gguf_read_linear(g, base, sh[0], sh[1], BN_I2S_X86, q, &scale);
            if (!s) {
                char what[400];
                snprintf(what, sizeof what, "%s: tensor '%s'", f, n);
                s = bn_scale_check(scale, what);
            }
            if (!s) s = bn_model_make_tmat(m, q, (int)sh[0], (int)sh[1], scale, bn_layer_mat(L, sl));
            if (!s && !fmt) fmt = bn_gguf_type_name(bn_gguf_find_tensor(g, n)->type);
            if (!s) release(mp, bn_gguf_find_tensor(g, n));   /* repacked: its pages need not stay resident */
        }
        if (!s && progress) progress(ud, l + 1, c->n_layers);
    }
    free(q);
    if (!s) snprintf(m->weight_format, sizeof m->weight_format, "gguf-%s", fmt ? fmt : "?");
    return s;
}

bitnet_status bn_gguf_model_load(const bn_src *src, const char *name, const bitnet_model_params *pp, bitnet_model **out) {
    *out = NULL;
    bitnet_model_params p = pp ? *pp : bitnet_model_default_params();
    const bn_kernels *k = bn_kernels_default();
    if (p.kernels && *p.kernels && !(k = bn_kernels_by_name(p.kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", p.kernels);
    const void *data; size_t size;
    bitnet_status s = bn_src_open(src, name, &data, &size);
    if (s) return s;
    char *path = bn_src_path(src, name);
    bn_gguf *g = NULL;
    bitnet_model *m = NULL;
    if (!path) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_gguf_parse(data, size, path, &g);
    if (!s && !(m = calloc(1, sizeof *m))) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) { m->k = k; m->be = bn_backend_cpu(); s = bn_gguf_config(g, &m->cfg); }
    gguf_map mp = {&src->f, data, size};
    if (!s) s = load_tensors(m, g, &mp, p.progress, p.progress_ud);
    if (!s && p.head != BITNET_HEAD_EXACT) s = bitnet_model_set_head(m, p.head);
    bn_gguf_free(g);
    bn_files_close(&src->f, data, size);
    free(path);
    if (s) { bitnet_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}
