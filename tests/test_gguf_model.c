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
#include <cjson/cJSON.h>
#include <unistd.h>
#include <sys/stat.h>

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
          && a.n_ternary == b.n_ternary && !strncmp(a.weight_format, "gguf-", 5),
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

int main(void) {
    tok_cases("packed-tq2_0.gguf", "tokenizer-bpe");
    tok_cases("tokenizer-bpe-nopre.gguf", "tokenizer-bpe");
    tok_cases("tokenizer-bpe-32k.gguf", "tokenizer-bpe-32k");
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

    bitnet_model *m = NULL;
    bitnet_status s = bitnet_model_load_ex("tests/gguf/nope.gguf", NULL, &m);
    CHECK("gguf model: missing file", s == BITNET_ERR_IO && strstr(bitnet_last_error(), "nope.gguf"), "%d %s", s, bitnet_last_error());
    bad("gguf model: not a BitNet architecture", "bitnet-b1.58\0", "llama\0\0\0\0\0\0\0\0", BITNET_ERR_UNSUPPORTED, "not a BitNet architecture");
    bad("gguf model: missing metadata", "bitnet-b1.58.block_count", "bitnet-b1.58.block_cXunt", BITNET_ERR_FORMAT, "missing metadata key 'bitnet-b1.58.block_count'");
    bad("gguf model: missing tensor", "blk.1.ffn_up.weight", "blk.1.ffn_uX.weight", BITNET_ERR_FORMAT, "missing tensor 'blk.1.ffn_up.weight'");
    /* feed_forward_length 704 -> 640: ffn tensors no longer match */
    badn("gguf model: shape mismatch", "feed_forward_length\x04\0\0\0\xc0\x02", "feed_forward_length\x04\0\0\0\x80\x02", 25, BITNET_ERR_FORMAT, "expected {256, 640}");
    T_DONE();
}
