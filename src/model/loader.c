/* loader.c — builds a bitnet_model from a Hugging Face checkpoint (config.json + safetensors)
 * given as a folder, one .safetensors file, or a caller's file provider (bitnet_files).
 * Layouts: 2B-4T packed (uint8 ternary + weight_scale), 2B-4T master (f32/bf16), 1bitLLM (f16
 * latent weights); tensor names and shapes come from the arch table (arch.h), the ternary
 * codec from ternary.h. Ternary matrices are packed for the chosen kernel set right away and
 * never held as float. Every tensor's dtype, shape and values are checked before use (shape
 * before any allocation sized from it). Not: a converter; files are read as they are. */
#include "model/model.h"
#include "arch/arch.h"
#include "io/ternary.h"
#include "core/rng.h"
#include "model/gguf_model.h"
#include <math.h>
#include <stdio.h>
#include <errno.h>
#include <sys/stat.h>

static int wdt_of(bn_dtype d) { return d == BN_F32 ? BN_W_F32 : d == BN_F16 ? BN_W_F16 : BN_W_BF16; }


/* Load a float vector tensor [n] into a new f32 buffer (finite values only). */
static bitnet_status load_vec(bitnet_model *m, const char *name, int n, float **out) {
    int64_t shape[1] = {n};
    float *v = bn_alloc((size_t)n * sizeof(float));
    if (!v) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", name);
    bitnet_status s = bn_arch_read_f32(m->st, name, 1, shape, v);
    if (s) { bn_free(v); return s; }
    *out = v;
    m->weight_bytes += (size_t)n * sizeof(float);
    m->n_params += n;
    return BITNET_OK;
}

/* 2B-4T packed t (shape already checked) -> q[rows*cols]; *mult from its weight_scale. */
static bitnet_status from_packed(const bitnet_model *m, const bn_tensor *t, int rows, int cols, int8_t *q, float *mult) {
    char sn[256], what[512];
    snprintf(sn, sizeof sn, "%s_scale", t->name);
    const bn_tensor *ts = bn_st_find(m->st, sn);
    if (!ts) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s' (packed weights need a weight_scale)", t->file, sn);
    if (!(BN_FLOAT_DTYPES & (1u << ts->dtype)) || ts->numel != 1) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' must be one float value", ts->file, sn);
    float ws;
    bn_tensor_to_f32(ts, &ws, 0, 1);
    snprintf(what, sizeof what, "%s: '%s'", ts->file, sn);
    bitnet_status s = bn_scale_multiplier(ws, m->cfg.linear_class, what, mult);
    if (s) return s;
    if (bn_unpack_2b4t(t->data, rows, cols, q)) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' holds the invalid ternary code 3", t->file, t->name);
    return BITNET_OK;
}

/* Float master t (shape already checked) -> q[rows*cols] by absmean ternarization; *mult = mean|W|. */
static bitnet_status from_master(const bitnet_model *m, const bn_tensor *t, int rows, int cols, int8_t *q, float *mult) {
    size_t n = (size_t)rows * cols;
    int64_t shape[2] = {rows, cols};
    float *f = malloc(n * sizeof(float));
    if (!f) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", t->name);
    bitnet_status s = bn_arch_read_f32(m->st, t->name, 2, shape, f);
    if (s) { free(f); return s; }
    *mult = bn_ternarize(f, (int64_t)n, q);
    free(f);
    char what[512];
    snprintf(what, sizeof what, "%s: tensor '%s'", t->file, t->name);
    return bn_scale_check(*mult, what);
}

/* Make w from ternary q[rows*cols] and its scale: prepared by m's backend (packed for m's kernel
 * set), counted in m's sizes. */
static bitnet_status make_tmat(bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w) {
    bitnet_status s = m->be->tmat_new(m, q, rows, cols, scale, w);
    if (s) return s;
    m->weight_bytes += w->bytes; m->ternary_bytes += w->bytes;
    m->n_params += (int64_t)rows * cols;
    m->n_ternary += (int64_t)rows * cols;
    return BITNET_OK;
}

/* make_tmat for the GGUF loader (gguf_model.c). */
bitnet_status bn_model_make_tmat(bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w) {
    return make_tmat(m, q, rows, cols, scale, w);
}

/* Load BitLinear `name` of logical shape [rows, cols] into a packed bn_tmat. The stored shape
 * is checked before anything sized rows x cols is allocated. */
static bitnet_status load_tmat(bitnet_model *m, const char *name, int rows, int cols, bn_tmat *w) {
    const bn_tensor *t = bn_st_find(m->st, name);
    if (!t) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", bn_st_count(m->st) ? bn_st_at(m->st, 0)->file : "?", name);
    int packed = t->dtype == BN_U8;
    if (packed && rows % 4) return bn_err(BITNET_ERR_FORMAT, "%s: '%s': packed rows %d not a multiple of 4", t->file, name, rows);
    int64_t shape[2] = {packed ? rows / 4 : rows, cols};
    bitnet_status s = bn_st_get(m->st, name, packed ? 1u << BN_U8 : BN_FLOAT_DTYPES, 2, shape, &t);
    if (s) return s;
    int8_t *q = malloc((size_t)rows * cols);
    if (!q) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", name);
    float scale;
    s = packed ? from_packed(m, t, rows, cols, q, &scale) : from_master(m, t, rows, cols, q, &scale);
    if (!s) s = make_tmat(m, q, rows, cols, scale, w);
    if (!s) bn_st_release(m->st, t->data, t->nbytes);   /* repacked: its file pages need not stay resident */
    if (!s && packed) snprintf(m->weight_format, sizeof m->weight_format, "packed-u8");
    else if (!s) snprintf(m->weight_format, sizeof m->weight_format, "master-%s", t->dtype == BN_F32 ? "f32" : t->dtype == BN_F16 ? "f16" : "bf16");
    free(q);
    return s;
}

/* Embedding / head matrix [vocab, dim]: used in place (f32/f16/bf16), every value finite. */
static bitnet_status load_fmat(bitnet_model *m, const char *name, const void **data, int *dt) {
    const bn_tensor *t;
    int64_t shape[2] = {m->cfg.vocab_size, m->cfg.hidden_size};
    bitnet_status s = bn_st_get(m->st, name, BN_FLOAT_DTYPES, 2, shape, &t);
    if (!s) s = bn_arch_check_finite(t);
    if (s) return s;
    *data = t->data; *dt = wdt_of(t->dtype);
    m->weight_bytes += t->nbytes;
    m->n_params += t->numel;
    return BITNET_OK;
}

/* Load every tensor the arch table lists for m->cfg from m->st. */
static bitnet_status load_all(bitnet_model *m, bitnet_progress_fn progress, void *ud) {
    const bn_config *c = &m->cfg;
    bn_naming nm = bn_arch_naming(c);
    char n[256];
    int64_t sh[2];
    bitnet_status s;
    if ((s = load_fmat(m, bn_arch_tensor_name(nm, BN_S_EMBED, -1, n, sizeof n), &m->embed, &m->embed_dt))) return s;
    if (c->tied) { m->head = m->embed; m->head_dt = m->embed_dt; }
    else if ((s = load_fmat(m, bn_arch_tensor_name(nm, BN_S_HEAD, -1, n, sizeof n), &m->head, &m->head_dt))) return s;
    bn_arch_shape(c, BN_S_FINAL_NORM, sh);
    if ((s = load_vec(m, bn_arch_tensor_name(nm, BN_S_FINAL_NORM, -1, n, sizeof n), (int)sh[0], &m->final_norm))) return s;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        for (int si = 0; si < BN_LAYER_SLOTS; si++) {
            bn_slot sl = (bn_slot)si;
            bn_arch_tensor_name(nm, sl, l, n, sizeof n);
            bn_arch_shape(c, sl, sh);
            if (bn_arch_kind(sl) == BN_TK_NORM) s = load_vec(m, n, (int)sh[0], bn_layer_vec(L, sl));
            else s = load_tmat(m, n, (int)sh[0], (int)sh[1], bn_layer_mat(L, sl));
            if (s) return s;
        }
        if (progress) progress(ud, l + 1, c->n_layers);
    }
    return BITNET_OK;
}

bitnet_model_params bitnet_model_default_params(void) {
    bitnet_model_params p = {.kernels = NULL, .head = BITNET_HEAD_EXACT, .device = NULL, .progress = NULL, .progress_ud = NULL};
    return p;
}

const char *const *bitnet_kernel_sets(void) { return bn_kernels_available(); }

bitnet_status bitnet_model_load(const char *dir, bitnet_model **out) {
    return bitnet_model_load_ex(dir, NULL, out);
}

/* Load from src: config.json, then the weights file `weights` (NULL: model.safetensors or the
 * sharded index). */
static bitnet_status load_src(const bn_src *src, const char *weights, const bitnet_model_params *pp, bitnet_model **out) {
    *out = NULL;
    bitnet_model_params p = pp ? *pp : bitnet_model_default_params();
    const bn_kernels *k = bn_kernels_default();
    if (p.kernels && *p.kernels && !(k = bn_kernels_by_name(p.kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", p.kernels);
    const bn_backend *be = NULL;
    int dev = 0;
    bitnet_status s = bn_backend_pick(p.device, &be, &dev);
    if (s) return s;
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    m->k = k; m->be = be; m->device_index = dev;
    s = bn_config_load_src(src, &m->cfg);
    if (!s && m->cfg.full_precision)  /* written by `train --no-quant`: ternarizing it would silently change the model */
        s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: full-precision checkpoint (trained with --no-quant); bitnet runs need ternary weights: "
                   "train without --no-quant, or ternarize it knowingly with `bitnet export --packed --force`", src->where ? src->where : "model");
    if (!s) s = bn_st_open_src(src, weights, &m->st);
    if (!s) s = load_all(m, p.progress, p.progress_ud);
    if (!s && p.head != BITNET_HEAD_EXACT) s = bitnet_model_set_head(m, p.head);
    if (s) { bitnet_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}

bitnet_status bitnet_model_load_ex(const char *path, const bitnet_model_params *pp, bitnet_model **out) {
    *out = NULL;
    if (bn_is_dir(path)) { bn_src src = bn_src_dir(path); return load_src(&src, NULL, pp, out); }
    size_t n = strlen(path);
    struct stat sb;
    if (stat(path, &sb) != 0) return bn_err(BITNET_ERR_IO, "%s: no such model folder or file: %s", path, strerror(errno));
    int gguf = n > 5 && !strcmp(path + n - 5, ".gguf") && S_ISREG(sb.st_mode);
    if (!gguf && !(n > 12 && !strcmp(path + n - 12, ".safetensors") && S_ISREG(sb.st_mode)))
        return bn_err(BITNET_ERR_IO, "%s: not a model folder (need config.json + model.safetensors), a .safetensors file or a .gguf file", path);
    /* one .safetensors file: config.json comes from its folder */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    if (!dir) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bn_src src = bn_src_dir(dir);
    bitnet_status s = gguf ? bn_gguf_model_load(&src, slash ? slash + 1 : path, pp, out)
                           : load_src(&src, slash ? slash + 1 : path, pp, out);
    free(dir);
    return s;
}

bitnet_status bitnet_model_load_files(const bitnet_files *f, const bitnet_model_params *p, bitnet_model **out) {
    *out = NULL;
    if (!f || !f->open) return bn_err(BITNET_ERR_ARG, "bitnet_model_load_files: no file provider (open is NULL)");
    bn_src src = bn_src_user(f);
    return load_src(&src, NULL, p, out);
}

void bitnet_model_free(bitnet_model *m) {
    if (!m) return;
    bn_lora_model_free(m);
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            bn_layer *L = &m->layers[l];
            bn_free(L->attn_norm); bn_free(L->attn_sub_norm); bn_free(L->ffn_norm); bn_free(L->ffn_sub_norm);
            bn_tmat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
            for (int i = 0; i < 7; i++) m->be->tmat_free(ws[i]);
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
    i->weight_bytes_per_token = bn_model_weight_bytes_per_token(m);
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
    /* the float head is now read only for embedding lookups (tied) or not at all: let its file
     * pages go (they fault back in if the exact head is chosen again) */
    if (q) bn_st_release(m->st, m->head, (size_t)V * D * (m->head_dt == BN_W_F32 ? 4 : 2));
    return BITNET_OK;
}

size_t bn_model_weight_bytes_per_token(const bitnet_model *m) {
    size_t hb = m->head_q ? m->head_q_bytes : (size_t)m->cfg.vocab_size * m->cfg.hidden_size * (m->head_dt == BN_W_F32 ? 4 : 2);
    return m->ternary_bytes + hb;
}

bitnet_status bn_model_synthetic(const bn_config *cfg, const char *kernels, uint64_t seed, bitnet_model **out) {
    return bn_model_synthetic_on(cfg, kernels, seed, NULL, out);
}

bitnet_status bn_model_synthetic_on(const bn_config *cfg, const char *kernels, uint64_t seed, const char *device, bitnet_model **out) {
    *out = NULL;
    const bn_kernels *k = bn_kernels_default();
    if (kernels && *kernels && !(k = bn_kernels_by_name(kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", kernels);
    const bn_backend *be = NULL;
    int dev = 0;
    bitnet_status s0 = bn_backend_pick(device, &be, &dev);
    if (s0) return s0;
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    m->cfg = *cfg; m->k = k; m->be = be; m->device_index = dev;
    snprintf(m->weight_format, sizeof m->weight_format, "synthetic");
    const bn_config *c = &m->cfg;
    int dim = c->hidden_size, qd = c->n_heads * c->head_dim, ffn = c->intermediate_size;
    uint64_t rs = seed;
    size_t ne = (size_t)c->vocab_size * dim;
    uint16_t *emb = bn_alloc(ne * 2);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->final_norm = bn_alloc((size_t)dim * 4);
    if (!emb || !m->layers || !m->final_norm) { bn_free(emb); bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < ne; i++) emb[i] = bn_f32_to_bf16(((int)(bn_splitmix64(&rs) % 2001) - 1000) * 1e-4f);
    m->owned = emb; m->embed = emb; m->embed_dt = BN_W_BF16; m->head = emb; m->head_dt = BN_W_BF16;
    m->weight_bytes += ne * 2; m->n_params += (int64_t)ne;
    for (int i = 0; i < dim; i++) m->final_norm[i] = 1.f;
    int maxr = ffn > qd ? ffn : qd, maxc = ffn > dim ? ffn : dim;
    int8_t *q = malloc((size_t)maxr * maxc);
    if (!q) { bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int l = 0; l < c->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        for (int si = 0; si < BN_LAYER_SLOTS; si++) {   /* arch order: q k v o gate up down draw in turn */
            bn_slot sl = (bn_slot)si;
            int64_t sh[2];
            bn_arch_shape(c, sl, sh);
            if (bn_arch_kind(sl) == BN_TK_NORM) {
                float **v = bn_layer_vec(L, sl);
                if (!(*v = bn_alloc((size_t)sh[0] * 4))) { free(q); bitnet_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
                for (int i = 0; i < (int)sh[0]; i++) (*v)[i] = 1.f;
                continue;
            }
            int rows = (int)sh[0], cols = (int)sh[1];
            for (size_t i = 0; i < (size_t)rows * cols; i++) q[i] = (int8_t)((int)(bn_splitmix64(&rs) % 3) - 1);
            bitnet_status s = make_tmat(m, q, rows, cols, 1.0f / sqrtf((float)cols), bn_layer_mat(L, sl));
            if (s) { free(q); bitnet_model_free(m); return s; }
        }
    }
    free(q);
    *out = m;
    return BITNET_OK;
}

/* The shape of preset name (see bitnet_model_synthetic) into *c; 0 if the name is unknown. */
static int synth_config(const char *name, bn_config *c) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.f; c->norm_eps = 1e-5f; c->bos_id = 1; c->eos_id = 2; c->max_pos = 2048;
    c->linear_class = BN_LC_AUTOBITLINEAR;
    if (!strcmp(name, "2b-4t")) {
        c->family = BN_FAM_BITNET; c->vocab_size = 128256; c->hidden_size = 2560; c->intermediate_size = 6912;
        c->n_layers = 30; c->n_heads = 20; c->n_kv_heads = 5; c->head_dim = 128; c->max_pos = 4096;
        c->rope_theta = 500000.f; c->act = BN_ACT_RELU2; c->tied = 1; c->bos_id = 128000; c->eos_id = 128001;
    } else if (!strcmp(name, "1bitllm-large")) {
        c->family = BN_FAM_1BITLLM; c->vocab_size = 32002; c->hidden_size = 1536; c->intermediate_size = 4096;
        c->n_layers = 24; c->n_heads = 16; c->n_kv_heads = 16; c->head_dim = 96; c->act = BN_ACT_SILU;
    } else if (!strcmp(name, "1bitllm-3b")) {
        c->family = BN_FAM_1BITLLM; c->vocab_size = 32002; c->hidden_size = 3200; c->intermediate_size = 8640;
        c->n_layers = 26; c->n_heads = 32; c->n_kv_heads = 32; c->head_dim = 100; c->act = BN_ACT_SILU;
    } else return 0;
    c->eos_ids[0] = c->eos_id; c->n_eos = 1;
    return 1;
}

bitnet_status bitnet_model_synthetic(const char *preset, uint64_t seed, const bitnet_model_params *p,
                                     bitnet_model **out) {
    *out = NULL;
    bitnet_model_params dp = bitnet_model_default_params();
    if (!p) p = &dp;
    bn_config c;
    if (!preset || !synth_config(preset, &c))
        return bn_err(BITNET_ERR_ARG, "unknown synthetic model '%s' (2b-4t, 1bitllm-large, 1bitllm-3b)", preset ? preset : "(null)");
    bitnet_status st = bn_model_synthetic_on(&c, p->kernels, seed, p->device, out);
    if (st == BITNET_OK && p->head != BITNET_HEAD_EXACT && (st = bitnet_model_set_head(*out, p->head))) {
        bitnet_model_free(*out); *out = NULL;
    }
    return st;
}
