/* tests/cuda/test_cuda.c — every CUDA kernel (src/backend/cuda/bn_cuda.h) against the CPU
 * reference (src/kernels/ref.c and the CPU backend's formulas), on fresh random inputs (the seed
 * is printed; BITNET_SEED=N repeats a run): the ternary GEMM's int32 sums and the BitLinear
 * float outputs bit-identical on awkward shapes (rows/cols not multiples of any tile, several
 * matrices in one launch, -128 activations, every GEMV width and the tensor-core path), activation
 * quantization identical (ties too), fused add/glu+norm+quant, rope+kv store+attention, the
 * norm inside the one-token GEMV and the residual add inside the GEMM identical to the unfused
 * kernels, the decode and the tiled prefill attention against a double-precision reference,
 * rope/relu2/add/embed identical, norms, attention, silu and the heads within float rounding.
 * On sm_90+ the decode attention's cluster path (bn_cu_set_cluster: splits merged through
 * distributed shared memory) and the plain path are both checked, on awkward positions (0, 1, 31,
 * 33, 63..65, 1000+) with a graph's whole-context grid (the cluster path needs >= 256 positions).
 * Outputs are poisoned before each run. Built by `make CUDA=1`, run by `make CUDA=1 test-cuda`;
 * without a GPU it prints one skip line. Not: a model-level test (tests/cuda/test_cuda_model.c). */
#include "t.h"
#include "backend/cuda/bn_cuda.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stdint.h>
#include <time.h>

static uint64_t rng;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 16); }
static float frnd(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

static void *dup_d(const void *h, size_t n) {
    void *d = NULL;
    if (bn_cu_malloc(&d, n, "test") || bn_cu_h2d(d, h, n, NULL) || bn_cu_sync(NULL)) { fprintf(stderr, "%s\n", bitnet_last_error()); exit(1); }
    return d;
}
static void *poison_d(size_t n) {
    void *d = NULL;
    if (bn_cu_malloc(&d, n, "test") || bn_cu_memset(d, 0xa5, n, NULL)) { fprintf(stderr, "%s\n", bitnet_last_error()); exit(1); }
    return d;
}
static void *zero_d(size_t n) {
    void *d = NULL;
    if (bn_cu_malloc(&d, n, "test") || bn_cu_memset(d, 0, n, NULL)) { fprintf(stderr, "%s\n", bitnet_last_error()); exit(1); }
    return d;
}
static void get(void *h, const void *d, size_t n) {
    if (bn_cu_d2h(h, d, n, NULL)) { fprintf(stderr, "%s\n", bitnet_last_error()); exit(1); }
}
/* ||a-b|| / ||b|| in double; NaN never passes */
static double relerr(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    double r = sqrt(num / (den > 0 ? den : 1));
    return r == r ? r : 1e30;
}

/* ---- ternary GEMM, int32 exact: nw matrices of rows[i] x cols in one launch ---- */
static void tg_case(int nw, const int *rows, int cols, int n, int pat) {
    const bn_kernels *R = bn_kernels_ref();
    int kp = bn_kpad(cols);
    int8_t *x = calloc((size_t)n * kp, 1);
    int32_t *xsum = calloc((size_t)n, 4);
    float *xs = malloc((size_t)n * 4);
    for (int t = 0; t < n; t++) {
        xs[t] = 1.f;
        for (int k = 0; k < cols; k++) {
            int8_t v = pat == 1 ? -128 : pat == 2 ? 127 : (int8_t)(rnd() & 0xff);
            x[(size_t)t * kp + k] = v;
            xsum[t] += v;
        }
    }
    int8_t *xd = dup_d(x, (size_t)n * kp);
    int32_t *xsd = dup_d(xsum, (size_t)n * 4);
    float *xsf = dup_d(xs, (size_t)n * 4);
    bn_cu_tmm mm[3];
    int8_t *w[3]; uint8_t *pr[3]; void *wd[3]; int32_t *yd[3];
    for (int i = 0; i < nw; i++) {
        size_t nn = (size_t)rows[i] * cols;
        w[i] = malloc(nn ? nn : 1);
        for (size_t j = 0; j < nn; j++) w[i][j] = pat == 1 ? -1 : pat == 2 ? 1 : (int8_t)(rnd() % 3) - 1;
        uint8_t *pc = malloc(bn_cu_tern_bytes(rows[i], cols) + 1);
        bn_cu_tern_pack(w[i], rows[i], cols, pc);
        wd[i] = dup_d(pc, bn_cu_tern_bytes(rows[i], cols) + 1);
        free(pc);
        pr[i] = malloc(R->packed_size(rows[i], cols) + 1);
        R->pack(w[i], rows[i], cols, pr[i]);
        yd[i] = poison_d((size_t)n * rows[i] * 4 + 4);
        mm[i] = (bn_cu_tmm){wd[i], rows[i], 1.f, NULL, yd[i], NULL};
    }
    bitnet_status st = bn_cu_tgemm(mm, nw, cols, xd, xsf, xsd, n, NULL);
    char name[128], why[200] = "";
    snprintf(name, sizeof name, "cuda tgemm int32 nw=%d rows=%d,%d,%d cols=%d n=%d pat=%d", nw, rows[0], nw > 1 ? rows[1] : 0, nw > 2 ? rows[2] : 0, cols, n, pat);
    int ok = st == BITNET_OK && !bn_cu_sync(NULL);
    if (!ok) snprintf(why, sizeof why, "%s", bitnet_last_error());
    for (int i = 0; i < nw && ok; i++) {
        int32_t *yr = malloc((size_t)n * rows[i] * 4 + 4), *yg = malloc((size_t)n * rows[i] * 4 + 4);
        R->tgemm(pr[i], rows[i], cols, 0, rows[i], x, kp, n, yr, rows[i]);
        get(yg, yd[i], (size_t)n * rows[i] * 4);
        for (size_t j = 0; j < (size_t)n * rows[i]; j++)
            if (yr[j] != yg[j]) { snprintf(why, sizeof why, "matrix %d entry %zu: ref %d, cuda %d", i, j, yr[j], yg[j]); ok = 0; break; }
        free(yr); free(yg);
    }
    CHECK(name, ok, "%s", why);
    for (int i = 0; i < nw; i++) { free(w[i]); free(pr[i]); bn_cu_free(wd[i]); bn_cu_free(yd[i]); }
    free(x); free(xsum); free(xs); bn_cu_free(xd); bn_cu_free(xsd); bn_cu_free(xsf);
}

/* ---- quantization + BitLinear float outputs, bit-identical to the CPU backend ---- */
static void bitlinear_case(int rows, int cols, int n, int ties) {
    const bn_kernels *R = bn_kernels_ref();
    int kp = bn_kpad(cols);
    float *x = malloc((size_t)n * cols * 4);
    for (int t = 0; t < n; t++)
        for (int k = 0; k < cols; k++) {
            float v = frnd() * (t == 0 ? 1e-7f : 3.f);  /* row 0 below the 1e-5 floor */
            if (ties) v = (k == 0) ? 127.f : (float)((int)(rnd() % 255) - 127) + 0.5f; /* s = 1: exact .5 ties */
            x[(size_t)t * cols + k] = v;
        }
    int8_t *w = malloc((size_t)rows * cols);
    for (size_t j = 0; j < (size_t)rows * cols; j++) w[j] = (int8_t)(rnd() % 3) - 1;
    float scale = 0.37f + frnd() * 0.1f;
    /* CPU */
    int8_t *xq = calloc((size_t)n * kp, 1);
    float *xs = malloc((size_t)n * 4), *yr = malloc((size_t)n * rows * 4), *yg = malloc((size_t)n * rows * 4);
    int32_t *acc = malloc((size_t)n * rows * 4);
    for (int t = 0; t < n; t++) xs[t] = R->quant_act(x + (size_t)t * cols, cols, xq + (size_t)t * kp, kp);
    uint8_t *pr = malloc(R->packed_size(rows, cols));
    R->pack(w, rows, cols, pr);
    R->tgemm(pr, rows, cols, 0, rows, xq, kp, n, acc, rows);
    for (int t = 0; t < n; t++) { float f = scale / xs[t]; for (int r = 0; r < rows; r++) yr[(size_t)t * rows + r] = (float)acc[(size_t)t * rows + r] * f; }
    /* GPU */
    float *xd = dup_d(x, (size_t)n * cols * 4);
    int8_t *xqd = poison_d((size_t)n * kp);
    float *xsd = poison_d((size_t)n * 4);
    int32_t *xsumd = poison_d((size_t)n * 4);
    uint8_t *pc = malloc(bn_cu_tern_bytes(rows, cols));
    bn_cu_tern_pack(w, rows, cols, pc);
    void *wd = dup_d(pc, bn_cu_tern_bytes(rows, cols));
    float *yd = poison_d((size_t)n * rows * 4);
    bn_cu_tmm mm = {wd, rows, scale, yd, NULL, NULL};
    bitnet_status st = bn_cu_quant(xd, n, cols, cols, xqd, kp, xsd, xsumd, NULL);
    if (!st) st = bn_cu_tgemm(&mm, 1, cols, xqd, xsd, xsumd, n, NULL);
    char name[128], why[200] = "";
    int ok = st == BITNET_OK;
    if (!ok) snprintf(why, sizeof why, "%s", bitnet_last_error());
    int8_t *xqg = malloc((size_t)n * kp);
    float *xsg = malloc((size_t)n * 4);
    if (ok) { get(xqg, xqd, (size_t)n * kp); get(xsg, xsd, (size_t)n * 4); get(yg, yd, (size_t)n * rows * 4); }
    snprintf(name, sizeof name, "cuda quant int8 identical cols=%d n=%d%s", cols, n, ties ? " (ties)" : "");
    int qok = ok && !memcmp(xq, xqg, (size_t)n * kp) && !memcmp(xs, xsg, (size_t)n * 4);
    if (ok && !qok) for (size_t j = 0; j < (size_t)n * kp; j++) if (xq[j] != xqg[j]) { snprintf(why, sizeof why, "q[%zu]: ref %d, cuda %d", j, xq[j], xqg[j]); break; }
    CHECK(name, qok, "%s", why);
    snprintf(name, sizeof name, "cuda bitlinear float identical rows=%d cols=%d n=%d%s", rows, cols, n, ties ? " (ties)" : "");
    int yok = ok && !memcmp(yr, yg, (size_t)n * rows * 4);
    if (ok && !yok) for (size_t j = 0; j < (size_t)n * rows; j++) if (yr[j] != yg[j]) { snprintf(why, sizeof why, "y[%zu]: ref %.9g, cuda %.9g", j, yr[j], yg[j]); break; }
    CHECK(name, yok, "%s", why);
    free(x); free(w); free(xq); free(xs); free(yr); free(yg); free(acc); free(pr); free(pc); free(xqg); free(xsg);
    bn_cu_free(xd); bn_cu_free(xqd); bn_cu_free(xsd); bn_cu_free(xsumd); bn_cu_free(wd); bn_cu_free(yd);
}

static void test_rmsnorm(int n, int d) {
    float *x = malloc((size_t)n * d * 4), *w = malloc((size_t)d * 4), *r = malloc((size_t)n * d * 4), *g = malloc((size_t)n * d * 4);
    for (size_t i = 0; i < (size_t)n * d; i++) x[i] = frnd() * 4.f;
    for (int i = 0; i < d; i++) w[i] = 0.5f + frnd();
    for (int t = 0; t < n; t++) {
        double ss = 0; for (int i = 0; i < d; i++) ss += (double)x[(size_t)t * d + i] * x[(size_t)t * d + i];
        double rr = 1.0 / sqrt(ss / d + 1e-5);
        for (int i = 0; i < d; i++) r[(size_t)t * d + i] = (float)(w[i] * (x[(size_t)t * d + i] * rr));
    }
    float *xd = dup_d(x, (size_t)n * d * 4), *wd = dup_d(w, (size_t)d * 4);
    bitnet_status st = bn_cu_rmsnorm(xd, xd, wd, n, d, 1e-5f, NULL); /* in place */
    get(g, xd, (size_t)n * d * 4);
    double e = relerr(g, r, (size_t)n * d);
    char name[96]; snprintf(name, sizeof name, "cuda rmsnorm in place n=%d d=%d", n, d);
    CHECK(name, !st && e < 1e-6, "rel err %.3g (%s)", e, st ? bitnet_last_error() : "");
    /* fused norm + quant == norm, then quant (GPU), bit for bit; in place too */
    int kp = bn_kpad(d);
    float *x2 = dup_d(x, (size_t)n * d * 4), *x3 = dup_d(x, (size_t)n * d * 4);
    int8_t *q2 = poison_d((size_t)n * kp), *q3 = poison_d((size_t)n * kp);
    float *s2 = poison_d((size_t)n * 4), *s3 = poison_d((size_t)n * 4);
    int32_t *u2 = poison_d((size_t)n * 4), *u3 = poison_d((size_t)n * 4);
    st = bn_cu_rmsnorm(x2, x2, wd, n, d, 1e-5f, NULL);
    if (!st) st = bn_cu_quant(x2, n, d, d, q2, kp, s2, u2, NULL);
    if (!st) st = bn_cu_rmsnorm_quant(x3, x3, wd, n, d, 1e-5f, q3, kp, s3, u3, NULL);
    size_t hb = (size_t)n * d * 4 + (size_t)n * kp + (size_t)n * 8;
    uint8_t *h2 = malloc(hb), *h3 = malloc(hb);
    get(h2, x2, (size_t)n * d * 4); get(h2 + (size_t)n * d * 4, q2, (size_t)n * kp);
    get(h2 + (size_t)n * d * 4 + (size_t)n * kp, s2, (size_t)n * 4); get(h2 + (size_t)n * d * 4 + (size_t)n * kp + (size_t)n * 4, u2, (size_t)n * 4);
    get(h3, x3, (size_t)n * d * 4); get(h3 + (size_t)n * d * 4, q3, (size_t)n * kp);
    get(h3 + (size_t)n * d * 4 + (size_t)n * kp, s3, (size_t)n * 4); get(h3 + (size_t)n * d * 4 + (size_t)n * kp + (size_t)n * 4, u3, (size_t)n * 4);
    snprintf(name, sizeof name, "cuda rmsnorm+quant fused identical n=%d d=%d", n, d);
    CHECK(name, !st && !memcmp(h2, h3, hb), "differs (%s)", st ? bitnet_last_error() : "");
    free(h2); free(h3);
    bn_cu_free(x2); bn_cu_free(x3); bn_cu_free(q2); bn_cu_free(q3); bn_cu_free(s2); bn_cu_free(s3); bn_cu_free(u2); bn_cu_free(u3);
    free(x); free(w); free(r); free(g); bn_cu_free(xd); bn_cu_free(wd);
}

static void test_rope(int n, int nh, int hd, int nctx) {
    int half = hd / 2;
    float *cs = malloc((size_t)nctx * half * 4), *sn = malloc((size_t)nctx * half * 4);
    for (int i = 0; i < half; i++) {
        float inv = 1.0f / powf(10000.f, (float)(2 * i) / (float)hd);
        for (int p = 0; p < nctx; p++) { cs[(size_t)p * half + i] = cosf(p * inv); sn[(size_t)p * half + i] = sinf(p * inv); }
    }
    size_t nv = (size_t)n * nh * hd;
    float *v = malloc(nv * 4), *r = malloc(nv * 4), *g = malloc(nv * 4);
    int32_t *pos = malloc((size_t)n * 4);
    for (size_t i = 0; i < nv; i++) v[i] = frnd();
    for (int t = 0; t < n; t++) pos[t] = (int32_t)(rnd() % nctx);
    memcpy(r, v, nv * 4);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh; h++) {
            float *x = r + ((size_t)t * nh + h) * hd;
            const float *c = cs + (size_t)pos[t] * half, *s = sn + (size_t)pos[t] * half;
            for (int i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                float a = x1 * c[i], b = x2 * s[i]; x[i] = a - b;
                float e = x2 * c[i], f = x1 * s[i]; x[i + half] = e + f;
            }
        }
    float *vd = dup_d(v, nv * 4), *cd = dup_d(cs, (size_t)nctx * half * 4), *sd = dup_d(sn, (size_t)nctx * half * 4);
    int32_t *pd = dup_d(pos, (size_t)n * 4);
    bitnet_status st = bn_cu_rope(vd, n, nh, hd, pd, cd, sd, NULL);
    get(g, vd, nv * 4);
    char name[96]; snprintf(name, sizeof name, "cuda rope identical n=%d heads=%d hd=%d", n, nh, hd);
    CHECK(name, !st && !memcmp(g, r, nv * 4), "differs (%s)", st ? bitnet_last_error() : "");
    free(cs); free(sn); free(v); free(r); free(g); free(pos);
    bn_cu_free(vd); bn_cu_free(cd); bn_cu_free(sd); bn_cu_free(pd);
}

/* attention over caches of nseq sequences; each token t of the batch at (seq[t], pos[t]); prefill:
 * the tiled kernel, the tokens in runs of consecutive positions, one run per sequence (run
 * boundaries on tiles; a run starts past position 0 so earlier cache rows count). g_fixpos >= 0:
 * token t at position g_fixpos - t / nseq of sequence t % nseq instead; g_ctxgrid: maxpos =
 * nctx - 1 (the grid a decode graph launches) instead of the largest position. Decode: run with
 * the cluster path off and (when the device has it) on, each against the reference. */
static int g_fixpos = -1, g_ctxgrid = 0, g_has_cl = 0;
static void test_attention(int n, int nh, int nkv, int hd, int nctx, int nseq, int longpos, int prefill) {
    int kvd = nkv * hd, qd = nh * hd, grp = nh / nkv;
    size_t sstr = (size_t)nctx * kvd, csz = (size_t)nseq * sstr;
    float *kc = malloc(csz * 4), *vc = malloc(csz * 4);
    for (size_t i = 0; i < csz; i++) { kc[i] = frnd(); vc[i] = frnd(); }
    float *q = malloc((size_t)n * qd * 4), *k = malloc((size_t)n * kvd * 4), *v = malloc((size_t)n * kvd * 4);
    for (size_t i = 0; i < (size_t)n * qd; i++) q[i] = frnd() * 2.f;
    for (size_t i = 0; i < (size_t)n * kvd; i++) { k[i] = frnd(); v[i] = frnd(); }
    int32_t *seq = malloc((size_t)n * 4), *pos = malloc((size_t)n * 4);
    int maxpos = 0;
    for (int t = 0; t < n; t++) {
        seq[t] = (int32_t)(rnd() % nseq);
        pos[t] = longpos && t == 0 ? nctx - 1 : (int32_t)(rnd() % nctx);
        for (int u = 0; u < t; u++) if (seq[u] == seq[t] && pos[u] == pos[t]) pos[t] = (pos[t] + 1) % nctx; /* keep slots distinct-ish */
        if (g_fixpos >= 0) { seq[t] = t % nseq; pos[t] = g_fixpos - t / nseq; }
        if (prefill) {
            int tq = bn_cu_attention_tile(nh, nkv, hd), run = (n / nseq + tq - 1) / tq * tq;
            seq[t] = t / run < nseq ? t / run : nseq - 1;
            pos[t] = 7 * (seq[t] + 1) + (t - seq[t] * run);
        }
        if (pos[t] > maxpos) maxpos = pos[t];
    }
    if (g_ctxgrid) maxpos = nctx - 1;
    /* CPU: store then attend (the later store wins on a shared slot, as on the GPU in order... avoid: slots distinct) */
    float *kc2 = malloc(csz * 4), *vc2 = malloc(csz * 4);
    memcpy(kc2, kc, csz * 4); memcpy(vc2, vc, csz * 4);
    for (int t = 0; t < n; t++) {
        memcpy(kc2 + seq[t] * sstr + (size_t)pos[t] * kvd, k + (size_t)t * kvd, (size_t)kvd * 4);
        memcpy(vc2 + seq[t] * sstr + (size_t)pos[t] * kvd, v + (size_t)t * kvd, (size_t)kvd * 4);
    }
    float *ref = malloc((size_t)n * qd * 4), *g = malloc((size_t)n * qd * 4), *sc = malloc((size_t)nctx * 8);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh; h++) {
            const float *K = kc2 + seq[t] * sstr + (size_t)(h / grp) * hd, *V = vc2 + seq[t] * sstr + (size_t)(h / grp) * hd;
            const float *qq = q + (size_t)t * qd + (size_t)h * hd;
            double mx = -1e300, sum = 0;
            double *s = (double *)sc;
            for (int p = 0; p <= pos[t]; p++) {
                double d = 0; for (int i = 0; i < hd; i++) d += (double)qq[i] * K[(size_t)p * kvd + i];
                s[p] = d / sqrt((double)hd); if (s[p] > mx) mx = s[p];
            }
            for (int p = 0; p <= pos[t]; p++) { s[p] = exp(s[p] - mx); sum += s[p]; }
            for (int i = 0; i < hd; i++) {
                double o = 0; for (int p = 0; p <= pos[t]; p++) o += s[p] * V[(size_t)p * kvd + i];
                ref[(size_t)t * qd + (size_t)h * hd + i] = (float)(o / sum);
            }
        }
    float *kcd = dup_d(kc, csz * 4), *vcd = dup_d(vc, csz * 4), *qdv = dup_d(q, (size_t)n * qd * 4);
    float *kd = dup_d(k, (size_t)n * kvd * 4), *vd = dup_d(v, (size_t)n * kvd * 4);
    int32_t *sd = dup_d(seq, (size_t)n * 4), *pd = dup_d(pos, (size_t)n * 4);
    float *ws = zero_d(bn_cu_attention_ws(n, nh, hd) * 4), *od = poison_d((size_t)n * qd * 4);
    bitnet_status st = bn_cu_kv_store(kcd, vcd, sstr, kd, vd, n, kvd, sd, pd, NULL);
    char name[160];
    for (int cl = 0; cl <= (prefill || !g_has_cl ? 0 : 4); cl++) {  /* plain, then the cluster variants 1..4 */
        bn_cu_set_cluster(cl);
        if (!st) st = bn_cu_memset(od, 0xff, (size_t)n * qd * 4, NULL);
        if (!st && !prefill) st = bn_cu_attention(qdv, kcd, vcd, sstr, n, nh, nkv, hd, sd, pd, maxpos, ws, od, NULL);
        if (!st && prefill) st = bn_cu_attention_prefill(qdv, kcd, vcd, sstr, n, nh, nkv, hd, sd, pd, NULL, NULL, od, NULL);
        if (!st) st = bn_cu_sync(NULL);
        get(g, od, (size_t)n * qd * 4);
        double e = relerr(g, ref, (size_t)n * qd);
        snprintf(name, sizeof name, "cuda attention%s (cluster variant %d) n=%d heads=%d/%d hd=%d ctx=%d seqs=%d pos0=%d maxpos=%d", prefill ? " (prefill tiles)" : "",
                 cl, n, nh, nkv, hd, nctx, nseq, pos[0], maxpos);
        CHECK(name, !st && e < 2e-6, "rel err %.3g (%s)", e, st ? bitnet_last_error() : "");
    }
    bn_cu_set_cluster(g_has_cl);
    /* the cache holds the stored rows */
    float *kg = malloc(csz * 4);
    get(kg, kcd, csz * 4);
    snprintf(name, sizeof name, "cuda kv store n=%d seqs=%d", n, nseq);
    CHECK(name, !memcmp(kg, kc2, csz * 4), "cache differs");
    free(kg); free(kc); free(vc); free(kc2); free(vc2); free(q); free(k); free(v); free(seq); free(pos); free(ref); free(g); free(sc);
    bn_cu_free(kcd); bn_cu_free(vcd); bn_cu_free(qdv); bn_cu_free(kd); bn_cu_free(vd); bn_cu_free(sd); bn_cu_free(pd); bn_cu_free(ws); bn_cu_free(od);
}

static void test_elementwise(size_t n) {
    float *g = malloc(n * 4), *u = malloc(n * 4), *r = malloc(n * 4), *o = malloc(n * 4);
    for (size_t i = 0; i < n; i++) { g[i] = frnd() * 3.f; u[i] = frnd() * 3.f; }
    for (int act = 0; act < 2; act++) {
        for (size_t i = 0; i < n; i++) {
            if (act == 0) { float x = g[i] > 0.f ? g[i] : 0.f; float x2 = x * x; r[i] = x2 * u[i]; }
            else r[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
        }
        float *gd = dup_d(g, n * 4), *ud = dup_d(u, n * 4);
        bitnet_status st = bn_cu_glu(gd, ud, n, act, NULL);
        get(o, gd, n * 4);
        char name[64]; snprintf(name, sizeof name, "cuda glu %s n=%zu", act ? "silu" : "relu2 identical", n);
        if (act == 0) CHECK(name, !st && !memcmp(o, r, n * 4), "differs");
        else { double e = relerr(o, r, n); CHECK(name, !st && e < 1e-6, "rel err %.3g", e); }
        bn_cu_free(gd); bn_cu_free(ud);
    }
    for (size_t i = 0; i < n; i++) r[i] = g[i] + u[i];
    float *gd = dup_d(g, n * 4), *ud = dup_d(u, n * 4);
    bitnet_status st = bn_cu_add(gd, ud, n, NULL);
    get(o, gd, n * 4);
    CHECK("cuda add identical", !st && !memcmp(o, r, n * 4), "differs");
    int *bad = poison_d(4);
    bn_cu_memset(bad, 0, 4, NULL);
    int hb = -1;
    bn_cu_nonfinite(gd, n, bad, NULL); get(&hb, bad, 4);
    CHECK("cuda nonfinite: all finite", hb == 0, "flag %d", hb);
    float nanv = NAN;
    bn_cu_h2d(gd + n / 2, &nanv, 4, NULL);
    bn_cu_nonfinite(gd, n, bad, NULL); get(&hb, bad, 4);
    CHECK("cuda nonfinite: finds a NaN", hb == 1, "flag %d", hb);
    free(g); free(u); free(r); free(o); bn_cu_free(gd); bn_cu_free(ud); bn_cu_free(bad);
}

/* ---- fused pre-ops of the norm: add / glu + rmsnorm + quant == the unfused kernels in turn, bit for bit ---- */
static void test_norm_fused(int n, int d) {
    size_t nd = (size_t)n * d;
    int kp = bn_kpad(d);
    float *x = malloc(nd * 4), *y = malloc(nd * 4), *w = malloc((size_t)d * 4);
    for (size_t i = 0; i < nd; i++) { x[i] = frnd() * 3.f; y[i] = frnd() * 3.f; }
    for (int i = 0; i < d; i++) w[i] = 0.5f + frnd();
    float *wd = dup_d(w, (size_t)d * 4);
    size_t hb = nd * 8 + (size_t)n * kp + (size_t)n * 8;
    uint8_t *h[2] = {malloc(hb), malloc(hb)};
    for (int mode = 0; mode < 3; mode++) {  /* 0: add, 1: relu2 glu, 2: silu glu */
        for (int v = 0; v < 2; v++) {       /* v 0: unfused kernels in turn, 1: fused */
            float *xd = dup_d(x, nd * 4), *yd = dup_d(y, nd * 4), *od = poison_d(nd * 4);
            int8_t *q = poison_d((size_t)n * kp); float *s = poison_d((size_t)n * 4); int32_t *u = poison_d((size_t)n * 4);
            bitnet_status st;
            if (mode == 0) st = v ? bn_cu_add_rmsnorm_quant(od, xd, yd, wd, n, d, 1e-5f, q, kp, s, u, NULL)
                                  : (bn_cu_add(xd, yd, nd, NULL) || bn_cu_rmsnorm_quant(od, xd, wd, n, d, 1e-5f, q, kp, s, u, NULL));
            else st = v ? bn_cu_glu_rmsnorm_quant(xd, yd, mode - 1, wd, n, d, 1e-5f, q, kp, s, u, NULL)
                        : (bn_cu_glu(xd, yd, nd, mode - 1, NULL) || bn_cu_rmsnorm_quant(xd, xd, wd, n, d, 1e-5f, q, kp, s, u, NULL));
            if (st) { CHECK("cuda fused norm runs", 0, "%s", bitnet_last_error()); }
            get(h[v], xd, nd * 4);
            if (mode == 0) get(h[v] + nd * 4, od, nd * 4); else memset(h[v] + nd * 4, 0, nd * 4);
            get(h[v] + nd * 8, q, (size_t)n * kp); get(h[v] + nd * 8 + (size_t)n * kp, s, (size_t)n * 4);
            get(h[v] + nd * 8 + (size_t)n * kp + (size_t)n * 4, u, (size_t)n * 4);
            bn_cu_free(xd); bn_cu_free(yd); bn_cu_free(od); bn_cu_free(q); bn_cu_free(s); bn_cu_free(u);
        }
        char name[96]; snprintf(name, sizeof name, "cuda %s+rmsnorm+quant fused identical n=%d d=%d", mode == 0 ? "add" : mode == 1 ? "relu2" : "silu", n, d);
        CHECK(name, !memcmp(h[0], h[1], hb), "differs");
    }
    free(h[0]); free(h[1]); free(x); free(y); free(w); bn_cu_free(wd);
}

/* ---- the residual add inside the GEMM (bn_cu_tmm.add_d) == bn_cu_add after it, bit for bit (every
 * path: GEMV widths, tensor cores, the split of wide rows) ---- */
static void test_tgemm_add(int rows, int cols, int n) {
    int kp = bn_kpad(cols);
    int8_t *q = malloc((size_t)rows * cols), *xq = calloc((size_t)n * kp, 1);
    for (size_t k = 0; k < (size_t)rows * cols; k++) q[k] = (int8_t)(rnd() % 3) - 1;
    float *xs = malloc((size_t)n * 4), *r0 = malloc((size_t)n * rows * 4), *h[2];
    int32_t *xsum = calloc((size_t)n, 4);
    for (int t = 0; t < n; t++) { xs[t] = 3.f + t; for (int k = 0; k < cols; k++) { int8_t v = (int8_t)(rnd() & 0xff); xq[(size_t)t * kp + k] = v; xsum[t] += v; } }
    for (size_t i = 0; i < (size_t)n * rows; i++) r0[i] = frnd() * 5.f;
    uint8_t *pc = malloc(bn_cu_tern_bytes(rows, cols));
    bn_cu_tern_pack(q, rows, cols, pc);
    void *wd = dup_d(pc, bn_cu_tern_bytes(rows, cols)), *xd = dup_d(xq, (size_t)n * kp), *sd = dup_d(xs, (size_t)n * 4), *ud = dup_d(xsum, (size_t)n * 4);
    bitnet_status st = BITNET_OK;
    for (int v = 0; v < 2; v++) {
        float *yd = poison_d((size_t)n * rows * 4), *rd = dup_d(r0, (size_t)n * rows * 4);
        bn_cu_tmm mm = {wd, rows, 0.5f, yd, NULL, v ? rd : NULL};
        if (!st) st = bn_cu_tgemm(&mm, 1, cols, xd, sd, ud, n, NULL);
        if (!st && !v) st = bn_cu_add(rd, yd, (size_t)n * rows, NULL);
        h[v] = malloc((size_t)n * rows * 8);
        get(h[v], yd, (size_t)n * rows * 4); get(h[v] + (size_t)n * rows, rd, (size_t)n * rows * 4);
        bn_cu_free(yd); bn_cu_free(rd);
    }
    char name[96]; snprintf(name, sizeof name, "cuda residual add inside the GEMM identical %dx%d n=%d", rows, cols, n);
    CHECK(name, !st && !memcmp(h[0], h[1], (size_t)n * rows * 8), "differs (%s)", st ? bitnet_last_error() : "");
    free(h[0]); free(h[1]); free(q); free(xq); free(xs); free(r0); free(xsum); free(pc);
    bn_cu_free(wd); bn_cu_free(xd); bn_cu_free(sd); bn_cu_free(ud);
}

/* ---- the one-token GEMV with the norm inside == norm kernel + GEMV, bit for bit (y, x, out; twice:
 * the counter is left at zero); the first matrix's residual add in the GEMV (add_d) == bn_cu_add ---- */
static void test_norm_tgemv(int d, int nw, const int *rows, int pre, int act) {
    int kp = bn_kpad(d);
    float *x = malloc((size_t)d * 4), *y = malloc((size_t)d * 4), *w = malloc((size_t)d * 4);
    for (int i = 0; i < d; i++) { x[i] = frnd() * 3.f; y[i] = frnd() * 3.f; w[i] = 0.5f + frnd(); }
    float *wd = dup_d(w, (size_t)d * 4);
    void *wm[3]; size_t ysz = 0;
    for (int i = 0; i < nw; i++) {
        int8_t *q = malloc((size_t)rows[i] * d);
        for (size_t k = 0; k < (size_t)rows[i] * d; k++) q[k] = (int8_t)(rnd() % 3) - 1;
        uint8_t *pc = malloc(bn_cu_tern_bytes(rows[i], d));
        bn_cu_tern_pack(q, rows[i], d, pc);
        wm[i] = dup_d(pc, bn_cu_tern_bytes(rows[i], d));
        free(q); free(pc);
        ysz += (size_t)rows[i];
    }
    float *r0 = malloc((size_t)rows[0] * 4);
    for (int i = 0; i < rows[0]; i++) r0[i] = frnd() * 5.f;
    size_t hb = ysz * 4 + (size_t)d * 8 + (size_t)rows[0] * 4;
    uint8_t *h[3] = {malloc(hb), malloc(hb), malloc(hb)};
    unsigned *cnt = zero_d(16);
    bitnet_status st = BITNET_OK;
    for (int v = 0; v < 3; v++) {  /* 0: kernels in turn; 1, 2: fused (twice) */
        float *xd = dup_d(x, (size_t)d * 4), *yd = dup_d(y, (size_t)d * 4), *od = pre == 2 ? xd : poison_d((size_t)d * 4), *yo[3];
        int8_t *q = poison_d((size_t)kp); float *s = poison_d(4); int32_t *u = poison_d(4);
        bn_cu_tmm mm[3];
        float *rd = dup_d(r0, (size_t)rows[0] * 4);
        for (int i = 0; i < nw; i++) { yo[i] = poison_d((size_t)rows[i] * 4); mm[i] = (bn_cu_tmm){wm[i], rows[i], 0.75f, yo[i], NULL, v && !i ? rd : NULL}; }
        if (v == 0) {
            if (!st) st = pre == 0 ? bn_cu_rmsnorm_quant(od, xd, wd, 1, d, 1e-5f, q, kp, s, u, NULL)
                        : pre == 1 ? bn_cu_add_rmsnorm_quant(od, xd, yd, wd, 1, d, 1e-5f, q, kp, s, u, NULL)
                                   : bn_cu_glu_rmsnorm_quant(xd, yd, act, wd, 1, d, 1e-5f, q, kp, s, u, NULL);
            if (!st) st = bn_cu_tgemm(mm, nw, d, q, s, u, 1, NULL);
            if (!st) st = bn_cu_add(rd, yo[0], (size_t)rows[0], NULL);
        } else if (!st) st = bn_cu_norm_tgemv(mm, nw, d, pre, act, xd, yd, wd, 1e-5f, od, cnt, NULL);
        size_t o = 0;
        for (int i = 0; i < nw; i++) { get(h[v] + o, yo[i], (size_t)rows[i] * 4); o += (size_t)rows[i] * 4; bn_cu_free(yo[i]); }
        get(h[v] + o, xd, (size_t)d * 4); get(h[v] + o + (size_t)d * 4, od, (size_t)d * 4);
        get(h[v] + o + (size_t)d * 8, rd, (size_t)rows[0] * 4); bn_cu_free(rd);
        bn_cu_free(xd); bn_cu_free(yd); if (od != xd) bn_cu_free(od); bn_cu_free(q); bn_cu_free(s); bn_cu_free(u);
    }
    unsigned c = 1; get(&c, cnt, 4);
    char name[128]; snprintf(name, sizeof name, "cuda norm(pre %d, act %d) inside the GEMV identical d=%d matrices=%d", pre, act, d, nw);
    CHECK(name, !st && !memcmp(h[0], h[1], hb) && !memcmp(h[0], h[2], hb) && c == 0, "differs (%s; counter %u)", st ? bitnet_last_error() : "", c);
    for (int i = 0; i < nw; i++) bn_cu_free(wm[i]);
    for (int v = 0; v < 3; v++) free(h[v]);
    free(x); free(y); free(w); free(r0); bn_cu_free(wd); bn_cu_free(cnt);
}

/* ---- attention with RoPE (and the KV store) fused in == rope, kv store, attention in turn, bit for bit ---- */
static void test_attention_fused(int n, int nh, int nkv, int hd, int nctx, int nseq, int inside) {
    int kvd = nkv * hd, qd = nh * hd, half = hd / 2;
    size_t sstr = (size_t)nctx * kvd, csz = (size_t)nseq * sstr;
    float *kc = malloc(csz * 4), *q = malloc((size_t)n * qd * 4), *k = malloc((size_t)n * kvd * 4), *v = malloc((size_t)n * kvd * 4);
    for (size_t i = 0; i < csz; i++) kc[i] = frnd();
    for (size_t i = 0; i < (size_t)n * qd; i++) q[i] = frnd() * 2.f;
    for (size_t i = 0; i < (size_t)n * kvd; i++) { k[i] = frnd(); v[i] = frnd(); }
    float *cs = malloc((size_t)nctx * half * 4), *sn = malloc((size_t)nctx * half * 4);
    for (int i = 0; i < half; i++)
        for (int p = 0; p < nctx; p++) { float a = p / powf(10000.f, (float)(2 * i) / hd); cs[(size_t)p * half + i] = cosf(a); sn[(size_t)p * half + i] = sinf(a); }
    int32_t *seq = malloc((size_t)n * 4), *pos = malloc((size_t)n * 4);
    int maxpos = 0;
    for (int t = 0; t < n; t++) {  /* inside: one token per sequence; else several tokens of a sequence */
        seq[t] = inside ? t : (int32_t)(rnd() % nseq);
        pos[t] = (int32_t)(rnd() % nctx);
        for (int u = 0; u < t; u++) if (seq[u] == seq[t] && pos[u] == pos[t]) pos[t] = (pos[t] + 1) % nctx;
        if (pos[t] > maxpos) maxpos = pos[t];
    }
    float *cd = dup_d(cs, (size_t)nctx * half * 4), *snd = dup_d(sn, (size_t)nctx * half * 4);
    int32_t *sd = dup_d(seq, (size_t)n * 4), *pd = dup_d(pos, (size_t)n * 4);
    float *out[2], *cache[2];
    bitnet_status st = BITNET_OK;
    for (int f = 0; f < 2; f++) {
        float *kcd = dup_d(kc, csz * 4), *vcd = dup_d(kc, csz * 4), *qdv = dup_d(q, (size_t)n * qd * 4);
        float *kd = dup_d(k, (size_t)n * kvd * 4), *vd = dup_d(v, (size_t)n * kvd * 4);
        float *ws = zero_d(bn_cu_attention_ws(n, nh, hd) * 4), *od = poison_d((size_t)n * qd * 4);
        if (!f) {
            if (!st) st = bn_cu_rope(qdv, n, nh, hd, pd, cd, snd, NULL);
            if (!st) st = bn_cu_rope(kd, n, nkv, hd, pd, cd, snd, NULL);
            if (!st) st = bn_cu_kv_store(kcd, vcd, sstr, kd, vd, n, kvd, sd, pd, NULL);
            if (!st) st = bn_cu_attention(qdv, kcd, vcd, sstr, n, nh, nkv, hd, sd, pd, maxpos, ws, od, NULL);
        } else if (inside) {
            if (!st) st = bn_cu_attention_fused(qdv, kd, vd, kcd, vcd, sstr, n, nh, nkv, hd, sd, pd, maxpos, cd, snd, ws, od, NULL);
        } else {
            if (!st) st = bn_cu_rope_kv_store(kcd, vcd, sstr, kd, vd, n, nkv, hd, sd, pd, cd, snd, NULL);
            if (!st) st = bn_cu_attention_fused(qdv, NULL, NULL, kcd, vcd, sstr, n, nh, nkv, hd, sd, pd, maxpos, cd, snd, ws, od, NULL);
        }
        out[f] = malloc((size_t)n * qd * 4); cache[f] = malloc(csz * 8);
        get(out[f], od, (size_t)n * qd * 4); get(cache[f], kcd, csz * 4); get(cache[f] + csz, vcd, csz * 4);
        bn_cu_free(kcd); bn_cu_free(vcd); bn_cu_free(qdv); bn_cu_free(kd); bn_cu_free(vd); bn_cu_free(ws); bn_cu_free(od);
    }
    char name[128]; snprintf(name, sizeof name, "cuda attention+rope%s fused identical n=%d heads=%d/%d hd=%d seqs=%d", inside ? "+kv store" : "", n, nh, nkv, hd, inside ? n : nseq);
    CHECK(name, !st && !memcmp(out[0], out[1], (size_t)n * qd * 4) && !memcmp(cache[0], cache[1], csz * 8), "differs (%s)", st ? bitnet_last_error() : "");
    for (int f = 0; f < 2; f++) { free(out[f]); free(cache[f]); }
    free(kc); free(q); free(k); free(v); free(cs); free(sn); free(seq); free(pos);
    bn_cu_free(cd); bn_cu_free(snd); bn_cu_free(sd); bn_cu_free(pd);
}

static void test_embed(int vocab, int dim, int n) {
    for (int dt = 0; dt < 3; dt++) {
        size_t es = dt == BN_W_F32 ? 4 : 2, tn = (size_t)vocab * dim;
        uint8_t *tab = malloc(tn * es);
        float *ref = malloc((size_t)n * dim * 4), *g = malloc((size_t)n * dim * 4);
        int32_t *ids = malloc((size_t)n * 4);
        for (size_t i = 0; i < tn; i++) {
            float f = frnd();
            if (dt == BN_W_F32) memcpy(tab + 4 * i, &f, 4);
            else { uint16_t h = dt == BN_W_F16 ? bn_f32_to_f16(f) : bn_f32_to_bf16(f); memcpy(tab + 2 * i, &h, 2); }
        }
        for (int t = 0; t < n; t++) {
            ids[t] = (int32_t)(rnd() % vocab);
            for (int i = 0; i < dim; i++) {
                size_t j = (size_t)ids[t] * dim + i;
                uint16_t h; memcpy(&h, tab + 2 * j, 2);
                float f; if (dt == BN_W_F32) memcpy(&f, tab + 4 * j, 4); else f = dt == BN_W_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h);
                ref[(size_t)t * dim + i] = f;
            }
        }
        void *td = dup_d(tab, tn * es);
        int32_t *idd = dup_d(ids, (size_t)n * 4);
        float *xd = poison_d((size_t)n * dim * 4);
        bitnet_status st = bn_cu_embed(td, dt, dim, idd, n, xd, NULL);
        get(g, xd, (size_t)n * dim * 4);
        char name[64]; snprintf(name, sizeof name, "cuda embed identical dtype %d", dt);
        CHECK(name, !st && !memcmp(g, ref, (size_t)n * dim * 4), "differs");
        free(tab); free(ref); free(g); free(ids); bn_cu_free(td); bn_cu_free(idd); bn_cu_free(xd);
    }
}

/* The Q8/Q4 head formats (kernels.h) times float activations, in double: what k_head_q8/q4
 * compute. (The CPU sets' hgemm_q8/q4 quantize the activations to int8 per 32-block first, so
 * they are not this test's reference; test_cuda_model.c bounds the CUDA q8 head against them.) */
static void hq_float_ref(const uint8_t *hq, int q4, int rows, int cols, const float *x, int n, float *y) {
    int cp = bn_hq_cpad(cols), nb = cp / 32;
    const float *sc = (const float *)(const void *)hq;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            for (int k = 0; k < cols; k++) {
                double w;
                if (q4) {
                    uint8_t b = (hq + bn_hq4_qoff(rows, cols))[(size_t)r * (cp / 2) + 16 * (k / 32) + k % 16];
                    w = (double)sc[(size_t)r * nb + k / 32] * (((k % 32) < 16 ? (b & 15) : (b >> 4)) - 8);
                } else w = (double)((const int8_t *)(hq + bn_hq8_qoff(rows)))[(size_t)r * cp + k];
                acc += w * x[(size_t)t * cols + k];
            }
            y[(size_t)t * rows + r] = (float)(q4 ? acc : sc[r] * acc);
        }
}

/* heads: dense dtypes against ref fgemm, Q8/Q4 against hq_float_ref, then argmax */
static void test_head(int rows, int cols, int n) {
    const bn_kernels *R = bn_kernels_ref();
    float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)n * cols * 4);
    for (size_t i = 0; i < (size_t)rows * cols; i++) wf[i] = frnd() * 0.1f;
    for (size_t i = 0; i < (size_t)n * cols; i++) x[i] = frnd();
    uint16_t *wb = malloc((size_t)rows * cols * 2), *wh = malloc((size_t)rows * cols * 2);
    for (size_t i = 0; i < (size_t)rows * cols; i++) { wb[i] = bn_f32_to_bf16(wf[i]); wh[i] = bn_f32_to_f16(wf[i]); }
    float *yr = malloc((size_t)n * rows * 4), *yg = malloc((size_t)n * rows * 4);
    float *xd = dup_d(x, (size_t)n * cols * 4), *yd = poison_d((size_t)n * rows * 4);
    char name[128];
    const void *ws[3] = {wf, wh, wb};
    size_t es[3] = {4, 2, 2};
    for (int dt = 0; dt < 3; dt++) {
        R->fgemm(ws[dt], dt, rows, cols, 0, rows, x, cols, n, yr, rows);
        void *wd = dup_d(ws[dt], (size_t)rows * cols * es[dt]);
        bn_cu_memset(yd, 0xa5, (size_t)n * rows * 4, NULL);
        bitnet_status st = bn_cu_head(wd, dt, rows, cols, xd, n, yd, NULL);
        get(yg, yd, (size_t)n * rows * 4);
        double e = relerr(yg, yr, (size_t)n * rows);
        snprintf(name, sizeof name, "cuda head dtype %d rows=%d cols=%d n=%d", dt, rows, cols, n);
        CHECK(name, !st && e < 1e-5, "rel err %.3g (%s)", e, st ? bitnet_last_error() : "");
        bn_cu_free(wd);
    }
    for (int qk = 0; qk < 2; qk++) {
        size_t sz = qk ? bn_hq4_size(rows, cols) : bn_hq8_size(rows, cols);
        uint8_t *hq = malloc(sz);
        if (qk) bn_hq4_quant(wb, BN_W_BF16, rows, cols, hq);
        else bn_hq8_quant(wb, BN_W_BF16, rows, cols, hq);
        hq_float_ref(hq, qk, rows, cols, x, n, yr);
        void *wd = dup_d(hq, sz);
        bn_cu_memset(yd, 0xa5, (size_t)n * rows * 4, NULL);
        bitnet_status st = bn_cu_head(wd, qk ? BN_CU_HEAD_Q4 : BN_CU_HEAD_Q8, rows, cols, xd, n, yd, NULL);
        get(yg, yd, (size_t)n * rows * 4);
        double e = relerr(yg, yr, (size_t)n * rows);
        snprintf(name, sizeof name, "cuda head %s rows=%d cols=%d n=%d", qk ? "q4" : "q8", rows, cols, n);
        CHECK(name, !st && e < 1e-5, "rel err %.3g (%s)", e, st ? bitnet_last_error() : "");
        free(hq); bn_cu_free(wd);
    }
    /* argmax of the last logits, with a planted tie at two rows: the first one wins */
    int tie = rows > 3 ? rows / 3 : 0;
    for (int t = 0; t < n; t++) {
        float mx = -INFINITY; for (int r = 0; r < rows; r++) if (yg[(size_t)t * rows + r] > mx) mx = yg[(size_t)t * rows + r];
        yg[(size_t)t * rows + tie] = mx + 1.f; yg[(size_t)t * rows + rows - 1] = mx + 1.f;
    }
    float *yd2 = dup_d(yg, (size_t)n * rows * 4), *vd = poison_d((size_t)n * 4);
    int32_t *id = poison_d((size_t)n * 4), *ig = malloc((size_t)n * 4);
    bitnet_status st = bn_cu_argmax(yd2, n, rows, id, vd, NULL);
    get(ig, id, (size_t)n * 4);
    int ok = !st;
    for (int t = 0; t < n && ok; t++) {
        int bi = 0; for (int r = 1; r < rows; r++) if (yg[(size_t)t * rows + r] > yg[(size_t)t * rows + bi]) bi = r;
        if (ig[t] != bi) ok = 0;
    }
    snprintf(name, sizeof name, "cuda argmax first max rows=%d n=%d", rows, n);
    CHECK(name, ok, "index %d", ig[0]);
    free(wf); free(x); free(wb); free(wh); free(yr); free(yg); free(ig);
    bn_cu_free(xd); bn_cu_free(yd); bn_cu_free(yd2); bn_cu_free(vd); bn_cu_free(id);
}

/* ---- greedy head: the fused argmax == the first max of the same kernel's logits, ties included;
 * a non-finite input is flagged ---- */
static void test_head_argmax(int rows, int cols, int n) {
    float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)n * cols * 4);
    for (size_t i = 0; i < (size_t)rows * cols; i++) wf[i] = frnd() * 0.1f;
    for (int k = 0; k < cols; k++) wf[(size_t)(rows - 1) * cols + k] = wf[(size_t)(rows / 2) * cols + k]; /* rows/2 and rows-1 tie */
    for (size_t i = 0; i < (size_t)n * cols; i++) x[i] = frnd();
    uint16_t *wb = malloc((size_t)rows * cols * 2);
    for (size_t i = 0; i < (size_t)rows * cols; i++) wb[i] = bn_f32_to_bf16(wf[i]);
    for (int k = 0; k < cols; k++) wb[(size_t)(rows / 2) * cols + k] = wb[(size_t)(rows - 1) * cols + k] = bn_f32_to_bf16(fabsf(frnd()) + 0.5f);
    uint8_t *hq = malloc(bn_hq8_size(rows, cols));
    bn_hq8_quant(wb, BN_W_BF16, rows, cols, hq);
    for (int t = 0; t < n; t++) for (int k = 0; k < cols; k++) x[(size_t)t * cols + k] = fabsf(x[(size_t)t * cols + k]); /* the tie rows win */
    if (n > 2) for (int k = 0; k < cols; k++) x[(size_t)2 * cols + k] = -x[(size_t)2 * cols + k];  /* row 2: some other max */
    float *xd = dup_d(x, (size_t)n * cols * 4), *yd = poison_d((size_t)n * rows * 4), *y = malloc((size_t)n * rows * 4);
    void *kd = poison_d(bn_cu_head_argmax_bytes(n)), *kh = malloc(bn_cu_head_argmax_bytes(n));
    int32_t *ids = malloc((size_t)n * 4);
    for (int kind = 0; kind < 2; kind++) {
        void *wd = kind ? dup_d(hq, bn_hq8_size(rows, cols)) : dup_d(wb, (size_t)rows * cols * 2);
        int hk = kind ? BN_CU_HEAD_Q8 : BN_W_BF16;
        bitnet_status st = bn_cu_head(wd, hk, rows, cols, xd, n, yd, NULL);
        if (!st) st = bn_cu_head_argmax(wd, hk, rows, cols, xd, n, kd, NULL);
        get(y, yd, (size_t)n * rows * 4); get(kh, kd, bn_cu_head_argmax_bytes(n));
        int fin = bn_cu_head_argmax_read(kh, n, ids), ok = !st && fin, tie_seen = 0;
        for (int t = 0; t < n && ok; t++) {
            int bi = 0; for (int r = 1; r < rows; r++) if (y[(size_t)t * rows + r] > y[(size_t)t * rows + bi]) bi = r;
            if (ids[t] != bi) ok = 0;
            if (bi == rows / 2 && y[(size_t)t * rows + rows - 1] == y[(size_t)t * rows + bi]) tie_seen = 1;
        }
        char name[128]; snprintf(name, sizeof name, "cuda greedy head %s == first max of its logits rows=%d n=%d (tie seen: %d)", kind ? "q8" : "bf16", rows, n, tie_seen);
        CHECK(name, ok && tie_seen, "ids[0] %d (%s)", ids[0], st ? bitnet_last_error() : "");
        if (kind == 0) {  /* a NaN in row 0 of x: flagged */
            float nanv = NAN;
            bn_cu_h2d(xd, &nanv, 4, NULL);
            st = bn_cu_head_argmax(wd, hk, rows, cols, xd, n, kd, NULL);
            get(kh, kd, bn_cu_head_argmax_bytes(n));
            CHECK("cuda greedy head flags non-finite logits", !st && !bn_cu_head_argmax_read(kh, n, ids), "not flagged");
            bn_cu_h2d(xd, x, 4, NULL);
        }
        bn_cu_free(wd);
    }
    free(wf); free(x); free(wb); free(hq); free(y); free(kh); free(ids);
    bn_cu_free(xd); bn_cu_free(yd); bn_cu_free(kd);
}

int main(void) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda kernels: %s\n", why ? why : "no GPU"); return 0; }
    char name[256]; size_t mem = 0; int sms = 0, cc = 0;
    if (bn_cu_device_open(0, name, sizeof name, &mem, &sms, &cc)) { printf("FAIL cuda device: %s\n", bitnet_last_error()); return 1; }
    const char *se = getenv("BITNET_SEED");
    rng = se ? strtoull(se, NULL, 10) : (uint64_t)time(NULL) * 2654435761u;
    if (!rng) rng = 1;
    g_has_cl = bn_cu_get_cluster();
    printf("# device 0: %s, %.1f GiB, %d SMs, cc %d; seed %llu; cluster paths %s\n", name, mem / 1073741824.0, sms, cc, (unsigned long long)rng,
           g_has_cl ? "on (both checked)" : "off");

    /* errors: a device that does not exist, an allocation that cannot succeed */
    bitnet_status s = bn_cu_device_open(999, NULL, 0, NULL, NULL, NULL);
    CHECK("cuda: missing device is an error", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "999"), "%d %s", s, bitnet_last_error());
    bn_cu_device_open(0, NULL, 0, NULL, NULL, NULL);
    void *p = NULL;
    s = bn_cu_malloc(&p, (size_t)1 << 52, "a test buffer");
    CHECK("cuda: out of GPU memory is BITNET_ERR_NOMEM", s == BITNET_ERR_NOMEM && !p && strstr(bitnet_last_error(), "out of GPU memory"), "%d %s", s, bitnet_last_error());
    s = bn_cu_malloc(&p, 1024, "after OOM");
    CHECK("cuda: usable after an OOM", s == BITNET_OK && p, "%s", bitnet_last_error());
    bn_cu_free(p);

    static const int shapes[][4] = { /* nw, rows..., cols, n in the loop below */
        {1, 1, 0, 0}, {1, 7, 0, 0}, {1, 33, 0, 0}, {3, 17, 5, 9}, {2, 100, 3, 0}, {1, 257, 0, 0},
    };
    static const int colsv[] = {1, 13, 129, 300, 1000, 2561};
    static const int nv[] = {1, 2, 5, 9};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int c = 0; c < 6; c++) tg_case(shapes[i][0], shapes[i] + 1, colsv[c], nv[(i + c) % 4], 0);
    { int r[3] = {2560, 640, 640}; tg_case(3, r, 2560, 1, 0); tg_case(3, r, 2560, 4, 0); }
    { int r[2] = {6912, 6912}; tg_case(2, r, 2560, 1, 0); }
    { int r[1] = {2560}; tg_case(1, r, 6912, 1, 0); tg_case(1, r, 6912, 7, 1); tg_case(1, r, 6912, 3, 2); }
    { int r[1] = {50}; tg_case(1, r, 13824, 2, 1); tg_case(1, r, 640, 300, 0); }
    /* every GEMV width (n 1..8) and the tensor-core path (n > 8) on partial row groups / token tiles */
    { int r[3] = {47, 33, 20}; for (int n = 1; n <= 12; n++) tg_case(3, r, 1000, n, 0); }
    { int r[2] = {2560, 640}; tg_case(2, r, 2560, 16, 0); tg_case(2, r, 2560, 33, 0); tg_case(2, r, 2560, 64, 0); tg_case(2, r, 2560, 129, 0); }
    { int r[1] = {2560}; tg_case(1, r, 6912, 64, 1); tg_case(1, r, 6912, 40, 2); tg_case(1, r, 6912, 512, 0); }
    { int r[1] = {31}; tg_case(1, r, 30000, 8, 0); tg_case(1, r, 30000, 3, 1); }  /* activations beyond the shared-memory cap: split */

    bitlinear_case(37, 300, 3, 0);
    bitlinear_case(2560, 2560, 1, 0);
    bitlinear_case(100, 6912, 6, 0);
    bitlinear_case(64, 257, 2, 1);
    bitlinear_case(2000, 640, 33, 0);

    test_rmsnorm(3, 2560); test_rmsnorm(5, 6912); test_rmsnorm(1, 77);
    test_rope(3, 20, 128, 100); test_rope(7, 5, 64, 50); test_rope(1, 3, 2, 10);
    test_attention(1, 20, 5, 128, 700, 1, 1, 0);
    test_attention(5, 20, 5, 128, 300, 3, 0, 0);
    test_attention(9, 8, 8, 64, 200, 2, 0, 0);
    test_attention(2, 6, 2, 32, 5000, 2, 1, 0);  /* more than 256 splits of 32 */
    test_attention(3, 4, 1, 256, 90, 1, 0, 0);
    test_attention(2, 12, 1, 64, 100, 1, 0, 0);  /* 12 query heads per kv head: 3 head groups */
    {   /* awkward positions, alone and a graph's whole-context grid; GQA 4 and 1, hd 128 / 64 / 32 / 80, 256 (no cluster path) */
        static const int pv[] = {0, 1, 31, 33, 63, 64, 65, 127, 1000, 1500, 4095};
        for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++) {
            g_fixpos = pv[i];
            g_ctxgrid = 0; test_attention(1, 20, 5, 128, 4096, 1, 0, 0);
            g_ctxgrid = 1; test_attention(1, 20, 5, 128, 4096, 1, 0, 0);
            if (pv[i] < 2048) { test_attention(1, 8, 8, 64, 2048, 1, 0, 0); test_attention(1, 6, 2, 32, 2048, 1, 0, 0); }
            if (pv[i] < 1024) { test_attention(2, 16, 4, 80, 1024, 2, 0, 0); test_attention(1, 4, 1, 256, 1024, 1, 0, 0); }
            if (pv[i] < 300) test_attention(1, 12, 1, 64, 300, 1, 0, 0);  /* 3 head groups, a grid of 5 splits */
        }
        g_fixpos = 900; g_ctxgrid = 1; test_attention(3, 20, 5, 128, 1024, 3, 0, 0);  /* 3 tokens, 3 sequences, one grid */
        g_fixpos = -1; g_ctxgrid = 0;
    }
    test_attention(300, 20, 5, 128, 700, 2, 0, 1);
    test_attention(77, 8, 8, 64, 200, 1, 0, 1);
    test_attention(40, 6, 2, 32, 100, 2, 0, 1);
    test_attention(9, 4, 1, 256, 90, 1, 0, 1);
    test_norm_fused(3, 2560); test_norm_fused(2, 6912); test_norm_fused(1, 77); test_norm_fused(2, 20000);
    test_tgemm_add(2560, 2560, 1); test_tgemm_add(100, 640, 3); test_tgemm_add(300, 6912, 33); test_tgemm_add(31, 30000, 8);
    { int r[3] = {2560, 640, 640}; test_norm_tgemv(2560, 3, r, 0, 0); test_norm_tgemv(2560, 3, r, 1, 0); }
    { int r[2] = {6912, 6912}; test_norm_tgemv(2560, 2, r, 1, 0); test_norm_tgemv(2560, 2, r, 0, 0); }  /* two row groups per block */
    { int r[3] = {5970, 3000, 97}; test_norm_tgemv(2560, 3, r, 0, 0); }  /* 285 groups: a block across two matrices, a lone last group */
    { int r[1] = {2560}; test_norm_tgemv(6912, 1, r, 2, 0); test_norm_tgemv(6912, 1, r, 2, 1); }
    { int r[2] = {33, 7}; test_norm_tgemv(77, 2, r, 2, 1); test_norm_tgemv(77, 2, r, 0, 0); }
    { int r[1] = {50}; test_norm_tgemv(20000, 1, r, 1, 0); test_norm_tgemv(1000, 1, r, 2, 0); }
    for (int cl = g_has_cl ? 4 : 0; cl >= 0; cl--) {  /* the cluster variants (when there are), then the plain path */
        bn_cu_set_cluster(cl);
        test_attention_fused(1, 20, 5, 128, 700, 1, 1);
        test_attention_fused(7, 20, 5, 128, 300, 7, 1);
        test_attention_fused(9, 8, 8, 64, 200, 2, 0);
        test_attention_fused(3, 4, 1, 256, 90, 1, 0);
        test_attention_fused(2, 6, 1, 96, 2000, 2, 1);
        test_attention_fused(1, 20, 5, 128, 4096, 1, 1);
        test_attention_fused(4, 8, 2, 64, 1000, 4, 1);
    }
    bn_cu_set_cluster(g_has_cl);
    /* one-token GEMV at the 16-warp cap: 108, 469 (more than 16 x TG_CPW) and 17 chunks */
    { int r[2] = {2560, 31}; tg_case(2, r, 6912, 1, 0); tg_case(1, r + 1, 30000, 1, 1); tg_case(2, r, 1088, 1, 2); }
    test_elementwise(100003);
    test_embed(1000, 300, 9);
    test_head(1000, 2560, 1); test_head(333, 100, 3); test_head(129, 2560, 6); test_head(32000, 2560, 1);
    test_head_argmax(1000, 2560, 1); test_head_argmax(128256, 256, 3); test_head_argmax(333, 100, 5);
    T_DONE();
}
