/* safetensors.c — mmap'd, validated safetensors reader and a small atomic writer.
 * Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, data.
 * Not: a general tensor library; we only read what the model loader asks for. */
#include "io/safetensors.h"
#include <cjson/cJSON.h>
#include <stdio.h>

static const struct { const char *name; size_t size; } DT[BN_DT_COUNT] = {
    [BN_F32] = {"F32", 4}, [BN_F16] = {"F16", 2}, [BN_BF16] = {"BF16", 2}, [BN_U8] = {"U8", 1},
    [BN_I8] = {"I8", 1}, [BN_I32] = {"I32", 4}, [BN_I64] = {"I64", 8},
};
size_t bn_dtype_size(bn_dtype t) { return t < BN_DT_COUNT ? DT[t].size : 0; }
const char *bn_dtype_name(bn_dtype t) { return t < BN_DT_COUNT ? DT[t].name : "unknown"; }

typedef struct { char *path; const void *map; size_t size; bitnet_files f; } st_file;  /* f: to close map */

/* Open-addressing hash set of names: slot holds index + 1 into an array of names, 0 = empty.
 * Keeps duplicate checks and lookups O(1) (a header may list millions of tensors). */
typedef struct { uint32_t *slot; uint32_t mask, n; } name_set;

static uint64_t name_hash(const char *s) { /* FNV-1a, then a final mix */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 29; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 32;
    return h;
}
/* Index of name in the set (names via get(ctx, i)), or -1. */
static int ns_find(const name_set *ns, const char *name, const char *(*get)(const void *, uint32_t), const void *ctx) {
    if (!ns->slot) return -1;
    for (uint32_t h = (uint32_t)name_hash(name) & ns->mask;; h = (h + 1) & ns->mask) {
        uint32_t v = ns->slot[h];
        if (!v) return -1;
        if (!strcmp(get(ctx, v - 1), name)) return (int)(v - 1);
    }
}
/* Add index i (its name is get(ctx, i), not yet in the set). 0 on OOM. */
static int ns_add(name_set *ns, uint32_t i, const char *(*get)(const void *, uint32_t), const void *ctx) {
    if ((ns->n + 1) * 2 > (ns->slot ? ns->mask + 1 : 0)) { /* grow to keep the load under 1/2 */
        uint32_t cap = ns->slot ? (ns->mask + 1) * 2 : 256;
        uint32_t *q = calloc(cap, sizeof *q);
        if (!q) return 0;
        for (uint32_t k = 0; ns->slot && k <= ns->mask; k++) {
            uint32_t v = ns->slot[k];
            if (!v) continue;
            uint32_t h = (uint32_t)name_hash(get(ctx, v - 1)) & (cap - 1);
            while (q[h]) h = (h + 1) & (cap - 1);
            q[h] = v;
        }
        free(ns->slot); ns->slot = q; ns->mask = cap - 1;
    }
    uint32_t h = (uint32_t)name_hash(get(ctx, i)) & ns->mask;
    while (ns->slot[h]) h = (h + 1) & ns->mask;
    ns->slot[h] = i + 1; ns->n++;
    return 1;
}

struct bn_st {
    st_file *files; int n_files;
    bn_tensor *t; int n, cap;
    char **names;     /* owned strings (names + file paths) */
    int n_names, cap_names;
    name_set by_name; /* tensor name -> index into t */
};

static const char *tensor_name(const void *ctx, uint32_t i) { return ((const bn_st *)ctx)->t[i].name; }

static char *own(bn_st *st, const char *s) {
    if (st->n_names == st->cap_names) {
        int c = st->cap_names ? st->cap_names * 2 : 64;
        char **p = realloc(st->names, c * sizeof *p);
        if (!p) return NULL;
        st->names = p; st->cap_names = c;
    }
    char *d = strdup(s);
    if (d) st->names[st->n_names++] = d;
    return d;
}

void bn_st_free(bn_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map) bn_files_close(&st->files[i].f, st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    for (int i = 0; i < st->n_names; i++) free(st->names[i]);
    free(st->names); free(st->files); free(st->t); free(st->by_name.slot); free(st);
}

static int cmp_span(const void *a, const void *b, void *base) { /* by start offset, then size */
    const bn_tensor *x = *(const bn_tensor *const *)a, *y = *(const bn_tensor *const *)b;
    size_t xs = (size_t)((const uint8_t *)x->data - (const uint8_t *)base), ys = (size_t)((const uint8_t *)y->data - (const uint8_t *)base);
    if (xs != ys) return xs < ys ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* The data section must be exactly the tensors, back to back, as the safetensors spec (and HF's
 * reader) require: no two tensors may share bytes, no gap between them and no bytes after the
 * last. t[first..n) are this file's tensors, data/data_size its data section. */
static bitnet_status check_layout(bn_st *st, int first, const char *path, const uint8_t *data, size_t data_size) {
    int k = st->n - first;
    if (k == 0) {
        if (data_size) return bn_err(BITNET_ERR_FORMAT, "%s: %zu bytes after the header belong to no tensor", path, data_size);
        return BITNET_OK;
    }
    const bn_tensor **v = malloc((size_t)k * sizeof *v);
    if (!v) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) v[i] = &st->t[first + i];
    qsort_r(v, (size_t)k, sizeof *v, cmp_span, (void *)data);
    size_t end = 0;
    bitnet_status s = BITNET_OK;
    for (int i = 0; i < k && !s; i++) {
        size_t b0 = (size_t)((const uint8_t *)v[i]->data - data);
        if (b0 < end) s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' (bytes %zu..%zu) overlaps tensor '%s'", path, v[i]->name, b0, b0 + v[i]->nbytes, v[i - 1]->name);
        else if (b0 > end) s = bn_err(BITNET_ERR_FORMAT, "%s: %zu unused bytes before tensor '%s' (bytes %zu..%zu)", path, b0 - end, v[i]->name, end, b0);
        else end = b0 + v[i]->nbytes;
    }
    if (!s && end != data_size) s = bn_err(BITNET_ERR_FORMAT, "%s: %zu bytes after the last tensor belong to no tensor", path, data_size - end);
    free(v);
    return s;
}

/* Open file `name` through src, keep it in st (closed by bn_st_free) and index its tensors. */
static bitnet_status parse_file(bn_st *st, const bn_src *src, const char *name) {
    const void *map; size_t size;
    bitnet_status s0 = bn_src_open(src, name, &map, &size);
    if (s0) return s0;
    st_file *nf = realloc(st->files, (st->n_files + 1) * sizeof *nf);
    if (!nf) { bn_files_close(&src->f, map, size); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    st->files = nf;
    st_file *f = &st->files[st->n_files++];
    f->path = bn_src_path(src, name); f->map = map; f->size = size; f->f = src->f;
    if (!f->path) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    const char *path = f->path;
    if (size < 8) return bn_err(BITNET_ERR_FORMAT, "%s: truncated: %zu bytes, no safetensors header", path, size);

    uint64_t hlen = 0; memcpy(&hlen, map, 8); /* little-endian hosts only (all we target) */
    if (hlen > size - 8) return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: header length %llu exceeds file size %zu", path, (unsigned long long)hlen, size);
    if (hlen > (100u << 20)) return bn_err(BITNET_ERR_FORMAT, "%s: header length %llu is implausibly large", path, (unsigned long long)hlen);
    const char *hdr = (const char *)map + 8;
    cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) { cJSON_Delete(root); return bn_err(BITNET_ERR_FORMAT, "%s: header is not a JSON object", path); }
    const uint8_t *data = (const uint8_t *)map + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    bitnet_status s = BITNET_OK;
    int first = st->n; /* this file's tensors are t[first..n) */
    for (cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        const char *nm = e->string;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s': missing or malformed dtype/shape/data_offsets", path, nm); break; }
        bn_tensor t = {0};
        t.dtype = BN_DT_COUNT;
        for (int k = 0; k < BN_DT_COUNT; k++) if (!strcmp(dt->valuestring, DT[k].name)) t.dtype = (bn_dtype)k;
        int nd = cJSON_GetArraySize(sh);
        if (nd > BN_MAX_DIMS) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dims (max %d)", path, nm, nd, BN_MAX_DIMS); break; }
        t.ndim = nd; t.numel = 1;
        int k = 0;
        for (cJSON *d = sh->child; d; d = d->next, k++) {
            double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
            if (v < 0 || v > 9.0e15 || v != (double)(int64_t)v) { s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s': invalid shape entry", path, nm); break; }
            t.shape[k] = (int64_t)v;
            if (t.shape[k] && t.numel > INT64_MAX / t.shape[k]) { s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, nm); break; }
            t.numel *= t.shape[k];
        }
        if (s) break;
        double b0 = cJSON_IsNumber(off->child) ? off->child->valuedouble : -1;
        double b1 = cJSON_IsNumber(off->child->next) ? off->child->next->valuedouble : -1;
        if (b0 < 0 || b1 < b0 || b1 > (double)data_size || b0 != (double)(int64_t)b0 || b1 != (double)(int64_t)b1) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes (truncated file?)", path, nm, b0, b1, data_size); break; }
        t.nbytes = (size_t)b1 - (size_t)b0;
        if (t.dtype != BN_DT_COUNT) {
            size_t es = DT[t.dtype].size;
            if ((uint64_t)t.numel > SIZE_MAX / es || (size_t)t.numel * es != t.nbytes) {
                s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s': %zu bytes do not match shape (%lld elements of %s)", path, nm, t.nbytes, (long long)t.numel, DT[t.dtype].name); break; }
        }
        t.data = data + (size_t)b0;
        if (ns_find(&st->by_name, nm, tensor_name, st) >= 0) { s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' appears twice", path, nm); break; }
        t.name = own(st, nm); t.file = f->path;
        if (!t.name) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
        if (st->n == st->cap) {
            int c = st->cap ? st->cap * 2 : 256;
            bn_tensor *p = realloc(st->t, c * sizeof *p);
            if (!p) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
            st->t = p; st->cap = c;
        }
        st->t[st->n] = t;
        if (!ns_add(&st->by_name, (uint32_t)st->n, tensor_name, st)) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
        st->n++;
    }
    cJSON_Delete(root);
    if (!s) s = check_layout(st, first, path, data, data_size);
    return s;
}

/* Open one file `name` of src into a new set. */
static bitnet_status open_one(const bn_src *src, const char *name, bn_st **out) {
    *out = NULL;
    bn_st *st = calloc(1, sizeof *st);
    if (!st) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status s = parse_file(st, src, name);
    if (s) { bn_st_free(st); return s; }
    *out = st; return BITNET_OK;
}

bitnet_status bn_st_open(const char *path, bn_st **out) {
    bn_src src = bn_src_dir("");   /* "" joined with path is path */
    return open_one(&src, path, out);
}

struct shard_ctx { const bn_st *st; };
static const char *shard_name(const void *ctx, uint32_t i) {
    const char *p = ((const struct shard_ctx *)ctx)->st->files[i].path, *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

bitnet_status bn_st_open_dir(const char *dir, bn_st **out) {
    bn_src src = bn_src_dir(dir);
    return bn_st_open_src(&src, NULL, out);
}

bitnet_status bn_st_open_src(const bn_src *src, const char *name, bn_st **out) {
    *out = NULL;
    if (name) return open_one(src, name, out);
    bitnet_status s = open_one(src, "model.safetensors", out);
    if (s != BITNET_ERR_IO) return s;
    const void *itxt; size_t ilen;
    if ((s = bn_src_open_small(src, "model.safetensors.index.json", &itxt, &ilen))) {
        if (s != BITNET_ERR_IO) return s;
        return bn_err(BITNET_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", src->where ? src->where : "file provider");
    }
    char *index = bn_src_path(src, "model.safetensors.index.json");
    cJSON *root = cJSON_ParseWithLength(itxt, ilen);
    bn_files_close(&src->f, itxt, ilen);
    if (!index) { cJSON_Delete(root); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) { cJSON_Delete(root); s = bn_err(BITNET_ERR_FORMAT, "%s: no weight_map object", index); free(index); return s; }
    bn_st *st = calloc(1, sizeof *st);
    if (!st) { cJSON_Delete(root); free(index); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    s = BITNET_OK;
    name_set shards = {0};  /* shard file name -> index into st->files */
    struct shard_ctx shard_ctx = {st};
    for (cJSON *e = wm->child; e && !s; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: bad shard name for '%s'", index, e->string); break; }
        if (ns_find(&shards, e->valuestring, shard_name, &shard_ctx) >= 0) continue;
        s = parse_file(st, src, e->valuestring);
        if (!s && !ns_add(&shards, (uint32_t)(st->n_files - 1), shard_name, &shard_ctx)) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    }
    free(shards.slot);
    /* every tensor named in the index must be present */
    for (cJSON *e = wm->child; e && !s; e = e->next)
        if (!bn_st_find(st, e->string)) s = bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' is listed but not in shard %s", index, e->string, e->valuestring);
    cJSON_Delete(root); free(index);
    if (s) { bn_st_free(st); return s; }
    *out = st; return BITNET_OK;
}

int bn_st_count(const bn_st *st) { return st->n; }
const bn_tensor *bn_st_at(const bn_st *st, int i) { return i >= 0 && i < st->n ? &st->t[i] : NULL; }

const bn_tensor *bn_st_find(const bn_st *st, const char *name) {
    int i = ns_find(&st->by_name, name, tensor_name, st);
    return i >= 0 ? &st->t[i] : NULL;
}

bitnet_status bn_st_get(const bn_st *st, const char *name, unsigned dtypes, int ndim,
                        const int64_t *shape, const bn_tensor **out) {
    const bn_tensor *t = bn_st_find(st, name);
    const char *f = st->n_files ? st->files[0].path : "?";
    if (!t) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", f, name);
    if (t->dtype == BN_DT_COUNT || !(dtypes & (1u << t->dtype)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s here", t->file, name, bn_dtype_name(t->dtype));
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) if (shape[i] >= 0 && t->shape[i] != shape[i]) ok = 0;
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%s]", t->file, name, got, want);
    }
    *out = t; return BITNET_OK;
}

void bn_tensor_to_f32(const bn_tensor *t, float *dst, int64_t start, int64_t n) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case BN_F32: memcpy(dst, p + start * 4, (size_t)n * 4); break;
    case BN_F16: for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + (start + i) * 2, 2); dst[i] = bn_f16_to_f32(h); } break;
    case BN_BF16: for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + (start + i) * 2, 2); dst[i] = bn_bf16_to_f32(h); } break;
    case BN_U8: for (int64_t i = 0; i < n; i++) dst[i] = p[start + i]; break;
    case BN_I8: for (int64_t i = 0; i < n; i++) dst[i] = (int8_t)p[start + i]; break;
    default: for (int64_t i = 0; i < n; i++) dst[i] = 0; break;
    }
}

/* ---- writer ---- */
typedef struct { char *name; bn_dtype dt; int ndim; int64_t shape[BN_MAX_DIMS]; void *data; size_t nbytes; } wt;
struct bn_st_writer { wt *t; int n, cap; };

bitnet_status bn_st_writer_new(bn_st_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? BITNET_OK : bn_err(BITNET_ERR_NOMEM, "out of memory");
}

bitnet_status bn_st_writer_add(bn_st_writer *w, const char *name, bn_dtype dt, int ndim,
                               const int64_t *shape, const void *data) {
    if (ndim > BN_MAX_DIMS || dt >= BN_DT_COUNT) return bn_err(BITNET_ERR_ARG, "writer: bad tensor '%s'", name);
    if (w->n == w->cap) {
        int c = w->cap ? w->cap * 2 : 64;
        wt *p = realloc(w->t, c * sizeof *p);
        if (!p) return bn_err(BITNET_ERR_NOMEM, "out of memory");
        w->t = p; w->cap = c;
    }
    wt *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; n *= (size_t)shape[i]; }
    t->ndim = ndim; t->dt = dt; t->nbytes = n * DT[dt].size;
    t->name = strdup(name); t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->name || !t->data) { free(t->name); free(t->data); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    memcpy(t->data, data, t->nbytes);
    w->n++;
    return BITNET_OK;
}

static int wt_cmp(const void *a, const void *b) { return strcmp(((const wt *)a)->name, ((const wt *)b)->name); }

bitnet_status bn_st_writer_save(bn_st_writer *w, const char *path) {
    qsort(w->t, w->n, sizeof *w->t, wt_cmp);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, w->t[i].name);
        cJSON_AddStringToObject(e, "dtype", DT[w->t[i].dt].name);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < w->t[i].ndim; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w->t[i].shape[k]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += w->t[i].nbytes;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    size_t hl = strlen(js), hpad = (hl + 7) & ~(size_t)7;
    size_t total = 8 + hpad + off;
    uint8_t *buf = malloc(total);
    if (!buf) { free(js); return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); }
    uint64_t h = hpad; memcpy(buf, &h, 8);
    memcpy(buf + 8, js, hl); memset(buf + 8 + hl, ' ', hpad - hl);
    free(js);
    size_t p = 8 + hpad;
    for (int i = 0; i < w->n; i++) { memcpy(buf + p, w->t[i].data, w->t[i].nbytes); p += w->t[i].nbytes; }
    bitnet_status s = bn_write_file_atomic(path, buf, total);
    free(buf);
    return s;
}

void bn_st_writer_free(bn_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->t[i].name); free(w->t[i].data); }
    free(w->t); free(w);
}
