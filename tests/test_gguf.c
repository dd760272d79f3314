/* test_gguf.c — the GGUF reader and decoders (src/gguf.h) against committed files:
 *   tests/gguf/quants.gguf   every decoder against gguf-py's dequantize (bit-exact), ternary TQ1_0 /
 *                            TQ2_0 / I2_S (both bitnet.cpp layouts) against their int8 values;
 *                            metadata of every type through the getters;
 *   tests/gguf/<model>.gguf  the golden models' ternary weights and scales decoded exactly
 *                            (packed: the 2B-4T codes and weight_scale; master / 1bitLLM: the
 *                            absmean ternarization of the float weights), norms and embeddings;
 *   corrupted files built here (truncated at every byte, bad magic/version, counts and lengths
 *                            past the end, bad alignment, unaligned or overlapping offsets,
 *                            unknown types, bad shapes, missing tensors/metadata, bad codes and
 *                            scales): each one clear error naming the file, never a crash (run
 *                            under `make test SAN=1`), plus random byte corruptions.
 * The files are made by tests/tools/make_gguf.py (optional; not run here). Not tested here: the
 * model loader's GGUF path, the tokenizer and convert (test_gguf_model.c). */
#include "t.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include <stdint.h>

static char *gpath(const char *name) {
    static char p[512]; snprintf(p, sizeof p, "tests/gguf/%s", name); return p;
}
static bn_gguf *open_gguf(const char *name, void **buf) {
    size_t n = 0;
    *buf = t_read_file(gpath(name), &n);
    if (!*buf) { CHECK(name, 0, "cannot read %s", gpath(name)); return NULL; }
    bn_gguf *g = NULL;
    bitnet_status st = bn_gguf_parse(*buf, n, gpath(name), &g);
    CHECK(name, st == BITNET_OK, "parse: %s", bitnet_last_error());
    return st ? NULL : g;
}

/* ---------------------------------------------------------------- quants.gguf */
static void test_quants(void) {
    void *buf; bn_gguf *g = open_gguf("quants.gguf", &buf);
    if (!g) { free(buf); return; }
    CHECK("quants version/alignment", bn_gguf_version(g) == 3 && bn_gguf_alignment(g) == 64, "v%u align %u", bn_gguf_version(g), bn_gguf_alignment(g));
    int64_t v; float f; int b; bn_gguf_str s; const bn_gguf_kv *kv;
    CHECK("meta u8", !bn_gguf_get_int(g, "test.u8", 0, 255, &v) && v == 200, "%lld", (long long)v);
    CHECK("meta i8", !bn_gguf_get_int(g, "test.i8", -128, 127, &v) && v == -100, "%lld", (long long)v);
    CHECK("meta u16", !bn_gguf_get_int(g, "test.u16", 0, 65535, &v) && v == 60000, "%lld", (long long)v);
    CHECK("meta i16", !bn_gguf_get_int(g, "test.i16", INT16_MIN, 0, &v) && v == -30000, "%lld", (long long)v);
    CHECK("meta u32", !bn_gguf_get_int(g, "test.u32", 0, UINT32_MAX, &v) && v == 4000000000LL, "%lld", (long long)v);
    CHECK("meta i32", !bn_gguf_get_int(g, "test.i32", INT32_MIN, 0, &v) && v == -2000000000LL, "%lld", (long long)v);
    CHECK("meta i64", !bn_gguf_get_int(g, "test.i64", INT64_MIN, 0, &v) && v == -(1LL << 40), "%lld", (long long)v);
    CHECK("meta u64 past int64 is an error", bn_gguf_get_int(g, "test.u64", 0, INT64_MAX, &v) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "out of range"), "%s", bitnet_last_error());
    CHECK("meta int range checked", bn_gguf_get_int(g, "test.u32", 0, 100, &v) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "test.u32"), "%s", bitnet_last_error());
    CHECK("meta f32", !bn_gguf_get_f32(g, "test.f32", &f) && f == 0.25f, "%g", f);
    CHECK("meta f64 too big for float", bn_gguf_get_f32(g, "test.f64", &f) == BITNET_ERR_FORMAT, "%s", bitnet_last_error());
    CHECK("meta bool", !bn_gguf_get_bool(g, "test.bool", &b) && b == 1, "%d", b);
    CHECK("meta str", !bn_gguf_get_str(g, "test.str", &s) && s.n == 5 && !memcmp(s.s, "caf\xc3\xa9", 5), "%.*s", (int)s.n, s.s);
    CHECK("meta wrong type", bn_gguf_get_int(g, "test.str", 0, 1, &v) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "is a string, expected an integer")
          && strstr(bitnet_last_error(), "quants.gguf"), "%s", bitnet_last_error());
    CHECK("meta missing", bn_gguf_get_int(g, "test.nope", 0, 1, &v) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "missing metadata key 'test.nope'")
          && strstr(bitnet_last_error(), "quants.gguf"), "%s", bitnet_last_error());
    CHECK("meta arr i32", !bn_gguf_get_arr(g, "test.arr_i32", BN_GV_I32, &kv) && kv->arr_n == 3 && bn_gguf_arr_int(kv, 1) == -2 && bn_gguf_arr_int(kv, 2) == 3, "bad");
    CHECK("meta arr f32", !bn_gguf_get_arr(g, "test.arr_f32", BN_GV_F32, &kv) && kv->arr_n == 2 && bn_gguf_arr_float(kv, 1) == -1.5, "bad");
    CHECK("meta arr str", !bn_gguf_get_arr(g, "test.arr_str", BN_GV_STRING, &kv) && kv->arr_n == 3 && bn_gguf_arr_str(kv, 1).n == 0
          && bn_gguf_arr_str(kv, 2).n == 5 && !memcmp(bn_gguf_arr_str(kv, 2).s, "\xc3\xbc" "ber", 5), "bad");
    CHECK("meta arr wrong element type", bn_gguf_get_arr(g, "test.arr_str", BN_GV_I32, &kv) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "holds string elements"), "%s", bitnet_last_error());
    CHECK("meta arr empty", !bn_gguf_get_arr(g, "test.arr_empty", BN_GV_COUNT, &kv) && kv->arr_n == 0, "bad");

    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q6_k", "tq1_0", "tq2_0"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        char n1[64], n2[64], nm[80];
        snprintf(n1, sizeof n1, "t.%s", types[k]); snprintf(n2, sizeof n2, "t.%s.ref", types[k]);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, n1), *r = bn_gguf_find_tensor(g, n2);
        snprintf(nm, sizeof nm, "decode %s == gguf-py dequantize (bit-exact)", types[k]);
        if (!t || !r) { CHECK(nm, 0, "missing %s", n1); continue; }
        float *a = malloc(t->numel * 4), *e = malloc(t->numel * 4);
        bitnet_status st = bn_gguf_decode_f32(t, 0, t->numel, a);
        bn_gguf_decode_f32(r, 0, r->numel, e);
        int64_t bad = -1;
        for (int64_t i = 0; i < t->numel && bad < 0; i++) if (memcmp(&a[i], &e[i], 4)) bad = i;
        CHECK(nm, st == BITNET_OK && t->numel == 1024 && strcmp(bn_gguf_type_name(t->type), types[k]) == 0 && bad < 0,
              "st %d type %s first diff at %lld: %g vs %g", st, bn_gguf_type_name(t->type), (long long)bad, bad >= 0 ? a[bad] : 0, bad >= 0 ? e[bad] : 0);
        /* a partial range starting at a later block */
        int blk = bn_gguf_type_block(t->type);
        st = bn_gguf_decode_f32(t, 512, 256, a);
        snprintf(nm, sizeof nm, "decode %s range", types[k]);
        CHECK(nm, st == BITNET_OK && !memcmp(a, e + 512, 256 * 4), "st %d", st);
        if (blk > 1) {
            snprintf(nm, sizeof nm, "decode %s unaligned range refused", types[k]);
            CHECK(nm, bn_gguf_decode_f32(t, 1, blk, a) == BITNET_ERR_ARG, "accepted");
        }
        free(a); free(e);
    }
    static const char *tern[] = {"tq1_0", "tq2_0", "i2_s_x86", "i2_s_arm"};
    for (size_t k = 0; k < 4; k++) {
        char n1[64], nq[64], ns[64], nm[96];
        snprintf(n1, sizeof n1, "tern.%s", tern[k]); snprintf(nq, sizeof nq, "tern.%s.q", tern[k]); snprintf(ns, sizeof ns, "tern.%s.s", tern[k]);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, n1), *tq = bn_gguf_find_tensor(g, nq), *ts = bn_gguf_find_tensor(g, ns);
        snprintf(nm, sizeof nm, "ternary %s decodes to its int8 values and scale", tern[k]);
        if (!t || !tq || !ts) { CHECK(nm, 0, "missing"); continue; }
        int8_t *q = malloc(t->numel); float sc = -1, es;
        bn_gguf_decode_f32(ts, 0, 1, &es);
        bn_i2s_layout lay = strstr(tern[k], "arm") ? BN_I2S_ARM : BN_I2S_X86;
        bitnet_status st = bn_gguf_decode_ternary(g, t, lay, q, &sc);
        CHECK(nm, st == BITNET_OK && tq->numel == t->numel && !memcmp(q, tq->data, t->numel) && sc == es, "st %d (%s) scale %g vs %g", st, bitnet_last_error(), sc, es);
        if (t->type == BN_GT_I2_S) {
            snprintf(nm, sizeof nm, "ternary %s read in the other layout differs", tern[k]);
            bn_gguf_decode_ternary(g, t, lay == BN_I2S_ARM ? BN_I2S_X86 : BN_I2S_ARM, q, &sc);
            CHECK(nm, memcmp(q, tq->data, t->numel) != 0, "same values: the layouts are not told apart");
        }
        free(q);
    }
    bn_gguf_free(g); free(buf);
}

/* ---------------------------------------------------------------- golden models */
static const char *SLOT_G[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
static const char *SLOT_H[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

/* The golden's ternary weight [rows, cols] and scale: packed (2B-4T codes + weight_scale) or
 * float (absmean as in tests/golden/README.md, mean summed in double in order). */
static int golden_linear(const bn_st *st, const char *name, int8_t **q, float *scale, int64_t *rows, int64_t *cols) {
    const bn_tensor *t = bn_st_find(st, name);
    if (!t || t->ndim != 2) return -1;
    if (t->dtype == BN_U8) {
        int64_t r4 = t->shape[0], c = t->shape[1];
        *rows = 4 * r4; *cols = c; *q = malloc(*rows * c);
        const uint8_t *p = t->data;
        for (int64_t r = 0; r < r4; r++) for (int64_t j = 0; j < c; j++)
            for (int k = 0; k < 4; k++) (*q)[(r + k * r4) * c + j] = (int8_t)(((p[r * c + j] >> (2 * k)) & 3) - 1);
        char sn[300]; snprintf(sn, sizeof sn, "%s_scale", name);
        const bn_tensor *s = bn_st_find(st, sn);
        if (!s) return -1;
        bn_tensor_to_f32(s, scale, 0, 1);
        return 0;
    }
    int64_t n = t->numel;
    *rows = t->shape[0]; *cols = t->shape[1];
    float *w = malloc(n * 4); *q = malloc(n);
    bn_tensor_to_f32(t, w, 0, n);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += fabsf(w[i]);
    float mean = (float)(sum / (double)n); if (mean < 1e-5f) mean = 1e-5f;
    float g = 1.0f / mean;
    for (int64_t i = 0; i < n; i++) { float r = rintf(w[i] * g); (*q)[i] = (int8_t)(r > 1 ? 1 : r < -1 ? -1 : r); }
    *scale = mean; free(w);
    return 0;
}

static void test_model(const char *file, const char *golden, int onebit, int f16_embed) {
    void *buf; bn_gguf *g = open_gguf(file, &buf);
    if (!g) { free(buf); return; }
    char dir[512], nm[256];
    snprintf(dir, sizeof dir, "%s/%s", t_golden(), golden);
    bn_st *st = NULL;
    if (bn_st_open_dir(dir, &st)) { CHECK(file, 0, "golden %s: %s", dir, bitnet_last_error()); bn_gguf_free(g); free(buf); return; }
    int64_t L = 0;
    bn_gguf_str arch;
    if (bn_gguf_get_str(g, "general.architecture", &arch) == BITNET_OK) {
        char key[128]; snprintf(key, sizeof key, "%.*s.block_count", (int)arch.n, arch.s);
        bn_gguf_get_int(g, key, 1, 1000, &L);
    }
    snprintf(nm, sizeof nm, "%s: architecture and block_count", file);
    CHECK(nm, L >= 2, "L = %lld", (long long)L);
    int bad = 0, n = 0; char why[512] = "";
    for (int l = 0; l < L; l++)
        for (int s = 0; s < 7; s++) {
            char hn[256], base[128];
            snprintf(hn, sizeof hn, "model.layers.%d.%s.weight", l, SLOT_H[s]);
            snprintf(base, sizeof base, "blk.%d.%s", l, SLOT_G[s]);
            int8_t *eq = NULL; float es = 0; int64_t R, C;
            if (golden_linear(st, hn, &eq, &es, &R, &C)) { bad++; snprintf(why, sizeof why, "golden %s unreadable", hn); free(eq); continue; }
            int8_t *q = malloc(R * C); float sc = -1;
            bitnet_status rs = bn_gguf_read_linear(g, base, R, C, BN_I2S_X86, q, &sc);
            n++;
            if (rs || memcmp(q, eq, R * C) || sc != es) {
                bad++;
                snprintf(why, sizeof why, "%s: st %d (%s), scale %.9g vs golden %.9g, values %s", base, rs, rs ? bitnet_last_error() : "",
                         sc, es, rs ? "-" : memcmp(q, eq, R * C) ? "differ" : "equal");
            }
            free(q); free(eq);
        }
    snprintf(nm, sizeof nm, "%s: every BitLinear weight decodes to the golden's ternary values and scale (exact)", file);
    CHECK(nm, bad == 0 && n == 7 * L, "%d of %d bad; %s", bad, n, why);

    /* norms exact, embedding exact (bf16/f32) or within fp16 rounding (f16) */
    const bn_tensor *e = bn_st_find(st, "model.embed_tokens.weight");
    int64_t V = e->shape[0], H = e->shape[1];
    float *a = malloc(V * H * 4), *x = malloc(V * H * 4);
    bitnet_status rs = bn_gguf_read_float(g, "token_embd", V, H, a);
    bn_tensor_to_f32(e, x, 0, V * H);
    /* fp16 round-to-nearest: |err| <= 2^-11 |x| for normals, <= 2^-25 (half the subnormal step) below */
    double maxrel = 0, over = 0; int64_t ne = 0;
    for (int64_t i = 0; i < V * H; i++) {
        if (a[i] != x[i]) ne++;
        double d = fabs((double)a[i] - x[i]);
        double r = d / fmax(fabs(x[i]), 6.103515625e-05);
        if (r > maxrel) maxrel = r;
        double lim = fmax(fabs(x[i]) / 2048.0, ldexp(1.0, -25));
        if (d > lim && d - lim > over) over = d - lim;
    }
    if (f16_embed) {
        snprintf(nm, sizeof nm, "%s: f16 token_embd within fp16 rounding of the golden (max rel %.2e, %lld of %lld values rounded)", file, maxrel, (long long)ne, (long long)(V * H));
        CHECK(nm, rs == BITNET_OK && over == 0, "st %d %s; exceeds the fp16 rounding bound by %g", rs, bitnet_last_error(), over);
    } else {
        snprintf(nm, sizeof nm, "%s: token_embd exact", file);
        CHECK(nm, rs == BITNET_OK && ne == 0, "st %d %s, %lld differ", rs, bitnet_last_error(), (long long)ne);
    }
    free(a); free(x);
    int nb = 0;
    for (int l = 0; l < L; l++) {
        const char *hn[4] = {"input_layernorm", "post_attention_layernorm", onebit ? "self_attn.inner_attn_ln" : "self_attn.attn_sub_norm", onebit ? "mlp.ffn_layernorm" : "mlp.ffn_sub_norm"};
        const char *gn[4] = {"attn_norm", "ffn_norm", "attn_sub_norm", "ffn_sub_norm"};
        for (int k = 0; k < 4; k++) {
            char h[256], b2[128]; snprintf(h, sizeof h, "model.layers.%d.%s.weight", l, hn[k]); snprintf(b2, sizeof b2, "blk.%d.%s", l, gn[k]);
            const bn_tensor *t = bn_st_find(st, h);
            if (!t) { nb++; continue; }
            float *u = malloc(t->numel * 4), *w = malloc(t->numel * 4);
            bn_tensor_to_f32(t, w, 0, t->numel);
            if (bn_gguf_read_float(g, b2, 0, t->numel, u) || memcmp(u, w, t->numel * 4)) nb++;
            free(u); free(w);
        }
    }
    snprintf(nm, sizeof nm, "%s: norms exact", file);
    CHECK(nm, nb == 0, "%d norms differ", nb);
    const bn_gguf_tensor *out = bn_gguf_find_tensor(g, "output.weight");
    snprintf(nm, sizeof nm, "%s: output.weight present exactly when the golden has lm_head", file);
    CHECK(nm, (out != NULL) == (bn_st_find(st, "lm_head.weight") != NULL), "mismatch");
    bn_st_free(st); bn_gguf_free(g); free(buf);
}

/* ---------------------------------------------------------------- corrupted files */
typedef struct { uint8_t *b; size_t n, cap; } obuf;
static void put(obuf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) { o->cap = (o->n + n) * 2 + 64; o->b = realloc(o->b, o->cap); }
    memcpy(o->b + o->n, p, n); o->n += n;
}
static void put32(obuf *o, uint32_t v) { put(o, &v, 4); }
static void put64(obuf *o, uint64_t v) { put(o, &v, 8); }
static void putstr(obuf *o, const char *s) { put64(o, strlen(s)); put(o, s, strlen(s)); }

typedef struct {        /* one metadata entry: type, a scalar/string value or an array header */
    const char *key; uint32_t type; uint64_t u; const char *s;
    uint32_t et; uint64_t an; int an_real; /* array: element type, claimed count, elements written */
    uint64_t slen; /* nonzero: claimed string length (string values) */
} kvs;
typedef struct { const char *name; uint32_t nd; uint64_t ne[5]; uint32_t type; uint64_t off; } tis;
typedef struct {
    const char *magic; uint32_t ver; uint64_t nkv_extra, nt_extra; uint32_t align;
    kvs kv[8]; int nkv; tis t[4]; int nt; size_t data; uint8_t fill; int fill_at, fill_n; uint8_t fillv;
} spec;

static size_t vsz(uint32_t t) { return t == 0 || t == 1 || t == 7 ? 1 : t == 2 || t == 3 ? 2 : t == 4 || t == 5 || t == 6 ? 4 : 8; }
static void build(const spec *s, obuf *o) {
    o->n = 0;
    put(o, s->magic ? s->magic : "GGUF", 4);
    put32(o, s->ver ? s->ver : 3);
    put64(o, s->nt + s->nt_extra); put64(o, s->nkv + s->nkv_extra);
    for (int i = 0; i < s->nkv; i++) {
        const kvs *k = &s->kv[i];
        putstr(o, k->key); put32(o, k->type);
        if (k->type == 8) { put64(o, k->slen ? k->slen : strlen(k->s)); put(o, k->s, strlen(k->s)); }
        else if (k->type == 9) {
            put32(o, k->et); put64(o, k->an);
            for (int j = 0; j < k->an_real; j++) { uint64_t z = k->u; put(o, &z, k->et == 8 ? 8 : vsz(k->et)); }
        } else put(o, &k->u, vsz(k->type));
    }
    for (int i = 0; i < s->nt; i++) {
        const tis *t = &s->t[i];
        putstr(o, t->name); put32(o, t->nd);
        for (uint32_t d = 0; d < t->nd && d < 5; d++) put64(o, t->ne[d]);
        put32(o, t->type); put64(o, t->off);
    }
    uint32_t al = s->align ? s->align : 32;
    while (o->n % al) put(o, "", 1);
    size_t d0 = o->n;
    for (size_t i = 0; i < s->data; i++) put(o, &s->fill, 1);
    for (int i = 0; i < s->fill_n && d0 + s->fill_at + i < o->n; i++) o->b[d0 + s->fill_at + i] = s->fillv;
}
/* A valid base: 3 metadata entries, an F32 [2, 8] tensor at 0 and a TQ2_0 [1, 256] at 64. */
static spec base_spec(void) {
    spec s = {0};
    s.kv[0] = (kvs){.key = "general.architecture", .type = 8, .s = "bitnet"};
    s.kv[1] = (kvs){.key = "general.alignment", .type = 4, .u = 32};
    s.kv[2] = (kvs){.key = "bitnet.block_count", .type = 4, .u = 1};
    s.nkv = 3;
    s.t[0] = (tis){"a.weight", 2, {8, 2}, 0, 0};
    s.t[1] = (tis){"b.weight", 2, {256, 1}, 35, 64};
    s.nt = 2; s.data = 64 + 66;
    return s;
}
static int expect(const char *name, const spec *s, bitnet_status want, const char *msg) {
    obuf o = {0}; build(s, &o);
    bn_gguf *g = NULL;
    bitnet_status st = bn_gguf_parse(o.b, o.n, "bad.gguf", &g);
    const char *e = bitnet_last_error();
    CHECK(name, st == want && g == NULL && strstr(e, "bad.gguf") && strstr(e, msg), "status %d (want %d), message '%s' (want '%s')", st, want, e, msg);
    bn_gguf_free(g); free(o.b);
    return st;
}

static void test_corrupt(void) {
    obuf o = {0};
    spec s = base_spec();
    build(&s, &o);
    bn_gguf *g = NULL;
    bitnet_status st = bn_gguf_parse(o.b, o.n, "bad.gguf", &g);
    CHECK("corrupt: the base file is valid", st == BITNET_OK, "%s", bitnet_last_error());
    if (g) {
        const bn_gguf_tensor *t; int8_t q[256]; float sc;
        CHECK("corrupt: missing tensor", bn_gguf_read_linear(g, "zzz", 1, 256, BN_I2S_X86, q, &sc) == BITNET_ERR_FORMAT
              && strstr(bitnet_last_error(), "bad.gguf: missing tensor 'zzz.weight'"), "%s", bitnet_last_error());
        CHECK("corrupt: shape mismatch", bn_gguf_get_tensor(g, "b", 2, 256, &t) == BITNET_ERR_FORMAT
              && strstr(bitnet_last_error(), "bad.gguf: tensor 'b.weight' has shape") && strstr(bitnet_last_error(), "expected"), "%s", bitnet_last_error());
        CHECK("corrupt: shape mismatch (vector)", bn_gguf_get_tensor(g, "a", 0, 16, &t) == BITNET_ERR_FORMAT, "accepted");
        int64_t v;
        CHECK("corrupt: missing metadata", bn_gguf_get_int(g, "bitnet.embedding_length", 1, 1 << 20, &v) == BITNET_ERR_FORMAT
              && strstr(bitnet_last_error(), "bad.gguf: missing metadata key 'bitnet.embedding_length'"), "%s", bitnet_last_error());
        CHECK("corrupt: zero-scale TQ2_0 block decodes to zeros", bn_gguf_read_linear(g, "b", 1, 256, BN_I2S_X86, q, &sc) == BITNET_OK && sc == 0 && q[0] == 0 && q[255] == 0, "%s", bitnet_last_error());
        bn_gguf_free(g);
    }
    /* truncated at every byte: always a FORMAT error naming the file */
    int bad = 0; size_t at = 0; char msg[512] = "";
    for (size_t n = 0; n < o.n; n++) {
        bn_gguf *h = NULL;
        uint8_t *cp = malloc(n ? n : 1); memcpy(cp, o.b, n);
        bitnet_status r = bn_gguf_parse(cp, n, "bad.gguf", &h);
        if (r != BITNET_ERR_FORMAT || h || !strstr(bitnet_last_error(), "bad.gguf")) { if (!bad) { at = n; snprintf(msg, sizeof msg, "%d %s", r, bitnet_last_error()); } bad++; }
        bn_gguf_free(h); free(cp);
    }
    CHECK("corrupt: truncated at every byte gives a format error", bad == 0, "%d cuts wrong, first at %zu: %s", bad, at, msg);
    free(o.b);

    s = base_spec(); s.magic = "GGUG"; expect("corrupt: bad magic", &s, BITNET_ERR_FORMAT, "bad magic");
    s = base_spec(); s.ver = 1; expect("corrupt: version 1", &s, BITNET_ERR_UNSUPPORTED, "version 1");
    s = base_spec(); s.ver = 7; expect("corrupt: unknown version", &s, BITNET_ERR_UNSUPPORTED, "unknown GGUF version 7");
    s = base_spec(); s.ver = 3u << 24; expect("corrupt: big-endian", &s, BITNET_ERR_UNSUPPORTED, "big-endian");
    s = base_spec(); s.nkv_extra = 1ull << 60; expect("corrupt: metadata count past the end", &s, BITNET_ERR_FORMAT, "metadata count");
    s = base_spec(); s.nt_extra = 1ull << 40; expect("corrupt: tensor count past the end", &s, BITNET_ERR_FORMAT, "tensor count");
    s = base_spec(); s.nt_extra = 1; expect("corrupt: one tensor too many", &s, BITNET_ERR_FORMAT, "tensor name");
    s = base_spec(); s.kv[0].slen = 1ull << 50; expect("corrupt: string length past the end", &s, BITNET_ERR_FORMAT, "past the end");
    s = base_spec(); s.kv[3] = (kvs){.key = "x.arr", .type = 9, .et = 4, .an = 1ull << 40, .an_real = 2}; s.nkv = 4;
    expect("corrupt: array length past the end", &s, BITNET_ERR_FORMAT, "runs past the end");
    s = base_spec(); s.kv[3] = (kvs){.key = "x.arr", .type = 9, .et = 8, .an = 1ull << 40, .an_real = 1}; s.nkv = 4;
    expect("corrupt: string array length past the end", &s, BITNET_ERR_FORMAT, "strings");
    s = base_spec(); s.kv[3] = (kvs){.key = "x.arr", .type = 9, .et = 9, .an = 1}; s.nkv = 4;
    expect("corrupt: nested array", &s, BITNET_ERR_UNSUPPORTED, "nested arrays");
    s = base_spec(); s.kv[3] = (kvs){.key = "x.v", .type = 99}; s.nkv = 4; expect("corrupt: unknown value type", &s, BITNET_ERR_FORMAT, "unknown value type 99");
    s = base_spec(); s.kv[3] = (kvs){.key = "x.b", .type = 7, .u = 2}; s.nkv = 4; expect("corrupt: bool 2", &s, BITNET_ERR_FORMAT, "not 0 or 1");
    s = base_spec(); s.kv[3] = (kvs){.key = "bitnet.block_count", .type = 4, .u = 2}; s.nkv = 4; expect("corrupt: duplicate key", &s, BITNET_ERR_FORMAT, "'bitnet.block_count' appears twice");
    s = base_spec(); s.kv[3] = (kvs){.key = "", .type = 4}; s.nkv = 4; expect("corrupt: empty key", &s, BITNET_ERR_FORMAT, "empty metadata key");
    s = base_spec(); s.kv[1].u = 48; s.align = 16; expect("corrupt: alignment not a power of two", &s, BITNET_ERR_FORMAT, "power of two");
    s = base_spec(); s.kv[1].type = 10; expect("corrupt: alignment not u32", &s, BITNET_ERR_FORMAT, "not a u32");
    s = base_spec(); s.t[1].off = 48; expect("corrupt: unaligned offset", &s, BITNET_ERR_FORMAT, "not a multiple of the alignment 32");
    s = base_spec(); s.t[1].off = 32; expect("corrupt: overlapping tensors", &s, BITNET_ERR_FORMAT, "overlap");
    s = base_spec(); s.data = 64 + 65; expect("corrupt: tensor data past the end", &s, BITNET_ERR_FORMAT, "'b.weight' (66 bytes at data offset 64) runs past the end");
    s = base_spec(); s.t[1].off = 1ull << 62; expect("corrupt: huge offset", &s, BITNET_ERR_FORMAT, "runs past the end");
    s = base_spec(); s.t[1].type = 99; expect("corrupt: unknown tensor type", &s, BITNET_ERR_UNSUPPORTED, "unknown or unsupported tensor type 99");
    s = base_spec(); s.t[1].type = 12; expect("corrupt: unsupported tensor type (q4_k)", &s, BITNET_ERR_UNSUPPORTED, "tensor type 12");
    s = base_spec(); s.t[1].name = "a.weight"; expect("corrupt: duplicate tensor", &s, BITNET_ERR_FORMAT, "'a.weight' appears twice");
    s = base_spec(); s.t[0].nd = 0; expect("corrupt: zero dimensions", &s, BITNET_ERR_FORMAT, "0 dimensions");
    s = base_spec(); s.t[0].nd = 5; expect("corrupt: five dimensions", &s, BITNET_ERR_FORMAT, "5 dimensions");
    s = base_spec(); s.t[0].ne[1] = 0; expect("corrupt: a zero dimension", &s, BITNET_ERR_FORMAT, "dimension 1 is 0");
    s = base_spec(); s.t[0].ne[0] = 1ull << 40; s.t[0].ne[1] = 1ull << 40; expect("corrupt: shape overflow", &s, BITNET_ERR_FORMAT, "overflows");
    s = base_spec(); s.t[0].ne[0] = 1ull << 62; s.t[0].ne[1] = 1; expect("corrupt: size overflow", &s, BITNET_ERR_FORMAT, "'a.weight'");
    s = base_spec(); s.t[1].ne[0] = 100; expect("corrupt: rows not a multiple of the block", &s, BITNET_ERR_FORMAT, "not a multiple of the block size 256");
    s = base_spec(); s.t[1].type = 36; s.t[1].ne[0] = 6; expect("corrupt: i2_s count not a multiple of 4", &s, BITNET_ERR_FORMAT, "not a multiple of 4");

    /* bad codes and scales: parse fine, decode refuses */
    struct { const char *name; uint32_t type; uint64_t ne0; int at, n; uint8_t v; bitnet_status want; const char *msg; } dc[] = {
        {"decode: tq2_0 code 3", 35, 256, 0, 1, 0xff, BITNET_ERR_FORMAT, "invalid code 3"},
        {"decode: tq2_0 non-finite scale", 35, 256, 65, 1, 0x7c, BITNET_ERR_FORMAT, "block 0 has scale"},
        {"decode: i2_s code 3", 36, 256, 0, 1, 0xc0, BITNET_ERR_FORMAT, "invalid code 3"},
        {"decode: i2_s NaN scale", 36, 256, 64, 4, 0xff, BITNET_ERR_FORMAT, "scale"},
        {"decode: i2_s block does not divide the count", 36, 96, 0, 0, 0, BITNET_ERR_UNSUPPORTED, "128-value block"},
    };
    for (size_t i = 0; i < sizeof dc / sizeof *dc; i++) {
        s = base_spec(); s.t[1].type = dc[i].type; s.t[1].ne[0] = dc[i].ne0; s.fill = 0x55; s.data = 64 + 96 + 32;
        s.fill_at = 64 + dc[i].at; s.fill_n = dc[i].n; s.fillv = dc[i].v;
        if (dc[i].type == 35 && dc[i].at != 65) { s.fill_at = 64; }
        obuf b = {0}; build(&s, &b);
        if (dc[i].type == 36 && dc[i].at != 64) { float one = 0.5f; memcpy(b.b + b.n - (64 + 96 + 32) + 64 + dc[i].ne0 / 4, &one, 4); }
        if (dc[i].type == 35 && dc[i].at != 65) { uint16_t one = 0x3c00; memcpy(b.b + b.n - (64 + 96 + 32) + 64 + 64, &one, 2); }
        bn_gguf *h = NULL; int8_t q[256]; float sc;
        bitnet_status r = bn_gguf_parse(b.b, b.n, "bad.gguf", &h), r2 = -1;
        if (!r) r2 = bn_gguf_decode_ternary(h, bn_gguf_find_tensor(h, "b.weight"), BN_I2S_X86, q, &sc);
        CHECK(dc[i].name, r == BITNET_OK && r2 == dc[i].want && strstr(bitnet_last_error(), "bad.gguf") && strstr(bitnet_last_error(), dc[i].msg),
              "parse %d decode %d: %s", r, r2, bitnet_last_error());
        bn_gguf_free(h); free(b.b);
    }
    /* TQ2_0 with two blocks of different scales: refused (per-block scales) */
    s = base_spec(); s.t[1].ne[0] = 512; s.data = 64 + 132; s.fill = 0x56; /* codes 2,1,1,1: element 32j*4+m is +1 */
    obuf b = {0}; build(&s, &b);
    uint16_t d1 = 0x3c00, d2 = 0x4000;
    memcpy(b.b + b.n - 132 + 64, &d1, 2); memcpy(b.b + b.n - 132 + 66 + 64, &d2, 2);
    bn_gguf *h = NULL; int8_t q[512]; float sc;
    st = bn_gguf_parse(b.b, b.n, "bad.gguf", &h);
    bitnet_status r2 = st ? st : bn_gguf_decode_ternary(h, bn_gguf_find_tensor(h, "b.weight"), BN_I2S_X86, q, &sc);
    CHECK("decode: tq2_0 block scales that differ are refused", r2 == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "block scales that differ"), "%d %s", r2, bitnet_last_error());
    bn_gguf_free(h);
    /* the same with a sign flip only: accepted, block 1 negated */
    d2 = 0xbc00; memcpy(b.b + b.n - 132 + 66 + 64, &d2, 2);
    st = bn_gguf_parse(b.b, b.n, "bad.gguf", &h);
    r2 = st ? st : bn_gguf_decode_ternary(h, bn_gguf_find_tensor(h, "b.weight"), BN_I2S_X86, q, &sc);
    CHECK("decode: tq2_0 negative block scale flips the block", r2 == BITNET_OK && sc == 1.0f && q[0] == 1 && q[32] == 0 && q[256] == -1 && q[256 + 32] == 0, "%d %s", r2, bitnet_last_error());
    bn_gguf_free(h); free(b.b);
}

/* Random byte corruptions of a real file's header and tables: never a crash; whatever parses decodes. */
static void test_fuzz(void) {
    size_t n; uint8_t *orig = t_read_file(gpath("quants.gguf"), &n);
    if (!orig) { CHECK("fuzz", 0, "no quants.gguf"); return; }
    const bn_gguf_kv *kv0; bn_gguf *g0 = NULL; bn_gguf_parse(orig, n, "q", &g0);
    size_t hdr = g0 ? (size_t)(bn_gguf_tensor_at(g0, 0)->data - orig) : 2048;
    (void)kv0; bn_gguf_free(g0);
    uint8_t *cp = malloc(n);
    uint32_t seed = 12345; int parsed = 0, crashed = 0;
    float *f = malloc(1 << 16); int8_t *q = malloc(1 << 14);
    for (int it = 0; it < 3000; it++) {
        memcpy(cp, orig, n);
        int flips = 1 + (it % 4);
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % hdr;
            seed = seed * 1103515245u + 12345u;
            cp[at] = (it & 1) ? (uint8_t)(seed >> 16) : cp[at] ^ (uint8_t)(1u << ((seed >> 16) & 7));
        }
        bn_gguf *g = NULL;
        if (bn_gguf_parse(cp, n, "fuzz.gguf", &g) == BITNET_OK) {
            parsed++;
            for (int i = 0; i < bn_gguf_n_tensors(g); i++) {
                const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
                if (t->type == BN_GT_I2_S || t->type == BN_GT_TQ1_0 || t->type == BN_GT_TQ2_0) {
                    if (t->numel <= (1 << 14)) bn_gguf_decode_ternary(g, t, BN_I2S_X86, q, f);
                } else {
                    int64_t m = t->numel < 4096 ? t->numel : 4096, b = bn_gguf_type_block(t->type);
                    bn_gguf_decode_f32(t, 0, m - m % b, f);
                }
            }
            for (int i = 0; i < bn_gguf_n_kv(g); i++) {
                const bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
                if (kv->type == BN_GV_ARRAY) for (uint64_t j = 0; j < kv->arr_n && j < 8; j++) { bn_gguf_arr_str(kv, j); bn_gguf_arr_int(kv, j); bn_gguf_arr_float(kv, j); }
            }
            bn_gguf_free(g);
        } else if (!bitnet_last_error()[0]) crashed++;
    }
    CHECK("fuzz: 3000 corrupted headers give a status with a message, never a crash", crashed == 0, "%d errors without a message", crashed);
    printf("# fuzz: %d of 3000 corrupted files still parsed\n", parsed);
    free(f); free(q); free(cp); free(orig);
}

/* The encoders (gguf_encode.c) on t.f32 of quants.gguf give exactly the bytes of t.<type>, which
 * numpy / gguf-py wrote (f16, bf16 rounded to nearest even; Q8_0 / Q4_0 by gguf-py's
 * quantize, ggml's reference rounding; Q6_K by make_gguf.py's plain encoder); an encoded tensor
 * decodes within half a step of each value; a row not a multiple of the block is refused. */
static void test_encode(void) {
    void *buf; bn_gguf *g = open_gguf("quants.gguf", &buf);
    if (!g) { free(buf); return; }
    const bn_gguf_tensor *x = bn_gguf_find_tensor(g, "t.f32");
    float *f = malloc(1024 * 4), *d = malloc(1024 * 4);
    uint8_t *o = malloc(4096);
    bn_gguf_decode_f32(x, 0, 1024, f);
    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q6_k"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        char n1[64], nm[120];
        snprintf(n1, sizeof n1, "t.%s", types[k]);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, n1);
        if (!t) { CHECK(n1, 0, "missing"); continue; }
        bitnet_status st = bn_gguf_encode_f32(t->type, f, 1024, 512, n1, o);
        size_t i = 0;
        while (!st && i < t->nbytes && o[i] == t->data[i]) i++;
        snprintf(nm, sizeof nm, "encode %s == the bytes gguf-py / make_gguf.py wrote (%zu bytes)", types[k], t->nbytes);
        CHECK(nm, st == BITNET_OK && i == t->nbytes, "st %d, first difference at byte %zu", st, i);
        int blk = bn_gguf_type_block(t->type);
        if (blk > 1) {
            st = bn_gguf_encode_f32(t->type, f, 1024 - blk / 2, 512 - blk / 2, n1, o);
            snprintf(nm, sizeof nm, "encode %s: a row not a multiple of %d is refused", types[k], blk);
            CHECK(nm, st == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), n1), "%d %s", st, bitnet_last_error());
        }
    }
    /* round trip error: Q8_0 within d/2 of each value, d = max|block| / 127, plus 127 times the
     * fp16 rounding error of d (the codes are computed with the unrounded d) */
    bn_gguf_tensor q = *bn_gguf_find_tensor(g, "t.q8_0");
    bn_gguf_encode_f32(BN_GT_Q8_0, f, 1024, 512, "q8", o);
    q.data = o;
    bn_gguf_decode_f32(&q, 0, 1024, d);
    int worse = 0;
    for (int b = 0; b < 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(f[32 * b + j]));
        float dd = amax / 127, d16 = bn_f16_to_f32(bn_f32_to_f16(dd)), bound = dd * 0.5f + 127 * fabsf(d16 - dd) + 1e-7f;
        for (int j = 0; j < 32; j++) worse += fabsf(d[32 * b + j] - f[32 * b + j]) > bound;
    }
    CHECK("encode q8_0 -> decode within half a step", worse == 0, "%d values further", worse);
    free(f); free(d); free(o);
    bn_gguf_free(g); free(buf);
}

int main(void) {
    test_quants();
    test_encode();
    test_model("packed-tq2_0.gguf", "bitnet-b158-packed", 0, 0);
    test_model("packed-tq1_0.gguf", "bitnet-b158-packed", 0, 1);
    test_model("packed-i2_s.gguf", "bitnet-b158-packed", 0, 0);
    test_model("master-i2_s.gguf", "bitnet-b158-master", 0, 0);
    test_model("1bitllm-i2_s.gguf", "bitnet-1bitllm", 1, 0);
    test_corrupt();
    test_fuzz();
    T_DONE();
}
