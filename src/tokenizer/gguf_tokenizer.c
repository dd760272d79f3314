/* gguf_tokenizer.c — the tokenizer from a GGUF file's tokenizer.ggml.* metadata, built into the
 * shared in-memory tokenizer (tokenizer_internal.h), for bitnet_tokenizer_load("x.gguf"):
 *   tokenizer.ggml.model "gpt2": byte-level BPE from tokens, merges ("a b", rank = position) and
 *   token_type (3 control / 4 user-defined tokens become added tokens matched in the raw text,
 *   control ones special); tokenizer.ggml.pre "llama-bpe" / "llama3" (and, when the key is missing
 *   as in old bitnet.cpp files, the same) gives the Llama-3 split regex with ignore_merges, as
 *   the Llama-3 tokenizer.json does; "gpt2" / "default" the GPT-2 regex; bos/eos/eot/eom ids.
 * The file is mmap'd for the parse and unmapped again.
 *   tokenizer.ggml.model "llama": SentencePiece BPE from tokens, scores and token_type (byte
 *   tokens give byte fallback), add_space_prefix (default on), unk/bos/eos/eot ids; the pieces are
 *   re-encoded as a tokenizer.model protobuf in memory and read by tokenizer_spm.c.
 * Not: other tokenizer models (bert, t5, rwkv) or pre-tokenizer names: refused, naming them. */
#include "tokenizer/tokenizer_internal.h"
#include "io/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *LLAMA3_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *GPT2_REGEX_G = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static bitnet_status add_step(bn_tok_step **arr, int *n, bn_tok_step **out, const char *path) {
    bn_tok_step *q = realloc(*arr, (size_t)(*n + 1) * sizeof *q);
    if (!q) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    *arr = q;
    memset(&q[*n], 0, sizeof q[*n]);
    *out = &q[(*n)++];
    return BITNET_OK;
}

static int str_is(bn_gguf_str s, const char *lit) { return s.n == strlen(lit) && !memcmp(s.s, lit, s.n); }

/* ---- tokenizer.ggml.model "llama": the pieces re-encoded as a SentencePiece ModelProto and
 * read by the tokenizer.model loader (tokenizer_spm.c), so both follow the same rules ---- */
typedef struct { uint8_t *b; size_t n, cap; int oom; } pbuf;
static void pb_put(pbuf *o, const void *p, size_t n) {
    if (o->oom) return;
    if (o->n + n > o->cap) { size_t c = (o->n + n) * 2 + 256; uint8_t *q = realloc(o->b, c); if (!q) { o->oom = 1; return; } o->b = q; o->cap = c; }
    memcpy(o->b + o->n, p, n); o->n += n;
}
static void pb_var(pbuf *o, uint64_t v) { uint8_t b[10]; int k = 0; do { b[k] = (uint8_t)(v & 0x7f); v >>= 7; if (v) b[k] |= 0x80; k++; } while (v); pb_put(o, b, (size_t)k); }
static void pb_tag(pbuf *o, unsigned f, unsigned wt) { pb_var(o, (uint64_t)f << 3 | wt); }

bitnet_status bn_tok_gguf_spm_proto(const bn_gguf *g, const char *path, uint8_t **buf, size_t *nbuf) {
    *buf = NULL; *nbuf = 0;
    const bn_gguf_kv *toks, *scores = NULL, *types = NULL;
    bitnet_status s = bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GV_STRING, &toks);
    if (s) return s;
    uint64_t n = toks->arr_n;
    if (n < 1 || n > (1u << 24)) return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries (1 to 2^24 allowed)", path, (unsigned long long)n);
    if ((s = bn_gguf_get_arr(g, "tokenizer.ggml.scores", BN_GV_F32, &scores))) return s;
    if (scores->arr_n != n) return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries, tokens %llu", path, (unsigned long long)scores->arr_n, (unsigned long long)n);
    if (bn_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if ((s = bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GV_COUNT, &types))) return s;
        if (types->arr_n != n || types->arr_type == BN_GV_STRING || types->arr_type == BN_GV_F32 || types->arr_type == BN_GV_F64)
            return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.token_type must hold %llu integers", path, (unsigned long long)n);
    }
    pbuf o = {0}, p = {0};
    int byte_fb = 0;
    for (uint64_t i = 0; i < n; i++) {
        bn_gguf_str x = bn_gguf_arr_str(toks, i);
        float sc = (float)bn_gguf_arr_float(scores, i);
        int64_t ty = types ? bn_gguf_arr_int(types, i) : 1;
        if (ty < 1 || ty > 6) { free(o.b); free(p.b); return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] = %lld (1 to 6)", path, (unsigned long long)i, (long long)ty); }
        byte_fb |= ty == 6;
        p.n = 0;
        pb_tag(&p, 1, 2); pb_var(&p, x.n); pb_put(&p, x.s, x.n);
        uint32_t u; memcpy(&u, &sc, 4);
        pb_tag(&p, 2, 5); pb_put(&p, &u, 4);
        pb_tag(&p, 3, 0); pb_var(&p, (uint64_t)ty);
        pb_tag(&o, 1, 2); pb_var(&o, p.n); pb_put(&o, p.b, p.n);
    }
    /* TrainerSpec: BPE, byte fallback, special ids (-1 when absent); NormalizerSpec: identity,
     * dummy prefix = tokenizer.ggml.add_space_prefix (default on), extra whitespace kept */
    static const char *idk[3] = {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    int64_t ids[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++)
        if (bn_gguf_find_kv(g, idk[i]) && (s = bn_gguf_get_int(g, idk[i], 0, (int64_t)n - 1, &ids[i]))) { free(o.b); free(p.b); return s; }
    p.n = 0;
    pb_tag(&p, 3, 0); pb_var(&p, 2);
    pb_tag(&p, 35, 0); pb_var(&p, (uint64_t)byte_fb);
    for (int i = 0; i < 3; i++) { pb_tag(&p, 40 + (unsigned)i, 0); pb_var(&p, (uint64_t)ids[i]); }
    pb_tag(&o, 2, 2); pb_var(&o, p.n); pb_put(&o, p.b, p.n);
    int dummy = 1;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.add_space_prefix") && (s = bn_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &dummy))) { free(o.b); free(p.b); return s; }
    p.n = 0;
    pb_tag(&p, 3, 0); pb_var(&p, (uint64_t)dummy);
    pb_tag(&p, 4, 0); pb_var(&p, 0);
    pb_tag(&p, 5, 0); pb_var(&p, 1);
    pb_tag(&o, 3, 2); pb_var(&o, p.n); pb_put(&o, p.b, p.n);
    free(p.b);
    if (o.oom || p.oom) { free(o.b); return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); }
    *buf = o.b; *nbuf = o.n;
    return BITNET_OK;
}

static bitnet_status build_spm(bitnet_tokenizer *t, const bn_gguf *g, const char *path) {
    uint8_t *b; size_t n;
    bitnet_status s = bn_tok_gguf_spm_proto(g, path, &b, &n);
    if (s) return s;
    s = bn_tok_parse_spm(t, (const char *)b, n, path);
    free(b);
    if (!s) {
        int64_t v;
        if (bn_gguf_find_kv(g, "tokenizer.ggml.eot_token_id") && !bn_gguf_get_int(g, "tokenizer.ggml.eot_token_id", 0, (int64_t)t->n_vocab - 1, &v)) t->eot = (int)v;
    }
    return s;
}

static bitnet_status build(bitnet_tokenizer *t, const bn_gguf *g, const char *path) {
    bn_gguf_str model, pre = {"", 0};
    bitnet_status s = bn_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (s) return s;
    if (str_is(model, "llama")) return build_spm(t, g, path);
    if (!str_is(model, "gpt2"))
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported from GGUF (gpt2: byte-level BPE; llama: SentencePiece BPE)", path, (int)(model.n > 40 ? 40 : model.n), model.s);
    int has_pre = bn_gguf_find_kv(g, "tokenizer.ggml.pre") != NULL;
    if (has_pre && (s = bn_gguf_get_str(g, "tokenizer.ggml.pre", &pre))) return s;
    if (!has_pre) t->notice = "the GGUF file has no tokenizer.ggml.pre (an old bitnet.cpp conversion): using the Llama-3 pre-tokenizer regex";
    int llama3 = !has_pre || str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3");
    if (!llama3 && !str_is(pre, "gpt2") && !str_is(pre, "default"))
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%.*s' is not supported (llama-bpe, gpt2, default)", path, (int)(pre.n > 40 ? 40 : pre.n), pre.s);
    const bn_gguf_kv *toks, *types = NULL, *merges = NULL;
    if ((s = bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GV_STRING, &toks))) return s;
    if (toks->arr_n < 1 || toks->arr_n > (1u << 24)) return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries (1 to 2^24 allowed)", path, (unsigned long long)toks->arr_n);
    int n = (int)toks->arr_n;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if ((s = bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GV_COUNT, &types))) return s;
        if (types->arr_n != (uint64_t)n || types->arr_type == BN_GV_STRING || types->arr_type == BN_GV_F32 || types->arr_type == BN_GV_F64)
            return bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.token_type must hold %d integers", path, n);
    }
    if (bn_gguf_find_kv(g, "tokenizer.ggml.merges") && (s = bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GV_STRING, &merges))) return s;

    /* pipeline: Split(regex, Isolated) + ByteLevel(no prefix space, no regex) for llama-bpe;
     * ByteLevel with the GPT-2 regex otherwise; ByteLevel decoder */
    bn_tok_step *st;
    if (llama3) {
        if ((s = add_step(&t->pre, &t->n_pre, &st, path))) return s;
        st->kind = BN_PT_SPLIT; st->behavior = BN_SPLIT_ISOLATED;
        if ((s = bn_tok_compile_regex(LLAMA3_REGEX, strlen(LLAMA3_REGEX), &st->re, path))) return s;
    }
    if ((s = add_step(&t->pre, &t->n_pre, &st, path))) return s;
    st->kind = BN_PT_BYTELEVEL; st->add_prefix_space = 0;
    if (!llama3 && (s = bn_tok_compile_regex(GPT2_REGEX_G, strlen(GPT2_REGEX_G), &st->re, path))) return s;
    if ((s = add_step(&t->decs, &t->n_decs, &st, path))) return s;
    st->kind = BN_DEC_BYTELEVEL; t->has_decoder = 1;
    t->byte_level = 1; t->ignore_merges = llama3;

    if ((s = bn_tok_alloc_vocab(t, n))) return s;
    size_t maxlen = 16;
    for (int i = 0; i < n; i++) { bn_gguf_str x = bn_gguf_arr_str(toks, i); if (x.n > maxlen) maxlen = x.n; }
    if (maxlen > (1u << 20)) return bn_err(BITNET_ERR_FORMAT, "%s: a token is longer than 1 MiB", path);
    char *scratch = malloc(maxlen * 2 + 16);
    int nadd = 0;
    for (int i = 0; types && i < n; i++) { int64_t ty = bn_gguf_arr_int(types, i); nadd += ty == 3 || ty == 4; }
    if (!scratch || (nadd && !(t->added = calloc((size_t)nadd, sizeof *t->added)))) { free(scratch); return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); }
    for (int i = 0; i < n && !s; i++) {
        bn_gguf_str x = bn_gguf_arr_str(toks, i);
        if (!(t->text[i] = bn_tok_strdup(t, x.s, x.n))) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); break; }
        t->tlen[i] = (uint32_t)x.n;
        int64_t ty = types ? bn_gguf_arr_int(types, i) : 1;
        if (ty == 3 || ty == 4) {
            bn_added_token *a = &t->added[t->n_added++];
            a->text = t->text[i]; a->len = x.n; a->id = i; a->special = ty == 3;
            continue;
        }
        long k = bn_bytelevel_to_bytes(x.s, x.n, scratch);
        if (k < 0) continue;   /* not byte-level text: never matched */
        if (!(t->key[i] = bn_tok_strdup(t, scratch, (size_t)k))) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); break; }
        t->klen[i] = (uint32_t)k;
    }
    if (!s) s = bn_tok_build_keymap(t, path);
    uint64_t nm = merges ? merges->arr_n : 0;
    if (!s) s = bn_mergemap_init(&t->merges, (size_t)nm);
    char *cat = malloc(maxlen * 2 + 16);
    if (!cat && !s) s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t r = 0; r < nm && !s; r++) {
        bn_gguf_str m = bn_gguf_arr_str(merges, r);
        const char *sp = memchr(m.s, ' ', m.n);
        if (!sp || memchr(sp + 1, ' ', m.n - (size_t)(sp - m.s) - 1)) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] '%.*s' is not two tokens separated by one space", path, (unsigned long long)r, (int)(m.n > 60 ? 60 : m.n), m.s);
            break;
        }
        size_t an = (size_t)(sp - m.s), bnn = m.n - an - 1;
        if (m.n - 1 > maxlen * 2) { s = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is longer than any token", path, (unsigned long long)r); break; }
        long ka = bn_bytelevel_to_bytes(m.s, an, scratch);
        int32_t ia = ka < 0 ? -1 : bn_tok_key_lookup(t, scratch, (size_t)ka);
        long kb = bn_bytelevel_to_bytes(sp + 1, bnn, scratch);
        int32_t ib = kb < 0 ? -1 : bn_tok_key_lookup(t, scratch, (size_t)kb);
        memcpy(cat, m.s, an); memcpy(cat + an, sp + 1, bnn);
        long kc = bn_bytelevel_to_bytes(cat, an + bnn, scratch);
        int32_t ic = kc < 0 ? -1 : bn_tok_key_lookup(t, scratch, (size_t)kc);
        if (ia < 0 || ib < 0 || ic < 0) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] '%.*s': %s is not in the vocabulary", path, (unsigned long long)r,
                       (int)(m.n > 60 ? 60 : m.n), m.s, ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged token");
            break;
        }
        bn_mergemap_put(&t->merges, ia, ib, (uint32_t)r, ic);
    }
    free(cat); free(scratch);
    if (s) return s;
    static const char *idk[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.unknown_token_id"};
    int *dst[4] = {&t->bos, &t->eos, &t->eot, &t->unk_id};
    for (int i = 0; i < 4; i++) {
        int64_t v;
        if (!bn_gguf_find_kv(g, idk[i])) continue;
        if ((s = bn_gguf_get_int(g, idk[i], 0, n - 1, &v))) return s;
        *dst[i] = (int)v;
    }
    return BITNET_OK;
}

bitnet_status bn_tok_load_gguf(bitnet_tokenizer *t, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bn_err(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); return bn_err(BITNET_ERR_IO, "%s: not a regular file", path); }
    size_t size = (size_t)sb.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) return bn_err(BITNET_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    bn_gguf *g = NULL;
    bitnet_status s = bn_gguf_parse(map, size, path, &g);
    if (!s) s = build(t, g, path);
    bn_gguf_free(g);
    if (map) munmap(map, size);
    return s;
}
