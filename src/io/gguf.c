/* gguf.c — the GGUF parser (see gguf.h): header, metadata, tensor infos, data section, each
 * field bounds- and overflow-checked against the buffer before it is read. Names and keys are
 * found through small open-addressing hash tables (no quadratic duplicate checks on hostile
 * counts). Not: the tensor decoders (gguf_decode.c) or a writer. */
#include "io/gguf.h"
#include <stdio.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KEY 65535u
#define GGUF_MAX_NAME 255u

struct bn_gguf {
    char *file;
    const uint8_t *buf; size_t size;
    uint32_t version, alignment;
    bn_gguf_kv *kv; int n_kv;
    bn_gguf_tensor *t; int n_t;
    int *kv_hash; int *t_hash; uint32_t kv_cap, t_cap; /* slots hold index+1, 0 = empty */
    size_t data_start;
};

typedef struct { const uint8_t *b; size_t size, pos; const char *file; } rd;

static bitnet_status trunc_err(const rd *r, const char *what) {
    return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: %s at byte %zu runs past the end of the file (%zu bytes)",
                  r->file, what, r->pos, r->size);
}
static int rd_need(const rd *r, uint64_t n) { return n <= r->size - r->pos; }
static bitnet_status rd_u32(rd *r, uint32_t *v, const char *what) {
    *v = 0;
    if (!rd_need(r, 4)) return trunc_err(r, what);
    memcpy(v, r->b + r->pos, 4); r->pos += 4; return BITNET_OK;
}
static bitnet_status rd_u64(rd *r, uint64_t *v, const char *what) {
    *v = 0;
    if (!rd_need(r, 8)) return trunc_err(r, what);
    memcpy(v, r->b + r->pos, 8); r->pos += 8; return BITNET_OK;
}
/* A string: u64 length then bytes. */
static bitnet_status rd_str(rd *r, bn_gguf_str *s, const char *what) {
    uint64_t n;
    s->s = ""; s->n = 0;
    bitnet_status st = rd_u64(r, &n, what);
    if (st) return st;
    if (!rd_need(r, n)) { r->pos -= 8; return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: %s at byte %zu has length %llu, past the end of the file (%zu bytes)",
                                                     r->file, what, r->pos, (unsigned long long)n, r->size); }
    s->s = (const char *)r->b + r->pos; s->n = n; r->pos += n;
    return BITNET_OK;
}

static size_t vsize(bn_gguf_vtype t) {
    switch (t) {
    case BN_GV_U8: case BN_GV_I8: case BN_GV_BOOL: return 1;
    case BN_GV_U16: case BN_GV_I16: return 2;
    case BN_GV_U32: case BN_GV_I32: case BN_GV_F32: return 4;
    case BN_GV_U64: case BN_GV_I64: case BN_GV_F64: return 8;
    default: return 0;
    }
}
static const char *vname(uint32_t t) {
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return t < BN_GV_COUNT ? n[t] : "unknown";
}

static uint32_t hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 16777619u; }
    return h;
}
/* Find name in a table over names[i] (stride bytes apart, first member a const char *). */
static int hfind(const int *tab, uint32_t cap, const void *base, size_t stride, const char *name) {
    if (!cap) return -1;
    uint32_t h = hash_str(name, strlen(name)) & (cap - 1);
    for (uint32_t k = 0; k < cap; k++, h = (h + 1) & (cap - 1)) {
        int i = tab[h];
        if (!i) return -1;
        const char *nm = *(const char *const *)((const char *)base + (size_t)(i - 1) * stride);
        if (!strcmp(nm, name)) return i - 1;
    }
    return -1;
}
/* Insert index i (name not yet present, checked by the caller). */
static void hins(int *tab, uint32_t cap, const char *name, int i) {
    uint32_t h = hash_str(name, strlen(name)) & (cap - 1);
    while (tab[h]) h = (h + 1) & (cap - 1);
    tab[h] = i + 1;
}
static uint32_t hcap(uint64_t n) { uint32_t c = 16; while (c < 2 * n) c <<= 1; return c; }

/* A NUL-terminated copy of a name that must not contain NUL and be at most max bytes. */
static bitnet_status own_name(const rd *r, bn_gguf_str s, uint32_t max, const char *what, char **out) {
    if (s.n == 0) return bn_err(BITNET_ERR_FORMAT, "%s: empty %s at byte %zu", r->file, what, r->pos);
    if (s.n > max) return bn_err(BITNET_ERR_FORMAT, "%s: %s at byte %zu is %llu bytes long (limit %u)", r->file, what, r->pos, (unsigned long long)s.n, max);
    if (memchr(s.s, 0, s.n)) return bn_err(BITNET_ERR_FORMAT, "%s: %s at byte %zu contains a NUL byte", r->file, what, r->pos);
    char *p = malloc(s.n + 1);
    if (!p) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    memcpy(p, s.s, s.n); p[s.n] = 0; *out = p;
    return BITNET_OK;
}

/* Parse one metadata value of type t into kv (val/val_size, arrays' element info). */
static bitnet_status rd_value(rd *r, bn_gguf_kv *kv, uint32_t t) {
    const char *k = kv->key;
    if (t >= BN_GV_COUNT) return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' has unknown value type %u", r->file, k, t);
    kv->type = (bn_gguf_vtype)t;
    size_t start = r->pos;
    if (t == BN_GV_STRING) {
        bn_gguf_str s;
        bitnet_status st = rd_str(r, &s, "string value");
        if (st) return bn_err_prefix(st, k);
        kv->val = r->b + start; kv->val_size = r->pos - start;
        return BITNET_OK;
    }
    if (t == BN_GV_ARRAY) {
        uint32_t et; uint64_t n;
        bitnet_status st = rd_u32(r, &et, "array element type");
        if (!st) st = rd_u64(r, &n, "array length");
        if (st) return st;
        if (et >= BN_GV_COUNT) return bn_err(BITNET_ERR_FORMAT, "%s: metadata array '%s' has unknown element type %u", r->file, k, et);
        if (et == BN_GV_ARRAY) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: metadata array '%s' holds arrays (nested arrays are not supported)", r->file, k);
        kv->arr_type = (bn_gguf_vtype)et; kv->arr_n = n;
        kv->val = r->b + r->pos;
        if (et == BN_GV_STRING) {
            if (n > (r->size - r->pos) / 8)
                return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: metadata array '%s' claims %llu strings, more than the %zu bytes left can hold",
                              r->file, k, (unsigned long long)n, r->size - r->pos);
            uint64_t *off = malloc((n ? n : 1) * sizeof *off);
            if (!off) return bn_err(BITNET_ERR_NOMEM, "out of memory (metadata array '%s' of %llu strings)", k, (unsigned long long)n);
            kv->str_off = off;
            size_t base = r->pos;
            for (uint64_t i = 0; i < n; i++) {
                off[i] = r->pos - base;
                bn_gguf_str s;
                bitnet_status st2 = rd_str(r, &s, "array string");
                if (st2) return bn_err_prefix(st2, k);
            }
            kv->val_size = r->pos - base;
            return BITNET_OK;
        }
        size_t es = vsize((bn_gguf_vtype)et);
        if (n > (r->size - r->pos) / es)
            return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: metadata array '%s' of %llu %s elements runs past the end of the file (%zu bytes left)",
                          r->file, k, (unsigned long long)n, vname(et), r->size - r->pos);
        kv->val_size = n * es;
        if (et == BN_GV_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (kv->val[i] > 1) return bn_err(BITNET_ERR_FORMAT, "%s: metadata array '%s' element %llu is bool %u (not 0 or 1)", r->file, k, (unsigned long long)i, kv->val[i]);
        r->pos += kv->val_size;
        return BITNET_OK;
    }
    size_t es = vsize((bn_gguf_vtype)t);
    if (!rd_need(r, es)) return trunc_err(r, "metadata value");
    kv->val = r->b + r->pos; kv->val_size = es; r->pos += es;
    if (t == BN_GV_BOOL && kv->val[0] > 1) return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' is bool %u (not 0 or 1)", r->file, k, kv->val[0]);
    return BITNET_OK;
}

void bn_gguf_free(bn_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) { free((char *)g->kv[i].key); free((void *)g->kv[i].str_off); }
    for (int i = 0; i < g->n_t; i++) free((char *)g->t[i].name);
    free(g->kv); free(g->t); free(g->kv_hash); free(g->t_hash); free(g->file); free(g);
}

static int cmp_off(const void *a, const void *b) {
    const bn_gguf_tensor *x = *(const bn_gguf_tensor *const *)a, *y = *(const bn_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static bitnet_status parse(bn_gguf *g) {
    rd r = {g->buf, g->size, 0, g->file};
    const char *f = g->file;
    if (g->size < 4 || memcmp(g->buf, "GGUF", 4) != 0)
        return bn_err(BITNET_ERR_FORMAT, "%s: not a GGUF file (bad magic: the file does not start with \"GGUF\")", f);
    r.pos = 4;
    uint32_t ver; uint64_t nt, nkv;
    bitnet_status st = rd_u32(&r, &ver, "version");
    if (st) return st;
    if (ver != 2 && ver != 3) {
        if (ver && !(ver & 0xffff)) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: big-endian GGUF files are not supported", f);
        if (ver == 1) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (versions 2 and 3 are)", f);
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: unknown GGUF version %u (versions 2 and 3 are supported)", f, ver);
    }
    g->version = ver;
    if ((st = rd_u64(&r, &nt, "tensor count")) || (st = rd_u64(&r, &nkv, "metadata count"))) return st;
    /* every metadata entry takes at least 13 bytes (key length, 1-byte key, type, 1-byte value)
     * and every tensor info at least 33 (name length, 1-byte name, n_dims, one dim, type, offset) */
    size_t left = g->size - r.pos;
    if (nkv > left / 13) return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: metadata count %llu cannot fit in the %zu bytes left", f, (unsigned long long)nkv, left);
    if (nt > left / 33) return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: tensor count %llu cannot fit in the %zu bytes left", f, (unsigned long long)nt, left);
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    g->kv_cap = hcap(nkv); g->t_cap = hcap(nt);
    g->kv_hash = calloc(g->kv_cap, sizeof *g->kv_hash);
    g->t_hash = calloc(g->t_cap, sizeof *g->t_hash);
    if (!g->kv || !g->t || !g->kv_hash || !g->t_hash) return bn_err(BITNET_ERR_NOMEM, "out of memory");

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < nkv; i++) {
        bn_gguf_str ks; uint32_t t;
        bn_gguf_kv *kv = &g->kv[g->n_kv];
        if ((st = rd_str(&r, &ks, "metadata key"))) return st;
        char *key;
        if ((st = own_name(&r, ks, GGUF_MAX_KEY, "metadata key", &key))) return st;
        kv->key = key; g->n_kv++;
        if (hfind(g->kv_hash, g->kv_cap, g->kv, sizeof *g->kv, key) >= 0)
            return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' appears twice", f, key);
        hins(g->kv_hash, g->kv_cap, key, g->n_kv - 1);
        if ((st = rd_u32(&r, &t, "metadata value type"))) return st;
        if ((st = rd_value(&r, kv, t))) return st;
        if (!strcmp(key, "general.alignment")) {
            if (kv->type != BN_GV_U32) return bn_err(BITNET_ERR_FORMAT, "%s: general.alignment is a %s, not a u32", f, vname(kv->type));
            uint32_t a; memcpy(&a, kv->val, 4);
            if (a == 0 || (a & (a - 1)) || a > (1u << 20))
                return bn_err(BITNET_ERR_FORMAT, "%s: general.alignment %u is not a power of two up to 1 MiB", f, a);
            g->alignment = a;
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        bn_gguf_tensor *t = &g->t[g->n_t];
        bn_gguf_str ns; uint32_t nd, type;
        if ((st = rd_str(&r, &ns, "tensor name"))) return st;
        char *name;
        if ((st = own_name(&r, ns, GGUF_MAX_NAME, "tensor name", &name))) return st;
        t->name = name; g->n_t++;
        if (hfind(g->t_hash, g->t_cap, g->t, sizeof *g->t, name) >= 0)
            return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' appears twice", f, name);
        hins(g->t_hash, g->t_cap, name, g->n_t - 1);
        if ((st = rd_u32(&r, &nd, "tensor dimension count"))) return st;
        if (nd < 1 || nd > BN_GGUF_MAX_DIMS) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1 to %d allowed)", f, name, nd, BN_GGUF_MAX_DIMS);
        t->ndim = (int)nd;
        int64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if ((st = rd_u64(&r, &ne, "tensor dimension"))) return st;
            if (ne == 0 || ne > (uint64_t)INT64_MAX) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' dimension %u is %llu (must be 1 to 2^63-1)", f, name, d, (unsigned long long)ne);
            if ((int64_t)ne > INT64_MAX / numel) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' shape overflows: the element count exceeds 2^63", f, name);
            numel *= (int64_t)ne; t->ne[d] = (int64_t)ne;
        }
        for (int d = (int)nd; d < BN_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        t->numel = numel;
        if ((st = rd_u32(&r, &type, "tensor type"))) return st;
        if (!bn_gguf_type_known(type)) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown or unsupported tensor type %u", f, name, type);
        t->type = (bn_gguf_ttype)type;
        if ((st = bn_gguf_type_nbytes(type, numel, t->ne[0], name, &t->nbytes))) return bn_err_prefix(st, f);
        if ((st = rd_u64(&r, &t->offset, "tensor offset"))) return st;
        if (t->offset % g->alignment)
            return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' offset %llu is not a multiple of the alignment %u", f, name, (unsigned long long)t->offset, g->alignment);
    }
    /* the data section starts at the next multiple of the alignment */
    size_t ds = r.pos, pad = (g->alignment - ds % g->alignment) % g->alignment;
    if (g->n_t == 0) { g->data_start = ds + pad <= g->size ? ds + pad : g->size; return BITNET_OK; }
    if (pad > g->size - ds) return bn_err(BITNET_ERR_FORMAT, "%s: truncated: the file ends before its tensor data section", f);
    g->data_start = ds + pad;
    size_t dsize = g->size - g->data_start;
    const bn_gguf_tensor **ord = malloc(g->n_t * sizeof *ord);
    if (!ord) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_t; i++) {
        bn_gguf_tensor *t = &g->t[i];
        if (t->offset > dsize || t->nbytes > dsize - t->offset) {
            free(ord);
            return bn_err(BITNET_ERR_FORMAT, "%s: truncated or corrupt: tensor '%s' (%zu bytes at data offset %llu) runs past the end of the file (data section %zu bytes)",
                          f, t->name, t->nbytes, (unsigned long long)t->offset, dsize);
        }
        t->data = g->buf + g->data_start + t->offset;
        ord[i] = t;
    }
    qsort(ord, g->n_t, sizeof *ord, cmp_off);
    for (int i = 0; i + 1 < g->n_t; i++)
        if (ord[i]->offset + ord[i]->nbytes > ord[i + 1]->offset) {
            st = bn_err(BITNET_ERR_FORMAT, "%s: tensors '%s' (offset %llu, %zu bytes) and '%s' (offset %llu) overlap", f, ord[i]->name,
                        (unsigned long long)ord[i]->offset, ord[i]->nbytes, ord[i + 1]->name, (unsigned long long)ord[i + 1]->offset);
            free(ord); return st;
        }
    free(ord);
    return BITNET_OK;
}

bitnet_status bn_gguf_parse(const void *buf, size_t size, const char *file, bn_gguf **out) {
    *out = NULL;
    bn_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->file = strdup(file ? file : "gguf"))) { free(g); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    g->buf = buf; g->size = buf ? size : 0;
    bitnet_status st = parse(g);
    if (st) { bn_gguf_free(g); return st; }
    *out = g;
    return BITNET_OK;
}

const char *bn_gguf_file(const bn_gguf *g) { return g->file; }
uint32_t bn_gguf_version(const bn_gguf *g) { return g->version; }
uint32_t bn_gguf_alignment(const bn_gguf *g) { return g->alignment; }
int bn_gguf_n_kv(const bn_gguf *g) { return g->n_kv; }
const bn_gguf_kv *bn_gguf_kv_at(const bn_gguf *g, int i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }
const bn_gguf_kv *bn_gguf_find_kv(const bn_gguf *g, const char *key) {
    int i = hfind(g->kv_hash, g->kv_cap, g->kv, sizeof *g->kv, key);
    return i >= 0 ? &g->kv[i] : NULL;
}
int bn_gguf_n_tensors(const bn_gguf *g) { return g->n_t; }
const bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int i) { return i >= 0 && i < g->n_t ? &g->t[i] : NULL; }
const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name) {
    int i = hfind(g->t_hash, g->t_cap, g->t, sizeof *g->t, name);
    return i >= 0 ? &g->t[i] : NULL;
}

static bitnet_status need_kv(const bn_gguf *g, const char *key, const bn_gguf_kv **kv) {
    *kv = bn_gguf_find_kv(g, key);
    if (!*kv) return bn_err(BITNET_ERR_FORMAT, "%s: missing metadata key '%s'", g->file, key);
    return BITNET_OK;
}
static bitnet_status wrong_type(const bn_gguf *g, const bn_gguf_kv *kv, const char *want) {
    return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' is a %s, expected %s", g->file, kv->key, vname(kv->type), want);
}

/* Integer value of scalar bytes p of integer type t; *ok = 0 when it does not fit int64. */
static int64_t int_of(const uint8_t *p, bn_gguf_vtype t, int *ok) {
    *ok = 1;
    switch (t) {
    case BN_GV_U8: return p[0];
    case BN_GV_I8: return (int8_t)p[0];
    case BN_GV_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case BN_GV_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case BN_GV_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case BN_GV_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case BN_GV_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case BN_GV_U64: { uint64_t v; memcpy(&v, p, 8); if (v > (uint64_t)INT64_MAX) { *ok = 0; return INT64_MAX; } return (int64_t)v; }
    default: *ok = 0; return 0;
    }
}

bitnet_status bn_gguf_get_int(const bn_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const bn_gguf_kv *kv; bitnet_status st = need_kv(g, key, &kv);
    if (st) return st;
    if (kv->type == BN_GV_BOOL || !vsize(kv->type) || kv->type == BN_GV_F32 || kv->type == BN_GV_F64) return wrong_type(g, kv, "an integer");
    int ok; int64_t v = int_of(kv->val, kv->type, &ok);
    if (!ok || v < lo || v > hi)
        return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' = %s%lld is out of range [%lld, %lld]", g->file, key, ok ? "" : ">", (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out) {
    const bn_gguf_kv *kv; bitnet_status st = need_kv(g, key, &kv);
    if (st) return st;
    double v;
    if (kv->type == BN_GV_F32) { float x; memcpy(&x, kv->val, 4); v = x; }
    else if (kv->type == BN_GV_F64) memcpy(&v, kv->val, 8);
    else return wrong_type(g, kv, "a float");
    if (!(v == v) || v > 3.4028234663852886e38 || v < -3.4028234663852886e38)
        return bn_err(BITNET_ERR_FORMAT, "%s: metadata key '%s' = %g is not a finite float", g->file, key, v);
    *out = (float)v;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_bool(const bn_gguf *g, const char *key, int *out) {
    const bn_gguf_kv *kv; bitnet_status st = need_kv(g, key, &kv);
    if (st) return st;
    if (kv->type != BN_GV_BOOL) return wrong_type(g, kv, "a bool");
    *out = kv->val[0];
    return BITNET_OK;
}

bitnet_status bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out) {
    const bn_gguf_kv *kv; bitnet_status st = need_kv(g, key, &kv);
    if (st) return st;
    if (kv->type != BN_GV_STRING) return wrong_type(g, kv, "a string");
    memcpy(&out->n, kv->val, 8); out->s = (const char *)kv->val + 8;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_arr(const bn_gguf *g, const char *key, bn_gguf_vtype et, const bn_gguf_kv **out) {
    const bn_gguf_kv *kv; bitnet_status st = need_kv(g, key, &kv);
    if (st) return st;
    if (kv->type != BN_GV_ARRAY) return wrong_type(g, kv, "an array");
    if (et != BN_GV_COUNT && kv->arr_type != et)
        return bn_err(BITNET_ERR_FORMAT, "%s: metadata array '%s' holds %s elements, expected %s", g->file, key, vname(kv->arr_type), vname(et));
    *out = kv;
    return BITNET_OK;
}

bn_gguf_str bn_gguf_arr_str(const bn_gguf_kv *kv, uint64_t i) {
    bn_gguf_str s = {"", 0};
    if (kv->arr_type != BN_GV_STRING || i >= kv->arr_n) return s;
    const uint8_t *p = kv->val + kv->str_off[i];
    memcpy(&s.n, p, 8); s.s = (const char *)p + 8;
    return s;
}
int64_t bn_gguf_arr_int(const bn_gguf_kv *kv, uint64_t i) {
    if (i >= kv->arr_n || kv->arr_type == BN_GV_STRING) return 0;
    int ok;
    if (kv->arr_type == BN_GV_BOOL) return kv->val[i];
    if (kv->arr_type == BN_GV_F32 || kv->arr_type == BN_GV_F64) return 0;
    return int_of(kv->val + i * vsize(kv->arr_type), kv->arr_type, &ok);
}
double bn_gguf_arr_float(const bn_gguf_kv *kv, uint64_t i) {
    if (i >= kv->arr_n) return 0;
    if (kv->arr_type == BN_GV_F32) { float x; memcpy(&x, kv->val + 4 * i, 4); return x; }
    if (kv->arr_type == BN_GV_F64) { double x; memcpy(&x, kv->val + 8 * i, 8); return x; }
    if (kv->arr_type == BN_GV_STRING) return 0;
    int ok; return (double)int_of(kv->val + i * vsize(kv->arr_type), kv->arr_type, &ok);
}
