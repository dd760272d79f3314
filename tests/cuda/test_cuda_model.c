/* tests/cuda/test_cuda_model.c — the whole model on the CUDA backend (device "cuda").
 * Default: every golden model against the transformers goldens with tests/test_model.c's bounds
 * (prefill logits, decode through the KV cache, greedy ids identical), the GPU's logits against
 * the CPU backend's, several sequences in one batch against each alone (bit-identical), the q8
 * head, and the device errors (unknown device, missing GPU number).
 * `test_cuda_model --bench [DIR]`: decode/prefill speed of DIR (a model folder, e.g. one made by
 * tests/tools/make_2b4t_shaped.py) or of the in-memory 2B-4T-shaped synthetic model: pp512,
 * tg128 after a 512-token prompt (exact and q8 heads), batched decode of 8/32/64 sequences,
 * GB/s against a device copy probe run in the same process, and GPU memory at a 4k context.
 * `--profile`: one graph-replayed greedy decode step between cudaProfilerStart/Stop (for ncu).
 * Without a GPU it prints one skip line. Not: a kernel test (test_cuda.c). */
#include "t.h"
#include "bitnet.h"
#include "model/model.h"
#include "backend/cuda/bn_cuda.h"
#include <cuda_runtime.h>
#include <cuda_profiler_api.h>
#include <cjson/cJSON.h>

static int read_ids(cJSON *root, const char *key, int32_t *ids, int max) {
    cJSON *a = cJSON_GetObjectItem(root, key), *e; int n = 0;
    cJSON_ArrayForEach(e, a) if (n < max) ids[n++] = e->valueint;
    return n;
}

static void cmp(const char *name, const float *got, const float *ref, size_t count) {
    double mean = 0, var = 0, mad = 0, mx = 0;
    for (size_t i = 0; i < count; i++) mean += ref[i];
    mean /= count;
    for (size_t i = 0; i < count; i++) var += (ref[i] - mean) * (ref[i] - mean);
    double sd = sqrt(var / count);
    for (size_t i = 0; i < count; i++) { double d = fabs(got[i] - ref[i]); mad += d; if (d > mx || d != d) mx = d != d ? INFINITY : d; }
    mad /= count;
    CHECK(name, mad <= 1e-2 * sd && mx <= 0.25 * sd, "mean|d|/std=%.3g max|d|/std=%.3g", mad / sd, mx / sd);
    printf("# %s: mean|d|/std=%.2e max|d|/std=%.2e\n", name, mad / sd, mx / sd);
}

static bitnet_model *load(const char *path, const char *dev, bitnet_head_type head) {
    bitnet_model_params p = bitnet_model_default_params();
    p.device = dev; p.head = head;
    bitnet_model *m = NULL;
    if (bitnet_model_load_ex(path, &p, &m)) return NULL;
    return m;
}

/* The 2B-4T's config with n_layers layers and a vocab of V (special ids inside it). */
static bn_config cfg_2b4t(int n_layers, int V) {
    bn_config c; memset(&c, 0, sizeof c);
    c.rope_theta = 500000.f; c.norm_eps = 1e-5f; c.linear_class = BN_LC_AUTOBITLINEAR;
    c.family = BN_FAM_BITNET; c.vocab_size = V; c.hidden_size = 2560; c.intermediate_size = 6912;
    c.n_layers = n_layers; c.n_heads = 20; c.n_kv_heads = 5; c.head_dim = 128; c.max_pos = 4096;
    c.act = BN_ACT_RELU2; c.tied = 1; c.bos_id = V > 128001 ? 128000 : 1; c.eos_id = V > 128001 ? 128001 : 2;
    c.eos_ids[0] = c.eos_id; c.n_eos = 1;
    return c;
}

/* The one-kernel decode step (bn_cu_mega, sm_90+) against the same decode run as kernels:
 * prompt, then nd tokens one at a time; every logit bit-identical, and the program was built. */
static void mega_ab(bitnet_model *m, const char *name, int n_ctx, int np, int nd) {
    char nm[256];
    int cc = 0;
    bn_cu_device_open(m->device_index, NULL, 0, NULL, NULL, &cc);
    if (cc < 90) { printf("skip %s one-kernel decode: needs sm_90+ (this GPU is sm_%d)\n", name, cc); return; }
    int V = m->cfg.vocab_size, N = np + nd;
    int32_t *ids = malloc((size_t)N * 4);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    float *l[2] = {malloc((size_t)nd * V * 4), malloc((size_t)nd * V * 4)};
    int built = 0, ok = 1, was = bn_cu_get_mega();
    for (int k = 0; k < 2 && ok; k++) {
        bn_cu_set_mega(k);
        int b0 = bn_cu_mega_built();
        bitnet_ctx *c = NULL;
        bitnet_ctx_params p = {.n_ctx = n_ctx, .n_threads = 1};
        if (bitnet_ctx_new(m, &p, &c) || bitnet_ctx_eval(c, ids, np, l[k], 0)) ok = 0;
        for (int i = 0; i < nd && ok; i++) if (bitnet_ctx_eval(c, ids + np + i, 1, l[k] + (size_t)i * V, 0)) ok = 0;
        if (k) built = bn_cu_mega_built() - b0;
        bitnet_ctx_free(c);
    }
    bn_cu_set_mega(was);
    snprintf(nm, sizeof nm, "%s[cuda] one-kernel decode == kernels, %d tokens after %d, n_ctx %d (bit-identical)", name, nd, np, n_ctx);
    CHECK(nm, ok && built > 0 && !memcmp(l[0], l[1], (size_t)nd * V * 4), "%s, %d programs built", ok ? "differs" : bitnet_last_error(), built);
    free(l[0]); free(l[1]); free(ids);
}

static void run_model(const char *dir) {
    char path[512], name[256];
    snprintf(path, sizeof path, "%s/%s/golden.json", t_golden(), dir);
    char *js = t_read_file(path, NULL);
    cJSON *g = js ? cJSON_Parse(js) : NULL;
    snprintf(name, sizeof name, "%s[cuda] golden.json", dir);
    CHECK(name, g != NULL, "cannot read %s", path);
    if (!g) { free(js); return; }
    int32_t ids[256]; int np = read_ids(g, "prompt_ids", ids, 128), ng = read_ids(g, "greedy_ids", ids + np, 128);
    int V = cJSON_GetObjectItem(g, "vocab_size")->valueint, N = np + ng;
    snprintf(path, sizeof path, "%s/%s", t_golden(), dir);
    bitnet_model *m = load(path, "cuda", BITNET_HEAD_EXACT), *mc = load(path, "cpu", BITNET_HEAD_EXACT);
    snprintf(name, sizeof name, "%s[cuda] load", dir);
    CHECK(name, m && mc, "%s", bitnet_last_error());
    if (!m || !mc) { bitnet_model_free(m); bitnet_model_free(mc); cJSON_Delete(g); free(js); return; }
    CHECK("cuda model weights are on the GPU", m->layers[0].wq.device == BN_DEV_CUDA && m->layers[0].wq.layout == BN_LAYOUT_TERN_CU2, "device %d", m->layers[0].wq.device);
    size_t nb;
    snprintf(path, sizeof path, "%s/%s/golden_prompt_logits.f32", t_golden(), dir);
    float *refp = t_read_file(path, &nb);
    snprintf(path, sizeof path, "%s/%s/golden_full_logits.f32", t_golden(), dir);
    float *reff = t_read_file(path, &nb);
    float *lg = malloc((size_t)N * V * 4), *lc = malloc((size_t)N * V * 4);
    bitnet_ctx *c = NULL, *cc = NULL;
    bitnet_ctx_params p = {.n_ctx = 64, .n_threads = 1, .kv_type = BITNET_KV_F32};
    bitnet_status s = bitnet_ctx_new(m, &p, &c);
    CHECK("cuda ctx", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) goto done;
    bitnet_ctx_new(mc, &p, &cc);
    s = bitnet_ctx_eval(c, ids, np, lg, 1);
    snprintf(name, sizeof name, "%s[cuda] prompt logits", dir);
    if (s == BITNET_OK) cmp(name, lg, refp, (size_t)np * V); else CHECK(name, 0, "%s", bitnet_last_error());
    bitnet_ctx_reset(c);
    s = bitnet_ctx_eval(c, ids, N, lg, 1);
    snprintf(name, sizeof name, "%s[cuda] full logits (prefill)", dir);
    if (s == BITNET_OK) cmp(name, lg, reff, (size_t)N * V); else CHECK(name, 0, "%s", bitnet_last_error());
    bitnet_ctx_eval(cc, ids, N, lc, 1);
    snprintf(name, sizeof name, "%s[cuda] full logits vs the CPU backend", dir);
    if (s == BITNET_OK) cmp(name, lg, lc, (size_t)N * V);
    bitnet_ctx_reset(c);
    for (int i = 0; i < N && !s; i++) s = bitnet_ctx_eval(c, ids + i, 1, lg + (size_t)i * V, 0);
    snprintf(name, sizeof name, "%s[cuda] full logits (decode)", dir);
    if (s == BITNET_OK) cmp(name, lg, reff, (size_t)N * V); else CHECK(name, 0, "%s", bitnet_last_error());
    {   /* greedy */
        bitnet_ctx_reset(c);
        float *last = malloc((size_t)V * 4);
        s = bitnet_ctx_eval(c, ids, np, last, 0);
        int ok = s == BITNET_OK, bad_at = -1, got_id = -1;
        for (int i = 0; i < ng && ok; i++) {
            int best = 0;
            for (int v = 1; v < V; v++) if (last[v] > last[best]) best = v;
            if (best != ids[np + i]) { ok = 0; bad_at = i; got_id = best; break; }
            s = bitnet_ctx_eval(c, &ids[np + i], 1, last, 0);
            ok = s == BITNET_OK;
        }
        snprintf(name, sizeof name, "%s[cuda] greedy ids", dir);
        CHECK(name, ok, "first difference at %d: got %d want %d (%s)", bad_at, got_id, bad_at >= 0 ? ids[np + bad_at] : -1, s ? bitnet_last_error() : "");
        free(last);
        /* the same through the GPU argmax (bitnet_ctx_eval_greedy: only ids come back) */
        bitnet_ctx_reset(c);
        int32_t t = -1;
        s = bitnet_ctx_eval_greedy(c, ids, np, &t);
        ok = s == BITNET_OK; bad_at = -1; got_id = -1;
        for (int i = 0; i < ng && ok; i++) {
            if (t != ids[np + i]) { ok = 0; bad_at = i; got_id = t; break; }
            s = bitnet_ctx_eval_greedy(c, &ids[np + i], 1, &t);
            ok = s == BITNET_OK;
        }
        snprintf(name, sizeof name, "%s[cuda] greedy ids through the GPU argmax", dir);
        CHECK(name, ok, "first difference at %d: got %d want %d (%s)", bad_at, got_id, bad_at >= 0 ? ids[np + bad_at] : -1, s ? bitnet_last_error() : "");
    }
    {   /* three sequences in one batch == each alone (same kernels per row: bit-identical) */
        bitnet_ctx *cb = NULL;
        bitnet_ctx_params pb = {.n_ctx = 64, .n_threads = 1, .n_seq_max = 3};
        s = bitnet_ctx_new(m, &pb, &cb);
        int L = np < 8 ? np : 8;
        int32_t tok[24], seq[24];
        int n = 0;
        for (int t = 0; t < L; t++) for (int q = 0; q < 3; q++) { tok[n] = ids[(t + 2 * q) % N]; seq[n] = q; n++; }
        float *lb = malloc((size_t)3 * V * 4), *l1 = malloc((size_t)V * 4);
        bitnet_batch b = {n, tok, NULL, seq, NULL};
        if (!s) s = bitnet_ctx_decode(cb, &b, lb);
        int ok = s == BITNET_OK;
        for (int q = 0; q < 3 && ok; q++) {
            int32_t one[8];
            for (int t = 0; t < L; t++) one[t] = ids[(t + 2 * q) % N];
            bitnet_ctx_reset(c);
            if (bitnet_ctx_eval(c, one, L, l1, 0)) { ok = 0; break; }
            if (memcmp(l1, lb + (size_t)q * V, (size_t)V * 4)) ok = 0;
        }
        snprintf(name, sizeof name, "%s[cuda] 3 sequences in one batch = each alone", dir);
        CHECK(name, ok, "differs (%s)", s ? bitnet_last_error() : "");
        /* seq_copy on the GPU: sequence 0 copied into 1 and 2 continues as sequence 0 does */
        bitnet_ctx_reset(cb);
        int32_t nx[3] = {ids[1], ids[1], ids[1]}, sq[3] = {0, 1, 2};
        s = bitnet_ctx_eval(cb, ids, L, NULL, 0);
        if (!s) s = bitnet_ctx_seq_copy(cb, 0, 1);
        if (!s) s = bitnet_ctx_seq_copy(cb, 0, 2);
        bitnet_batch bc = {3, nx, NULL, sq, NULL};
        if (!s) s = bitnet_ctx_decode(cb, &bc, lb);
        ok = s == BITNET_OK && !memcmp(lb, lb + V, (size_t)V * 4) && !memcmp(lb, lb + 2 * (size_t)V, (size_t)V * 4);
        snprintf(name, sizeof name, "%s[cuda] seq_copy: copies continue like the source", dir);
        CHECK(name, ok, "differs (%s)", s ? bitnet_last_error() : "");
        free(lb); free(l1); bitnet_ctx_free(cb);
    }
    mega_ab(m, dir, 64, np, 6);
done:
    bitnet_ctx_free(c); bitnet_ctx_free(cc);
    free(lg); free(lc); free(refp); free(reff);
    bitnet_model_free(m); bitnet_model_free(mc);
    cJSON_Delete(g); free(js);
}

/* q8 head on the GPU against the CPU's q8 head */
static void q8_head(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", t_golden(), dir);
    bitnet_model *m = load(path, "cuda", BITNET_HEAD_Q8), *mc = load(path, "cpu", BITNET_HEAD_Q8);
    if (!m || !mc) { CHECK("cuda q8 head load", 0, "%s", bitnet_last_error()); bitnet_model_free(m); bitnet_model_free(mc); return; }
    int V = m->cfg.vocab_size;
    int32_t ids[5] = {1, 2, 3, 4, 5};
    float *a = malloc((size_t)5 * V * 4), *b = malloc((size_t)5 * V * 4);
    bitnet_ctx *c = NULL, *cc = NULL;
    bitnet_ctx_params p = {.n_ctx = 32, .n_threads = 1, .kv_type = BITNET_KV_F32};
    bitnet_ctx_new(m, &p, &c); bitnet_ctx_new(mc, &p, &cc);
    bitnet_status s = bitnet_ctx_eval(c, ids, 5, a, 1);
    bitnet_ctx_eval(cc, ids, 5, b, 1);
    char name[128]; snprintf(name, sizeof name, "%s[cuda] q8 head vs the CPU q8 head", dir);
    if (!s) cmp(name, a, b, (size_t)5 * V); else CHECK(name, 0, "%s", bitnet_last_error());
    free(a); free(b); bitnet_ctx_free(c); bitnet_ctx_free(cc); bitnet_model_free(m); bitnet_model_free(mc);
}

static void errors(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/bitnet-b158-packed", t_golden());
    bitnet_model *m = load(path, "cuda:99", BITNET_HEAD_EXACT);
    CHECK("cuda: a missing GPU number is a load error", !m && strstr(bitnet_last_error(), "cuda:99") && strstr(bitnet_last_error(), "does not exist"), "%s", bitnet_last_error());
    m = load(path, "gpu", BITNET_HEAD_EXACT);
    CHECK("unknown device is a load error", !m && strstr(bitnet_last_error(), "unknown device 'gpu'"), "%s", bitnet_last_error());
    m = load(path, "cpu", BITNET_HEAD_EXACT);
    CHECK("cpu still loads after device errors", m != NULL, "%s", bitnet_last_error());
    bitnet_model_free(m);
}

/* ---- bench ---- */
/* A profiling build (nvcc -DBN_MG_STAMPS) defines this: block 0's marks of the last one-kernel
 * step, [step][mark][globaltimer ns, clock64]. */
extern int bn_cu_mega_stamps(unsigned long long *out, int max) __attribute__((weak));
static void stamps_dump(const char *label, int L) {
    static unsigned long long ts[512][12][2];  /* kernels.cu's MG_TS_K marks */
    if (!bn_cu_mega_stamps || 5 * L + 1 > 512 || bn_cu_mega_stamps(&ts[0][0][0], 512) < 5 * L + 1) return;
    /* steps 1..5L: L layers x (qkv, attention, o, gate/up, down); a step's marks relative to the
     * previous step's last mark */
    static const char *nm[5] = {"qkv", "attention", "o-proj", "gate/up", "down"};
    double acc[5][12] = {{0}}, tot[5] = {0};
    for (int s = 1; s <= 5 * L; s++) {
        unsigned long long t0 = 0;
        for (int k = 0; k < 12; k++) if (ts[s - 1][k][0] > t0 && ts[s - 1][k][0] - ts[s - 1][0][0] < 1000000) t0 = ts[s - 1][k][0];
        unsigned long long te = t0;
        for (int k = 0; k < 12; k++) {
            unsigned long long t = ts[s][k][0];
            if (t >= t0 && t - t0 < 1000000) { acc[(s - 1) % 5][k] += (t - t0) / 1e3 / L; if (t > te) te = t; }
        }
        tot[(s - 1) % 5] += (te - t0) / 1e3 / L;
    }
    printf("stamps (%s; block 0, us after the previous step's end, mean of %d layers; marks 0-10):\n", label, L);
    for (int j = 0; j < 5; j++) {
        printf("  %-9s total %5.2f |", nm[j], tot[j]);
        for (int k = 0; k < 11; k++) printf(" %5.2f", acc[j][k]);
        printf("\n");
    }
    double dt = (double)(ts[5 * L][5][0] - ts[0][0][0]), dc = (double)(ts[5 * L][5][1] - ts[0][0][1]);
    printf("  steps 0-%d: %.1f us, block 0's SM clock %.0f MHz\n", 5 * L, dt / 1e3, dt > 0 ? 1e3 * dc / dt : 0);
}
static double now(void) { return bn_time(); }
static int argmax(const float *v, int n) { int b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

static int bench(const char *dir) {
    double probe = 0;
    if (bn_cu_copy_probe((size_t)1 << 30, 10, &probe)) { printf("FAIL probe: %s\n", bitnet_last_error()); return 1; }
    int prop_cc = 0;
    if (bn_cu_device_open(0, NULL, 0, NULL, NULL, &prop_cc)) { printf("FAIL device: %s\n", bitnet_last_error()); return 1; }
    size_t fr0, tot; cudaMemGetInfo(&fr0, &tot);
    const char *heads[2] = {"exact", "q8"};
    for (int h = 0; h < 2; h++) {
        bitnet_model *m = NULL;
        double tl = now();
        if (dir) m = load(dir, "cuda", h ? BITNET_HEAD_Q8 : BITNET_HEAD_EXACT);
        else {
            bn_config c = cfg_2b4t(30, 128256);
            if (!bn_model_synthetic_on(&c, NULL, 1234, "cuda", &m) && h) bitnet_model_set_head(m, BITNET_HEAD_Q8);
        }
        if (!m) { printf("FAIL bench load: %s\n", bitnet_last_error()); return 1; }
        tl = now() - tl;
        int V = m->cfg.vocab_size;
        size_t wbt = bn_model_weight_bytes_per_token(m);
        bitnet_ctx *c = NULL;
        bitnet_ctx_params p = {.n_ctx = 4096, .n_threads = 1};
        if (bitnet_ctx_new(m, &p, &c)) { printf("FAIL bench ctx: %s\n", bitnet_last_error()); return 1; }
        size_t fr1; cudaMemGetInfo(&fr1, &tot);
        if (h == 0) printf("# GPU memory with the model and a 4096-token context (exact head): %.2f GiB (of %.1f GiB)\n", (fr0 - fr1) / 1073741824.0, tot / 1073741824.0);
        int32_t *pr = malloc(512 * 4);
        for (int i = 0; i < 512; i++) pr[i] = (int32_t)((i * 7919 + 13) % V);
        float *lg = malloc((size_t)V * 4);
        /* warm-up */
        bitnet_ctx_eval(c, pr, 16, lg, 0); bitnet_ctx_reset(c);
        double t0 = now();
        if (bitnet_ctx_eval(c, pr, 512, lg, 0)) { printf("FAIL pp: %s\n", bitnet_last_error()); return 1; }
        double tpp = now() - t0;
        int32_t tok = argmax(lg, V);
        t0 = now();
        for (int i = 0; i < 128; i++) {
            if (bitnet_ctx_eval(c, &tok, 1, lg, 0)) { printf("FAIL tg: %s\n", bitnet_last_error()); return 1; }
            tok = argmax(lg, V);
        }
        double ttg = now() - t0;
        double tps = 128 / ttg, gbs = tps * wbt / 1e9;
        printf("head %-5s load %.1fs | pp512 %.0f tok/s | tg128 (after 512) %.1f tok/s, %.2f ms/token, %.0f GB/s = %.1f%% of the copy probe %.0f GB/s (%.3f GB/token), logits to the host\n",
               heads[h], tl, 512 / tpp, tps, 1e3 * ttg / 128, gbs, 100 * gbs / probe, probe, wbt / 1e9);
        int mega_was = bn_cu_get_mega();
        for (int v = 2; v >= 0; v--) {  /* greedy on the GPU (only the id comes back): one-kernel step, kernels with PDL, without */
            int pdl = v >= 1, mega = v == 2;
            if (mega && prop_cc < 90) continue;
            bn_cu_set_pdl(pdl && prop_cc >= 90);
            bn_cu_set_mega(mega);
            bitnet_ctx_reset(c);
            if (bitnet_ctx_eval_greedy(c, pr, 512, &tok)) { printf("FAIL pp: %s\n", bitnet_last_error()); return 1; }
            t0 = now();
            for (int i = 0; i < 128; i++)
                if (bitnet_ctx_eval_greedy(c, &tok, 1, &tok)) { printf("FAIL tg: %s\n", bitnet_last_error()); return 1; }
            ttg = now() - t0; tps = 128 / ttg; gbs = tps * wbt / 1e9;
            printf("head %-5s tg128 (after 512) greedy on the GPU, %s: %.1f tok/s, %.2f ms/token, %.0f GB/s = %.1f%% of the copy probe\n",
                   heads[h], mega ? "one-kernel step" : pdl && prop_cc >= 90 ? "kernels, PDL on " : "kernels, PDL off",
                   tps, 1e3 * ttg / 128, gbs, 100 * gbs / probe);
            if (mega && h == 0) stamps_dump("one-kernel step", m->cfg.n_layers);
        }
        bn_cu_set_pdl(prop_cc >= 90);
        bn_cu_set_mega(mega_was);
        bitnet_ctx_free(c);
        if (h == 0) {
            static const int ns[3] = {8, 32, 64};
            for (int k = 0; k < 3; k++) {
                int S = ns[k];
                bitnet_ctx_params pb = {.n_ctx = 256, .n_threads = 1, .n_seq_max = S};
                if (bitnet_ctx_new(m, &pb, &c)) { printf("FAIL batch ctx: %s\n", bitnet_last_error()); break; }
                int32_t *bt = malloc((size_t)S * 64 * 4), *bs = malloc((size_t)S * 64 * 4);
                float *bl = malloc((size_t)S * V * 4);
                int n = 0;
                for (int t = 0; t < 64; t++) for (int q = 0; q < S; q++) if (n < S * 64) { bt[n] = pr[(t + q) % 512]; bs[n] = q; n++; }
                bitnet_batch b0 = {S * 16, bt, NULL, bs, NULL};  /* 16-token prompts, interleaved */
                bitnet_ctx_decode(c, &b0, bl);
                int steps = 32;
                double tb = now();
                for (int i = 0; i < steps; i++) {
                    for (int q = 0; q < S; q++) { bt[q] = argmax(bl + (size_t)q * V, V); bs[q] = q; }
                    bitnet_batch b = {S, bt, NULL, bs, NULL};
                    if (bitnet_ctx_decode(c, &b, bl)) { printf("FAIL batch: %s\n", bitnet_last_error()); break; }
                }
                tb = now() - tb;
                double tg1 = now();
                int32_t nx[64];
                for (int q = 0; q < S; q++) nx[q] = bt[q];
                for (int i = 0; i < steps; i++) {
                    for (int q = 0; q < S; q++) { bt[q] = nx[q]; bs[q] = q; }
                    bitnet_batch b = {S, bt, NULL, bs, NULL};
                    if (bitnet_ctx_decode_greedy(c, &b, nx)) { printf("FAIL batch: %s\n", bitnet_last_error()); break; }
                }
                tg1 = now() - tg1;
                printf("batched decode %2d sequences: %.0f tok/s total (%.1f steps/s) logits to the host; %.0f tok/s greedy on the GPU\n",
                       S, (double)S * steps / tb, steps / tb, (double)S * steps / tg1);
                free(bt); free(bs); free(bl); bitnet_ctx_free(c);
            }
        }
        free(pr); free(lg);
        bitnet_model_free(m);
    }
    return 0;
}

/* `--profile`: 2 decode steps of the synthetic 2B-4T inside cudaProfilerStart/Stop, for
 * `ncu --profile-from-start off` (the first step is captured as a graph, the second replays it). */
static int profile(void) {
    bn_config c = cfg_2b4t(30, 128256);
    bitnet_model *m = NULL;
    if (bn_model_synthetic_on(&c, NULL, 1234, "cuda", &m)) { printf("FAIL profile load: %s\n", bitnet_last_error()); return 1; }
    bitnet_ctx *cx = NULL;
    bitnet_ctx_params p = {.n_ctx = 4096, .n_threads = 1};
    if (bitnet_ctx_new(m, &p, &cx)) { printf("FAIL profile ctx: %s\n", bitnet_last_error()); return 1; }
    int32_t pr[512];
    for (int i = 0; i < 512; i++) pr[i] = (int32_t)((i * 7919 + 13) % c.vocab_size);
    float *lg = malloc((size_t)c.vocab_size * 4);
    bitnet_ctx_eval(cx, pr, 512, lg, 0);
    int32_t tok = 5;
    bitnet_ctx_eval_greedy(cx, &tok, 1, &tok);  /* capture */
    cudaProfilerStart();
    bitnet_ctx_eval_greedy(cx, &tok, 1, &tok);
    cudaProfilerStop();
    free(lg); bitnet_ctx_free(cx); bitnet_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda model: %s\n", why ? why : "no GPU"); return 0; }
    if (argc > 1 && !strcmp(argv[1], "--bench")) return bench(argc > 2 ? argv[2] : NULL);
    if (argc > 1 && !strcmp(argv[1], "--profile")) return profile();
    errors();
    const char *models[] = {"bitnet-b158-packed", "bitnet-b158-packed-bitlinear", "bitnet-b158-master", "bitnet-1bitllm"};
    for (int i = 0; i < 4; i++) run_model(models[i]);
    q8_head("bitnet-b158-master");
    {   /* 2B-4T layer shapes, 3 layers, a small vocabulary: the cluster attention's merge (n_ctx >= 256) */
        bn_config c = cfg_2b4t(3, 4096);
        bitnet_model *m = NULL;
        bitnet_status s = bn_model_synthetic_on(&c, NULL, 99, "cuda", &m);
        CHECK("2b4t-shaped[cuda] synthetic load", s == BITNET_OK, "%s", bitnet_last_error());
        if (!s) { mega_ab(m, "2b4t-shaped", 1024, 300, 40); mega_ab(m, "2b4t-shaped", 64, 20, 8); }
        bitnet_model_free(m);
    }
    T_DONE();
}
