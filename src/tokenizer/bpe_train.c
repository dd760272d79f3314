/* bpe_train.c — byte-level BPE training (see bpe_train.h).
 * 1. Pre-tokenize with the Llama 3 regex (PCRE2, UTF + UCP, invalid UTF-8 tolerated) and count
 *    distinct words. 2. Each word is a sequence of byte symbols; count adjacent pairs (weighted
 *    by word frequency) and remember which words hold each pair. 3. Repeatedly merge the most
 *    frequent pair (ties: smaller ids first) using a lazy max-heap; only the words holding that
 *    pair are rewritten and only their neighbouring pair counts change (no rescans).
 * Output: tokenizer.json with ByteLevel byte-to-unicode vocabulary, merges in order, special
 * tokens after the vocabulary and a TemplateProcessing post-processor adding BOS. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/bpe_train.h"
#include <pcre2.h>
#include <cjson/cJSON.h>
#include <stdio.h>

static const char *LLAMA3_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- string -> count hash map for words ---- */
typedef struct { char *s; uint32_t len; int64_t count; } wentry;
typedef struct { wentry *e; size_t cap, n; } wmap;

static uint64_t fnv(const char *s, size_t n) { uint64_t h = 1469598103934665603ull; for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ull; } return h; }

static int wmap_grow(wmap *m) {
    size_t nc = m->cap ? m->cap * 2 : 1 << 16;
    wentry *ne = calloc(nc, sizeof *ne);
    if (!ne) return -1;
    for (size_t i = 0; i < m->cap; i++) if (m->e[i].s) {
        size_t j = fnv(m->e[i].s, m->e[i].len) & (nc - 1);
        while (ne[j].s) j = (j + 1) & (nc - 1);
        ne[j] = m->e[i];
    }
    free(m->e); m->e = ne; m->cap = nc;
    return 0;
}

static int wmap_add(wmap *m, const char *s, size_t n) {
    if ((m->n + 1) * 2 > m->cap && wmap_grow(m)) return -1;
    size_t j = fnv(s, n) & (m->cap - 1);
    while (m->e[j].s) {
        if (m->e[j].len == n && !memcmp(m->e[j].s, s, n)) { m->e[j].count++; return 0; }
        j = (j + 1) & (m->cap - 1);
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    m->e[j].s = c; m->e[j].len = (uint32_t)n; m->e[j].count = 1; m->n++;
    return 0;
}

/* ---- pair -> (count, list of word ids) ---- */
typedef struct { uint64_t key; int64_t count; int *words; int nw, cw; int used; } pentry;
typedef struct { pentry *e; size_t cap, n; } pmap;

static uint64_t pkey(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t phash(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; return (size_t)k; }

static pentry *pmap_get(pmap *m, uint64_t k, int create) {
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1 << 16;
        pentry *ne = calloc(nc, sizeof *ne);
        if (!ne) return NULL;
        for (size_t i = 0; i < m->cap; i++) if (m->e[i].used) {
            size_t j = phash(m->e[i].key) & (nc - 1);
            while (ne[j].used) j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        free(m->e); m->e = ne; m->cap = nc;
    }
    if (!m->cap) return NULL;
    size_t j = phash(k) & (m->cap - 1);
    while (m->e[j].used) { if (m->e[j].key == k) return &m->e[j]; j = (j + 1) & (m->cap - 1); }
    if (!create) return NULL;
    m->e[j].used = 1; m->e[j].key = k; m->n++;
    return &m->e[j];
}

static int pentry_add_word(pentry *p, int w) {
    if (p->nw && p->words[p->nw - 1] == w) return 0;
    if (p->nw == p->cw) { int c = p->cw ? p->cw * 2 : 4; int *n = realloc(p->words, c * sizeof *n); if (!n) return -1; p->words = n; p->cw = c; }
    p->words[p->nw++] = w;
    return 0;
}

/* ---- lazy max-heap of (count, key) ---- */
typedef struct { int64_t count; uint64_t key; } hitem;
typedef struct { hitem *a; size_t n, cap; } heap;
static int hless(hitem x, hitem y) { return x.count != y.count ? x.count < y.count : x.key > y.key; }
static int heap_push(heap *h, int64_t c, uint64_t k) {
    if (h->n == h->cap) { size_t nc = h->cap ? h->cap * 2 : 1 << 16; hitem *a = realloc(h->a, nc * sizeof *a); if (!a) return -1; h->a = a; h->cap = nc; }
    size_t i = h->n++;
    h->a[i] = (hitem){c, k};
    while (i && hless(h->a[(i - 1) / 2], h->a[i])) { hitem t = h->a[i]; h->a[i] = h->a[(i - 1) / 2]; h->a[(i - 1) / 2] = t; i = (i - 1) / 2; }
    return 0;
}
static hitem heap_pop(heap *h) {
    hitem top = h->a[0];
    h->a[0] = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && hless(h->a[m], h->a[l])) m = l;
        if (r < h->n && hless(h->a[m], h->a[r])) m = r;
        if (m == i) break;
        hitem t = h->a[i]; h->a[i] = h->a[m]; h->a[m] = t; i = m;
    }
    return top;
}

/* GPT-2 byte -> unicode code point */
static void byte_map(int *cp) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp[b] = b;
        else cp[b] = 256 + n++;
    }
}
static int put_utf8(char *o, int c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F)); return 3;
}

typedef struct { int *sym; int len; int64_t count; } word;
typedef struct { char *bytes; int len; } token;

bitnet_status bn_bpe_train(const char *const *texts, const size_t *lens, int n_texts,
                           const bn_bpe_train_params *p, const char *out_path, int *n_merges_out) {
    bitnet_status st = BITNET_OK;
    int nspec = p->n_specials;
    int target = p->vocab_size - nspec;
    int minf = p->min_frequency > 0 ? p->min_frequency : 2;
    if (target < 256) return bn_err(BITNET_ERR_ARG, "tokenizer-train: vocab size %d is below 256 byte tokens + %d specials", p->vocab_size, nspec);
    int errc; PCRE2_SIZE erro;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)LLAMA3_RE, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errc, &erro, NULL);
    if (!re) return bn_err(BITNET_ERR_UNSUPPORTED, "tokenizer-train: cannot compile the pre-tokenizer regex (PCRE2 error %d)", errc);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    wmap wm = {0};
    double total = 0, done = 0;
    for (int t = 0; t < n_texts; t++) total += (double)lens[t];
    for (int t = 0; t < n_texts && !st; t++) {
        PCRE2_SIZE off = 0, len = lens[t];
        const char *s = texts[t];
        size_t last_report = 0;
        while (off < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, 0, md, NULL);
            if (rc < 0) break; /* no more matches (bytes the regex skips are invalid UTF-8 runs) */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] == ov[0]) { off = ov[1] + 1; continue; }
            if (wmap_add(&wm, s + ov[0], ov[1] - ov[0])) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
            off = ov[1];
            if (p->progress && off - last_report > (1u << 20)) { last_report = off; p->progress(p->ud, 0, done + (double)off, total); }
        }
        done += (double)len;
    }
    pcre2_match_data_free(md); pcre2_code_free(re);
    if (p->progress) p->progress(p->ud, 0, total, total);

    /* words -> symbol sequences; tokens 0..255 = bytes, ordered by their ByteLevel code point */
    int cp[256], order[256], rank[256];
    byte_map(cp);
    for (int i = 0; i < 256; i++) order[i] = i;
    for (int i = 1; i < 256; i++) { int v = order[i], j = i; while (j && cp[order[j - 1]] > cp[v]) { order[j] = order[j - 1]; j--; } order[j] = v; }
    for (int i = 0; i < 256; i++) rank[order[i]] = i;
    int ntok = 256, captok = target;
    token *tok = calloc((size_t)captok, sizeof *tok);
    int (*merges)[2] = malloc((size_t)(target > 256 ? target - 256 : 1) * sizeof *merges);
    word *w = calloc(wm.n ? wm.n : 1, sizeof *w);
    pmap pm = {0}; heap hp = {0};
    int nw = 0, nm = 0;
    int *stamp = NULL;
    if (!tok || !merges || !w) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); goto done; }
    for (int i = 0; i < 256; i++) { tok[rank[i]].bytes = malloc(1); tok[rank[i]].bytes[0] = (char)i; tok[rank[i]].len = 1; }
    for (size_t i = 0; i < wm.cap && !st; i++) if (wm.e[i].s) {
        word *x = &w[nw];
        x->len = (int)wm.e[i].len; x->count = wm.e[i].count;
        x->sym = malloc((size_t)x->len * sizeof(int));
        if (!x->sym) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
        for (int k = 0; k < x->len; k++) x->sym[k] = rank[(uint8_t)wm.e[i].s[k]];
        for (int k = 0; k + 1 < x->len; k++) {
            pentry *pe = pmap_get(&pm, pkey(x->sym[k], x->sym[k + 1]), 1);
            if (!pe || pentry_add_word(pe, nw)) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
            pe->count += x->count;
        }
        nw++;
    }
    for (size_t i = 0; i < pm.cap && !st; i++) if (pm.e[i].used && pm.e[i].count > 0) heap_push(&hp, pm.e[i].count, pm.e[i].key);
    stamp = calloc((size_t)(nw ? nw : 1), sizeof *stamp);
    if (!stamp && !st) st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory");
    uint64_t *newkeys = NULL; size_t nnew = 0, cnew = 0;
    while (!st && ntok < target && hp.n) {
        hitem top = heap_pop(&hp);
        pentry *pe = pmap_get(&pm, top.key, 0);
        if (!pe || pe->count != top.count) { if (pe && pe->count > 0 && pe->count < top.count) heap_push(&hp, pe->count, pe->key); continue; }
        if (top.count < minf) break;
        int a = (int)(top.key >> 32), b = (int)(uint32_t)top.key, nt = ntok++;
        tok[nt].len = tok[a].len + tok[b].len;
        tok[nt].bytes = malloc((size_t)tok[nt].len);
        if (!tok[nt].bytes) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
        memcpy(tok[nt].bytes, tok[a].bytes, (size_t)tok[a].len);
        memcpy(tok[nt].bytes + tok[a].len, tok[b].bytes, (size_t)tok[b].len);
        merges[nm][0] = a; merges[nm][1] = b; nm++;
        /* every word holding (a,b): remove its pairs, merge, add its pairs back */
        int nwords = pe->nw; int *wl = pe->words; pe->words = NULL; pe->nw = pe->cw = 0;
        nnew = 0;
        for (int q = 0; q < nwords && !st; q++) {
            int wi = wl[q];
            if (stamp[wi] == nm) continue;
            stamp[wi] = nm;
            word *x = &w[wi];
            int has = 0;
            for (int k = 0; k + 1 < x->len; k++) if (x->sym[k] == a && x->sym[k + 1] == b) { has = 1; break; }
            if (!has) continue;   /* stale entry: an earlier merge already consumed the pair here */
            for (int k = 0; k + 1 < x->len; k++) pmap_get(&pm, pkey(x->sym[k], x->sym[k + 1]), 0)->count -= x->count;
            int o = 0;
            for (int k = 0; k < x->len; ) {
                if (k + 1 < x->len && x->sym[k] == a && x->sym[k + 1] == b) { x->sym[o++] = nt; k += 2; }
                else x->sym[o++] = x->sym[k++];
            }
            x->len = o;
            for (int k = 0; k + 1 < x->len; k++) {
                uint64_t key = pkey(x->sym[k], x->sym[k + 1]);
                pentry *e = pmap_get(&pm, key, 1);
                if (!e) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
                e->count += x->count;
                if (x->sym[k] == nt || x->sym[k + 1] == nt) {
                    if (pentry_add_word(e, wi)) { st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory"); break; }
                    if (nnew == cnew) { cnew = cnew ? cnew * 2 : 1024; uint64_t *nk = realloc(newkeys, cnew * sizeof *nk); if (!nk) { st = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; } newkeys = nk; }
                    newkeys[nnew++] = key;
                }
            }
        }
        free(wl);
        for (size_t q = 0; q < nnew && !st; q++) {
            pentry *e = pmap_get(&pm, newkeys[q], 0);
            if (e && e->count > 0 && heap_push(&hp, e->count, e->key)) st = bn_err(BITNET_ERR_NOMEM, "out of memory");
        }
        if (p->progress && (nm % 128 == 0 || ntok == target)) p->progress(p->ud, 1, nm, target - 256);
    }
    free(newkeys);
    if (st) goto done;

    /* ---- write tokenizer.json ---- */
    {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "version", "1.0");
        cJSON_AddNullToObject(root, "truncation");
        cJSON_AddNullToObject(root, "padding");
        cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
        for (int i = 0; i < nspec; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "id", ntok + i);
            cJSON_AddStringToObject(e, "content", p->specials[i]);
            cJSON_AddBoolToObject(e, "single_word", 0); cJSON_AddBoolToObject(e, "lstrip", 0);
            cJSON_AddBoolToObject(e, "rstrip", 0); cJSON_AddBoolToObject(e, "normalized", 0);
            cJSON_AddBoolToObject(e, "special", 1);
            cJSON_AddItemToArray(added, e);
        }
        cJSON_AddNullToObject(root, "normalizer");
        cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *pres = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *sp = cJSON_CreateObject();
        cJSON_AddStringToObject(sp, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "pattern"), "Regex", LLAMA3_RE);
        cJSON_AddStringToObject(sp, "behavior", "Isolated");
        cJSON_AddBoolToObject(sp, "invert", 0);
        cJSON_AddItemToArray(pres, sp);
        cJSON *bl = cJSON_CreateObject();
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", 0); cJSON_AddBoolToObject(bl, "trim_offsets", 1); cJSON_AddBoolToObject(bl, "use_regex", 0);
        cJSON_AddItemToArray(pres, bl);
        cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
        cJSON_AddStringToObject(post, "type", "Sequence");
        cJSON *procs = cJSON_AddArrayToObject(post, "processors");
        cJSON *pbl = cJSON_CreateObject();
        cJSON_AddStringToObject(pbl, "type", "ByteLevel");
        cJSON_AddBoolToObject(pbl, "add_prefix_space", 1); cJSON_AddBoolToObject(pbl, "trim_offsets", 0); cJSON_AddBoolToObject(pbl, "use_regex", 1);
        cJSON_AddItemToArray(procs, pbl);
        int bos_id = -1;
        for (int i = 0; i < nspec; i++) if (p->bos && !strcmp(p->specials[i], p->bos)) bos_id = ntok + i;
        if (bos_id >= 0) {
            cJSON *tp = cJSON_CreateObject();
            cJSON_AddStringToObject(tp, "type", "TemplateProcessing");
            const char *seqs[2][4] = {{"A"}, {"A", "B"}};
            const char *names[2] = {"single", "pair"};
            for (int v = 0; v < 2; v++) {
                cJSON *arr = cJSON_AddArrayToObject(tp, names[v]);
                for (int k = 0; k <= v; k++) {
                    cJSON *stt = cJSON_CreateObject(), *sti = cJSON_AddObjectToObject(stt, "SpecialToken");
                    cJSON_AddStringToObject(sti, "id", p->bos); cJSON_AddNumberToObject(sti, "type_id", 0);
                    cJSON_AddItemToArray(arr, stt);
                    cJSON *sq = cJSON_CreateObject(), *sqi = cJSON_AddObjectToObject(sq, "Sequence");
                    cJSON_AddStringToObject(sqi, "id", seqs[v][k]); cJSON_AddNumberToObject(sqi, "type_id", 0);
                    cJSON_AddItemToArray(arr, sq);
                }
            }
            cJSON *stk = cJSON_AddObjectToObject(tp, "special_tokens"), *bt = cJSON_AddObjectToObject(stk, p->bos);
            cJSON_AddStringToObject(bt, "id", p->bos);
            cJSON_AddItemToObject(bt, "ids", cJSON_CreateIntArray(&bos_id, 1));
            cJSON_AddItemToObject(bt, "tokens", cJSON_CreateStringArray(&p->bos, 1));
            cJSON_AddItemToArray(procs, tp);
        }
        cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
        cJSON_AddStringToObject(dec, "type", "ByteLevel");
        cJSON_AddBoolToObject(dec, "add_prefix_space", 1); cJSON_AddBoolToObject(dec, "trim_offsets", 1); cJSON_AddBoolToObject(dec, "use_regex", 1);
        cJSON *model = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddNullToObject(model, "dropout"); cJSON_AddNullToObject(model, "unk_token");
        cJSON_AddNullToObject(model, "continuing_subword_prefix"); cJSON_AddNullToObject(model, "end_of_word_suffix");
        cJSON_AddBoolToObject(model, "fuse_unk", 0); cJSON_AddBoolToObject(model, "byte_fallback", 0); cJSON_AddBoolToObject(model, "ignore_merges", 1);
        cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
        char **str = calloc((size_t)ntok, sizeof *str);
        for (int i = 0; i < ntok && str; i++) {
            str[i] = malloc((size_t)tok[i].len * 3 + 1);
            if (!str[i]) continue;
            int o = 0;
            for (int k = 0; k < tok[i].len; k++) o += put_utf8(str[i] + o, cp[(uint8_t)tok[i].bytes[k]]);
            str[i][o] = 0;
            cJSON_AddNumberToObject(vocab, str[i], i);
        }
        cJSON *mg = cJSON_AddArrayToObject(model, "merges");
        for (int i = 0; i < nm && str; i++) {
            const char *pair[2] = {str[merges[i][0]], str[merges[i][1]]};
            cJSON_AddItemToArray(mg, cJSON_CreateStringArray(pair, 2));
        }
        char *js = str ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
        if (str) for (int i = 0; i < ntok; i++) free(str[i]);
        free(str);
        if (!js) st = bn_err(BITNET_ERR_NOMEM, "tokenizer-train: out of memory writing %s", out_path);
        else { st = bn_write_file_atomic(out_path, js, strlen(js)); free(js); }
        if (n_merges_out) *n_merges_out = nm;
    }
done:
    free(stamp);
    for (int i = 0; i < nw; i++) free(w[i].sym);
    free(w);
    for (size_t i = 0; i < wm.cap; i++) free(wm.e[i].s);
    free(wm.e);
    for (size_t i = 0; i < pm.cap; i++) free(pm.e[i].words);
    free(pm.e); free(hp.a);
    if (tok) for (int i = 0; i < ntok; i++) free(tok[i].bytes);
    free(tok); free(merges);
    return st;
}
