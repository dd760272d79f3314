/* loader.c — builds a bitnet_model from a Hugging Face folder (config.json + safetensors).
 * Layouts: 2B-4T packed (uint8 ternary + weight_scale), 2B-4T master (f32/bf16), 1bitLLM (f16
 * latent weights, inner_attn_ln/ffn_layernorm names). Ternary matrices are packed for the chosen
 * kernel set right away and never held as float. Every tensor's dtype and shape is checked.
 * Not: a converter; files are read as they are. */
#include "model.h"
#include <math.h>
#include <stdio.h>

#define FLOATS ((1u << BN_F32) | (1u << BN_F16) | (1u << BN_BF16))

float bn_ternarize(const float *w, int64_t n, int8_t *q) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += fabsf(w[i]);
    float mean = (float)(sum / (double)(n ? n : 1));
    if (mean < 1e-5f) mean = 1e-5f;
    float g = 1.0f / mean;
    if (q) for (int64_t i = 0; i < n; i++) {
        float v = rintf(w[i] * g);
        q[i] = (int8_t)(v > 1.f ? 1 : v < -1.f ? -1 : v);
    }
    return mean;
}

int bn_unpack_2b4t(const uint8_t *p, int rows, int cols, int8_t *q) {
    int r4 = rows / 4;
    for (int r = 0; r < r4; r++)
        for (int c = 0; c < cols; c++) {
            uint8_t b = p[(size_t)r * cols + c];
            for (int k = 0; k < 4; k++) {
                int code = (b >> (2 * k)) & 3;
                if (code == 3) return -1;
                q[(size_t)(r + k * r4) * cols + c] = (int8_t)(code - 1);
            }
        }
    return 0;
}

void bn_pack_2b4t(const int8_t *q, int rows, int cols, uint8_t *p) {
    int r4 = rows / 4;
    for (int r = 0; r < r4; r++)
        for (int c = 0; c < cols; c++) {
            uint8_t b = 0;
            for (int k = 0; k < 4; k++) b |= (uint8_t)((q[(size_t)(r + k * r4) * cols + c] + 1) << (2 * k));
            p[(size_t)r * cols + c] = b;
        }
}

static int wdt_of(bn_dtype d) { return d == BN_F32 ? BN_W_F32 : d == BN_F16 ? BN_W_F16 : BN_W_BF16; }

/* Load a float vector tensor [n] into a new f32 buffer. */
static bitnet_status load_vec(bitnet_model *m, const char *name, int n, float **out) {
    const bn_tensor *t;
    int64_t shape[1] = {n};
    bitnet_status s = bn_st_get(m->st, name, FLOATS, 1, shape, &t);
    if (s) return s;
    float *v = bn_alloc((size_t)n * sizeof(float));
    if (!v) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", name);
    bn_tensor_to_f32(t, v, 0, n);
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) { bn_free(v); return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at %d", t->file, name, i); }
    *out = v;
    m->weight_bytes += (size_t)n * sizeof(float);
    m->n_params += n;
    return BITNET_OK;
}

static float scalar_of(const bn_tensor *t) { float v; bn_tensor_to_f32(t, &v, 0, 1); return v; }

/* Load BitLinear `prefix`.weight of logical shape [rows, cols] into a packed bn_tmat. */
static bitnet_status load_tmat(bitnet_model *m, const char *prefix, int rows, int cols, bn_tmat *w) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const bn_tensor *t = bn_st_find(m->st, name);
    if (!t) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", m->st && bn_st_count(m->st) ? bn_st_at(m->st, 0)->file : "?", name);
    int8_t *q = malloc((size_t)rows * cols);
    if (!q) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", name);
    bitnet_status s = BITNET_OK;
    if (t->dtype == BN_U8) {
        if (rows % 4) { s = bn_err(BITNET_ERR_FORMAT, "%s: '%s': packed rows %d not a multiple of 4", t->file, name, rows); goto out; }
        int64_t shape[2] = {rows / 4, cols};
        if ((s = bn_st_get(m->st, name, 1u << BN_U8, 2, shape, &t))) goto out;
        char sn[256];
        snprintf(sn, sizeof sn, "%s.weight_scale", prefix);
        const bn_tensor *ts = bn_st_find(m->st, sn);
        if (!ts) { s = bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s' (packed weights need a weight_scale)", t->file, sn); goto out; }
        if (!(FLOATS & (1u << ts->dtype)) || ts->numel != 1) { s = bn_err(BITNET_ERR_FORMAT, "%s: '%s' must be one float value", ts->file, sn); goto out; }
        float ws = scalar_of(ts);
        if (!isfinite(ws) || ws <= 0) { s = bn_err(BITNET_ERR_FORMAT, "%s: '%s' = %g is not a positive finite scale", ts->file, sn, ws); goto out; }
        if (bn_unpack_2b4t(t->data, rows, cols, q)) { s = bn_err(BITNET_ERR_FORMAT, "%s: '%s' holds the invalid ternary code 3", t->file, name); goto out; }
        w->scale = m->cfg.linear_class == BN_LC_BITLINEAR ? 1.0f / ws : ws;
        snprintf(m->weight_format, sizeof m->weight_format, "packed-u8");
    } else {
        int64_t shape[2] = {rows, cols};
        if ((s = bn_st_get(m->st, name, FLOATS, 2, shape, &t))) goto out;
        float *f = malloc((size_t)rows * cols * sizeof(float));
        if (!f) { s = bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", name); goto out; }
        bn_tensor_to_f32(t, f, 0, (int64_t)rows * cols);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            if (!isfinite(f[i])) { free(f); s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", t->file, name); goto out; }
        w->scale = bn_ternarize(f, (int64_t)rows * cols, q);
        free(f);
        snprintf(m->weight_format, sizeof m->weight_format, "master-%s", t->dtype == BN_F32 ? "f32" : t->dtype == BN_F16 ? "f16" : "bf16");
    }
    w->rows = rows; w->cols = cols;
    size_t nb = m->k->packed_size(rows, cols);
    w->data = bn_alloc(nb);
    if (!w->data) { s = bn_err(BITNET_ERR_NOMEM, "out of memory packing '%s'", name); goto out; }
    m->k->pack(q, rows, cols, w->data);
    m->weight_bytes += nb; m->ternary_bytes += nb;
    m->n_params += (int64_t)rows * cols;
    m->n_ternary += (int64_t)rows * cols;
out:
    free(q);
    return s;
}

/* Embedding / head matrix [vocab, dim]: used in place from the mmap (f32/f16/bf16). */
static bitnet_status load_fmat(bitnet_model *m, const char *name, const void **data, int *dt) {
    const bn_tensor *t;
    int64_t shape[2] = {m->cfg.vocab_size, m->cfg.hidden_size};
    bitnet_status s = bn_st_get(m->st, name, FLOATS, 2, shape, &t);
    if (s) return s;
    *data = t->data; *dt = wdt_of(t->dtype);
    m->weight_bytes += t->nbytes;
    m->n_params += t->numel;
    return BITNET_OK;
}

static bitnet_status load_all(bitnet_model *m, bitnet_progress_fn progress, void *ud) {
    const bn_config *c = &m->cfg;
    bitnet_status s;
    int dim = c->hidden_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ffn = c->intermediate_size;
    if ((s = load_fmat(m, "model.embed_tokens.weight", &m->embed, &m->embed_dt))) return s;
    if (c->tied) { m->head = m->embed; m->head_dt = m->embed_dt; }
    else if ((s = load_fmat(m, "lm_head.weight", &m->head, &m->head_dt))) return s;
    if ((s = load_vec(m, "model.norm.weight", dim, &m->final_norm))) return s;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    int fam = c->family;
    for (int l = 0; l < c->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        char p[160], n[224];
#define NM(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, l), n)
#define PF(fmt) (snprintf(p, sizeof p, "model.layers.%d." fmt, l), p)
        if ((s = load_vec(m, NM("input_layernorm.weight"), dim, &L->attn_norm))) return s;
        if ((s = load_vec(m, NM("post_attention_layernorm.weight"), dim, &L->ffn_norm))) return s;
        if ((s = load_vec(m, fam == BN_FAM_BITNET ? NM("self_attn.attn_sub_norm.weight") : NM("self_attn.inner_attn_ln.weight"), qd, &L->attn_sub_norm))) return s;
        if ((s = load_vec(m, fam == BN_FAM_BITNET ? NM("mlp.ffn_sub_norm.weight") : NM("mlp.ffn_layernorm.weight"), ffn, &L->ffn_sub_norm))) return s;
        if ((s = load_tmat(m, PF("self_attn.q_proj"), qd, dim, &L->wq))) return s;
        if ((s = load_tmat(m, PF("self_attn.k_proj"), kvd, dim, &L->wk))) return s;
        if ((s = load_tmat(m, PF("self_attn.v_proj"), kvd, dim, &L->wv))) return s;
        if ((s = load_tmat(m, PF("self_attn.o_proj"), dim, qd, &L->wo))) return s;
        if ((s = load_tmat(m, PF("mlp.gate_proj"), ffn, dim, &L->wgate))) return s;
        if ((s = load_tmat(m, PF("mlp.up_proj"), ffn, dim, &L->wup))) return s;
        if ((s = load_tmat(m, PF("mlp.down_proj"), dim, ffn, &L->wdown))) return s;
#undef NM
#undef PF
        if (progress) progress(ud, l + 1, c->n_layers);
    }
    return BITNET_OK;
}

bitnet_model_params bitnet_model_default_params(void) {
    bitnet_model_params p = {.kernels = NULL, .head = BITNET_HEAD_EXACT, .progress = NULL, .progress_ud = NULL};
    return p;
}

const char *const *bitnet_kernel_sets(void) { return bn_kernels_available(); }

bitnet_status bitnet_model_load(const char *dir, bitnet_model **out) {
    return bitnet_model_load_ex(dir, NULL, out);
}

bitnet_status bitnet_model_load_ex(const char *dir, const bitnet_model_params *pp, bitnet_model **out) {
    *out = NULL;
    bitnet_model_params p = pp ? *pp : bitnet_model_default_params();
    const bn_kernels *k = bn_kernels_default();
    if (p.kernels && *p.kernels && !(k = bn_kernels_by_name(p.kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", p.kernels);
    if (!bn_is_dir(dir)) return bn_err(BITNET_ERR_IO, "%s: not a model folder (need config.json + model.safetensors)", dir);
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    m->k = k;
    bitnet_status s = bn_config_load(dir, &m->cfg);
    if (!s) s = bn_st_open_dir(dir, &m->st);
    if (!s) s = load_all(m, p.progress, p.progress_ud);
    if (!s && p.head != BITNET_HEAD_EXACT) s = bitnet_model_set_head(m, p.head);
    if (s) { bitnet_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}

void bitnet_model_free(bitnet_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            bn_layer *L = &m->layers[l];
            bn_free(L->attn_norm); bn_free(L->attn_sub_norm); bn_free(L->ffn_norm); bn_free(L->ffn_sub_norm);
            bn_tmat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
            for (int i = 0; i < 7; i++) bn_free(ws[i]->data);
        }
        free(m->layers);
    }
    bn_free(m->final_norm);
    bn_free(m->head_q);
    bn_free(m->owned);
    bn_st_free(m->st);
    free(m);
}

void bitnet_model_get_info(const bitnet_model *m, bitnet_model_info *i) {
    memset(i, 0, sizeof *i);
    const bn_config *c = &m->cfg;
    snprintf(i->arch, sizeof i->arch, "%s", c->family == BN_FAM_BITNET ? "bitnet" : "llama-bitnet");
    snprintf(i->weight_format, sizeof i->weight_format, "%s", m->weight_format);
    i->vocab_size = c->vocab_size; i->hidden_size = c->hidden_size; i->intermediate_size = c->intermediate_size;
    i->n_layers = c->n_layers; i->n_heads = c->n_heads; i->n_kv_heads = c->n_kv_heads; i->head_dim = c->head_dim;
    i->max_seq_len = c->max_pos; i->rope_theta = c->rope_theta; i->norm_eps = c->norm_eps;
    i->act = c->act; i->tied_embeddings = c->tied; i->bos_id = c->bos_id; i->eos_id = c->eos_id;
    i->n_params = m->n_params; i->n_ternary = m->n_ternary; i->weight_bytes = m->weight_bytes; i->ternary_bytes = m->ternary_bytes;
    i->isa = m->k->name;
    i->head_type = m->head_type;
}

bitnet_status bitnet_model_set_head(bitnet_model *m, bitnet_head_type t) {
    if (t == (bitnet_head_type)m->head_type) return BITNET_OK;
    int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
    uint8_t *q = NULL; size_t nb = 0;
    if (t == BITNET_HEAD_Q8 || t == BITNET_HEAD_Q4) {
        nb = t == BITNET_HEAD_Q8 ? m->k->hq8_size(V, D) : m->k->hq4_size(V, D);
        q = bn_alloc(nb);
        if (!q) return bn_err(BITNET_ERR_NOMEM, "out of memory quantizing the LM head");
        if (t == BITNET_HEAD_Q8) m->k->hq8_quant(m->head, m->head_dt, V, D, q);
        else m->k->hq4_quant(m->head, m->head_dt, V, D, q);
    } else if (t != BITNET_HEAD_EXACT) return bn_err(BITNET_ERR_ARG, "unknown head type %d", (int)t);
    bn_free(m->head_q);
    m->head_q = q; m->head_q_bytes = nb; m->head_type = t;
    return BITNET_OK;
}

size_t bn_model_weight_bytes_per_token(const bitnet_model *m) {
    size_t hb = m->head_q ? m->head_q_bytes : (size_t)m->cfg.vocab_size * m->cfg.hidden_size * (m->head_dt == BN_W_F32 ? 4 : 2);
    return m->ternary_bytes + hb;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bitnet_status bn_model_synthetic(const bn_config *cfg, const char *kernels, uint64_t seed, bitnet_model **out) {
    *out = NULL;
    const bn_kernels *k = bn_kernels_default();
    if (kernels && *kernels && !(k = bn_kernels_by_name(kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", kernels);
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    m->cfg = *cfg; m->k = k;
    snprintf(m->weight_format, sizeof m->weight_format, "synthetic");
    const bn_config *c = &m->cfg;
    int dim = c->hidden_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ffn = c->intermediate_size;
    uint64_t rs = seed;
    size_t ne = (size_t)c->vocab_size * dim;
    uint16_t *emb = bn_alloc(ne * 2);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->final_norm = bn_alloc((size_t)dim * 4);
    if (!emb || !m->layers || !m->final_norm) { bn_free(emb); bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < ne; i++) emb[i] = bn_f32_to_bf16(((int)(rng_next(&rs) % 2001) - 1000) * 1e-4f);
    m->owned = emb; m->embed = emb; m->embed_dt = BN_W_BF16; m->head = emb; m->head_dt = BN_W_BF16;
    m->weight_bytes += ne * 2; m->n_params += (int64_t)ne;
    for (int i = 0; i < dim; i++) m->final_norm[i] = 1.f;
    int maxr = ffn > qd ? ffn : qd, maxc = ffn > dim ? ffn : dim;
    int8_t *q = malloc((size_t)maxr * maxc);
    if (!q) { bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int l = 0; l < c->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        float **vs[4] = {&L->attn_norm, &L->ffn_norm, &L->attn_sub_norm, &L->ffn_sub_norm};
        int vn[4] = {dim, dim, qd, ffn};
        for (int v = 0; v < 4; v++) {
            *vs[v] = bn_alloc((size_t)vn[v] * 4);
            if (!*vs[v]) { free(q); bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
            for (int i = 0; i < vn[v]; i++) (*vs[v])[i] = 1.f;
        }
        bn_tmat *ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
        int rr[7] = {qd, kvd, kvd, dim, ffn, ffn, dim}, cc[7] = {dim, dim, dim, qd, dim, dim, ffn};
        for (int w = 0; w < 7; w++) {
            size_t n = (size_t)rr[w] * cc[w];
            for (size_t i = 0; i < n; i++) q[i] = (int8_t)((int)(rng_next(&rs) % 3) - 1);
            size_t nb = m->k->packed_size(rr[w], cc[w]);
            ws[w]->data = bn_alloc(nb);
            if (!ws[w]->data) { free(q); bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
            m->k->pack(q, rr[w], cc[w], ws[w]->data);
            ws[w]->rows = rr[w]; ws[w]->cols = cc[w]; ws[w]->scale = 1.0f / sqrtf((float)cc[w]);
            m->weight_bytes += nb; m->ternary_bytes += nb; m->n_params += (int64_t)n; m->n_ternary += (int64_t)n;
        }
    }
    free(q);
    *out = m;
    return BITNET_OK;
}
