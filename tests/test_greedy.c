/* test_greedy.c — bitnet_ctx_eval_greedy / bitnet_ctx_decode_greedy (the greedy choice without the
 * logits leaving the backend) against the logits path on the golden models: the ids equal the
 * first-max argmax of bitnet_ctx_eval's logits token by token and reproduce golden.json's greedy
 * ids; a batch of three sequences (prompts of different lengths, then steps) gives each
 * sequence's ids of its own run; bad input fails as bitnet_ctx_decode does (cache unchanged).
 * Runs on the CPU backend (the CUDA backend's GPU argmax is checked by tests/cuda). */
#include "t.h"
#include "bitnet.h"

static int read_ids(const char *js, const char *key, int32_t *ids, int max) {
    const char *p = strstr(js, key);
    if (!p || !(p = strchr(p, '['))) return 0;
    int n = 0;
    for (p++; *p && *p != ']' && n < max; ) {
        char *end; long v = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        ids[n++] = (int32_t)v; p = end;
    }
    return n;
}
static int argmax(const float *v, int n) { int b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

static void run(const char *dir) {
    char path[512], name[256];
    snprintf(path, sizeof path, "%s/%s/golden.json", t_golden(), dir);
    char *js = t_read_file(path, NULL);
    CHECK("golden.json", js != NULL, "%s", path);
    if (!js) return;
    int32_t pr[128], gr[128];
    int np = read_ids(js, "\"prompt_ids\"", pr, 128), ng = read_ids(js, "\"greedy_ids\"", gr, 128);
    snprintf(path, sizeof path, "%s/%s", t_golden(), dir);
    bitnet_model *m = NULL;
    bitnet_ctx *c = NULL, *b = NULL;
    if (bitnet_model_load(path, &m)) { CHECK(dir, 0, "%s", bitnet_last_error()); free(js); return; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    int V = info.vocab_size;
    bitnet_ctx_params p = {.n_ctx = 64, .n_threads = 1}, pb = {.n_ctx = 64, .n_threads = 1, .n_seq_max = 3};
    bitnet_ctx_new(m, &p, &c); bitnet_ctx_new(m, &pb, &b);
    float *lg = malloc((size_t)V * 4);
    /* token by token: greedy == argmax of the logits path == golden */
    int32_t tok = 0, want = 0, ok = 1, okg = 1;
    bitnet_status s = bitnet_ctx_eval_greedy(c, pr, np, &tok);
    bitnet_ctx_reset(c);
    bitnet_status s2 = bitnet_ctx_eval(c, pr, np, lg, 0);
    want = argmax(lg, V);
    ok = !s && !s2 && tok == want;
    okg = ng > 0 && tok == gr[0];
    for (int i = 1; ok && i < ng; i++) {
        int32_t t2 = -1;
        bitnet_ctx *cc = NULL;  /* greedy on a copy of the context: eval the same prefix on a fresh one */
        if (bitnet_ctx_new(m, &p, &cc)) { ok = 0; break; }
        int32_t seq[256]; memcpy(seq, pr, (size_t)np * 4); memcpy(seq + np, gr, (size_t)i * 4);
        if (bitnet_ctx_eval_greedy(cc, seq, np + i, &t2)) ok = 0;
        bitnet_ctx_free(cc);
        if (bitnet_ctx_eval(c, &tok, 1, lg, 0)) { ok = 0; break; }
        want = argmax(lg, V);
        if (t2 != want) ok = 0;
        if (t2 != gr[i]) okg = 0;
        tok = t2;
    }
    snprintf(name, sizeof name, "%s: eval_greedy == argmax of eval's logits", dir);
    CHECK(name, ok, "%s", bitnet_last_error());
    snprintf(name, sizeof name, "%s: eval_greedy reproduces the golden greedy ids", dir);
    CHECK(name, okg, "first id %d, golden %d", tok, ng ? gr[0] : -1);
    /* a batch: three prompts of lengths np, np-1, 2 interleaved, then 3 greedy steps, against each alone */
    int len[3] = {np, np > 2 ? np - 1 : np, 2}, bad = 0;
    int32_t bt[512], bs[512], nx[3], alone[3][4];
    for (int q = 0; q < 3; q++) {
        bitnet_ctx *cc = NULL; bitnet_ctx_new(m, &p, &cc);
        int32_t t = 0;
        if (bitnet_ctx_eval_greedy(cc, pr, len[q], &t)) bad = 1;
        alone[q][0] = t;
        for (int k = 1; k < 4; k++) { if (bitnet_ctx_eval_greedy(cc, &t, 1, &t)) bad = 1; alone[q][k] = t; }
        bitnet_ctx_free(cc);
    }
    int n = 0;
    for (int i = 0; i < np; i++) for (int q = 0; q < 3; q++) if (i < len[q]) { bt[n] = pr[i]; bs[n] = q; n++; }
    bitnet_batch bb = {n, bt, NULL, bs, NULL};
    if (bitnet_ctx_decode_greedy(b, &bb, nx)) bad = 1;
    /* rows come in batch order: sequence q's row is where its last entry falls among the three */
    int32_t byq[3];
    {
        int r = 0;
        for (int i = 0; i < n; i++) {
            int last = 1;
            for (int j = i + 1; j < n; j++) if (bs[j] == bs[i]) { last = 0; break; }
            if (last) byq[bs[i]] = nx[r++];
        }
    }
    for (int q = 0; q < 3; q++) { nx[q] = byq[q]; if (nx[q] != alone[q][0]) bad = 1; }
    for (int k = 1; k < 4 && !bad; k++) {
        for (int q = 0; q < 3; q++) { bt[q] = nx[q]; bs[q] = q; }
        bitnet_batch bk = {3, bt, NULL, bs, NULL};
        if (bitnet_ctx_decode_greedy(b, &bk, nx)) bad = 1;
        for (int q = 0; q < 3; q++) if (nx[q] != alone[q][k]) bad = 1;
    }
    snprintf(name, sizeof name, "%s: decode_greedy of 3 sequences == each alone", dir);
    CHECK(name, !bad, "%s", bitnet_last_error());
    /* bad input: an id out of the vocabulary is BITNET_ERR_ARG and leaves the cache as it was */
    int pos0 = bitnet_ctx_pos(c);
    int32_t badid = V;
    s = bitnet_ctx_eval_greedy(c, &badid, 1, &tok);
    snprintf(name, sizeof name, "%s: eval_greedy of a bad id fails, cache unchanged", dir);
    CHECK(name, s == BITNET_ERR_ARG && bitnet_ctx_pos(c) == pos0, "status %d pos %d -> %d", s, pos0, bitnet_ctx_pos(c));
    free(lg); free(js);
    bitnet_ctx_free(c); bitnet_ctx_free(b); bitnet_model_free(m);
}

int main(void) {
    run("bitnet-b158-packed");
    run("bitnet-1bitllm");
    T_DONE();
}
