/* tokenizer.c — the tokenizer: loading dispatch and special ids from config files, encoding
 * (added-token split, normalizer, pre-tokenizer, BPE merge), HF-style decoding and the streaming
 * detokenizer. File formats are parsed in tokenizer_json.c (HF tokenizer.json) and
 * tokenizer_spm.c (SentencePiece tokenizer.model).
 * What it is not: a general HF tokenizers port. Only the components of byte-level BPE (Llama 3 /
 * 2B-4T) and Metaspace/byte-fallback BPE (LLaMA SentencePiece) tokenizers are implemented;
 * anything else is refused at load time with BITNET_ERR_UNSUPPORTED naming the component. */
#include "tokenizer/tokenizer_internal.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <limits.h>
#include <ctype.h>

#define SP_META "\xE2\x96\x81"

/* ---------------------------------------------------------------- hashing, arena, maps */

uint64_t bn_tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t v; memcpy(&v, s, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull; h ^= h >> 29;
        s += 8; n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32; h *= 0x9E3779B97F4A7C15ull; h ^= h >> 29;
    return h;
}

char *bn_tok_strdup(bitnet_tokenizer *t, const char *s, size_t n) {
    if (n + 1 > t->arena_left) {
        size_t sz = n + 1 + sizeof(char *) > (1u << 20) ? n + 1 + sizeof(char *) : (1u << 20);
        char *blk = malloc(sz);
        if (!blk) return NULL;
        memcpy(blk, &t->arena_blocks, sizeof(char *));
        t->arena_blocks = blk;
        t->arena_cur = blk + sizeof(char *);
        t->arena_left = sz - sizeof(char *);
    }
    char *d = t->arena_cur;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    t->arena_cur += n + 1; t->arena_left -= n + 1;
    return d;
}

bitnet_status bn_tok_alloc_vocab(bitnet_tokenizer *t, int n_vocab) {
    t->n_vocab = n_vocab;
    size_t n = n_vocab > 0 ? (size_t)n_vocab : 1;
    t->text = calloc(n, sizeof *t->text); t->tlen = calloc(n, sizeof *t->tlen);
    t->key = calloc(n, sizeof *t->key); t->klen = calloc(n, sizeof *t->klen);
    t->dec = calloc(n, 1);
    if (!t->text || !t->tlen || !t->key || !t->klen || !t->dec) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
    return BITNET_OK;
}

bitnet_status bn_tok_build_keymap(bitnet_tokenizer *t, const char *path) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u + 16u) cap <<= 1;
    free(t->keymap.slot);
    t->keymap.slot = calloc(cap, sizeof(uint32_t));
    if (!t->keymap.slot) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    t->keymap.mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->key[id]) continue;
        uint32_t h = (uint32_t)bn_tok_hash(t->key[id], t->klen[id]) & t->keymap.mask;
        for (;;) {
            uint32_t s = t->keymap.slot[h];
            if (!s) { t->keymap.slot[h] = (uint32_t)id + 1; break; }
            if (t->klen[s - 1] == t->klen[id] && !memcmp(t->key[s - 1], t->key[id], t->klen[id]))
                return bn_err(BITNET_ERR_FORMAT, "%s: token '%.40s' appears twice in the vocabulary (ids %u and %d)",
                              path, t->text[id] ? t->text[id] : "", s - 1, id);
            h = (h + 1) & t->keymap.mask;
        }
    }
    return BITNET_OK;
}

int32_t bn_tok_key_lookup(const bitnet_tokenizer *t, const char *s, size_t n) {
    if (!t->keymap.slot) return -1;
    uint32_t h = (uint32_t)bn_tok_hash(s, n) & t->keymap.mask;
    for (;;) {
        uint32_t v = t->keymap.slot[h];
        if (!v) return -1;
        if (t->klen[v - 1] == n && !memcmp(t->key[v - 1], s, n)) return (int32_t)v - 1;
        h = (h + 1) & t->keymap.mask;
    }
}

static inline uint32_t merge_slot(uint64_t k, uint32_t mask) {
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32) & mask;
}

bitnet_status bn_mergemap_init(bn_mergemap *m, size_t n) {
    uint32_t cap = 16;
    while (cap < n * 2 + 16) cap <<= 1;
    m->key = malloc(cap * sizeof *m->key); m->rank = malloc(cap * sizeof *m->rank); m->id = malloc(cap * sizeof *m->id);
    if (!m->key || !m->rank || !m->id) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory for %zu merges", n);
    memset(m->key, 0xff, cap * sizeof *m->key);
    m->mask = cap - 1; m->n = 0;
    return BITNET_OK;
}

void bn_mergemap_put(bn_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t h = merge_slot(k, m->mask);
    while (m->key[h] != UINT64_MAX) {
        if (m->key[h] == k) return; /* first (lowest rank) wins */
        h = (h + 1) & m->mask;
    }
    m->key[h] = k; m->rank[h] = rank; m->id[h] = id; m->n++;
}

int bn_mergemap_get(const bn_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    if (!m->key) return 0;
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t h = merge_slot(k, m->mask);
    for (;;) {
        uint64_t v = m->key[h];
        if (v == k) { *rank = m->rank[h]; *id = m->id[h]; return 1; }
        if (v == UINT64_MAX) return 0;
        h = (h + 1) & m->mask;
    }
}

/* ---------------------------------------------------------------- UTF-8 and byte-level */

/* Decode one UTF-8 character at s[0..n) (n >= 1). Returns its length; *cp = -1 if invalid
 * (then length 1). Accepts only well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_dec(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) { *cp = (int32_t)c; return 1; }
    int len; uint32_t v; unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else { *cp = -1; return 1; }
    if ((size_t)len > n) { *cp = -1; return 1; }
    for (int i = 1; i < len; i++) {
        unsigned b = s[i];
        if (b < lo || b > hi) { *cp = -1; return 1; }
        lo = 0x80; hi = 0xBF;
        v = v << 6 | (b & 0x3F);
    }
    *cp = (int32_t)v; return len;
}

/* Length of the maximal prefix of an ill-formed sequence at s (Unicode "maximal subpart"), as
 * Rust's from_utf8_lossy / Python's errors="replace" use: each such prefix becomes one U+FFFD. */
static int utf8_bad_len(const unsigned char *s, size_t n) {
    unsigned c = s[0]; int len; unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    int i = 1;
    for (; i < len && (size_t)i < n; i++) {
        if (s[i] < lo || s[i] > hi) break;
        lo = 0x80; hi = 0xBF;
    }
    return i;
}

static int g_bl_init;
static int16_t g_cp2byte[324];      /* byte-level codepoint -> byte (-1: none) */
static void bytelevel_init(void) {
    if (__atomic_load_n(&g_bl_init, __ATOMIC_ACQUIRE)) return;
    int16_t tab[324];
    for (int i = 0; i < 324; i++) tab[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int direct = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        int cp = direct ? b : 256 + n++;
        tab[cp] = (int16_t)b;
    }
    memcpy(g_cp2byte, tab, sizeof tab);
    __atomic_store_n(&g_bl_init, 1, __ATOMIC_RELEASE);
}

long bn_bytelevel_to_bytes(const char *s, size_t n, char *out) {
    bytelevel_init();
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0; long o = 0;
    while (i < n) {
        int32_t cp; int l = utf8_dec(u + i, n - i, &cp);
        if (cp < 0 || cp >= 324 || g_cp2byte[cp] < 0) return -1;
        out[o++] = (char)g_cp2byte[cp];
        i += (size_t)l;
    }
    return o;
}

/* Rust char::is_whitespace (Unicode White_Space). */
static int is_uspace(int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---------------------------------------------------------------- growable buffers */

typedef struct { char *p; size_t n, cap; } bn_buf;
static int buf_reserve(bn_buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 1;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->n + extra) c *= 2;
    char *q = realloc(b->p, c);
    if (!q) return 0;
    b->p = q; b->cap = c; return 1;
}
static int buf_put(bn_buf *b, const void *s, size_t n) {
    if (!buf_reserve(b, n + 1)) return 0;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n; b->p[b->n] = 0; return 1;
}

typedef struct { int32_t *p; size_t n, cap; } bn_ids;
static int ids_push(bn_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 256;
        int32_t *q = realloc(v->p, c * sizeof *q);
        if (!q) return 0;
        v->p = q; v->cap = c;
    }
    v->p[v->n++] = id; return 1;
}

/* ---------------------------------------------------------------- load, free, config */

bitnet_status bn_tok_compile_regex(const char *pat, size_t len, pcre2_code **out, const char *path) {
    int ec; PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP;
#ifdef PCRE2_MATCH_INVALID_UTF
    opts |= PCRE2_MATCH_INVALID_UTF;
#endif
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: pre-tokenizer regex not accepted by PCRE2 at offset %zu: %s",
                      path, (size_t)eo, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    *out = re;
    return BITNET_OK;
}

static void free_steps(bn_tok_step *s, int n) {
    for (int i = 0; i < n; i++) {
        free(s[i].a); free(s[i].b);
        if (s[i].re) pcre2_code_free(s[i].re);
    }
    free(s);
}

void bitnet_tokenizer_free(bitnet_tokenizer *t) {
    if (!t) return;
    free(t->text); free(t->tlen); free(t->key); free(t->klen); free(t->dec);
    free(t->keymap.slot);
    free(t->merges.key); free(t->merges.rank); free(t->merges.id);
    free(t->added);
    for (int i = 0; i < 256; i++) free(t->added_first[i]);
    free(t->usym); free(t->utrie.key); free(t->utrie.rank); free(t->utrie.id); free(t->uterm);
    free(t->tslot); free(t->eog_map);
    free_steps(t->norm, t->n_norm); free_steps(t->pre, t->n_pre); free_steps(t->decs, t->n_decs);
    free(t->eog);
    char *b = t->arena_blocks;
    while (b) { char *next; memcpy(&next, b, sizeof next); free(b); b = next; }
    free(t);
}

static int cmp_added_len(const void *a, const void *b, void *ctx) {
    const bn_added_token *ad = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (ad[x].len != ad[y].len) return ad[x].len > ad[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Text of text-map entry v - 1 (see tslot). */
static const char *tm_text(const bitnet_tokenizer *t, uint32_t v, size_t *n, int32_t *id) {
    uint32_t i = v - 1;
    if (i < (uint32_t)t->n_added) { *n = t->added[i].len; *id = t->added[i].id; return t->added[i].text; }
    i -= (uint32_t)t->n_added; *n = t->tlen[i]; *id = (int32_t)i; return t->text[i];
}

/* The exact-text map behind bitnet_tokenizer_token_id: added tokens first (in file order), then
 * the vocabulary by ascending id; the first entry of a text wins. */
static bitnet_status build_textmap(bitnet_tokenizer *t, const char *path) {
    uint64_t need = (uint64_t)t->n_vocab + (uint64_t)t->n_added;
    uint32_t cap = 16;
    while (cap < need * 2 + 16) cap <<= 1;
    free(t->tslot);
    if (!(t->tslot = calloc(cap, sizeof *t->tslot))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    t->tmask = cap - 1;
    for (uint64_t v = 1; v <= need; v++) {
        size_t n; int32_t id; const char *s = tm_text(t, (uint32_t)v, &n, &id);
        if (!s) continue;
        for (uint32_t h = (uint32_t)bn_tok_hash(s, n) & t->tmask;; h = (h + 1) & t->tmask) {
            uint32_t o = t->tslot[h];
            if (!o) { t->tslot[h] = (uint32_t)v; break; }
            size_t on; int32_t oid; const char *os = tm_text(t, o, &on, &oid);
            if (on == n && !memcmp(os, s, n)) break; /* the earlier entry keeps the text */
        }
    }
    return BITNET_OK;
}

/* Byte trie of the SentencePiece user-defined symbols, so that the longest symbol at a position
 * is found in time proportional to its length (not to the number of symbols). Node 0 is the root. */
static bitnet_status build_usym_trie(bitnet_tokenizer *t, const char *path) {
    if (!t->n_usym) return BITNET_OK;
    size_t total = 1;
    for (int i = 0; i < t->n_usym; i++) total += t->usym[i]->len;
    if (total >= INT32_MAX) return bn_err(BITNET_ERR_FORMAT, "%s: user-defined symbols are too long", path);
    bitnet_status s = bn_mergemap_init(&t->utrie, total);
    if (s) return s;
    if (!(t->uterm = malloc(total * sizeof *t->uterm))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < total; i++) t->uterm[i] = -1;
    int32_t nodes = 1;
    for (int i = 0; i < t->n_usym; i++) {
        const bn_added_token *a = t->usym[i];
        int32_t node = 0;
        for (size_t k = 0; k < a->len; k++) {
            uint32_t rk; int32_t child;
            int32_t b = (unsigned char)a->text[k];
            if (!bn_mergemap_get(&t->utrie, node, b, &rk, &child)) { child = nodes++; bn_mergemap_put(&t->utrie, node, b, 0, child); }
            node = child;
        }
        if (a->len && t->uterm[node] < 0) t->uterm[node] = a->id; /* the first symbol of a text wins */
    }
    return BITNET_OK;
}

bitnet_status bn_tok_finish(bitnet_tokenizer *t, const char *path) {
    bitnet_status s_;
    for (int b = 0; b < 256; b++) { t->byte_tok[b] = -1; t->byte_id[b] = -1; }
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        if (!t->key[id] || !s) continue;
        if (t->tlen[id] == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
            char hx[3] = {s[3], s[4], 0}; char *e;
            long v = strtol(hx, &e, 16);
            if (*e == 0 && isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4])) {
                t->dec[id] = 1;
                if (t->byte_tok[v] < 0) t->byte_tok[v] = id;
            }
        }
        if (t->byte_level && t->klen[id] == 1) t->byte_id[(unsigned char)t->key[id][0]] = id;
    }
    /* SentencePiece-style words are whole texts; if no token spans "X\u2581", BPE may run on each
     * stretch that starts at such a \u2581 separately with the same result (no merge can cross). */
    t->meta_split = !t->byte_level;
    for (int id = 0; id < t->n_vocab && t->meta_split; id++) {
        const char *k = t->key[id]; uint32_t n = t->klen[id];
        if (!k) continue;
        for (uint32_t i = 1; i + 3 <= n; i++)
            if (!memcmp(k + i, SP_META, 3) && !(i >= 3 && !memcmp(k + i - 3, SP_META, 3))) { t->meta_split = 0; break; }
    }
    if ((s_ = build_textmap(t, path)) || (s_ = build_usym_trie(t, path))) return s_;
    /* added tokens by first byte, longest first */
    int cnt[256] = {0};
    for (int i = 0; i < t->n_added; i++) if (t->added[i].len) cnt[(unsigned char)t->added[i].text[0]]++;
    for (int b = 0; b < 256; b++) {
        if (!cnt[b]) continue;
        int32_t *l = malloc((cnt[b] + 1) * sizeof *l);
        if (!l) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        int k = 0;
        for (int i = 0; i < t->n_added; i++) if (t->added[i].len && (unsigned char)t->added[i].text[0] == b) l[k++] = i;
        qsort_r(l, k, sizeof *l, cmp_added_len, t->added);
        l[k] = -1;
        t->added_first[b] = l;
    }
    return BITNET_OK;
}

/* The id of a token by its exact text: added tokens first, then the model vocabulary (lowest id
 * of that text). One hash lookup (tslot, built by bn_tok_finish). */
int bitnet_tokenizer_token_id(const bitnet_tokenizer *t, const char *piece) {
    if (!t || !piece || !t->tslot) return -1;
    size_t n = strlen(piece);
    for (uint32_t h = (uint32_t)bn_tok_hash(piece, n) & t->tmask;; h = (h + 1) & t->tmask) {
        uint32_t v = t->tslot[h];
        if (!v) return -1;
        size_t on; int32_t id; const char *os = tm_text(t, v, &on, &id);
        if (on == n && !memcmp(os, piece, n)) return id;
    }
}

/* id from a JSON config value: an integer, or a token string / {"content": "..."}. */
static int cfg_id(const bitnet_tokenizer *t, const cJSON *v) {
    if (!v) return -1;
    if (cJSON_IsNumber(v)) { double d = v->valuedouble; return d >= 0 && d < t->n_vocab ? (int)d : -1; }
    if (cJSON_IsArray(v)) return cfg_id(t, cJSON_GetArrayItem(v, 0));
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (cJSON_IsString(v)) return bitnet_tokenizer_token_id(t, v->valuestring);
    return -1;
}

/* Add id to the end-of-generation set (ignored if out of range or already there). 0 on OOM.
 * O(1): a config may list any number of ids; the set holds each vocabulary id at most once. */
static int add_eog(bitnet_tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) return 1;
    if (!t->eog_map && !(t->eog_map = calloc((size_t)t->n_vocab, 1))) return 0;
    if (t->eog_map[id]) return 1;
    int32_t *q = t->eog;
    if (!(t->n_eog & (t->n_eog - 1)) && !(q = realloc(t->eog, (size_t)(t->n_eog ? t->n_eog * 2 : 1) * sizeof *q))) return 0;
    t->eog = q; t->eog[t->n_eog++] = id; t->eog_map[id] = 1; return 1;
}

static cJSON *read_json_opt(const char *dir, const char *name) {
    char *p = bn_path_join(dir, name);
    if (!p) return NULL;
    char *buf = NULL; size_t len = 0; cJSON *j = NULL;
    if (bn_file_exists(p) && bn_read_file_max(p, BN_SMALL_FILE_MAX, &buf, &len) == BITNET_OK) j = cJSON_ParseWithLength(buf, len);
    free(buf); free(p);
    return j;
}

/* Special ids from the folder's config files (missing or malformed files are ignored: they are
 * optional companions of the tokenizer file). */
static bitnet_status read_configs(bitnet_tokenizer *t, const char *dir) {
    const char *names[3] = {"config.json", "generation_config.json", "tokenizer_config.json"};
    for (int f = 0; f < 3; f++) {
        cJSON *j = read_json_opt(dir, names[f]);
        if (!j) continue;
        int tc = f == 2;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, tc ? "bos_token" : "bos_token_id");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, tc ? "eos_token" : "eos_token_id");
        int bid = cfg_id(t, b), eid = cfg_id(t, e);
        if (bid >= 0) t->bos = bid;
        if (eid >= 0) t->eos = eid;
        if (cJSON_IsArray(e)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, e) if (!add_eog(t, cfg_id(t, x))) { cJSON_Delete(j); return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory"); }
        }
        if (!add_eog(t, eid)) { cJSON_Delete(j); return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory"); }
        cJSON_Delete(j);
    }
    return BITNET_OK;
}

static char *dirname_of(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return strdup(".");
    if (s == path) return strdup("/");
    char *d = malloc((size_t)(s - path) + 1);
    if (!d) return NULL;
    memcpy(d, path, (size_t)(s - path)); d[s - path] = 0;
    return d;
}

bitnet_status bitnet_tokenizer_load(const char *path, bitnet_tokenizer **out) {
    if (!path || !out) return bn_err(BITNET_ERR_ARG, "bitnet_tokenizer_load: NULL argument");
    *out = NULL;
    char *file = NULL, *dir = NULL;
    int is_spm = 0;
    if (bn_is_dir(path)) {
        dir = strdup(path);
        file = bn_path_join(path, "tokenizer.json");
        if (file && !bn_file_exists(file)) {
            free(file);
            file = bn_path_join(path, "tokenizer.model");
            if (file && !bn_file_exists(file)) {
                bitnet_status s = bn_err(BITNET_ERR_IO, "%s: no tokenizer.json or tokenizer.model in this folder", path);
                free(file); free(dir); return s;
            }
            is_spm = 1;
        }
    } else {
        if (!bn_file_exists(path)) return bn_err(BITNET_ERR_IO, "%s: no such file or folder", path);
        file = strdup(path); dir = dirname_of(path);
        FILE *f = fopen(path, "rb");
        if (!f) { free(file); free(dir); return bn_err(BITNET_ERR_IO, "%s: cannot open", path); }
        int c;
        do c = fgetc(f); while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
        fclose(f);
        size_t pl = strlen(path);
        if (pl >= 5 && !strcmp(path + pl - 5, ".gguf")) is_spm = 2;   /* tokenizer.ggml.* metadata */
        else if (pl >= 5 && !strcmp(path + pl - 5, ".json")) is_spm = 0;
        else if (pl >= 6 && !strcmp(path + pl - 6, ".model")) is_spm = 1;
        else is_spm = c != '{' && c != '[';
    }
    if (!file || !dir) { free(file); free(dir); return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory"); }
    bitnet_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { free(file); free(dir); return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory"); }
    t->bos = t->eos = t->eot = -1; t->unk_id = -1;
    bytelevel_init();
    bitnet_status s = is_spm == 2 ? bn_tok_load_gguf(t, file) : is_spm ? bn_tok_load_spm(t, file) : bn_tok_load_json(t, file);
    if (!s) s = bn_tok_finish(t, file);
    if (!s) {
        if (t->eos < 0) { t->eos = bitnet_tokenizer_token_id(t, "<|end_of_text|>"); if (t->eos < 0) t->eos = bitnet_tokenizer_token_id(t, "</s>"); }
        t->eot = bitnet_tokenizer_token_id(t, "<|eot_id|>");
        if (is_spm != 2) s = read_configs(t, dir);   /* a GGUF file carries its own ids */
    }
    if (!s) {
        const char *extra[] = {"<|end_of_text|>", "<|eot_id|>", "<|eom_id|>", "</s>"};
        if (!add_eog(t, t->eos) || !add_eog(t, t->eot)) s = bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        for (int i = 0; i < 4 && !s; i++) {
            int id = bitnet_tokenizer_token_id(t, extra[i]);
            if (!add_eog(t, id)) s = bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        }
    }
    free(file); free(dir);
    if (s) { bitnet_tokenizer_free(t); return s; }
    *out = t;
    return BITNET_OK;
}

int bitnet_tokenizer_vocab_size(const bitnet_tokenizer *t) { return t ? t->n_vocab : 0; }
int bitnet_tokenizer_bos(const bitnet_tokenizer *t) { return t ? t->bos : -1; }
const char *bitnet_tokenizer_notice(const bitnet_tokenizer *t) { return t ? t->notice : NULL; }
int bitnet_tokenizer_eos(const bitnet_tokenizer *t) { return t ? t->eos : -1; }
int bitnet_tokenizer_eot(const bitnet_tokenizer *t) { return t ? t->eot : -1; }
int bitnet_tokenizer_is_eog(const bitnet_tokenizer *t, int id) {
    return t && id >= 0 && id < t->n_vocab && t->eog_map && t->eog_map[id];
}

/* ---------------------------------------------------------------- BPE merge of one word */

typedef struct { uint32_t rank; int32_t pos, right, lid, rid, nid; } bn_heap_ent;

typedef struct bn_ws {         /* per-call workspace */
    bn_buf nb, pb;             /* normalized text, pre-tokenized text */
    struct bn_piece { size_t s, e; int first; } *pc, *pc2;
    size_t npc, cpc, npc2, cpc2;
    int32_t *sym, *prev, *next; uint32_t *rk; int32_t *nid; size_t csym;
    bn_heap_ent *heap; size_t cheap;
    pcre2_match_data *md;
} bn_ws;

static int ws_sym(bn_ws *w, size_t n) {
    if (n <= w->csym) return 1;
    size_t c = w->csym ? w->csym : 64;
    while (c < n) c *= 2;
    int32_t *a = realloc(w->sym, c * 4); if (!a) return 0; w->sym = a;
    a = realloc(w->prev, c * 4); if (!a) return 0; w->prev = a;
    a = realloc(w->next, c * 4); if (!a) return 0; w->next = a;
    uint32_t *r = realloc(w->rk, c * 4); if (!r) return 0; w->rk = r;
    a = realloc(w->nid, c * 4); if (!a) return 0; w->nid = a;
    w->csym = c; return 1;
}

static inline int heap_less(const bn_heap_ent *a, const bn_heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}
static int heap_push(bn_ws *w, size_t *n, bn_heap_ent e) {
    if (*n == w->cheap) {
        size_t c = w->cheap ? w->cheap * 2 : 256;
        bn_heap_ent *q = realloc(w->heap, c * sizeof *q);
        if (!q) return 0;
        w->heap = q; w->cheap = c;
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p]; i = p;
    }
    w->heap[i] = e; return 1;
}
static bn_heap_ent heap_pop(bn_ws *w, size_t *n) {
    bn_heap_ent top = w->heap[0], last = w->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!heap_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c]; i = c;
    }
    if (*n) w->heap[i] = last;
    return top;
}

/* Merge symbols sym[0..n) in place by lowest rank, leftmost first (HF Word::merge_all and
 * sentencepiece's agenda give the same order). Returns the new count, or -1 on OOM. */
static long bpe_merge(const bitnet_tokenizer *t, bn_ws *w, size_t n) {
    int32_t *sym = w->sym;
    if (n < 2 || !t->merges.key) return (long)n;
    if (n <= 48) {
        uint32_t *rk = w->rk; int32_t *nid = w->nid;
        for (size_t i = 0; i + 1 < n; i++)
            if (!bn_mergemap_get(&t->merges, sym[i], sym[i + 1], &rk[i], &nid[i])) rk[i] = UINT32_MAX;
        while (n > 1) {
            size_t best = 0; uint32_t br = rk[0];
            for (size_t i = 1; i + 1 < n; i++) if (rk[i] < br) { br = rk[i]; best = i; }
            if (br == UINT32_MAX) break;
            sym[best] = nid[best];
            memmove(sym + best + 1, sym + best + 2, (n - best - 2) * sizeof *sym);
            memmove(rk + best, rk + best + 1, (n - best - 2) * sizeof *rk);
            memmove(nid + best, nid + best + 1, (n - best - 2) * sizeof *nid);
            n--;
            if (best + 1 < n && !bn_mergemap_get(&t->merges, sym[best], sym[best + 1], &rk[best], &nid[best])) rk[best] = UINT32_MAX;
            if (best > 0 && !bn_mergemap_get(&t->merges, sym[best - 1], sym[best], &rk[best - 1], &nid[best - 1])) rk[best - 1] = UINT32_MAX;
        }
        return (long)n;
    }
    int32_t *prev = w->prev, *next = w->next;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) { prev[i] = (int32_t)i - 1; next[i] = i + 1 < n ? (int32_t)i + 1 : -1; }
    for (size_t i = 0; i + 1 < n; i++) {
        bn_heap_ent e; e.pos = (int32_t)i; e.right = (int32_t)i + 1; e.lid = sym[i]; e.rid = sym[i + 1];
        if (bn_mergemap_get(&t->merges, e.lid, e.rid, &e.rank, &e.nid) && !heap_push(w, &hn, e)) return -1;
    }
    while (hn) {
        bn_heap_ent e = heap_pop(w, &hn);
        if (sym[e.pos] != e.lid || next[e.pos] != e.right || sym[e.right] != e.rid) continue;
        sym[e.pos] = e.nid;
        sym[e.right] = -1;
        int32_t nx = next[e.right];
        next[e.pos] = nx;
        if (nx >= 0) prev[nx] = e.pos;
        bn_heap_ent f;
        if (prev[e.pos] >= 0) {
            f.pos = prev[e.pos]; f.right = e.pos; f.lid = sym[f.pos]; f.rid = sym[e.pos];
            if (bn_mergemap_get(&t->merges, f.lid, f.rid, &f.rank, &f.nid) && !heap_push(w, &hn, f)) return -1;
        }
        if (nx >= 0) {
            f.pos = e.pos; f.right = nx; f.lid = sym[e.pos]; f.rid = sym[nx];
            if (bn_mergemap_get(&t->merges, f.lid, f.rid, &f.rank, &f.nid) && !heap_push(w, &hn, f)) return -1;
        }
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
    return (long)k;
}

/* Encode one pre-token (its key bytes) with the model, appending ids. */
static bitnet_status model_word(const bitnet_tokenizer *t, bn_ws *w, const char *s, size_t n, bn_ids *out) {
    if (!n) return BITNET_OK;
    if (t->ignore_merges) {
        int32_t id = bn_tok_key_lookup(t, s, n);
        if (id >= 0) return ids_push(out, id) ? BITNET_OK : bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (!ws_sym(w, n + 1)) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        size_t cl; int32_t id = -1;
        if (t->byte_level) { cl = 1; id = t->byte_id[u[i]]; }
        else {
            cl = 0;
            if (t->uterm) /* sentencepiece user-defined symbols are atomic: the longest one here */
                for (size_t k = i, node = 0; k < n; k++) {
                    uint32_t rk; int32_t child;
                    if (!bn_mergemap_get(&t->utrie, (int32_t)node, u[k], &rk, &child)) break;
                    node = (size_t)child;
                    if (t->uterm[node] >= 0) { cl = k + 1 - i; id = t->uterm[node]; }
                }
            if (!cl) {
                int32_t cp; cl = (size_t)utf8_dec(u + i, n - i, &cp);
                id = bn_tok_key_lookup(t, s + i, cl);
            }
        }
        if (id >= 0) { w->sym[k++] = id; last_unk = 0; i += cl; continue; }
        if (t->byte_fallback) {
            size_t j = 0;
            while (j < cl && t->byte_tok[u[i + j]] >= 0) j++;
            if (j == cl) {
                for (j = 0; j < cl; j++) w->sym[k++] = t->byte_tok[u[i + j]];
                last_unk = 0; i += cl; continue;
            }
        }
        if (t->unk_id >= 0 && !(t->fuse_unk && last_unk)) { w->sym[k++] = t->unk_id; last_unk = 1; }
        i += cl;
    }
    long m = bpe_merge(t, w, k);
    if (m < 0) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    for (long i = 0; i < m; i++) if (!ids_push(out, w->sym[i])) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    return BITNET_OK;
}

/* model_word, cut before each \u2581 that follows another character when that is exact. */
static bitnet_status model_piece(const bitnet_tokenizer *t, bn_ws *w, const char *s, size_t n, bn_ids *out) {
    if (!t->meta_split || n < 6) return model_word(t, w, s, n, out);
    size_t st = 0;
    for (size_t i = 1; i + 3 <= n; i++)
        if (!memcmp(s + i, SP_META, 3) && !(i >= 3 && !memcmp(s + i - 3, SP_META, 3))) {
            bitnet_status r = model_word(t, w, s + st, i - st, out);
            if (r) return r;
            st = i;
        }
    return model_word(t, w, s + st, n - st, out);
}

/* ---------------------------------------------------------------- normalizer / pre-tokenizer */

static int replace_all(bn_buf *dst, const char *s, size_t n, const char *a, size_t an, const char *b, size_t bn) {
    size_t i = 0;
    if (!an) return buf_put(dst, s, n);
    while (i < n) {
        const char *f = memmem(s + i, n - i, a, an);
        if (!f) break;
        if (!buf_put(dst, s + i, (size_t)(f - (s + i))) || !buf_put(dst, b, bn)) return 0;
        i = (size_t)(f - s) + an;
    }
    return buf_put(dst, s + i, n - i);
}

static int apply_normalizer(const bitnet_tokenizer *t, bn_ws *w, const char *s, size_t n, int first) {
    bn_buf a = {0};
    w->nb.n = 0;
    if (!buf_put(&w->nb, s, n)) return 0;
    for (int k = 0; k < t->n_norm; k++) {
        const bn_tok_step *st = &t->norm[k];
        a.n = 0;
        if (!buf_put(&a, "", 0)) { free(a.p); return 0; }
        const char *p = w->nb.p; size_t pn = w->nb.n;
        if (st->kind == BN_NM_PREPEND) {
            if (pn && (!buf_put(&a, st->a, st->alen) || !buf_put(&a, p, pn))) { free(a.p); return 0; }
        } else if (st->kind == BN_NM_REPLACE) {
            if (!replace_all(&a, p, pn, st->a, st->alen, st->b, st->blen)) { free(a.p); return 0; }
        } else if (st->kind == BN_NM_SPM) {
            size_t i = 0, e = pn;
            if (st->spm_remove_ws) { while (i < e && p[i] == ' ') i++; while (e > i && p[e - 1] == ' ') e--; }
            if (i < e && st->spm_dummy_prefix && first && !buf_put(&a, st->spm_escape_ws ? SP_META : " ", st->spm_escape_ws ? 3 : 1)) { free(a.p); return 0; }
            for (; i < e; i++) {
                if (p[i] == ' ') {
                    if (st->spm_remove_ws && i > 0 && p[i - 1] == ' ') continue;
                    if (!buf_put(&a, st->spm_escape_ws ? SP_META : " ", st->spm_escape_ws ? 3 : 1)) { free(a.p); return 0; }
                } else if (!buf_put(&a, p + i, 1)) { free(a.p); return 0; }
            }
        }
        bn_buf tmp = w->nb; w->nb = a; a = tmp;
    }
    free(a.p);
    return 1;
}

static int pc2_push(bn_ws *w, size_t s, size_t e, int first) {
    if (w->npc2 == w->cpc2) {
        size_t c = w->cpc2 ? w->cpc2 * 2 : 64;
        struct bn_piece *q = realloc(w->pc2, c * sizeof *q);
        if (!q) return 0;
        w->pc2 = q; w->cpc2 = c;
    }
    w->pc2[w->npc2].s = s; w->pc2[w->npc2].e = e; w->pc2[w->npc2].first = first; w->npc2++;
    return 1;
}
static void pc_swap(bn_ws *w) {
    struct bn_piece *p = w->pc; w->pc = w->pc2; w->pc2 = p;
    size_t c = w->cpc; w->cpc = w->cpc2; w->cpc2 = c;
    w->npc = w->npc2; w->npc2 = 0;
}

/* Split one piece [s,e) of buf by matches (regex or literal) with an HF SplitDelimiterBehavior. */
static bitnet_status model_word(const bitnet_tokenizer *t, bn_ws *w, const char *s, size_t n, bn_ids *out);

/* Pieces pc2[0..k) go through the model now (streaming final split); the rest move down. */
static bitnet_status flush_pieces(const bitnet_tokenizer *t, bn_ws *w, const char *buf, size_t k, bn_ids *out) {
    for (size_t i = 0; i < k; i++) {
        bitnet_status st = model_piece(t, w, buf + w->pc2[i].s, w->pc2[i].e - w->pc2[i].s, out);
        if (st) return st;
    }
    if (w->npc2 > k) memmove(w->pc2, w->pc2 + k, (w->npc2 - k) * sizeof *w->pc2); /* pc2 may be NULL when empty */
    w->npc2 -= k;
    return BITNET_OK;
}

/* Split one piece [s,e) of buf by matches (regex or literal) with an HF SplitDelimiterBehavior,
 * appending to pc2. With t/out set (the last pre-tokenizer step), finished pieces are encoded as
 * they come instead of being collected. */
static bitnet_status split_piece(bn_ws *w, const char *buf, size_t s, size_t e, int first,
                                 pcre2_code *re, const char *lit, size_t litn, int behavior, int invert,
                                 const bitnet_tokenizer *t, bn_ids *out) {
    /* spans: alternate gaps and matches, emitted straight into pc2 via a small state machine */
    size_t pos = s;
    int have_last = 0; size_t ls = 0, le = 0; int lm = 0; /* last emitted piece for merging */
    size_t first_piece = w->npc2;
#define EMIT(a, b, ism) do { \
        size_t _a = (a), _b = (b); int _m = (ism); if (invert) _m = !_m; \
        if (behavior == BN_SPLIT_ISOLATED) { if (!pc2_push(w, _a, _b, 0)) goto oom; } \
        else if (behavior == BN_SPLIT_REMOVED) { if (!_m && !pc2_push(w, _a, _b, 0)) goto oom; } \
        else if (behavior == BN_SPLIT_MERGED_PREV) { \
            if (_m && !lm && have_last) w->pc2[w->npc2 - 1].e = _b; else if (!pc2_push(w, _a, _b, 0)) goto oom; } \
        else if (behavior == BN_SPLIT_CONTIGUOUS) { \
            if (have_last && _m == lm) w->pc2[w->npc2 - 1].e = _b; else if (!pc2_push(w, _a, _b, 0)) goto oom; } \
        else { /* merged with next: a match starts a piece that absorbs the following gap */ \
            if (!_m && lm && have_last) w->pc2[w->npc2 - 1].e = _b; else if (!pc2_push(w, _a, _b, 0)) goto oom; } \
        have_last = 1; lm = _m; ls = _a; le = _b; \
        if (out && w->npc2 >= 256) { bitnet_status _st = flush_pieces(t, w, buf, w->npc2 - 1, out); if (_st) return _st; first_piece = (size_t)-1; } \
        } while (0)
    (void)ls; (void)le;
    size_t search = s;
    while (search < e) {
        size_t ms, me;
        if (re) {
            int rc = pcre2_match(re, (PCRE2_SPTR)buf + s, e - s, search - s, PCRE2_NO_UTF_CHECK, w->md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) return bn_err(BITNET_ERR_FORMAT, "tokenizer: regex match failed (PCRE2 error %d)", rc);
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
            ms = s + ov[0]; me = s + ov[1];
            if (me <= ms) { /* empty match: it splits nothing; search on from the next character */
                if (ms >= e) break;
                int32_t cp;
                search = ms + (size_t)utf8_dec((const unsigned char *)buf + ms, e - ms, &cp);
                continue;
            }
        } else {
            const char *f = litn ? memmem(buf + search, e - search, lit, litn) : NULL;
            if (!f) break;
            ms = (size_t)(f - buf); me = ms + litn;
        }
        if (ms > pos) EMIT(pos, ms, 0);
        EMIT(ms, me, 1);
        pos = search = me;
    }
    if (pos < e) EMIT(pos, e, 0);
#undef EMIT
    if (first && first_piece != (size_t)-1 && w->npc2 > first_piece && w->pc2[first_piece].s == s) w->pc2[first_piece].first = 1;
    return BITNET_OK;
oom:
    return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
}

static int step_is_noop(const bn_tok_step *st) {
    return st->kind == BN_PT_BYTELEVEL && !st->add_prefix_space && !st->re; /* keys are raw bytes already */
}

/* Run the pre-tokenizer over w->pc. If out is set and the last effective step is a Split, its
 * pieces are encoded as produced (returned with *done = 1). */
static bitnet_status apply_pre(const bitnet_tokenizer *t, bn_ws *w, const char **bufp, bn_ids *out, int *done) {
    const char *buf = *bufp;
    int last = t->n_pre - 1;
    while (last >= 0 && step_is_noop(&t->pre[last])) last--;
    *done = 0;
    for (int k = 0; k < t->n_pre; k++) {
        const bn_tok_step *st = &t->pre[k];
        if (step_is_noop(st)) continue;
        w->npc2 = 0;
        if (st->kind == BN_PT_SPLIT) {
            bn_ids *o = k == last ? out : NULL;
            for (size_t i = 0; i < w->npc; i++) {
                bitnet_status s = split_piece(w, buf, w->pc[i].s, w->pc[i].e, w->pc[i].first, st->re, st->a, st->alen, st->behavior, st->invert, t, o);
                if (s) return s;
            }
            if (o) { *done = 1; return flush_pieces(t, w, buf, w->npc2, o); }
            pc_swap(w);
            continue;
        }
        /* text-changing steps rebuild the text into the other buffer */
        bn_buf *dst = buf == w->pb.p ? &w->nb : &w->pb;
        dst->n = 0;
        if (!buf_put(dst, "", 0)) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < w->npc; i++) {
            const char *p = buf + w->pc[i].s; size_t pn = w->pc[i].e - w->pc[i].s;
            size_t start = dst->n;
            int ok = 1;
            if (st->kind == BN_PT_BYTELEVEL) {
                if (st->add_prefix_space && !(pn && p[0] == ' ')) ok = buf_put(dst, " ", 1);
                ok = ok && buf_put(dst, p, pn);
            } else { /* Metaspace */
                int starts = pn >= 1 && (pn >= st->alen ? !memcmp(p, st->a, st->alen) : 0);
                int starts_space = pn && p[0] == ' ';
                int pre = st->prepend_scheme == BN_PREPEND_ALWAYS ? !(starts || starts_space)
                        : st->prepend_scheme == BN_PREPEND_FIRST ? !(starts || starts_space) && w->pc[i].first : 0;
                if (pre) ok = buf_put(dst, st->a, st->alen);
                ok = ok && replace_all(dst, p, pn, " ", 1, st->a, st->alen);
            }
            if (!ok || !pc2_push(w, start, dst->n, w->pc[i].first)) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        }
        pc_swap(w);
        buf = dst->p;
        /* optional splitting after the rewrite */
        if ((st->kind == BN_PT_BYTELEVEL && st->re) || (st->kind == BN_PT_METASPACE && st->split)) {
            for (size_t i = 0; i < w->npc; i++) {
                bitnet_status s = st->kind == BN_PT_BYTELEVEL
                    ? split_piece(w, buf, w->pc[i].s, w->pc[i].e, w->pc[i].first, st->re, NULL, 0, BN_SPLIT_ISOLATED, 0, t, NULL)
                    : split_piece(w, buf, w->pc[i].s, w->pc[i].e, w->pc[i].first, NULL, st->a, st->alen, BN_SPLIT_MERGED_NEXT, 0, t, NULL);
                if (s) return s;
            }
            pc_swap(w);
        }
    }
    *bufp = buf;
    return BITNET_OK;
}

/* One stretch of text between added tokens. first: it starts the input. */
static bitnet_status encode_segment(const bitnet_tokenizer *t, bn_ws *w, const char *s, size_t n, int first, bn_ids *out) {
    if (!n) return BITNET_OK;
    const char *buf = s;
    if (t->n_norm) {
        if (!apply_normalizer(t, w, s, n, first)) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        buf = w->nb.p; n = w->nb.n;
    }
    w->npc = 0; w->npc2 = 0;
    if (!pc2_push(w, 0, n, first)) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    pc_swap(w);
    if (t->n_pre) {
        int done = 0;
        bitnet_status st = apply_pre(t, w, &buf, out, &done);
        if (st || done) return st;
    }
    for (size_t i = 0; i < w->npc; i++) {
        bitnet_status st = model_piece(t, w, buf + w->pc[i].s, w->pc[i].e - w->pc[i].s, out);
        if (st) return st;
    }
    return BITNET_OK;
}

static int is_word_byte(unsigned char c) { return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

bitnet_status bitnet_tokenizer_encode_ex(const bitnet_tokenizer *t, const char *text, size_t len, int flags,
                                         int32_t **ids, int *n_ids) {
    if (!t || !ids || !n_ids || (!text && len)) return bn_err(BITNET_ERR_ARG, "bitnet_tokenizer_encode: NULL argument");
    *ids = NULL; *n_ids = 0;
    bn_ids out = {0};
    bn_ws w = {0};
    bitnet_status st = BITNET_OK;
    for (int k = 0; k < t->n_pre && !w.md; k++)
        if (t->pre[k].re) {
            w.md = pcre2_match_data_create(4, NULL);
            if (!w.md) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        }
    if ((flags & BITNET_TOK_BOS) && t->bos >= 0 && !ids_push(&out, t->bos)) st = bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    const unsigned char *u = (const unsigned char *)text;
    size_t seg = 0;
    for (size_t i = 0; i < len && !st;) {
        const int32_t *cand = t->added_first[u[i]];
        const bn_added_token *m = NULL;
        if (cand)
            for (; *cand >= 0; cand++) {
                const bn_added_token *a = &t->added[*cand];
                if (a->len > len - i || memcmp(a->text, text + i, a->len)) continue;
                if (a->single_word && ((i > 0 && is_word_byte(u[i - 1])) || (i + a->len < len && is_word_byte(u[i + a->len])))) continue;
                m = a; break;
            }
        if (!m) { i++; continue; }
        size_t ms = i, me = i + m->len;
        if (m->lstrip) /* swallow whitespace before the token (within this segment) */
            while (ms > seg) {
                size_t b = ms - 1;
                while (b > seg && (u[b] & 0xC0) == 0x80) b--;
                int32_t cp; utf8_dec(u + b, ms - b, &cp);
                if (!is_uspace(cp) || b + (size_t)utf8_dec(u + b, ms - b, &cp) != ms) break;
                ms = b;
            }
        if (m->rstrip)
            while (me < len) {
                int32_t cp; int l = utf8_dec(u + me, len - me, &cp);
                if (!is_uspace(cp)) break;
                me += (size_t)l;
            }
        st = encode_segment(t, &w, text + seg, ms - seg, seg == 0 && !(flags & BITNET_TOK_CONTINUE), &out);
        if (!st && !ids_push(&out, m->id)) st = bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        seg = i = me;
    }
    if (!st) st = encode_segment(t, &w, text + seg, len - seg, seg == 0 && !(flags & BITNET_TOK_CONTINUE), &out);
    if (!st && out.n > INT_MAX) st = bn_err(BITNET_ERR_ARG, "tokenizer: input too long (more than INT_MAX tokens)");
    free(w.nb.p); free(w.pb.p); free(w.pc); free(w.pc2);
    free(w.sym); free(w.prev); free(w.next); free(w.rk); free(w.nid); free(w.heap);
    if (w.md) pcre2_match_data_free(w.md);
    if (st) { free(out.p); return st; }
    if (!out.p && !(out.p = malloc(sizeof(int32_t)))) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    *ids = out.p; *n_ids = (int)out.n;
    return BITNET_OK;
}

bitnet_status bitnet_tokenizer_encode(const bitnet_tokenizer *t, const char *text, size_t len,
                                      int add_bos, int32_t **ids, int *n_ids) {
    return bitnet_tokenizer_encode_ex(t, text, len, add_bos ? BITNET_TOK_BOS : 0, ids, n_ids);
}

/* ---------------------------------------------------------------- decoding */

typedef struct { bn_buf b; size_t *off; size_t n, cap; } bn_slist; /* strings: [off[i], off[i+1]) */

static int sl_begin(bn_slist *l) {
    l->b.n = 0; l->n = 0;
    if (!l->cap) { l->off = malloc(16 * sizeof *l->off); if (!l->off) return 0; l->cap = 16; }
    l->off[0] = 0;
    return buf_put(&l->b, "", 0);
}
static int sl_end_item(bn_slist *l) { /* close the string accumulated since the last end */
    if (l->n + 2 > l->cap) {
        size_t c = l->cap * 2;
        size_t *q = realloc(l->off, c * sizeof *q);
        if (!q) return 0;
        l->off = q; l->cap = c;
    }
    l->off[++l->n] = l->b.n;
    return 1;
}
#define SL_S(l, i) ((l)->b.p + (l)->off[i])
#define SL_N(l, i) ((l)->off[(i) + 1] - (l)->off[i])

static int put_lossy(bn_buf *d, const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n) { int32_t cp; int l = utf8_dec(s + j, n - j, &cp); if (cp < 0) break; j += (size_t)l; }
        if (!buf_put(d, s + i, j - i)) return 0;
        if (j >= n) break;
        if (!buf_put(d, "\xEF\xBF\xBD", 3)) return 0;
        i = j + (size_t)utf8_bad_len(s + j, n - j);
    }
    return 1;
}
static int utf8_valid(const unsigned char *s, size_t n) {
    for (size_t j = 0; j < n;) { int32_t cp; int l = utf8_dec(s + j, n - j, &cp); if (cp < 0) return 0; j += (size_t)l; }
    return 1;
}

static const char *token_text(const bitnet_tokenizer *t, int32_t id, size_t *n) {
    *n = t->tlen[id];
    return t->text[id];
}

/* decode_into flags, for the streaming detokenizer's windows: */
enum { DEC_CONT = 1,   /* the ids continue a text (no start-of-text rules: Metaspace's first-token
                        * space, Strip at the start of joined text; a space before the first id
                        * when there is no decoder) */
       DEC_OPEN = 2 }; /* more ids may follow (no Strip at the end of joined text) */

/* HF decode of ids into res. With flags 0 this is the full decode; for a window that starts at a
 * boundary where the decoders are separable (no open byte-fallback run, no partial UTF-8
 * character), decode(all) == decode(before, OPEN) + decode(window, CONT). */
static bitnet_status decode_into(const bitnet_tokenizer *t, const int32_t *ids, int n, int flags, bn_buf *res) {
    int cont = flags & DEC_CONT, open = flags & DEC_OPEN, joined = 0; /* joined: one item (after ByteLevel/Fuse) */
    bn_slist a = {0}, b = {0};
    bitnet_status st = bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    res->n = 0;
    if (!buf_put(res, "", 0) || !sl_begin(&a)) goto done;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !t->text[ids[i]]) {
            st = bn_err(BITNET_ERR_ARG, "tokenizer: id %d is not in the vocabulary (size %d)", (int)ids[i], t->n_vocab);
            goto done;
        }
        size_t l; const char *s = token_text(t, ids[i], &l);
        if (!buf_put(&a.b, s, l) || !sl_end_item(&a)) goto done;
    }
    if (!t->has_decoder) {
        for (size_t i = 0; i < a.n; i++)
            if (((i || cont) && !buf_put(res, " ", 1)) || !buf_put(res, SL_S(&a, i), SL_N(&a, i))) goto done;
        st = BITNET_OK; goto done;
    }
    for (int k = 0; k < t->n_decs; k++) {
        const bn_tok_step *d = &t->decs[k];
        if (!sl_begin(&b)) goto done;
        switch (d->kind) {
        case BN_DEC_BYTELEVEL: {
            bn_buf raw = {0};
            int ok = buf_put(&raw, "", 0);
            for (size_t i = 0; i < a.n && ok; i++) {
                size_t l = SL_N(&a, i);
                if (!buf_reserve(&raw, l + 1)) { ok = 0; break; }
                long m = bn_bytelevel_to_bytes(SL_S(&a, i), l, raw.p + raw.n);
                if (m < 0) { memcpy(raw.p + raw.n, SL_S(&a, i), l); m = (long)l; }
                raw.n += (size_t)m;
            }
            ok = ok && put_lossy(&b.b, (const unsigned char *)raw.p, raw.n) && sl_end_item(&b);
            free(raw.p);
            if (!ok) goto done;
            joined = 1;
            break;
        }
        case BN_DEC_REPLACE: case BN_DEC_METASPACE:
            for (size_t i = 0; i < a.n; i++) {
                size_t st0 = b.b.n;
                if (d->kind == BN_DEC_REPLACE) { if (!replace_all(&b.b, SL_S(&a, i), SL_N(&a, i), d->a, d->alen, d->b, d->blen)) goto done; }
                else {
                    if (!replace_all(&b.b, SL_S(&a, i), SL_N(&a, i), d->a, d->alen, " ", 1)) goto done;
                    if (i == 0 && !cont && d->prepend_scheme != BN_PREPEND_NEVER && b.b.n > st0 && b.b.p[st0] == ' ') {
                        memmove(b.b.p + st0, b.b.p + st0 + 1, b.b.n - st0 - 1); b.b.n--; b.b.p[b.b.n] = 0;
                    }
                }
                if (!sl_end_item(&b)) goto done;
            }
            break;
        case BN_DEC_BYTEFALLBACK: {
            size_t i = 0;
            while (i < a.n) {
                const char *s = SL_S(&a, i); size_t l = SL_N(&a, i);
                int isb = l == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4]);
                if (!isb) { if (!buf_put(&b.b, s, l) || !sl_end_item(&b)) goto done; i++; continue; }
                size_t j = i; bn_buf raw = {0};
                while (j < a.n) {
                    const char *q = SL_S(&a, j);
                    if (!(SL_N(&a, j) == 6 && q[0] == '<' && q[1] == '0' && q[2] == 'x' && q[5] == '>' && isxdigit((unsigned char)q[3]) && isxdigit((unsigned char)q[4]))) break;
                    char hx[3] = {q[3], q[4], 0};
                    char by = (char)strtol(hx, NULL, 16);
                    if (!buf_put(&raw, &by, 1)) { free(raw.p); goto done; }
                    j++;
                }
                int ok = 1;
                if (utf8_valid((const unsigned char *)raw.p, raw.n)) ok = buf_put(&b.b, raw.p, raw.n) && sl_end_item(&b);
                else for (size_t r = 0; r < raw.n && ok; r++) ok = buf_put(&b.b, "\xEF\xBF\xBD", 3) && sl_end_item(&b);
                free(raw.p);
                if (!ok) goto done;
                i = j;
            }
            break;
        }
        case BN_DEC_FUSE:
            if (!buf_put(&b.b, a.b.p, a.b.n) || !sl_end_item(&b)) goto done;
            joined = 1;
            break;
        case BN_DEC_STRIP:
            for (size_t i = 0; i < a.n; i++) {
                const char *s = SL_S(&a, i); size_t l = SL_N(&a, i), lo = 0, hi = l;
                int start = joined && cont ? 0 : d->start, stop = joined && open ? 0 : d->stop;
                for (int c = 0; c < start && hi - lo >= d->alen && d->alen && !memcmp(s + lo, d->a, d->alen); c++) lo += d->alen;
                for (int c = 0; c < stop && hi - lo >= d->alen && d->alen && !memcmp(s + hi - d->alen, d->a, d->alen); c++) hi -= d->alen;
                if (!buf_put(&b.b, s + lo, hi - lo) || !sl_end_item(&b)) goto done;
            }
            break;
        }
        bn_slist tmp = a; a = b; b = tmp;
    }
    if (!buf_put(res, a.b.p, a.b.n)) goto done;
    st = BITNET_OK;
done:
    free(a.b.p); free(a.off); free(b.b.p); free(b.off);
    return st;
}

bitnet_status bitnet_tokenizer_decode(const bitnet_tokenizer *t, const int32_t *ids, int n, char **text) {
    if (!t || !text || (!ids && n) || n < 0) return bn_err(BITNET_ERR_ARG, "bitnet_tokenizer_decode: bad argument");
    *text = NULL;
    bn_buf r = {0};
    bitnet_status st = decode_into(t, ids, n, 0, &r);
    if (st) { free(r.p); return st; }
    *text = r.p;
    return BITNET_OK;
}

/* As bitnet_tokenizer_decode, and *len = the text's length in bytes (the text may hold NUL
 * bytes, which strlen would stop at). */
bitnet_status bitnet_tokenizer_decode_len(const bitnet_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len) {
    if (!t || !text || !len || (!ids && n) || n < 0) return bn_err(BITNET_ERR_ARG, "bitnet_tokenizer_decode_len: bad argument");
    *text = NULL; *len = 0;
    bn_buf r = {0};
    bitnet_status st = decode_into(t, ids, n, 0, &r);
    if (st) { free(r.p); return st; }
    *text = r.p; *len = r.n;
    return BITNET_OK;
}

/* ---------------------------------------------------------------- streaming detokenizer */

/* Holds the ids since the last point where the decoders are separable (the "window") and emits
 * the window's text when the newest id closes it again: after a byte-fallback "<0xXX>" token a
 * longer run may follow (HF decodes a whole run at once and turns all of it into U+FFFD when any
 * part is invalid), and after a byte-level token the bytes may end inside a UTF-8 character.
 * Each window is decoded once, as a continuation (DEC_CONT) of the text before it, so the pieces
 * add up to the full decode of all ids (up to a Strip "stop" after joined text, which no stream
 * can know before the end, and a Strip "start" > 1 that would reach past the first window), and
 * the work is linear in the ids: nothing is decoded while a window is held open. */
struct bitnet_detok {
    const bitnet_tokenizer *t;
    int32_t *win; int nwin, cwin;
    int started;                /* a window was emitted since the start (or the last flush) */
    int has_bf, has_bl;         /* the decoder has ByteFallback / ByteLevel steps */
    bn_buf cur;
};

bitnet_status bitnet_detok_new(const bitnet_tokenizer *t, bitnet_detok **out) {
    if (!t || !out) return bn_err(BITNET_ERR_ARG, "bitnet_detok_new: NULL argument");
    bitnet_detok *d = calloc(1, sizeof *d);
    if (!d || !buf_put(&d->cur, "", 0)) { free(d); return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory"); }
    d->t = t;
    for (int k = 0; k < t->n_decs; k++) {
        if (t->decs[k].kind == BN_DEC_BYTEFALLBACK) d->has_bf = 1;
        if (t->decs[k].kind == BN_DEC_BYTELEVEL) d->has_bl = 1;
    }
    *out = d;
    return BITNET_OK;
}

void bitnet_detok_free(bitnet_detok *d) {
    if (!d) return;
    free(d->win); free(d->cur.p); free(d);
}

/* Byte-level window: do its raw bytes end inside a UTF-8 character (a lead byte followed by fewer
 * continuation bytes than it needs, all valid so far)? Only the last 3 bytes can matter. */
static int bl_tail_incomplete(const bitnet_detok *d) {
    unsigned char tail[3]; int n = 0; /* tail[3 - n .. 3) */
    char small[256];
    for (int i = d->nwin - 1; i >= 0 && n < 3; i--) {
        const char *s = d->t->text[d->win[i]]; size_t l = d->t->tlen[d->win[i]];
        char *raw = l <= sizeof small ? small : malloc(l);
        if (!raw) return 1;
        long m = bn_bytelevel_to_bytes(s, l, raw);
        const char *src = m < 0 ? s : raw; size_t ml = m < 0 ? l : (size_t)m;
        while (ml > 0 && n < 3) tail[3 - ++n] = (unsigned char)src[--ml];
        if (raw != small) free(raw);
    }
    const unsigned char *q = tail + 3 - n;
    for (int p = n - 1; p >= 0; p--) {
        if (q[p] < 0xC0) continue;
        int need = q[p] >= 0xC2 && q[p] <= 0xDF ? 2 : q[p] >= 0xE0 && q[p] <= 0xEF ? 3 : q[p] >= 0xF0 && q[p] <= 0xF4 ? 4 : 0;
        return need > n - p && utf8_bad_len(q + p, (size_t)(n - p)) == n - p;
    }
    return 0;
}

bitnet_status bitnet_detok_push(bitnet_detok *d, int32_t id, const char **piece) {
    if (!d || !piece) return bn_err(BITNET_ERR_ARG, "bitnet_detok_push: NULL argument");
    *piece = "";
    if (id < 0 || id >= d->t->n_vocab || !d->t->text[id]) return bn_err(BITNET_ERR_ARG, "tokenizer: id %d is not in the vocabulary (size %d)", (int)id, d->t->n_vocab);
    if (d->nwin == d->cwin) {
        if (d->cwin > INT_MAX / 2) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        int c = d->cwin ? d->cwin * 2 : 16;
        int32_t *q = realloc(d->win, (size_t)c * sizeof *q);
        if (!q) return bn_err(BITNET_ERR_NOMEM, "tokenizer: out of memory");
        d->win = q; d->cwin = c;
    }
    d->win[d->nwin++] = id;
    if ((d->has_bf && d->t->dec[id]) || (d->has_bl && bl_tail_incomplete(d))) return BITNET_OK; /* held */
    bitnet_status st = decode_into(d->t, d->win, d->nwin, DEC_OPEN | (d->started ? DEC_CONT : 0), &d->cur);
    if (st) { d->nwin--; return st; }
    d->nwin = 0; d->started = 1;
    *piece = d->cur.p;
    return BITNET_OK;
}

const char *bitnet_detok_flush(bitnet_detok *d) {
    if (!d) return "";
    const char *r = "";
    if (d->nwin > 0 && decode_into(d->t, d->win, d->nwin, d->started ? DEC_CONT : 0, &d->cur) == BITNET_OK) r = d->cur.p;
    d->nwin = 0; d->started = 0;
    return r;
}
