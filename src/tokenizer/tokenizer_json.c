/* tokenizer_json.c — loader of Hugging Face tokenizer.json files (BPE model) into the internal
 * tokenizer (tokenizer_internal.h). Knows the components of byte-level BPE (Split regex +
 * ByteLevel, Llama 3 / 2B-4T) and Metaspace / byte-fallback BPE (LLaMA SentencePiece
 * conversions): normalizers Prepend/Replace(String), pre-tokenizers Split/ByteLevel/Metaspace,
 * decoders ByteLevel/Replace/ByteFallback/Fuse/Strip/Metaspace, all possibly in a Sequence.
 * What it is not: other models (WordPiece, Unigram, WordLevel) or components; those fail with
 * BITNET_ERR_UNSUPPORTED naming the component. Never trusts the file: every field is checked. */
#include "tokenizer/tokenizer_internal.h"
#include <cjson/cJSON.h>
#include <math.h>

#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static int jbool(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
}
static int jint(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v) && v->valuedouble >= -1e9 && v->valuedouble <= 1e9) return (int)v->valuedouble;
    return def;
}

static bitnet_status add_step(bn_tok_step **arr, int *n, bn_tok_step **out, const char *path) {
    bn_tok_step *q = realloc(*arr, (size_t)(*n + 1) * sizeof *q);
    if (!q) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    *arr = q;
    memset(&q[*n], 0, sizeof q[*n]);
    *out = &q[(*n)++];
    return BITNET_OK;
}
static int dupstr(char **d, size_t *dn, const char *s) {
    size_t n = strlen(s);
    *d = malloc(n + 1);
    if (!*d) return 0;
    memcpy(*d, s, n + 1); *dn = n; return 1;
}

typedef bitnet_status (*step_fn)(bitnet_tokenizer *t, const cJSON *n, const char *type, const char *path);
/* One of the three pipelines: its JSON name, the list key of its Sequence, its step parser. */
typedef struct { const char *what, *list; step_fn step; int decoder; } pipe_kind;

/* Pipeline object n (absent or null: nothing) of kind k into t: a typed step, or a Sequence
 * whose elements are parsed in order (nested Sequences allowed). A decoder that is present sets
 * t->has_decoder. */
static bitnet_status parse_pipe(bitnet_tokenizer *t, const cJSON *n, const pipe_kind *k, const char *path) {
    if (!n || cJSON_IsNull(n)) return BITNET_OK;
    const char *type = jstr(n, "type");
    if (!type) return bn_err(BITNET_ERR_FORMAT, "%s: %s without a type", path, k->what);
    if (k->decoder) t->has_decoder = 1;
    if (!strcmp(type, "Sequence")) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, k->list), *x;
        if (!cJSON_IsArray(l)) return bn_err(BITNET_ERR_FORMAT, "%s: %s Sequence without a %s list", path, k->what, k->list);
        cJSON_ArrayForEach(x, l) { bitnet_status s = parse_pipe(t, x, k, path); if (s) return s; }
        return BITNET_OK;
    }
    return k->step(t, n, type, path);
}

/* pattern: {"String": "..."} or {"Regex": "..."}; *is_regex set accordingly. */
static const char *pattern_of(const cJSON *o, int *is_regex) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *s;
    if ((s = jstr(p, "String"))) { *is_regex = 0; return s; }
    if ((s = jstr(p, "Regex"))) { *is_regex = 1; return s; }
    return NULL;
}

/* One normalizer step n of type `type` (not Sequence) appended to t. */
static bitnet_status norm_step(bitnet_tokenizer *t, const cJSON *n, const char *type, const char *path) {
    bn_tok_step *st; bitnet_status s;
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return bn_err(BITNET_ERR_FORMAT, "%s: Prepend normalizer without 'prepend'", path);
        if ((s = add_step(&t->norm, &t->n_norm, &st, path))) return s;
        st->kind = BN_NM_PREPEND;
        if (!dupstr(&st->a, &st->alen, p)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        return BITNET_OK;
    }
    if (!strcmp(type, "Replace")) {
        int rx = 0; const char *p = pattern_of(n, &rx), *c = jstr(n, "content");
        if (!p || !c) return bn_err(BITNET_ERR_FORMAT, "%s: Replace normalizer needs a pattern and a content", path);
        if (rx) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: normalizer Replace with a Regex pattern is not supported", path);
        if ((s = add_step(&t->norm, &t->n_norm, &st, path))) return s;
        st->kind = BN_NM_REPLACE;
        if (!dupstr(&st->a, &st->alen, p) || !dupstr(&st->b, &st->blen, c)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        return BITNET_OK;
    }
    return bn_err(BITNET_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (only Prepend, Replace, Sequence)", path, type);
}

static int prepend_scheme(const cJSON *o) {
    const char *ps = jstr(o, "prepend_scheme");
    if (ps) return !strcmp(ps, "never") ? BN_PREPEND_NEVER : !strcmp(ps, "first") ? BN_PREPEND_FIRST : BN_PREPEND_ALWAYS;
    return jbool(o, "add_prefix_space", 1) ? BN_PREPEND_ALWAYS : BN_PREPEND_NEVER;
}

/* One pre_tokenizer step n of type `type` (not Sequence) appended to t. */
static bitnet_status pre_step(bitnet_tokenizer *t, const cJSON *n, const char *type, const char *path) {
    bn_tok_step *st; bitnet_status s;
    if (!strcmp(type, "Split")) {
        int rx = 0; const char *p = pattern_of(n, &rx), *b = jstr(n, "behavior");
        if (!p || !b) return bn_err(BITNET_ERR_FORMAT, "%s: Split pre-tokenizer needs a pattern and a behavior", path);
        int beh;
        if (!strcmp(b, "Isolated")) beh = BN_SPLIT_ISOLATED;
        else if (!strcmp(b, "Removed")) beh = BN_SPLIT_REMOVED;
        else if (!strcmp(b, "MergedWithPrevious")) beh = BN_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) beh = BN_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) beh = BN_SPLIT_CONTIGUOUS;
        else return bn_err(BITNET_ERR_UNSUPPORTED, "%s: Split behavior '%s' is not supported", path, b);
        if ((s = add_step(&t->pre, &t->n_pre, &st, path))) return s;
        st->kind = BN_PT_SPLIT; st->behavior = beh; st->invert = jbool(n, "invert", 0);
        if (rx) return bn_tok_compile_regex(p, strlen(p), &st->re, path);
        if (!*p) return bn_err(BITNET_ERR_FORMAT, "%s: Split with an empty String pattern", path);
        if (!dupstr(&st->a, &st->alen, p)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        return BITNET_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        if ((s = add_step(&t->pre, &t->n_pre, &st, path))) return s;
        st->kind = BN_PT_BYTELEVEL;
        st->add_prefix_space = jbool(n, "add_prefix_space", 1);
        t->byte_level = 1;
        if (jbool(n, "use_regex", 1)) return bn_tok_compile_regex(GPT2_REGEX, strlen(GPT2_REGEX), &st->re, path);
        return BITNET_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *r = jstr(n, "replacement");
        if (!r) r = "\xE2\x96\x81";
        if (!*r) return bn_err(BITNET_ERR_FORMAT, "%s: Metaspace with an empty replacement", path);
        if ((s = add_step(&t->pre, &t->n_pre, &st, path))) return s;
        st->kind = BN_PT_METASPACE;
        st->prepend_scheme = prepend_scheme(n);
        st->split = jbool(n, "split", 1);
        if (!dupstr(&st->a, &st->alen, r)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        return BITNET_OK;
    }
    return bn_err(BITNET_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported (only Split, ByteLevel, Metaspace, Sequence)", path, type);
}

/* One decoder step n of type `type` (not Sequence) appended to t. */
static bitnet_status dec_step(bitnet_tokenizer *t, const cJSON *n, const char *type, const char *path) {
    bn_tok_step *st; bitnet_status s;
    int kind = !strcmp(type, "ByteLevel") ? BN_DEC_BYTELEVEL : !strcmp(type, "Replace") ? BN_DEC_REPLACE
             : !strcmp(type, "ByteFallback") ? BN_DEC_BYTEFALLBACK : !strcmp(type, "Fuse") ? BN_DEC_FUSE
             : !strcmp(type, "Strip") ? BN_DEC_STRIP : !strcmp(type, "Metaspace") ? BN_DEC_METASPACE : 0;
    if (!kind) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: decoder '%s' is not supported (only ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)", path, type);
    if ((s = add_step(&t->decs, &t->n_decs, &st, path))) return s;
    st->kind = kind;
    if (kind == BN_DEC_REPLACE) {
        int rx = 0; const char *p = pattern_of(n, &rx), *c = jstr(n, "content");
        if (!p || !c) return bn_err(BITNET_ERR_FORMAT, "%s: Replace decoder needs a pattern and a content", path);
        if (rx) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: decoder Replace with a Regex pattern is not supported", path);
        if (!dupstr(&st->a, &st->alen, p) || !dupstr(&st->b, &st->blen, c)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    } else if (kind == BN_DEC_STRIP) {
        const char *c = jstr(n, "content");
        if (!c || !*c) return bn_err(BITNET_ERR_FORMAT, "%s: Strip decoder needs a content character", path);
        if (!dupstr(&st->a, &st->alen, c)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        st->start = jint(n, "start", 0); st->stop = jint(n, "stop", 0);
        if (st->start < 0 || st->stop < 0) return bn_err(BITNET_ERR_FORMAT, "%s: Strip decoder with a negative count", path);
    } else if (kind == BN_DEC_METASPACE) {
        const char *r = jstr(n, "replacement");
        if (!r) r = "\xE2\x96\x81";
        if (!*r) return bn_err(BITNET_ERR_FORMAT, "%s: Metaspace decoder with an empty replacement", path);
        if (!dupstr(&st->a, &st->alen, r)) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        st->prepend_scheme = prepend_scheme(n);
    }
    return BITNET_OK;
}

/* BOS from a TemplateProcessing post-processor: the first special token of "single" of the first
 * template that starts with one (-1 if it names no token; -2 if there is no such template; only
 * that one template is resolved, so a long processor list costs one vocabulary scan at most). */
static int template_bos(const bitnet_tokenizer *t, const cJSON *pp) {
    if (!pp) return -2;
    const char *type = jstr(pp, "type");
    if (!type) return -2;
    if (!strcmp(type, "Sequence")) {
        const cJSON *x, *l = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        cJSON_ArrayForEach(x, l) { int b = template_bos(t, x); if (b != -2) return b; }
        return -2;
    }
    if (strcmp(type, "TemplateProcessing")) return -2;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *first = cJSON_GetArrayItem(single, 0);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    const char *name = jstr(sp, "id");
    if (!name) return -2;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pp, "special_tokens"), name);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(st, "ids");
    const cJSON *id0 = cJSON_GetArrayItem(ids, 0);
    if (cJSON_IsNumber(id0) && id0->valuedouble >= 0 && id0->valuedouble < t->n_vocab) return (int)id0->valuedouble;
    /* by name (the text map of bitnet_tokenizer_token_id is built after loading): added tokens, then vocab */
    size_t n = strlen(name);
    for (int i = 0; i < t->n_added; i++) if (t->added[i].len == n && !memcmp(t->added[i].text, name, n)) return t->added[i].id;
    for (int id = 0; id < t->n_vocab; id++) if (t->text[id] && t->tlen[id] == n && !memcmp(t->text[id], name, n)) return id;
    return -1;
}

static int json_id(const cJSON *v, int *id) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < 16777216.0) || d != floor(d)) return 0;
    *id = (int)d; return 1;
}

/* Key form of a token text (raw bytes for byte-level vocabularies); NULL key if unreachable. */
static bitnet_status set_key(bitnet_tokenizer *t, int id, char *scratch, const char *path) {
    if (!t->byte_level) { t->key[id] = t->text[id]; t->klen[id] = t->tlen[id]; return BITNET_OK; }
    long k = bn_bytelevel_to_bytes(t->text[id], t->tlen[id], scratch);
    if (k < 0) return BITNET_OK;
    if (!(t->key[id] = bn_tok_strdup(t, scratch, (size_t)k))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    t->klen[id] = (uint32_t)k;
    return BITNET_OK;
}

/* Model id of a merge part or the unk token (its text), or -1. scratch holds cap bytes; a text
 * longer than that cannot be a vocabulary token (every key is at most maxlen bytes, and a text of
 * n bytes has at least n/2 byte-level characters, cap >= 2 * maxlen), so it is never converted. */
static int32_t part_id(const bitnet_tokenizer *t, const char *s, size_t n, char *scratch, size_t cap) {
    if (!t->byte_level) return bn_tok_key_lookup(t, s, n);
    if (n > cap) return -1;
    long k = bn_bytelevel_to_bytes(s, n, scratch);
    return k < 0 ? -1 : bn_tok_key_lookup(t, scratch, (size_t)k);
}

/* The BPE model object's options that the tokenizer does not implement are refused; the
 * supported flags are copied into t. */
static bitnet_status check_model(bitnet_tokenizer *t, const cJSON *model, const char *path) {
    const char *mtype = jstr(model, "type");
    if (mtype && strcmp(mtype, "BPE")) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", path, mtype);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return bn_err(BITNET_ERR_FORMAT, "%s: model.vocab is missing or not an object", path);
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges)) return bn_err(BITNET_ERR_FORMAT, "%s: model.merges is not a list", path);
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dr) && dr->valuedouble > 0) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    const char *csp = jstr(model, "continuing_subword_prefix"), *ews = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (ews && *ews)) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", path);
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    return BITNET_OK;
}

/* The vocabulary of t from model.vocab and added_tokens (ids, texts, keys, key map). On success
 * *scratch (the caller frees it, also on failure) holds *scap bytes for part_id. */
static bitnet_status load_vocab(bitnet_tokenizer *t, const cJSON *vocab, const cJSON *added, const char *path,
                                char **scratch, size_t *scap) {
    bitnet_status s;
    /* sizes */
    int maxid = -1, id;
    size_t maxlen = 16;
    const cJSON *x;
    cJSON_ArrayForEach(x, vocab) {
        if (!json_id(x, &id)) return bn_err(BITNET_ERR_FORMAT, "%s: vocab entry '%.40s' has no valid id", path, x->string ? x->string : "");
        if (id > maxid) maxid = id;
        size_t l = strlen(x->string); if (l > maxlen) maxlen = l;
    }
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) return bn_err(BITNET_ERR_FORMAT, "%s: added_tokens is not a list", path);
    int nadd = cJSON_GetArraySize(added);
    cJSON_ArrayForEach(x, added) {
        const char *c = jstr(x, "content");
        if (!json_id(cJSON_GetObjectItemCaseSensitive(x, "id"), &id) || !c) return bn_err(BITNET_ERR_FORMAT, "%s: an added token lacks a valid id or content", path);
        if (id > maxid) maxid = id;
    }
    if (maxid < 0) return bn_err(BITNET_ERR_FORMAT, "%s: empty vocabulary", path);
    if ((s = bn_tok_alloc_vocab(t, maxid + 1))) return s;
    *scap = maxlen * 4 + 16; /* set_key writes at most tlen <= maxlen bytes */
    if (!(*scratch = malloc(*scap))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(x, vocab) {
        json_id(x, &id);
        if (t->text[id]) return bn_err(BITNET_ERR_FORMAT, "%s: id %d is used by two vocab entries", path, id);
        size_t l = strlen(x->string);
        if (!(t->text[id] = bn_tok_strdup(t, x->string, l))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        t->tlen[id] = (uint32_t)l;
        if ((s = set_key(t, id, *scratch, path))) return s;
    }
    if (nadd > 0 && !(t->added = calloc((size_t)nadd, sizeof *t->added))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(x, added) {
        const char *c = jstr(x, "content");
        json_id(cJSON_GetObjectItemCaseSensitive(x, "id"), &id);
        size_t l = strlen(c);
        bn_added_token *a = &t->added[t->n_added++];
        if (!(a->text = bn_tok_strdup(t, c, l))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        a->len = l; a->id = id;
        a->special = jbool(x, "special", 0); a->lstrip = jbool(x, "lstrip", 0); a->rstrip = jbool(x, "rstrip", 0);
        a->single_word = jbool(x, "single_word", 0); a->normalized = jbool(x, "normalized", 0);
        if (!t->text[id]) { t->text[id] = a->text; t->tlen[id] = (uint32_t)l; }
    }
    return bn_tok_build_keymap(t, path);
}

/* The merge map of t from model.merges: "a b" strings or [a, b] pairs; rank = position. Every
 * part and the merged token must be in the vocabulary. scratch: scap bytes (load_vocab). */
static bitnet_status load_merges(bitnet_tokenizer *t, const cJSON *merges, char *scratch, size_t scap, const char *path) {
    bitnet_status s;
    int nm = cJSON_GetArraySize(merges);
    if ((s = bn_mergemap_init(&t->merges, (size_t)(nm > 0 ? nm : 0)))) return s;
    uint32_t rank = 0;
    char *cat = NULL; size_t catcap = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, merges) {
        const char *a, *b; size_t an, bnn;
        if (cJSON_IsString(x)) {
            a = x->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) { s = bn_err(BITNET_ERR_FORMAT, "%s: merge %u '%.60s' is not two tokens separated by one space", path, rank, a); break; }
            an = (size_t)(sp - a); b = sp + 1; bnn = strlen(b);
        } else if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2 && cJSON_IsString(x->child) && cJSON_IsString(x->child->next)) {
            a = x->child->valuestring; an = strlen(a); b = x->child->next->valuestring; bnn = strlen(b);
        } else { s = bn_err(BITNET_ERR_FORMAT, "%s: merge %u is neither \"a b\" nor [a, b]", path, rank); break; }
        if (an + bnn + 1 > catcap) {
            catcap = (an + bnn + 1) * 2;
            char *q = realloc(cat, catcap * 2);
            if (!q) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); break; }
            cat = q;
        }
        if (an + bnn + 1 > scap) { s = bn_err(BITNET_ERR_FORMAT, "%s: merge %u is longer than any token", path, rank); break; }
        int32_t ia = part_id(t, a, an, scratch, scap), ib = part_id(t, b, bnn, scratch, scap);
        memcpy(cat, a, an); memcpy(cat + an, b, bnn);
        int32_t ic = part_id(t, cat, an + bnn, scratch, scap);
        if (ia < 0 || ib < 0 || ic < 0) {
            s = bn_err(BITNET_ERR_FORMAT, "%s: merge %u ('%.*s' + '%.*s'): %s is not in the vocabulary", path, rank,
                       (int)(an > 40 ? 40 : an), a, (int)(bnn > 40 ? 40 : bnn), b, ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged token");
            break;
        }
        bn_mergemap_put(&t->merges, ia, ib, rank, ic);
        rank++;
    }
    free(cat);
    return s;
}

bitnet_status bn_tok_load_json(bitnet_tokenizer *t, const char *path) {
    char *buf = NULL; size_t len = 0;
    bitnet_status s = bn_read_file(path, &buf, &len);
    if (s) return s;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t at = e && e >= buf && e <= buf + len ? (size_t)(e - buf) : len;
        free(buf);
        return bn_err(BITNET_ERR_FORMAT, "%s: not valid JSON (error near byte %zu of %zu)", path, at, len);
    }
    free(buf);
    char *scratch = NULL; size_t scap = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) { s = bn_err(BITNET_ERR_FORMAT, "%s: no \"model\" object", path); goto done; }
    if ((s = check_model(t, model, path))) goto done;
    static const pipe_kind NORM = {"normalizer", "normalizers", norm_step, 0}, PRE = {"pre_tokenizer", "pretokenizers", pre_step, 0},
                           DEC = {"decoder", "decoders", dec_step, 1};
    if ((s = parse_pipe(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &NORM, path))) goto done;
    if ((s = parse_pipe(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &PRE, path))) goto done;
    if ((s = parse_pipe(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), &DEC, path))) goto done;
    if ((s = load_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), cJSON_GetObjectItemCaseSensitive(root, "added_tokens"),
                        path, &scratch, &scap))) goto done;
    if ((s = load_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), scratch, scap, path))) goto done;
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        t->unk_id = part_id(t, unk, strlen(unk), scratch, scap);
        if (t->unk_id < 0) for (int i = 0; i < t->n_added; i++) if (!strcmp(t->added[i].text, unk)) t->unk_id = t->added[i].id;
    }
    t->bos = template_bos(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    if (t->bos < 0) t->bos = -1;
done:
    free(scratch);
    cJSON_Delete(root);
    return s;
}
