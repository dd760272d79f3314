/* test_loader_errors.c — bad input gives a clear error naming the file/tensor and the problem,
 * never a crash: missing/truncated files, missing tensors, wrong shapes and dtypes, unknown
 * model_type, config fields out of range, bad packed codes, ids out of vocabulary, and a fuzz
 * of random header corruptions (run under `make test SAN=1` for ASan/UBSan); non-finite
 * embeddings/heads and overflowing weight scales (issue 9 F4); a shape error found before a
 * huge allocation (F7). Each case is a deliberately corrupted copy of a golden model (or a
 * small hand-made folder) in a temp dir. */
#include "t.h"
#include "bitnet.h"
#include "model/model.h"
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static const char *SRC = "bitnet-b158-packed";   /* golden model make_case copies */

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb"); fwrite(d, 1, n, f); fclose(f);
}
static char *golden_path(const char *name) {
    static char p[512]; snprintf(p, sizeof p, "%s/%s/%s", t_golden(), SRC, name); return p;
}
/* Make tmpdir/<case>/ with config (optionally edited: replace `from` by `to`) and a safetensors
 * copy (optionally rewritten by `mut`). Returns the folder. */
typedef void (*mutator)(bn_st_writer *w, const bn_tensor *t, void *arg);
static const char *make_case(const char *name, const char *from, const char *to, mutator mut, void *arg) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    size_t n;
    char *cfg = t_read_file(golden_path("config.json"), &n);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (from) {
        char *p = strstr(cfg, from);
        if (!p) { printf("FAIL harness: '%s' not in config\n", from); exit(1); }
        char *out = malloc(n + strlen(to) + 1);
        size_t a = (size_t)(p - cfg);
        memcpy(out, cfg, a); strcpy(out + a, to); strcat(out, p + strlen(from));
        write_file(path, out, strlen(out)); free(out);
    } else write_file(path, cfg, n);
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    bn_st *st; bn_st_open(golden_path("model.safetensors"), &st);
    bn_st_writer *w; bn_st_writer_new(&w);
    for (int i = 0; i < bn_st_count(st); i++) {
        const bn_tensor *t = bn_st_at(st, i);
        if (mut) mut(w, t, arg);
        else bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    bn_st_writer_save(w, path);
    bn_st_writer_free(w); bn_st_free(st);
    return dir;
}

static void expect(const char *name, const char *dir, bitnet_status want, const char *s1, const char *s2) {
    bitnet_model *m = NULL;
    bitnet_status s = bitnet_model_load(dir, &m);
    const char *e = bitnet_last_error();
    CHECK(name, s == want && m == NULL && strstr(e, s1) && (!s2 || strstr(e, s2)),
          "status %d (want %d), message: %s", s, want, e);
    bitnet_model_free(m);
}

static void drop(bn_st_writer *w, const bn_tensor *t, void *arg) {
    if (!strcmp(t->name, arg)) return;
    bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
}
static void reshape(bn_st_writer *w, const bn_tensor *t, void *arg) {
    if (!strcmp(t->name, arg)) { int64_t sh[2] = {t->shape[0], t->shape[1] - 1}; bn_st_writer_add(w, t->name, t->dtype, 2, sh, t->data); return; }
    bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
}
static void redtype(bn_st_writer *w, const bn_tensor *t, void *arg) {
    if (!strcmp(t->name, arg)) { int64_t sh[1] = {t->numel / 4 > 0 ? t->numel / 4 : 1}; bn_st_writer_add(w, t->name, BN_I32, 1, sh, t->data); return; }
    bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
}
static void badcode(bn_st_writer *w, const bn_tensor *t, void *arg) {
    if (!strcmp(t->name, arg)) {
        uint8_t *d = malloc(t->nbytes); memcpy(d, t->data, t->nbytes); d[7] = 0xff;
        bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, d); free(d); return;
    }
    bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
}

/* Set element 3 of tensor `name` (struct setval) to a value, stored as F32. */
struct setval { const char *name; float v; };
static void setval(bn_st_writer *w, const bn_tensor *t, void *arg) {
    struct setval *a = arg;
    if (strcmp(t->name, a->name)) { bn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data); return; }
    float *f = malloc((size_t)t->numel * 4);
    bn_tensor_to_f32(t, f, 0, t->numel);
    f[t->numel > 3 ? 3 : 0] = a->v;
    bn_st_writer_add(w, t->name, BN_F32, t->ndim, t->shape, f);
    free(f);
}

/* F4: NaN/inf in embed / lm_head, and finite weight scales whose multiplier overflows. */
static void test_nonfinite(void) {
    struct setval nan_e = {"model.embed_tokens.weight", NAN}, inf_h = {"lm_head.weight", INFINITY};
    expect("NaN in embed_tokens is rejected", make_case("nan_embed", NULL, NULL, setval, &nan_e), BITNET_ERR_FORMAT, "model.embed_tokens.weight", "non-finite");
    SRC = "bitnet-1bitllm";   /* untied head */
    expect("inf in lm_head is rejected", make_case("inf_head", NULL, NULL, setval, &inf_h), BITNET_ERR_FORMAT, "lm_head.weight", "non-finite");
    struct setval big_m = {"model.layers.1.mlp.up_proj.weight", 3.3e38f};
    expect("master weight with mean|W| > 2^64 is rejected", make_case("big_master", NULL, NULL, setval, &big_m), BITNET_ERR_FORMAT, "up_proj.weight", "overflow");
    SRC = "bitnet-b158-packed";
    struct setval big = {"model.layers.0.self_attn.k_proj.weight_scale", 3.3e38f};
    expect("weight_scale 3.3e38 (autobitlinear) is rejected", make_case("big_scale", NULL, NULL, setval, &big), BITNET_ERR_FORMAT, "k_proj.weight_scale", "overflow");
    SRC = "bitnet-b158-packed-bitlinear";
    struct setval tiny = {"model.layers.2.mlp.down_proj.weight_scale", 1e-40f};
    expect("weight_scale 1e-40 under bitlinear (1/scale) is rejected", make_case("tiny_scale", NULL, NULL, setval, &tiny), BITNET_ERR_FORMAT, "down_proj.weight_scale", "bitlinear");
    struct setval ok = {"model.layers.2.mlp.down_proj.weight_scale", 1e-3f};
    const char *d = make_case("ok_scale", NULL, NULL, setval, &ok);
    bitnet_model *m = NULL;
    CHECK("weight_scale 1e-3 under bitlinear still loads", bitnet_model_load(d, &m) == BITNET_OK, "%s", bitnet_last_error());
    bitnet_model_free(m);
    SRC = "bitnet-b158-packed";
}

/* F7: a folder of a few MB whose config makes q_proj 4M x 64k (256 GiB as int8) but whose
 * q_proj tensor has the wrong shape: a shape error, found before allocating rows x cols. */
static void test_shape_before_alloc(void) {
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/huge", tmpdir); mkdir(dir, 0755);
    const char *cfg = "{\"model_type\": \"bitnet\", \"vocab_size\": 1, \"hidden_size\": 65536, \"intermediate_size\": 1,"
                      " \"num_hidden_layers\": 1, \"num_attention_heads\": 1024, \"num_key_value_heads\": 1024, \"head_dim\": 4096}";
    snprintf(p, sizeof p, "%s/config.json", dir); write_file(p, cfg, strlen(cfg));
    uint16_t *ones = malloc((size_t)4194304 * 2);
    for (size_t i = 0; i < 4194304; i++) ones[i] = 0x3f80;   /* bf16 1.0 */
    bn_st_writer *w; bn_st_writer_new(&w);
    int64_t e[2] = {1, 65536}, c1[1] = {65536}, q1[1] = {4194304}, f1[1] = {1}, bad[2] = {1, 1};
    bn_st_writer_add(w, "model.embed_tokens.weight", BN_BF16, 2, e, ones);
    bn_st_writer_add(w, "model.norm.weight", BN_BF16, 1, c1, ones);
    bn_st_writer_add(w, "model.layers.0.input_layernorm.weight", BN_BF16, 1, c1, ones);
    bn_st_writer_add(w, "model.layers.0.post_attention_layernorm.weight", BN_BF16, 1, c1, ones);
    bn_st_writer_add(w, "model.layers.0.self_attn.attn_sub_norm.weight", BN_BF16, 1, q1, ones);
    bn_st_writer_add(w, "model.layers.0.mlp.ffn_sub_norm.weight", BN_BF16, 1, f1, ones);
    uint8_t b = 0x55, sc[2] = {0x80, 0x3f};
    bn_st_writer_add(w, "model.layers.0.self_attn.q_proj.weight", BN_U8, 2, bad, &b);
    bn_st_writer_add(w, "model.layers.0.self_attn.q_proj.weight_scale", BN_BF16, 1, f1, sc);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    bn_st_writer_save(w, p); bn_st_writer_free(w); free(ones);
    expect("wrong-shaped 256 GiB matrix: shape error, not out-of-memory", dir, BITNET_ERR_FORMAT, "q_proj.weight", "shape");
}

static uint64_t rs = 12345;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint32_t)rs; }

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bitnet-test-XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL harness: mkdtemp\n"); return 1; }
    bitnet_model *m = NULL;
    /* 1. not a folder / nothing there */
    CHECK("missing folder", bitnet_model_load("/nonexistent/model", &m) == BITNET_ERR_IO && strstr(bitnet_last_error(), "/nonexistent/model"), "%s", bitnet_last_error());
    /* 2. folder without config.json */
    char d[600]; snprintf(d, sizeof d, "%s/empty", tmpdir); mkdir(d, 0755);
    expect("missing config.json", d, BITNET_ERR_IO, "config.json", "cannot open");
    /* 3. config: unknown model_type, field out of range, bad GQA, bad linear_class */
    expect("unknown model_type", make_case("mt", "\"model_type\": \"bitnet\"", "\"model_type\": \"gpt2\"", NULL, NULL), BITNET_ERR_UNSUPPORTED, "config.json", "gpt2");
    expect("layers out of range", make_case("nl", "\"num_hidden_layers\": 4", "\"num_hidden_layers\": 0", NULL, NULL), BITNET_ERR_FORMAT, "config.json", "num_hidden_layers");
    expect("negative hidden size", make_case("hs", "\"hidden_size\": 256", "\"hidden_size\": -256", NULL, NULL), BITNET_ERR_FORMAT, "config.json", "hidden_size");
    expect("heads not multiple of kv heads", make_case("kv", "\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3", NULL, NULL), BITNET_ERR_FORMAT, "config.json", "num_key_value_heads");
    expect("unknown linear_class", make_case("lc", "\"autobitlinear\"", "\"fancylinear\"", NULL, NULL), BITNET_ERR_UNSUPPORTED, "config.json", "fancylinear");
    expect("config not JSON", make_case("js", "{", "[", NULL, NULL), BITNET_ERR_FORMAT, "config.json", NULL);
    expect("vocab mismatch -> embed shape", make_case("vs", "\"vocab_size\": 1029", "\"vocab_size\": 1030", NULL, NULL), BITNET_ERR_FORMAT, "model.embed_tokens.weight", "shape");
    /* 4. tensors: missing, wrong shape, wrong dtype, invalid packed code, missing weight_scale */
    expect("missing tensor", make_case("miss", NULL, NULL, drop, "model.layers.2.mlp.up_proj.weight"), BITNET_ERR_FORMAT, "model.layers.2.mlp.up_proj.weight", "missing");
    expect("missing weight_scale", make_case("miss2", NULL, NULL, drop, "model.layers.0.self_attn.k_proj.weight_scale"), BITNET_ERR_FORMAT, "k_proj.weight_scale", "missing");
    expect("wrong shape", make_case("shape", NULL, NULL, reshape, "model.layers.1.self_attn.o_proj.weight"), BITNET_ERR_FORMAT, "model.layers.1.self_attn.o_proj.weight", "shape");
    expect("wrong dtype", make_case("dtype", NULL, NULL, redtype, "model.norm.weight"), BITNET_ERR_UNSUPPORTED, "model.norm.weight", "I32");
    expect("invalid ternary code", make_case("code", NULL, NULL, badcode, "model.layers.3.mlp.gate_proj.weight"), BITNET_ERR_FORMAT, "gate_proj.weight", "code 3");
    test_nonfinite();
    test_shape_before_alloc();
    /* 5. truncated files */
    const char *base = make_case("trunc", NULL, NULL, NULL, NULL);
    char st_path[700]; snprintf(st_path, sizeof st_path, "%s/model.safetensors", base);
    size_t n; char *full = t_read_file(st_path, &n);
    write_file(st_path, full, n - 1000);
    expect("truncated data", base, BITNET_ERR_FORMAT, "model.safetensors", "truncated");
    write_file(st_path, full, 100);
    expect("truncated header", base, BITNET_ERR_FORMAT, "model.safetensors", "header");
    write_file(st_path, full, 5);
    expect("file shorter than 8 bytes", base, BITNET_ERR_FORMAT, "model.safetensors", "truncated");
    unlink(st_path);
    expect("missing model.safetensors", base, BITNET_ERR_IO, "model.safetensors", NULL);
    /* 6. out-of-vocabulary id, context overflow */
    snprintf(d, sizeof d, "%s/%s", t_golden(), SRC);
    bitnet_status s = bitnet_model_load(d, &m);
    CHECK("golden loads", s == BITNET_OK, "%s", bitnet_last_error());
    if (!s) {
        bitnet_ctx *c; bitnet_ctx_params p = {.n_ctx = 4, .n_threads = 1};
        bitnet_ctx_new(m, &p, &c);
        int32_t ids[5] = {1, 2, 1029, 3, 4};
        CHECK("id out of vocab", bitnet_ctx_eval(c, ids, 3, NULL, 0) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "1029") && bitnet_ctx_pos(c) == 0, "%s", bitnet_last_error());
        int32_t neg = -1;
        CHECK("negative id", bitnet_ctx_eval(c, &neg, 1, NULL, 0) == BITNET_ERR_ARG, "%s", bitnet_last_error());
        int32_t ok5[5] = {1, 2, 3, 4, 5};
        CHECK("context overflow", bitnet_ctx_eval(c, ok5, 5, NULL, 0) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "context"), "%s", bitnet_last_error());
        bitnet_ctx_free(c);
        bitnet_model_free(m); m = NULL;
    }
    /* 7. a sharded copy (model.safetensors.index.json + two shards) loads and gives the same logits */
    {
        char sd[600], sp[700];
        snprintf(sd, sizeof sd, "%s/sharded", tmpdir); mkdir(sd, 0755);
        size_t cn; char *cfg = t_read_file(golden_path("config.json"), &cn);
        snprintf(sp, sizeof sp, "%s/config.json", sd); write_file(sp, cfg, cn); free(cfg);
        bn_st *st; bn_st_open(golden_path("model.safetensors"), &st);
        bn_st_writer *w[2]; bn_st_writer_new(&w[0]); bn_st_writer_new(&w[1]);
        char *idx = malloc(1 << 16); size_t il = 0;
        il += sprintf(idx + il, "{\"metadata\": {}, \"weight_map\": {");
        for (int i = 0; i < bn_st_count(st); i++) {
            const bn_tensor *t = bn_st_at(st, i);
            bn_st_writer_add(w[i % 2], t->name, t->dtype, t->ndim, t->shape, t->data);
            il += sprintf(idx + il, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", t->name, i % 2 + 1);
        }
        il += sprintf(idx + il, "}}");
        for (int k = 0; k < 2; k++) { snprintf(sp, sizeof sp, "%s/model-0000%d-of-00002.safetensors", sd, k + 1); bn_st_writer_save(w[k], sp); bn_st_writer_free(w[k]); }
        snprintf(sp, sizeof sp, "%s/model.safetensors.index.json", sd); write_file(sp, idx, il); free(idx);
        bn_st_free(st);
        bitnet_model *a = NULL, *b = NULL;
        char gd[600]; snprintf(gd, sizeof gd, "%s/%s", t_golden(), SRC);
        bitnet_status sa = bitnet_model_load(sd, &a), sb = bitnet_model_load(gd, &b);
        CHECK("sharded checkpoint loads", sa == BITNET_OK && sb == BITNET_OK, "%s", bitnet_last_error());
        if (a && b) {
            bitnet_ctx *ca, *cb; bitnet_ctx_params p = {.n_ctx = 8, .n_threads = 1};
            bitnet_ctx_new(a, &p, &ca); bitnet_ctx_new(b, &p, &cb);
            int32_t ids[3] = {1024, 5, 9};
            float *la = malloc(1029 * 4), *lb = malloc(1029 * 4);
            bitnet_ctx_eval(ca, ids, 3, la, 0); bitnet_ctx_eval(cb, ids, 3, lb, 0);
            CHECK("sharded logits == single-file logits", !memcmp(la, lb, 1029 * 4), "");
            free(la); free(lb); bitnet_ctx_free(ca); bitnet_ctx_free(cb);
        }
        bitnet_model_free(a); bitnet_model_free(b);
        /* an index naming a shard that is missing */
        snprintf(sp, sizeof sp, "%s/model-00002-of-00002.safetensors", sd); unlink(sp);
        expect("missing shard", sd, BITNET_ERR_IO, "model-00002-of-00002.safetensors", NULL);
    }
    /* 8. fuzz: random byte changes in the header region, random truncations; must never crash */
    int crashes_avoided = 0;
    for (int it = 0; it < 300; it++) {
        char *buf = malloc(n); memcpy(buf, full, n);
        size_t len = n;
        uint64_t hl; memcpy(&hl, full, 8);
        int kind = rnd() % 3;
        if (kind == 0) { for (int j = 0; j < 4; j++) buf[8 + rnd() % hl] = (char)rnd(); }
        else if (kind == 1) { const char *digits = "0123456789"; for (int j = 0; j < 3; j++) { size_t at = 8 + rnd() % hl; if (buf[at] >= '0' && buf[at] <= '9') buf[at] = digits[rnd() % 10]; } }
        else len = rnd() % n;
        if (rnd() % 5 == 0) { uint64_t bogus = rnd() % 2 ? (uint64_t)-1 : (uint64_t)rnd(); memcpy(buf, &bogus, 8); }
        write_file(st_path, buf, len);
        free(buf);
        m = NULL;
        bitnet_status fs = bitnet_model_load(base, &m);
        if (fs == BITNET_OK) {  /* a mutation that stays valid must still run */
            bitnet_ctx *c; bitnet_ctx_params p = {.n_ctx = 8, .n_threads = 1};
            if (!bitnet_ctx_new(m, &p, &c)) { int32_t ids[2] = {1, 2}; bitnet_ctx_eval(c, ids, 2, NULL, 0); bitnet_ctx_free(c); }
            bitnet_model_free(m);
        } else if (strlen(bitnet_last_error()) > 0) crashes_avoided++;
    }
    CHECK("fuzz: 300 corrupted files, no crash, errors carry messages", crashes_avoided > 200, "only %d errors with messages", crashes_avoided);
    free(full);
    char cmd[400]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    T_DONE();
}
