/* test_gguf_model.c — models loaded from the GGUF files in tests/gguf/ (made from the goldens by
 * tests/tools/make_gguf.py) through bitnet_model_load_ex("x.gguf"):
 *   - hyper-parameters equal the folder load's;
 *   - prompt and full logits within the goldens' bounds (mean|d| <= 1e-2 std, max|d| <= 0.25 std,
 *     tests/golden/README.md) and, where the file holds the weights exactly (every file but
 *     packed-tq1_0, whose token_embd is f16), bit-identical to the folder load's logits;
 *   - greedy ids identical to golden.json; a Q6_K embedding/head reports its distance (and KL
 *     divergence) from the exact head within test_model.c's quantized-head bounds;
 *   - the tokenizer from tokenizer.ggml.* metadata encodes and decodes every case of the
 *     tokenizer goldens (tokenizer-bpe, tokenizer-bpe-32k) as HF tokenizers does (SentencePiece
 *     "llama" metadata: tokenizer-spm, tokenizer-spm-8k as the sentencepiece library does), and a file
 *     without tokenizer.ggml.pre falls back to the Llama-3 regex with the same results;
 *   - bitnet_convert_gguf (`bitnet convert`): every golden folder, and a GGUF file, written as
 *     TQ2_0, TQ1_0 and I2_S loads back with logits bit-identical to the folder load (the ternary
 *     values and scales survive exactly); an existing output is refused without the force flag;
 *   - a missing file, a wrong architecture, missing metadata, a missing tensor and a shape
 *     mismatch give one clear error naming the file.
 * Not: the reader/decoders on their own (test_gguf.c). */
#include "t.h"
#include "bitnet.h"
#include "model/model.h"
#include "io/safetensors.h"
#include "io/gguf.h"
#include <cjson/cJSON.h>
#include <unistd.h>
#include <sys/stat.h>

static int t_is_dir(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode); }
static int read_ids(cJSON *root, const char *key, int32_t *ids, int max) {
    cJSON *a = cJSON_GetObjectItem(root, key), *e; int n = 0;
    cJSON_ArrayForEach(e, a) if (n < max) ids[n++] = e->valueint;
    return n;
}
static void stats(const float *got, const float *ref, size_t count, double *mad_sd, double *mx_sd) {
    double mean = 0, var = 0, mad = 0, mx = 0;
    for (size_t i = 0; i < count; i++) mean += ref[i];
    mean /= count;
    for (size_t i = 0; i < count; i++) var += (ref[i] - mean) * (ref[i] - mean);
    double sd = sqrt(var / count);
    for (size_t i = 0; i < count; i++) { double d = fabs(got[i] - ref[i]); mad += d; if (d > mx || d != d) mx = d != d ? INFINITY : d; }
    *mad_sd = mad / count / sd; *mx_sd = mx / sd;
}

/* Logits [n, V] of one forward over ids (prefill), or -1 on error. */
static int forward(bitnet_model *m, const int32_t *ids, int n, float *lg) {
    bitnet_ctx *c = NULL;
    bitnet_ctx_params p = {.n_ctx = 64, .n_threads = 2, .kv_type = BITNET_KV_F32};   /* golden bounds: the exact cache */
    if (bitnet_ctx_new(m, &p, &c)) return -1;
    bitnet_status s = bitnet_ctx_eval(c, ids, n, lg, 1);
    bitnet_ctx_free(c);
    return s ? -1 : 0;
}

static void run(const char *fpath, const char *golden, int exact) {
    char path[512], name[300];
    const char *file = strrchr(fpath, '/') ? strrchr(fpath, '/') + 1 : fpath;   /* for messages */
    snprintf(path, sizeof path, "%s/%s/golden.json", t_golden(), golden);
    char *js = t_read_file(path, NULL);
    cJSON *gj = js ? cJSON_Parse(js) : NULL;
    if (!gj) { CHECK(file, 0, "cannot read %s", path); free(js); return; }
    int32_t ids[256]; int np = read_ids(gj, "prompt_ids", ids, 128), ng = read_ids(gj, "greedy_ids", ids + np, 128);
    int V = cJSON_GetObjectItem(gj, "vocab_size")->valueint, N = np + ng;
    bitnet_model *mg = NULL, *mf = NULL;
    if (strchr(fpath, '/')) snprintf(path, sizeof path, "%s", fpath); else snprintf(path, sizeof path, "tests/gguf/%s", fpath);
    char path_in[512]; snprintf(path_in, sizeof path_in, "%s", path);
    bitnet_status s = bitnet_model_load_ex(path, NULL, &mg);
    snprintf(name, sizeof name, "%s: loads", file);
    CHECK(name, s == BITNET_OK, "%s", bitnet_last_error());
    snprintf(path, sizeof path, "%s/%s", t_golden(), golden);
    if (bitnet_model_load(path, &mf)) { CHECK(name, 0, "folder: %s", bitnet_last_error()); }
    if (!mg || !mf) { bitnet_model_free(mg); bitnet_model_free(mf); cJSON_Delete(gj); free(js); return; }
    bitnet_model_info a, b;
    bitnet_model_get_info(mg, &a); bitnet_model_get_info(mf, &b);
    snprintf(name, sizeof name, "%s: hyper-parameters equal the folder's (%s)", file, a.weight_format);
    CHECK(name, a.vocab_size == b.vocab_size && a.hidden_size == b.hidden_size && a.intermediate_size == b.intermediate_size && a.n_layers == b.n_layers
          && a.n_heads == b.n_heads && a.n_kv_heads == b.n_kv_heads && a.head_dim == b.head_dim && a.max_seq_len == b.max_seq_len
          && a.rope_theta == b.rope_theta && a.norm_eps == b.norm_eps && a.act == b.act && a.tied_embeddings == b.tied_embeddings
          && a.n_ternary == b.n_ternary && (!strncmp(a.weight_format, "gguf-", 5) || t_is_dir(path_in)),
          "vocab %d/%d hidden %d/%d ffn %d/%d layers %d/%d heads %d/%d kv %d/%d ctx %d/%d theta %g/%g eps %g/%g act %d/%d tied %d/%d",
          a.vocab_size, b.vocab_size, a.hidden_size, b.hidden_size, a.intermediate_size, b.intermediate_size, a.n_layers, b.n_layers,
          a.n_heads, b.n_heads, a.n_kv_heads, b.n_kv_heads, a.max_seq_len, b.max_seq_len, a.rope_theta, b.rope_theta, a.norm_eps, b.norm_eps,
          (int)a.act, (int)b.act, a.tied_embeddings, b.tied_embeddings);
    size_t nb;
    const char *which[2] = {"prompt", "full"};
    for (int k = 0; k < 2; k++) {
        int n = k ? N : np;
        snprintf(path, sizeof path, "%s/%s/golden_%s_logits.f32", t_golden(), golden, which[k]);
        float *ref = t_read_file(path, &nb), *lg = malloc((size_t)n * V * 4), *lf = malloc((size_t)n * V * 4);
        int e1 = forward(mg, ids, n, lg), e2 = forward(mf, ids, n, lf);
        double mad, mx;
        stats(lg, ref, (size_t)n * V, &mad, &mx);
        snprintf(name, sizeof name, "%s: %s logits within the golden bounds (mean|d|/std %.2e, max|d|/std %.2e)", file, which[k], mad, mx);
        CHECK(name, !e1 && ref && nb == (size_t)n * V * 4 && mad <= 1e-2 && mx <= 0.25, "%s", bitnet_last_error());
        double fm, fx;
        stats(lg, lf, (size_t)n * V, &fm, &fx);
        if (exact) {
            snprintf(name, sizeof name, "%s: %s logits bit-identical to the folder load", file, which[k]);
            CHECK(name, !e2 && !memcmp(lg, lf, (size_t)n * V * 4), "mean|d|/std %.2e max %.2e", fm, fx);
        } else {
            snprintf(name, sizeof name, "%s: %s logits vs the folder load (f16 embedding): mean|d|/std %.2e, max|d|/std %.2e", file, which[k], fm, fx);
            CHECK(name, !e2 && fm <= 1e-2 && fx <= 0.25, "too far");
        }
        free(ref); free(lg); free(lf);
    }
    /* greedy */
    bitnet_ctx *c = NULL; bitnet_ctx_params p = {.n_ctx = 64, .n_threads = 1, .kv_type = BITNET_KV_F32};
    float *last = malloc((size_t)V * 4);
    int ok = !bitnet_ctx_new(mg, &p, &c) && !bitnet_ctx_eval(c, ids, np, last, 0), same = 1;
    for (int i = 0; ok && i < ng; i++) {
        int best = 0;
        for (int j = 1; j < V; j++) if (last[j] > last[best]) best = j;
        if (best != ids[np + i]) { same = 0; break; }
        if (i + 1 < ng) ok = !bitnet_ctx_eval(c, &ids[np + i], 1, last, 0);
    }
    snprintf(name, sizeof name, "%s: greedy ids identical to the golden", file);
    CHECK(name, ok && same, "%s", ok ? "differ" : bitnet_last_error());
    bitnet_ctx_free(c); free(last);
    bitnet_model_free(mg); bitnet_model_free(mf); cJSON_Delete(gj); free(js);
}

/* A quantized (Q6_K) token_embd / head: logits against the exact-head file, with the KL
 * divergence of the next-token distributions; bounds of test_model.c's quantized heads. */
static void quant_head(const char *file, const char *exact, const char *golden) {
    char path[512], name[300];
    snprintf(path, sizeof path, "%s/%s/golden.json", t_golden(), golden);
    char *js = t_read_file(path, NULL);
    cJSON *gj = js ? cJSON_Parse(js) : NULL;
    if (!gj) { CHECK(file, 0, "no golden.json"); free(js); return; }
    int32_t ids[256]; int np = read_ids(gj, "prompt_ids", ids, 128);
    int V = cJSON_GetObjectItem(gj, "vocab_size")->valueint;
    bitnet_model *mq = NULL, *me = NULL;
    snprintf(path, sizeof path, "tests/gguf/%s", file);
    bitnet_status s = bitnet_model_load_ex(path, NULL, &mq);
    snprintf(path, sizeof path, "tests/gguf/%s", exact);
    if (!s) s = bitnet_model_load_ex(path, NULL, &me);
    snprintf(name, sizeof name, "%s: loads", file);
    CHECK(name, s == BITNET_OK, "%s", bitnet_last_error());
    float *a = malloc((size_t)np * V * 4), *b = malloc((size_t)np * V * 4);
    if (!s && !forward(mq, ids, np, a) && !forward(me, ids, np, b)) {
        double mad, mx, kl = 0;
        stats(a, b, (size_t)np * V, &mad, &mx);
        for (int r = 0; r < np; r++) {
            const float *p = b + (size_t)r * V, *q = a + (size_t)r * V;
            double mp = p[0], mq2 = q[0], zp = 0, zq = 0;
            for (int j = 1; j < V; j++) { if (p[j] > mp) mp = p[j]; if (q[j] > mq2) mq2 = q[j]; }
            for (int j = 0; j < V; j++) { zp += exp(p[j] - mp); zq += exp(q[j] - mq2); }
            for (int j = 0; j < V; j++) { double lp = p[j] - mp - log(zp), lq = q[j] - mq2 - log(zq); kl += exp(lp) * (lp - lq); }
        }
        kl /= np;
        snprintf(name, sizeof name, "%s: logits vs the exact head (mean|d|/std %.2e, max|d|/std %.2e, mean KL %.2e nats)", file, mad, mx, kl);
        CHECK(name, mad <= 0.1 && mx <= 0.6 && kl >= 0, "outside the quantized-head bounds");
    } else CHECK(name, 0, "forward: %s", bitnet_last_error());
    free(a); free(b); bitnet_model_free(mq); bitnet_model_free(me); cJSON_Delete(gj); free(js);
}

/* Copy of tests/gguf/packed-i2_s.gguf with the bytes of `from` replaced by `to` (same length). */
static const char *edited(const char *from, const char *to, size_t lf) {
    static char out[256];
    size_t n; char *b = t_read_file("tests/gguf/packed-i2_s.gguf", &n);
    char *p = NULL;
    for (size_t i = 0; b && i + lf <= n; i++) if (!memcmp(b + i, from, lf)) { p = b + i; break; }
    if (!p) { free(b); return NULL; }
    memcpy(p, to, lf);
    snprintf(out, sizeof out, "/tmp/bitnet_gguf_%d.gguf", (int)getpid());
    FILE *f = fopen(out, "wb"); fwrite(b, 1, n, f); fclose(f); free(b);
    return out;
}
static void badn(const char *name, const char *from, const char *to, size_t lf, bitnet_status want, const char *msg) {
    const char *p = edited(from, to, lf);
    if (!p) { CHECK(name, 0, "'%s' not in the file", from); return; }
    bitnet_model *m = NULL;
    bitnet_status s = bitnet_model_load_ex(p, NULL, &m);
    CHECK(name, s == want && !m && strstr(bitnet_last_error(), p) && strstr(bitnet_last_error(), msg), "status %d: %s (want '%s')", s, bitnet_last_error(), msg);
    bitnet_model_free(m); unlink(p);
}
static void bad(const char *name, const char *from, const char *to, bitnet_status want, const char *msg) { badn(name, from, to, strlen(from), want, msg); }

/* Every case of golden_encode.json in golden dir gdir through the tokenizer of GGUF file f. */
static void tok_cases_key(const char *fpath, const char *gdir, const char *key) {
    char path[512], name[300];
    const char *f = strrchr(fpath, '/') ? strrchr(fpath, '/') + 1 : fpath;
    if (strchr(fpath, '/')) snprintf(path, sizeof path, "%s", fpath); else snprintf(path, sizeof path, "tests/gguf/%s", fpath);
    bitnet_tokenizer *t = NULL;
    bitnet_status s = bitnet_tokenizer_load(path, &t);
    snprintf(name, sizeof name, "%s: tokenizer loads", f);
    CHECK(name, s == BITNET_OK, "%s", bitnet_last_error());
    snprintf(path, sizeof path, "%s/%s/golden_encode.json", t_golden(), gdir);
    char *js = t_read_file(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *c;
    if (!t || !root) { bitnet_tokenizer_free(t); cJSON_Delete(root); free(js); return; }
    int n = 0, bad_enc = 0, bad_dec = 0; char why[400] = "";
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring, *dec = cJSON_GetObjectItem(c, "decoded")->valuestring;
        int32_t want[4096], dids[4096]; int nw = read_ids(c, key, want, 4096), nd = read_ids(c, "ids", dids, 4096);
        int32_t *ids = NULL; int ni = 0;
        n++;
        if (bitnet_tokenizer_encode_ex(t, text, strlen(text), 0, &ids, &ni) || ni != nw || memcmp(ids, want, (size_t)nw * 4)) {
            if (!bad_enc++) snprintf(why, sizeof why, "encode '%.40s': %d ids, want %d", text, ni, nw);
        }
        char *out = NULL;
        if (bitnet_tokenizer_decode(t, dids, nd, &out) || strcmp(out, dec)) { if (!bad_dec++ && !why[0]) snprintf(why, sizeof why, "decode '%.40s'", text); }
        free(out); free(ids);
    }
    snprintf(name, sizeof name, "%s: %d golden cases of %s encode to their %s and decode as HF tokenizers", f, n, gdir, key);
    CHECK(name, n > 0 && !bad_enc && !bad_dec, "%d encodes and %d decodes differ; first: %s", bad_enc, bad_dec, why);
    snprintf(name, sizeof name, "%s: bos/eos from metadata", f);
    CHECK(name, bitnet_tokenizer_bos(t) >= 0 && bitnet_tokenizer_is_eog(t, bitnet_tokenizer_eos(t)), "bos %d eos %d", bitnet_tokenizer_bos(t), bitnet_tokenizer_eos(t));
    bitnet_tokenizer_free(t); cJSON_Delete(root); free(js);
}
static void tok_cases(const char *f, const char *gdir) { tok_cases_key(f, gdir, "ids"); }
/* Tokenizers a and b encode every text of gdir's golden cases to the same ids. */
static void same_encodes(const char *a, const char *b, const char *gdir) {
    char path[512], name[700];
    bitnet_tokenizer *ta = NULL, *tb = NULL;
    snprintf(path, sizeof path, "%s/%s/golden_encode.json", t_golden(), gdir);
    char *js = t_read_file(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *c;
    int n = 0, bad = 0;
    if (root && !bitnet_tokenizer_load(a, &ta) && !bitnet_tokenizer_load(b, &tb))
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
            const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
            int32_t *x = NULL, *y = NULL; int nx = 0, ny = 0;
            n++;
            if (bitnet_tokenizer_encode_ex(ta, text, strlen(text), 0, &x, &nx) || bitnet_tokenizer_encode_ex(tb, text, strlen(text), 0, &y, &ny) || nx != ny || memcmp(x, y, (size_t)nx * 4)) bad++;
            free(x); free(y);
        }
    snprintf(name, sizeof name, "%.200s: %d texts of %.60s encode as %.300s does", strrchr(a, '/') ? strrchr(a, '/') + 1 : a, n, gdir, b);
    CHECK(name, n > 0 && !bad, "%d differ (%s)", bad, bitnet_last_error());
    bitnet_tokenizer_free(ta); bitnet_tokenizer_free(tb); cJSON_Delete(root); free(js);
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0; char *x = t_read_file(a, &na), *y = t_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x); free(y);
    return same;
}
/* Every tensor of folder a's model.safetensors in folder b's with the same dtype, shape and bytes
 * (scales_too = 0: "*_scale" tensors are left out, *nscale counts them). Returns the count
 * compared, -1 on a difference (why says which). */
static int same_tensors(const char *a, const char *b, int scales_too, char *why, size_t nw) {
    bn_st *sa = NULL, *sb = NULL;
    int n = -1;
    if (bn_st_open_dir(a, &sa) || bn_st_open_dir(b, &sb)) { snprintf(why, nw, "%s", bitnet_last_error()); goto out; }
    n = 0;
    for (int i = 0; i < bn_st_count(sa); i++) {
        const bn_tensor *x = bn_st_at(sa, i), *y = bn_st_find(sb, x->name);
        size_t l = strlen(x->name);
        if (!scales_too && l > 6 && !strcmp(x->name + l - 6, "_scale")) continue;
        if (!y || x->dtype != y->dtype || x->ndim != y->ndim || x->nbytes != y->nbytes || memcmp(x->shape, y->shape, sizeof x->shape) || memcmp(x->data, y->data, x->nbytes)) {
            snprintf(why, nw, "%s: %s", x->name, !y ? "missing" : x->dtype != y->dtype ? "dtype" : "bytes or shape"); n = -1; break;
        }
        n++;
    }
    if (n >= 0 && bn_st_count(sa) != bn_st_count(sb)) { snprintf(why, nw, "%d tensors, want %d", bn_st_count(sb), bn_st_count(sa)); n = -1; }
out:
    bn_st_free(sa); bn_st_free(sb);
    return n;
}

/* HF folder -> GGUF (type) -> HF folder -> GGUF: the two GGUF files byte-identical (the ternary
 * codes, scales, floats and tokenizer metadata survive), the folder's tensors byte-identical to
 * the source's (scales too where the source is autobitlinear), logits bit-identical to the source
 * folder's, and the folder's tokenizer encodes the goldens. */
static void hf_roundtrip(const char *gold, const char *type, int autobit, const char *tokgold, const char *tokkey) {
    char in[512], a[256], d[256], b[256], name[400], why[200] = "";
    snprintf(in, sizeof in, "%s/%s", t_golden(), gold);
    char top[64]; snprintf(top, sizeof top, "/tmp/bitnet_hf_%d", (int)getpid()); mkdir(top, 0755);
    snprintf(a, sizeof a, "%s/%s-%s.gguf", top, gold, type);
    snprintf(b, sizeof b, "%s/%s-%s-2.gguf", top, gold, type);
    snprintf(d, sizeof d, "%s/%s-%s-hf", top, gold, type);
    bitnet_convert_params p = bitnet_convert_default_params();
    p.type = type;
    bitnet_status s = bitnet_convert(in, a, &p);
    if (!s) s = bitnet_convert(a, d, &p);
    if (!s) s = bitnet_convert(d, b, &p);
    snprintf(name, sizeof name, "convert %s -> %s -> HF folder -> %s", gold, type, type);
    CHECK(name, s == BITNET_OK, "%s", bitnet_last_error());
    if (!s) {
        snprintf(name, sizeof name, "%s %s: GGUF -> HF -> GGUF byte-identical", gold, type);
        CHECK(name, same_file(a, b), "the second GGUF differs");
        if (!strstr(gold, "master") && !strstr(gold, "1bitllm")) {
            int n = same_tensors(in, d, autobit, why, sizeof why);
            snprintf(name, sizeof name, "%s %s: HF -> GGUF -> HF gives the source's tensors byte-identical (%d tensors%s)", gold, type, n, autobit ? ", scales included" : "; scales are 1/x: bitlinear source");
            CHECK(name, n > 0, "%s", why);
        }
        run(d, gold, 1);
        if (tokgold) tok_cases_key(d, tokgold, tokkey);
    }
    if (!strcmp(type, "tq2_0") && !s) {   /* clobbering */
        s = bitnet_convert(a, d, &p);
        snprintf(name, sizeof name, "%s: an existing HF folder is refused without force", gold);
        CHECK(name, s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "already holds") && strstr(bitnet_last_error(), "--force"), "%d %s", s, bitnet_last_error());
        p.flags = BITNET_CONVERT_FORCE;
        snprintf(name, sizeof name, "%s: force overwrites the HF folder", gold);
        CHECK(name, bitnet_convert(a, d, &p) == BITNET_OK, "%s", bitnet_last_error());
        s = bitnet_convert(in, d, &p);
        CHECK("convert: a folder output needs a .gguf input", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "needs a .gguf input"), "%d %s", s, bitnet_last_error());
    }
    static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) { char f[300]; snprintf(f, sizeof f, "%s/%s", d, files[i]); unlink(f); }
    rmdir(d); unlink(a); unlink(b); rmdir(top);
}

/* Mean KL(p || q) over rows of the softmaxes of logits p (reference) and q, [rows, V]. */
static double mean_kl(const float *pl, const float *ql, int rows, int V) {
    double kl = 0;
    for (int r = 0; r < rows; r++) {
        const float *p = pl + (size_t)r * V, *q = ql + (size_t)r * V;
        double mp = p[0], mq = q[0], zp = 0, zq = 0;
        for (int j = 1; j < V; j++) { if (p[j] > mp) mp = p[j]; if (q[j] > mq) mq = q[j]; }
        for (int j = 0; j < V; j++) { zp += exp(p[j] - mp); zq += exp(q[j] - mq); }
        for (int j = 0; j < V; j++) { double lp = p[j] - mp - log(zp), lq = q[j] - mq - log(zq); kl += exp(lp) * (lp - lq); }
    }
    return kl / rows;
}

/* `convert GOLD X.gguf --type i2_s --head HEAD`: loads; prompt logits against the folder load's:
 * bit-identical when the head is exact for the source (exact = 1), else mean|d|/std <= bmad and
 * max|d|/std <= bmax, with the KL divergence from the exact head reported and the prompt's next
 * token unchanged. Quantized heads (quant = 1): also bit-identical to the file converted again
 * with --head f32 (the dequantized values as f32: the load path adds nothing to the quantizer's
 * error, which test_gguf.c checks byte-exact against gguf-py). */
static void head_case(const char *gold, const char *head, int exact, double bmad, double bmax) {
    int quant = head[0] == 'q';
    char in[512], out[256], name[400];
    snprintf(in, sizeof in, "%s/%s", t_golden(), gold);
    snprintf(out, sizeof out, "/tmp/bitnet_head_%d_%s_%s.gguf", (int)getpid(), gold, head);
    bitnet_convert_params p = bitnet_convert_default_params();
    p.head = head;
    bitnet_status s = bitnet_convert(in, out, &p);
    bitnet_model *mq = NULL, *me = NULL;
    if (!s) s = bitnet_model_load_ex(out, NULL, &mq);
    if (!s) s = bitnet_model_load(in, &me);
    snprintf(name, sizeof name, "%s --head %s: converts and loads", gold, head);
    CHECK(name, s == BITNET_OK, "%s", bitnet_last_error());
    if (!s) {   /* the file holds the asked type (f32 is GGUF type 0: once taken for "as the source") */
        size_t nb; void *fb = t_read_file(out, &nb);
        bn_gguf *g = NULL;
        const bn_gguf_tensor *te = fb && !bn_gguf_parse(fb, nb, out, &g) ? bn_gguf_find_tensor(g, "token_embd.weight") : NULL;
        static const char *tn[] = {"f32", "f16", "bf16", "q8_0", "q6_k", "q4_0"};
        static const uint32_t tt[] = {BN_GT_F32, BN_GT_F16, BN_GT_BF16, BN_GT_Q8_0, BN_GT_Q6_K, BN_GT_Q4_0};
        uint32_t want = UINT32_MAX;
        for (int i = 0; i < 6; i++) if (!strcmp(head, tn[i])) want = tt[i];
        snprintf(name, sizeof name, "%s --head %s: token_embd is written as %s", gold, head, head);
        CHECK(name, te && te->type == want, "type %d", te ? (int)te->type : -1);
        bn_gguf_free(g); free(fb);
    }
    snprintf(in, sizeof in, "%s/%s/golden.json", t_golden(), gold);
    char *js = t_read_file(in, NULL);
    cJSON *gj = js ? cJSON_Parse(js) : NULL;
    if (!s && gj) {
        int32_t ids[256]; int np = read_ids(gj, "prompt_ids", ids, 128);
        int V = cJSON_GetObjectItem(gj, "vocab_size")->valueint;
        float *a = malloc((size_t)np * V * 4), *b = malloc((size_t)np * V * 4);
        if (!forward(mq, ids, np, a) && !forward(me, ids, np, b)) {
            double mad, mx, kl = mean_kl(b, a, np, V);
            stats(a, b, (size_t)np * V, &mad, &mx);
            const float *la = a + (size_t)(np - 1) * V, *lb = b + (size_t)(np - 1) * V;
            int ia = 0, ib = 0;
            for (int j = 1; j < V; j++) { if (la[j] > la[ia]) ia = j; if (lb[j] > lb[ib]) ib = j; }
            if (exact) snprintf(name, sizeof name, "%s --head %s: prompt logits bit-identical to the folder load", gold, head);
            else snprintf(name, sizeof name, "%s --head %s: logits vs the exact head mean|d|/std %.2e (<= %g), max %.2e (<= %g), mean KL %.2e nats", gold, head, mad, bmad, mx, bmax, kl);
            /* KL >= 0; where the head's type happens to hold the source's values (bf16 -> f16 for
             * weights in f16's normal range) only the dot products' order differs and it computes
             * to 0 up to rounding, of either sign (seen: -8.6e-19 with the AVX2 kernels) */
            CHECK(name, exact ? !memcmp(a, b, (size_t)np * V * 4) : mad <= bmad && mx <= bmax && kl > -1e-12 && ia == ib, "mean|d|/std %.2e max %.2e KL %.2e next id %d vs %d", mad, mx, kl, ia, ib);
        } else CHECK(name, 0, "forward: %s", bitnet_last_error());
        if (quant) {   /* the same values as an f32 head */
            char o2[300]; snprintf(o2, sizeof o2, "%s-f32.gguf", out);
            bitnet_convert_params p2 = bitnet_convert_default_params();
            p2.head = "f32";
            bitnet_model *m2 = NULL;
            bitnet_status s2 = bitnet_convert(out, o2, &p2);
            if (!s2) s2 = bitnet_model_load_ex(o2, NULL, &m2);
            snprintf(name, sizeof name, "%s --head %s: logits bit-identical to its dequantized values as an f32 head", gold, head);
            CHECK(name, !s2 && !forward(m2, ids, np, b) && !memcmp(a, b, (size_t)np * V * 4), "%s", s2 ? bitnet_last_error() : "differ");
            bitnet_model_free(m2); unlink(o2);
        }
        free(a); free(b);
    }
    if (!strcmp(head, "q6_k") && !strcmp(gold, "bitnet-b158-packed") && !s) {   /* same bytes as make_gguf.py's encoder */
        size_t n1, n2; void *b1 = t_read_file(out, &n1), *b2 = t_read_file("tests/gguf/packed-i2_s-q6_k.gguf", &n2);
        bn_gguf *g1 = NULL, *g2 = NULL;
        int same = b1 && b2 && !bn_gguf_parse(b1, n1, out, &g1) && !bn_gguf_parse(b2, n2, "q6k", &g2);
        const bn_gguf_tensor *t1 = same ? bn_gguf_find_tensor(g1, "token_embd.weight") : NULL, *t2 = same ? bn_gguf_find_tensor(g2, "token_embd.weight") : NULL;
        same = t1 && t2 && t1->type == BN_GT_Q6_K && t1->nbytes == t2->nbytes && !memcmp(t1->data, t2->data, t1->nbytes);
        CHECK("--head q6_k: token_embd bytes equal packed-i2_s-q6_k.gguf's (make_gguf.py)", same, "differ");
        bn_gguf_free(g1); bn_gguf_free(g2); free(b1); free(b2);
    }
    cJSON_Delete(gj); free(js);
    bitnet_model_free(mq); bitnet_model_free(me);
    unlink(out);
}

int main(void) {
    tok_cases("packed-tq2_0.gguf", "tokenizer-bpe");
    tok_cases("tokenizer-bpe-nopre.gguf", "tokenizer-bpe");
    tok_cases("tokenizer-bpe-32k.gguf", "tokenizer-bpe-32k");
    {   /* the fallback for a missing tokenizer.ggml.pre is said (once, by the CLI) */
        bitnet_tokenizer *t1 = NULL, *t2 = NULL;
        bitnet_tokenizer_load("tests/gguf/tokenizer-bpe-nopre.gguf", &t1);
        bitnet_tokenizer_load("tests/gguf/tokenizer-bpe-32k.gguf", &t2);
        const char *n1 = bitnet_tokenizer_notice(t1);
        CHECK("no tokenizer.ggml.pre: a notice names the Llama-3 fallback", n1 && strstr(n1, "tokenizer.ggml.pre") && strstr(n1, "Llama-3") && t2 && !bitnet_tokenizer_notice(t2), "%s", n1 ? n1 : "none");
        bitnet_tokenizer_free(t1); bitnet_tokenizer_free(t2);
    }
    /* SentencePiece ("llama"): encodes as the sentencepiece library does, like tokenizer.model */
    tok_cases_key("1bitllm-i2_s.gguf", "tokenizer-spm", "sentencepiece_ids");
    tok_cases_key("tokenizer-spm-8k.gguf", "tokenizer-spm-8k", "sentencepiece_ids");
    run("packed-tq2_0.gguf", "bitnet-b158-packed", 1);
    run("packed-tq1_0.gguf", "bitnet-b158-packed", 0);
    run("packed-i2_s.gguf", "bitnet-b158-packed", 1);
    run("master-i2_s.gguf", "bitnet-b158-master", 1);
    quant_head("packed-i2_s-q6_k.gguf", "packed-i2_s.gguf", "bitnet-b158-packed");
    run("1bitllm-i2_s.gguf", "bitnet-1bitllm", 1);
    /* convert round trips */
    static const char *gold[3] = {"bitnet-b158-packed", "bitnet-b158-master", "bitnet-1bitllm"};
    static const char *types[3] = {"tq2_0", "tq1_0", "i2_s"};
    char out[256], in[512], name[300];
    for (int gi = 0; gi < 3; gi++)
        for (int ti = 0; ti < 3; ti++) {
            snprintf(out, sizeof out, "/tmp/bitnet_conv_%d_%d/%s-%s.gguf", (int)getpid(), gi * 3 + ti, gold[gi], types[ti]);
            char od[128]; snprintf(od, sizeof od, "/tmp/bitnet_conv_%d_%d", (int)getpid(), gi * 3 + ti); mkdir(od, 0755);
            snprintf(in, sizeof in, "%s/%s", t_golden(), gold[gi]);
            bitnet_status cs = bitnet_convert_gguf(in, out, types[ti], 0);
            snprintf(name, sizeof name, "convert %s --type %s", gold[gi], types[ti]);
            CHECK(name, cs == BITNET_OK, "%s", bitnet_last_error());
            if (!cs) run(out, gold[gi], 1);
            if (!cs && gi == 0) tok_cases(out, "tokenizer-bpe");   /* tokenizer.json written as gpt2 metadata */
            if (!cs && gi == 2) {   /* tokenizer.model written as llama metadata: as sentencepiece and the folder's tokenizer.model */
                tok_cases_key(out, "tokenizer-spm", "sentencepiece_ids");
                char tm[600]; snprintf(tm, sizeof tm, "%s/tokenizer.model", in);
                same_encodes(out, tm, "tokenizer-spm");
            }
            if (gi == 0 && ti == 0) {
                cs = bitnet_convert_gguf(in, out, "tq2_0", 0);
                CHECK("convert: an existing output is refused", cs == BITNET_ERR_ARG && strstr(bitnet_last_error(), "already exists"), "%d %s", cs, bitnet_last_error());
                CHECK("convert: unknown type", bitnet_convert_gguf(in, out, "q4_k", BITNET_CONVERT_FORCE) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "q4_k"), "%s", bitnet_last_error());
            }
            unlink(out); rmdir(od);
        }
    char od[128]; snprintf(od, sizeof od, "/tmp/bitnet_conv_%d_g", (int)getpid()); mkdir(od, 0755);
    snprintf(out, sizeof out, "%s/converted-from-gguf.gguf", od);
    bitnet_status cs = bitnet_convert_gguf("tests/gguf/packed-tq2_0.gguf", out, "tq1_0", 0);
    CHECK("convert packed-tq2_0.gguf --type tq1_0", cs == BITNET_OK, "%s", bitnet_last_error());
    if (!cs) { run(out, "bitnet-b158-packed", 1); tok_cases(out, "tokenizer-bpe"); }
    unlink(out); rmdir(od);
    bitnet_convert_params p;

    /* --head: exact where the source's values fit, else bounded (bounds: docs/GGUF.md) */
    head_case("bitnet-b158-packed", "f32", 1, 0, 0);
    head_case("bitnet-b158-packed", "bf16", 1, 0, 0);
    head_case("bitnet-1bitllm", "f32", 1, 0, 0);
    head_case("bitnet-1bitllm", "f16", 1, 0, 0);
    head_case("bitnet-b158-packed", "f16", 0, 2e-3, 0.05);
    head_case("bitnet-1bitllm", "bf16", 0, 2e-2, 0.25);
    /* quantized: a quarter of the 1 std a real bug gives (tests/golden/README.md), max 1.5 std */
    static const char *qh[3] = {"q8_0", "q6_k", "q4_0"};
    for (int k = 0; k < 3; k++) {
        head_case(gold[0], qh[k], 0, 0.25, 1.5);
        if (k != 1) head_case(gold[2], qh[k], 0, 0.25, 1.5);
    }
    p = bitnet_convert_default_params(); p.head = "q5_k";
    snprintf(in, sizeof in, "%s/%s", t_golden(), gold[0]);
    cs = bitnet_convert(in, "/tmp/bitnet_never.gguf", &p);
    CHECK("convert: unknown head type", cs == BITNET_ERR_ARG && strstr(bitnet_last_error(), "q5_k"), "%d %s", cs, bitnet_last_error());
    p.head = "q6_k";   /* 1bitLLM golden: hidden 192 is not a multiple of the Q6_K block */
    snprintf(in, sizeof in, "%s/%s", t_golden(), gold[2]);
    cs = bitnet_convert(in, "/tmp/bitnet_never.gguf", &p);
    CHECK("convert --head q6_k: rows not a multiple of 256 refused, naming the file and tensor", cs == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "bitnet-1bitllm: tensor 'token_embd.weight'")
          && strstr(bitnet_last_error(), "256"), "%d %s", cs, bitnet_last_error());

    /* GGUF -> HF folder round trips */
    for (int ti = 0; ti < 3; ti++) {
        hf_roundtrip("bitnet-b158-packed", types[ti], 1, ti ? NULL : "tokenizer-bpe", "ids");
        hf_roundtrip("bitnet-b158-packed-bitlinear", types[ti], 0, NULL, NULL);
        hf_roundtrip("bitnet-b158-master", types[ti], 1, NULL, NULL);
        hf_roundtrip("bitnet-1bitllm", types[ti], 1, ti ? NULL : "tokenizer-spm", "sentencepiece_ids");
    }

    bitnet_model *m = NULL;
    bitnet_status s = bitnet_model_load_ex("tests/gguf/nope.gguf", NULL, &m);
    CHECK("gguf model: missing file", s == BITNET_ERR_IO && strstr(bitnet_last_error(), "nope.gguf"), "%d %s", s, bitnet_last_error());
    bad("gguf model: not a BitNet architecture", "bitnet-b1.58\0", "llama\0\0\0\0\0\0\0\0", BITNET_ERR_UNSUPPORTED, "not a BitNet architecture");
    bad("gguf model: missing metadata", "bitnet-b1.58.block_count", "bitnet-b1.58.block_cXunt", BITNET_ERR_FORMAT, "missing metadata key 'bitnet-b1.58.block_count'");
    bad("gguf model: missing tensor", "blk.1.ffn_up.weight", "blk.1.ffn_uX.weight", BITNET_ERR_FORMAT, "missing tensor 'blk.1.ffn_up.weight'");
    /* feed_forward_length 704 -> 640: ffn tensors no longer match */
    {   /* GGUF -> HF with a tokenizer model it cannot write: one clear error, nothing left behind */
        const char *e = edited("gpt2", "bert", 4);
        char dd[128]; snprintf(dd, sizeof dd, "/tmp/bitnet_hfbad_%d", (int)getpid());
        bitnet_status bs = e ? bitnet_convert(e, dd, NULL) : BITNET_ERR_IO;
        char cfg[200]; snprintf(cfg, sizeof cfg, "%s/config.json", dd);
        char mst[200]; snprintf(mst, sizeof mst, "%s/model.safetensors", dd);
        CHECK("GGUF -> HF: an unknown tokenizer model is refused naming the file, no files left", bs == BITNET_ERR_UNSUPPORTED && e && strstr(bitnet_last_error(), e)
              && strstr(bitnet_last_error(), "'bert'") && access(cfg, F_OK) != 0 && access(mst, F_OK) != 0, "%d %s", bs, bitnet_last_error());
        rmdir(dd); if (e) unlink(e);
    }
    badn("gguf model: shape mismatch", "feed_forward_length\x04\0\0\0\xc0\x02", "feed_forward_length\x04\0\0\0\x80\x02", 25, BITNET_ERR_FORMAT, "expected {256, 640}");
    T_DONE();
}
