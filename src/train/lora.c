/* lora.c — LoRA adapters for the training model (see lora.h): construction and PEFT init, the
 * forward/backward hooks, and PEFT's adapter_model.safetensors + adapter_config.json.
 * Not: inference (model.c) or merging. */
#include "train/lora.h"
#include "arch/arch.h"
#include "core/rng.h"
#include "backend/cpu/gemm_f32.h"
#include "io/safetensors.h"
#include "io/ternary.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

static const bn_slot lin_slots[7] = {BN_S_Q, BN_S_K, BN_S_V, BN_S_O, BN_S_GATE, BN_S_UP, BN_S_DOWN};
static const char *short_names[7] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *peft_names[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

int bn_lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errlen) {
    *mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int hit = 0;
        if (n == 3 && !strncmp(p, "all", 3)) { for (int i = 0; i < 7; i++) *mask |= 1u << lin_slots[i]; hit = 1; }
        for (int i = 0; i < 7 && !hit; i++)
            if ((strlen(short_names[i]) == n && !strncmp(p, short_names[i], n)) || (strlen(peft_names[i]) == n && !strncmp(p, peft_names[i], n))) {
                *mask |= 1u << lin_slots[i]; hit = 1;
            }
        if (!hit) { snprintf(err, errlen, "unknown LoRA target '%.*s' (use q,k,v,o,gate,up,down or all)", (int)n, p); return 0; }
        p = e ? e + 1 : NULL;
    }
    if (!*mask) { snprintf(err, errlen, "no LoRA targets given"); return 0; }
    return 1;
}

static int slot_index(int slot) { for (int i = 0; i < 7; i++) if ((int)lin_slots[i] == slot) return i; return -1; }

/* PEFT name of base tensor name ("...q_proj.weight") with part "lora_A"/"lora_B". */
void bn_lora_peft_name(const char *base, const char *part, char *out, size_t n) {
    size_t bl = strlen(base);
    if (bl > 7 && !strcmp(base + bl - 7, ".weight")) bl -= 7;
    snprintf(out, n, "base_model.model.%.*s.%s.weight", (int)bl, base, part);
}

bitnet_status bn_lora_new(const bn_train_model *m, int rank, float alpha, unsigned targets, uint64_t seed, bn_lora **out) {
    *out = NULL;
    if (!targets) for (int i = 0; i < 7; i++) targets |= 1u << lin_slots[i];
    if (rank < 1 || rank > 65536) return bn_err(BITNET_ERR_ARG, "lora: rank %d must be in [1, 65536]", rank);
    if (!(alpha > 0 && alpha < INFINITY)) return bn_err(BITNET_ERR_ARG, "lora: alpha %g must be a finite number > 0", alpha);
    bn_lora *l = calloc(1, sizeof *l);
    if (!l) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    l->rank = rank; l->alpha = alpha; l->scale = alpha / (float)rank; l->targets = targets;
    l->tp = calloc((size_t)m->n_tp * 2, sizeof *l->tp);
    l->ad_of = malloc((size_t)m->n_tp * sizeof *l->ad_of);
    if (!l->tp || !l->ad_of) { bn_lora_free(l); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < m->n_tp; i++) {
        const bn_tparam *b = &m->tp[i];
        l->ad_of[i] = -1;
        if (b->kind != BN_PK_LINEAR || slot_index(b->slot) < 0 || !(targets & (1u << b->slot))) continue;
        if (b->shape[1] > 2147483647 / rank) { bn_lora_free(l); return bn_err(BITNET_ERR_ARG, "lora: rank %d too large", rank); }
        l->ad_of[i] = l->n_tp;
        for (int k = 0; k < 2; k++) {
            bn_tparam *t = &l->tp[l->n_tp++];
            bn_lora_peft_name(b->name, k ? "lora_B" : "lora_A", t->name, sizeof t->name);
            t->ndim = 2;
            t->shape[0] = k ? b->shape[0] : rank; t->shape[1] = k ? rank : b->shape[1];
            t->numel = (size_t)t->shape[0] * (size_t)t->shape[1];
            t->off = l->n_params; t->kind = BN_PK_LINEAR; t->slot = b->slot; t->layer = b->layer;
            l->n_params += (t->numel + 15) & ~(size_t)15;
        }
    }
    if (!l->n_tp) { bn_lora_free(l); return bn_err(BITNET_ERR_ARG, "lora: no BitLinear matrix matches the targets"); }
    size_t bytes = l->n_params * sizeof(float);
    l->params = bn_alloc(bytes); l->grads = bn_alloc(bytes); l->adam_m = bn_alloc(bytes); l->adam_v = bn_alloc(bytes);
    if (!l->params || !l->grads || !l->adam_m || !l->adam_v) { bn_lora_free(l); return bn_err(BITNET_ERR_NOMEM, "out of memory for %zu adapter parameters", l->n_params); }
    memset(l->params, 0, bytes); memset(l->grads, 0, bytes); memset(l->adam_m, 0, bytes); memset(l->adam_v, 0, bytes);
    l->drop_seed = seed ^ 0x64726f70ull;   /* "drop" */
    for (int i = 0; i < l->n_tp; i += 2) if ((int)l->tp[i].shape[1] > l->max_in) l->max_in = (int)l->tp[i].shape[1];
    uint64_t s = seed ^ 0x4c6f5241ull;   /* "LoRA" */
    for (int i = 0; i < l->n_tp; i += 2) {   /* A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform, a = sqrt(5)); B = 0 */
        const bn_tparam *t = &l->tp[i];
        float bound = 1.0f / sqrtf((float)t->shape[1]);
        for (size_t j = 0; j < t->numel; j++)
            l->params[t->off + j] = (float)(((bn_splitmix64(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0) * bound);
    }
    *out = l;
    return BITNET_OK;
}

void bn_lora_free(bn_lora *l) {
    if (!l) return;
    bn_free(l->params); bn_free(l->grads); bn_free(l->adam_m); bn_free(l->adam_v);
    bn_free(l->us); bn_free(l->du); bn_free(l->xd);
    free(l->tp); free(l->ad_of); free(l);
}

bitnet_status bn_lora_set_dropout(bn_lora *l, float p) {
    if (!(p >= 0 && p < 1)) return bn_err(BITNET_ERR_ARG, "lora: dropout %g must be in [0, 1)", p);
    if ((p > 0) != (l->dropout > 0)) { bn_free(l->xd); l->xd = NULL; l->cap_bt = 0; }   /* re-reserve */
    l->dropout = p;
    return BITNET_OK;
}

bitnet_status bn_lora_reserve(bn_lora *l, int BT) {
    if (BT <= l->cap_bt) return BITNET_OK;
    bn_free(l->us); bn_free(l->du); bn_free(l->xd); l->xd = NULL;
    size_t per = (size_t)BT * l->rank, n = (size_t)(l->n_tp / 2);
    l->us = bn_alloc(per * n * sizeof(float)); l->du = bn_alloc(per * sizeof(float));
    if (l->dropout > 0) l->xd = bn_alloc((size_t)BT * l->max_in * sizeof(float));
    if (!l->us || !l->du || (l->dropout > 0 && !l->xd)) {
        bn_free(l->us); bn_free(l->du); bn_free(l->xd); l->us = l->du = l->xd = NULL; l->cap_bt = 0;
        return bn_err(BITNET_ERR_NOMEM, "out of memory for LoRA activations");
    }
    l->cap_bt = BT;
    return BITNET_OK;
}

/* The dropout mask: keep element e of adapter a with probability 1 - p (a counter-based hash, so
 * the mask is regenerated, never stored). xd[e] = keep ? v[e] / (1 - p) : 0 for e < n, where
 * v = x (forward, and gA) or the branch's dx (backward). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
typedef struct { const bn_lora *l; uint64_t key; const float *v; float *xd; size_t n; } drop_ctx;
static void drop_range(void *c_, int ith, int nth) {
    drop_ctx *c = c_;
    size_t a = c->n * (size_t)ith / (size_t)nth, b = c->n * (size_t)(ith + 1) / (size_t)nth;
    float p = c->l->dropout, inv = 1.0f / (1.0f - p);
    for (size_t e = a; e < b; e++) {
        float u = (float)(mix64(c->key ^ mix64(e)) >> 40) * 0x1.0p-24f;
        c->xd[e] = u >= p ? c->v[e] * inv : 0.0f;
    }
}
static void dropout_apply(bn_train_model *m, int a, const float *v, float *xd, size_t n) {
    const bn_lora *l = m->lora;
    drop_ctx c = {l, mix64(l->drop_seed ^ mix64(l->drop_key * 0x9e3779b97f4a7c15ull + (uint64_t)a)), v, xd, n};
    bn_pool_run(m->pool, drop_range, &c);
}

void bn_lora_forward(bn_train_model *m, int widx, const float *x, float *y, int N) {
    bn_lora *l = m->lora;
    int a = l->ad_of[widx];
    if (a < 0) return;
    const bn_tparam *A = &l->tp[a], *B = &l->tp[a + 1];
    int r = l->rank, in = (int)A->shape[1], out = (int)B->shape[0];
    float *us = l->us + (size_t)(a / 2) * l->cap_bt * r;
    if (l->dropout > 0 && l->drop_on) { dropout_apply(m, a, x, l->xd, (size_t)N * in); x = l->xd; }
    bn_sgemm_mt(m->k, m->pool, m->ws, 0, 1, N, r, in, x, in, l->params + A->off, in, 0, us, r);
    for (size_t i = 0; i < (size_t)N * r; i++) us[i] *= l->scale;
    bn_sgemm_mt(m->k, m->pool, m->ws, 0, 1, N, out, r, us, r, l->params + B->off, r, 1, y, out);
}

void bn_lora_backward(bn_train_model *m, int widx, const float *dy, const float *x, float *dx, int N) {
    bn_lora *l = m->lora;
    int a = l->ad_of[widx];
    if (a < 0) return;
    const bn_tparam *A = &l->tp[a], *B = &l->tp[a + 1];
    int r = l->rank, in = (int)A->shape[1], out = (int)B->shape[0];
    const float *us = l->us + (size_t)(a / 2) * l->cap_bt * r;
    bn_sgemm_mt(m->k, m->pool, m->ws, 1, 0, out, r, N, dy, out, us, r, 1, l->grads + B->off, r);
    bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, r, out, dy, out, l->params + B->off, r, 0, l->du, r);
    for (size_t i = 0; i < (size_t)N * r; i++) l->du[i] *= l->scale;
    if (l->dropout > 0 && l->drop_on) {   /* x_d = mask x / (1-p): gA += du^T x_d; dx += mask (du A) / (1-p) */
        size_t n = (size_t)N * in;
        dropout_apply(m, a, x, l->xd, n);
        bn_sgemm_mt(m->k, m->pool, m->ws, 1, 0, r, in, N, l->du, r, l->xd, in, 1, l->grads + A->off, in);
        if (!dx) return;
        bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, in, r, l->du, r, l->params + A->off, in, 0, l->xd, in);
        dropout_apply(m, a, l->xd, l->xd, n);
        for (size_t i = 0; i < n; i++) dx[i] += l->xd[i];
        return;
    }
    bn_sgemm_mt(m->k, m->pool, m->ws, 1, 0, r, in, N, l->du, r, x, in, 1, l->grads + A->off, in);
    if (dx) bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, in, r, l->du, r, l->params + A->off, in, 1, dx, in);
}

void bn_lora_zero_grad(bn_lora *l) { memset(l->grads, 0, l->n_params * sizeof(float)); }

bitnet_status bn_lora_save(const bn_lora *l, const char *dir, const char *base) {
    bn_st_writer *w;
    bitnet_status s = bn_st_writer_new(&w);
    if (s) return s;
    for (int i = 0; i < l->n_tp && !s; i++)
        s = bn_st_writer_add(w, l->tp[i].name, BN_F32, 2, l->tp[i].shape, l->params + l->tp[i].off);
    char *mp = bn_path_join(dir, "adapter_model.safetensors"), *cp = bn_path_join(dir, "adapter_config.json");
    if (!s && (!mp || !cp)) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_st_writer_save(w, mp);
    bn_st_writer_free(w);
    cJSON *j = s ? NULL : cJSON_CreateObject(), *tm = j ? cJSON_AddArrayToObject(j, "target_modules") : NULL;
    char *txt = NULL;
    if (tm) {
        for (int i = 0; i < 7; i++) if (l->targets & (1u << lin_slots[i])) cJSON_AddItemToArray(tm, cJSON_CreateString(peft_names[i]));
        cJSON_AddStringToObject(j, "peft_type", "LORA");
        cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
        cJSON_AddNumberToObject(j, "r", l->rank);
        cJSON_AddNumberToObject(j, "lora_alpha", l->alpha);
        cJSON_AddNumberToObject(j, "lora_dropout", l->dropout);
        cJSON_AddStringToObject(j, "bias", "none");
        cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
        cJSON_AddBoolToObject(j, "inference_mode", 1);
        if (base) cJSON_AddStringToObject(j, "base_model_name_or_path", base); else cJSON_AddNullToObject(j, "base_model_name_or_path");
        txt = cJSON_Print(j);
    }
    if (!s) s = txt ? bn_write_file_atomic(cp, txt, strlen(txt)) : bn_err(BITNET_ERR_NOMEM, "out of memory");
    cJSON_free(txt); cJSON_Delete(j);
    free(mp); free(cp);
    return s;
}

bitnet_status bn_lora_read_config(const char *dir, int *rank, float *alpha, unsigned *mask) {
    char *cp = bn_path_join(dir, "adapter_config.json"), *txt = NULL;
    if (!cp) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status s = bn_read_file(cp, &txt, NULL);
    if (s) { free(cp); return s; }
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    *rank = 0; *alpha = 0; *mask = 0;
    if (!j) s = bn_err(BITNET_ERR_FORMAT, "%s: not valid JSON", cp);
    else {
        cJSON *pt = cJSON_GetObjectItem(j, "peft_type"), *r = cJSON_GetObjectItem(j, "r"), *a = cJSON_GetObjectItem(j, "lora_alpha");
        cJSON *tm = cJSON_GetObjectItem(j, "target_modules"), *dora = cJSON_GetObjectItem(j, "use_dora"), *rs = cJSON_GetObjectItem(j, "use_rslora");
        if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA")) s = bn_err(BITNET_ERR_FORMAT, "%s: peft_type is not \"LORA\"", cp);
        else if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble > 65536 || r->valuedouble != (int)r->valuedouble) s = bn_err(BITNET_ERR_FORMAT, "%s: r is not an integer in [1, 65536]", cp);
        else if (a && (!cJSON_IsNumber(a) || !(a->valuedouble > 0 && a->valuedouble < 1e30))) s = bn_err(BITNET_ERR_FORMAT, "%s: lora_alpha is not a number > 0", cp);
        else if (cJSON_IsTrue(dora) || cJSON_IsTrue(rs)) s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: DoRA / rsLoRA adapters are not supported", cp);
        else if (!cJSON_IsArray(tm) || !cJSON_GetArraySize(tm)) s = bn_err(BITNET_ERR_FORMAT, "%s: target_modules is not a list of module names", cp);
        else {
            *rank = (int)r->valuedouble; *alpha = a ? (float)a->valuedouble : 8.0f;   /* PEFT's default lora_alpha is 8 */
            cJSON *e;
            cJSON_ArrayForEach(e, tm) {
                char err[160]; unsigned one;
                if (!cJSON_IsString(e) || !bn_lora_parse_targets(e->valuestring, &one, err, sizeof err)) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: target_modules: %s", cp, cJSON_IsString(e) ? err : "not a string"); break; }
                *mask |= one;
            }
        }
    }
    cJSON_Delete(j);
    free(cp);
    return s;
}

bitnet_status bn_lora_load(const bn_train_model *m, const char *dir, bn_lora **out) {
    *out = NULL;
    int rank; float alpha; unsigned mask;
    bitnet_status s = bn_lora_read_config(dir, &rank, &alpha, &mask);
    bn_lora *l = NULL;
    if (!s) s = bn_lora_new(m, rank, alpha, mask, 0, &l);
    char *mp = s ? NULL : bn_path_join(dir, "adapter_model.safetensors");
    bn_st *st = NULL;
    if (!s) s = mp ? bn_st_open(mp, &st) : bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < l->n_tp; i++)
        s = bn_arch_read_f32(st, l->tp[i].name, 2, l->tp[i].shape, l->params + l->tp[i].off);
    if (!s && (int)bn_st_count(st) != l->n_tp)
        s = bn_err(BITNET_ERR_FORMAT, "%s: holds %d tensors, expected the %d lora_A/lora_B matrices of target_modules", mp, (int)bn_st_count(st), l->n_tp);
    bn_st_free(st); free(mp);
    if (s) { bn_lora_free(l); return s; }
    *out = l;
    return BITNET_OK;
}

/* One BitLinear matrix of a frozen base as int8 values q[rows*cols] and its scale: the packed
 * 2B-4T layout (uint8 + weight_scale; W_deq = q * multiplier, as the inference loader does it)
 * or float master weights ternarized (absmean) here, once; w: float scratch [rows*cols]. */
static bitnet_status read_ternary(const bn_train_model *m, const bn_st *st, const bn_tparam *p, int8_t *q, float *w, float *scale) {
    const bn_tensor *t = bn_st_find(st, p->name);
    int rows = (int)p->shape[0], cols = (int)p->shape[1];
    bitnet_status s;
    if (t && t->dtype == BN_U8) {
        int64_t sh[2] = {rows / 4, cols};
        char sn[160], what[400];
        if (rows % 4) return bn_err(BITNET_ERR_FORMAT, "%s: '%s': packed rows %d not a multiple of 4", t->file, p->name, rows);
        if ((s = bn_st_get(st, p->name, 1u << BN_U8, 2, sh, &t))) return s;
        snprintf(sn, sizeof sn, "%s_scale", p->name);
        const bn_tensor *ts = bn_st_find(st, sn);
        if (!ts || !(BN_FLOAT_DTYPES & (1u << ts->dtype)) || ts->numel != 1) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' must be one float value (packed weights need a weight_scale)", t->file, sn);
        float ws;
        bn_tensor_to_f32(ts, &ws, 0, 1);
        snprintf(what, sizeof what, "%s: '%s'", ts->file, sn);
        if ((s = bn_scale_multiplier(ws, m->cfg.linear_class, what, scale))) return s;
        if (bn_unpack_2b4t(t->data, rows, cols, q)) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' holds the invalid ternary code 3", t->file, p->name);
        bn_st_release(st, t->data, t->nbytes);
        return BITNET_OK;
    }
    if ((s = bn_arch_read_f32(st, p->name, p->ndim, p->shape, w))) return s;
    if ((t = bn_st_find(st, p->name))) bn_st_release(st, t->data, t->nbytes);
    *scale = 1.0f / (1.0f / bn_ternarize(w, (int64_t)p->numel, q));   /* W_deq = q / g, g = 1 / mean (as train.c) */
    return BITNET_OK;
}

/* The embedding or head as loaded (F32/BF16/F16, finite), copied out of the file. */
static bitnet_status read_float_frozen(const bn_st *st, const bn_tparam *p, bn_tfrozen *f) {
    const bn_tensor *t;
    bitnet_status s = bn_st_get(st, p->name, BN_FLOAT_DTYPES, p->ndim, p->shape, &t);
    if (s) return s;
    f->wdt = t->dtype == BN_F32 ? BN_W_F32 : t->dtype == BN_F16 ? BN_W_F16 : BN_W_BF16;
    if (!(f->data = bn_alloc(t->nbytes))) return bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", p->name);
    memcpy(f->data, t->data, t->nbytes);
    bn_st_release(st, t->data, t->nbytes);
    for (size_t j = 0; j < p->numel; j++)
        if (!isfinite(bn_wget(f->data, f->wdt, j))) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at %zu", t->file, p->name, j);
    return BITNET_OK;
}

/* The packed frozen base: BitLinear matrices only in the kernel set's packed form (2 bits a
 * weight + one scale), embedding/head as loaded, norms in params (float32). */
static bitnet_status from_dir_packed(const char *dir, const bn_config *c, int n_threads, const char *kernels, bn_train_model **out) {
    bn_train_model *m;
    bitnet_status s = bn_train_model_new_packed(c, n_threads, kernels, &m);
    if (s) return s;
    size_t mx = 0;
    for (int i = 0; i < m->n_tp; i++) if (m->tp[i].kind == BN_PK_LINEAR && m->tp[i].numel > mx) mx = m->tp[i].numel;
    int8_t *q = malloc(mx ? mx : 1);
    float *w = bn_alloc((mx ? mx : 1) * sizeof(float));
    bn_st *st = NULL;
    if (!q || !w) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_st_open_dir(dir, &st);
    for (int i = 0; i < m->n_tp && !s; i++) {
        const bn_tparam *p = &m->tp[i];
        bn_tfrozen *f = &m->fz[i];
        if (p->kind == BN_PK_NORM) { s = bn_arch_read_f32(st, p->name, p->ndim, p->shape, m->params + p->off); continue; }
        if (p->kind != BN_PK_LINEAR) { s = read_float_frozen(st, p, f); continue; }
        if ((s = read_ternary(m, st, p, q, w, &f->scale))) break;
        f->wdt = -1;
        if (!(f->data = bn_alloc(m->k->packed_size((int)p->shape[0], (int)p->shape[1])))) { s = bn_err(BITNET_ERR_NOMEM, "out of memory for '%s'", p->name); break; }
        m->k->pack(q, (int)p->shape[0], (int)p->shape[1], f->data);
    }
    bn_st_free(st); free(q); bn_free(w);
    if (s) { bn_train_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}

bitnet_status bn_train_model_from_dir_frozen(const char *dir, int no_quant, int n_threads, const char *kernels, bn_train_model **out) {
    *out = NULL;
    bn_config c;
    bitnet_status s = bn_config_load(dir, &c);
    if (s) return s;
    if (!no_quant) return from_dir_packed(dir, &c, n_threads, kernels, out);
    bn_train_model *m;   /* no_quant: a float base, frozen as it is */
    if ((s = bn_train_model_from_dir_ex(dir, no_quant, n_threads, kernels, &m))) return s;
    if ((s = bn_train_model_freeze(m))) { bn_train_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}
