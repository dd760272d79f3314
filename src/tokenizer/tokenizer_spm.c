/* tokenizer_spm.c — loader of SentencePiece tokenizer.model files (BPE, e.g. LLaMA / 1bitLLM) by
 * reading their protobuf (ModelProto) directly, into the internal tokenizer, with sentencepiece's
 * own encoding rules: normalizer (dummy prefix, whitespace escaping, optional extra-whitespace
 * removal), whole-text BPE where the pair forming the highest-scoring piece merges first
 * (leftmost on ties), user-defined symbols atomic, byte fallback for unknown characters.
 * What it is not: a Unigram/WORD/CHAR model loader, nor a normalizer with a precompiled charsmap
 * (NFKC); those fail with BITNET_ERR_UNSUPPORTED. The reader checks every length and tag, so
 * truncated or hostile files give BITNET_ERR_FORMAT. */
#include "tokenizer/tokenizer_internal.h"

typedef struct { const uint8_t *p, *end; } pb_rd;

static int pb_varint(pb_rd *r, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (r->p >= r->end) return 0;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) { *v = x; return 1; }
    }
    return 0;
}
/* Next field: tag and wire type; for wire type 2 also the payload (sub), 0 its value, 5 fixed32. */
static int pb_next(pb_rd *r, uint32_t *field, uint32_t *wt, uint64_t *val, pb_rd *sub) {
    uint64_t tag;
    if (!pb_varint(r, &tag)) return 0;
    *field = (uint32_t)(tag >> 3); *wt = (uint32_t)(tag & 7);
    if (*field == 0) return 0;
    switch (*wt) {
    case 0: return pb_varint(r, val);
    case 1: if (r->end - r->p < 8) return 0; memcpy(val, r->p, 8); r->p += 8; return 1;
    case 5: { if (r->end - r->p < 4) return 0; uint32_t u; memcpy(&u, r->p, 4); r->p += 4; *val = u; return 1; }
    case 2: {
        uint64_t n;
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return 0;
        sub->p = r->p; sub->end = r->p + n; r->p += n; *val = n; return 1;
    }
    default: return 0; /* groups (3, 4) and reserved types */
    }
}

enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER = 4, SP_UNUSED = 5, SP_BYTE = 6 };

typedef struct { const char *s; uint32_t n; float score; int type; } sp_piece;

static int cmp_score_desc(const void *a, const void *b, void *ctx) {
    const sp_piece *p = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (p[x].score != p[y].score) return p[x].score > p[y].score ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int utf8_len1(unsigned char c) { return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

bitnet_status bn_tok_load_spm(bitnet_tokenizer *t, const char *path) {
    char *buf = NULL; size_t len = 0;
    bitnet_status s = bn_read_file(path, &buf, &len);
    if (s) return s;
    s = bn_tok_parse_spm(t, buf, len, path);
    free(buf);
    return s;
}

bitnet_status bn_tok_parse_spm(bitnet_tokenizer *t, const char *buf, size_t len, const char *path) {
    bitnet_status s = BITNET_OK;
    pb_rd r = {(const uint8_t *)buf, (const uint8_t *)buf + len}, sub;
    uint32_t f, wt; uint64_t v;
    sp_piece *pc = NULL; size_t np = 0, cp = 0;
    int *order = NULL; uint32_t *rank = NULL;
    int model_type = 1, byte_fallback = 0, ws_suffix = 0;
    int64_t unk_id = 0, bos_id = 1, eos_id = 2;
    int dummy = 1, rmws = 1, escws = 1;
    size_t charsmap = 0;
    char nname[64] = "";
    while (r.p < r.end) {
        if (!pb_next(&r, &f, &wt, &v, &sub)) { s = bn_err(BITNET_ERR_FORMAT, "%s: malformed or truncated protobuf at byte %zu", path, (size_t)(r.p - (const uint8_t *)buf)); goto done; }
        if (f == 1 && wt == 2) { /* SentencePiece */
            sp_piece p = {"", 0, 0.0f, SP_NORMAL};
            pb_rd q = sub, qs;
            while (q.p < q.end) {
                if (!pb_next(&q, &f, &wt, &v, &qs)) { s = bn_err(BITNET_ERR_FORMAT, "%s: malformed piece %zu", path, np); goto done; }
                if (f == 1 && wt == 2) { p.s = (const char *)qs.p; p.n = (uint32_t)v; }
                else if (f == 2 && wt == 5) { uint32_t u = (uint32_t)v; memcpy(&p.score, &u, 4); }
                else if (f == 3 && wt == 0) p.type = (int)v;
            }
            if (p.type < 1 || p.type > 6) { s = bn_err(BITNET_ERR_FORMAT, "%s: piece %zu has unknown type %d", path, np, p.type); goto done; }
            if (!p.n) { s = bn_err(BITNET_ERR_FORMAT, "%s: piece %zu is empty", path, np); goto done; }
            if (p.score != p.score) { s = bn_err(BITNET_ERR_FORMAT, "%s: piece %zu has a NaN score", path, np); goto done; }
            if (np == cp) {
                cp = cp ? cp * 2 : 1024;
                sp_piece *q2 = realloc(pc, cp * sizeof *q2);
                if (!q2) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
                pc = q2;
            }
            if (np >= (1u << 24)) { s = bn_err(BITNET_ERR_FORMAT, "%s: too many pieces", path); goto done; }
            pc[np++] = p;
        } else if (f == 2 && wt == 2) { /* TrainerSpec */
            pb_rd q = sub, qs;
            while (q.p < q.end) {
                if (!pb_next(&q, &f, &wt, &v, &qs)) { s = bn_err(BITNET_ERR_FORMAT, "%s: malformed trainer_spec", path); goto done; }
                if (wt != 0) continue;
                if (f == 3) model_type = (int)v;
                else if (f == 35) byte_fallback = v != 0;
                else if (f == 24) ws_suffix = v != 0;
                else if (f == 40) unk_id = (int32_t)v;
                else if (f == 41) bos_id = (int32_t)v;
                else if (f == 42) eos_id = (int32_t)v;
            }
        } else if (f == 3 && wt == 2) { /* NormalizerSpec */
            pb_rd q = sub, qs;
            while (q.p < q.end) {
                if (!pb_next(&q, &f, &wt, &v, &qs)) { s = bn_err(BITNET_ERR_FORMAT, "%s: malformed normalizer_spec", path); goto done; }
                if (f == 1 && wt == 2) { size_t n = v < sizeof nname - 1 ? (size_t)v : sizeof nname - 1; memcpy(nname, qs.p, n); nname[n] = 0; }
                else if (f == 2 && wt == 2) charsmap = (size_t)v;
                else if (f == 3 && wt == 0) dummy = v != 0;
                else if (f == 4 && wt == 0) rmws = v != 0;
                else if (f == 5 && wt == 0) escws = v != 0;
            }
        }
    }
    if (!np) { s = bn_err(BITNET_ERR_FORMAT, "%s: no pieces (not a SentencePiece model?)", path); goto done; }
    if (model_type != 2) {
        static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece model type %s is not supported (only BPE)", path,
                   model_type >= 1 && model_type <= 4 ? names[model_type] : "unknown");
        goto done;
    }
    if (charsmap) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece normalizer '%s' with a precompiled charsmap is not supported (only identity)", path, nname); goto done; }
    if (ws_suffix) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece treat_whitespace_as_suffix is not supported", path); goto done; }

    if ((s = bn_tok_alloc_vocab(t, (int)np))) goto done;
    size_t nuser = 0;
    for (size_t i = 0; i < np; i++) {
        if (!(t->text[i] = bn_tok_strdup(t, pc[i].s, pc[i].n))) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
        t->tlen[i] = pc[i].n;
        t->key[i] = t->text[i]; t->klen[i] = pc[i].n;
        if (pc[i].type == SP_USER) nuser++;
    }
    if ((s = bn_tok_build_keymap(t, path))) goto done;
    if (nuser) {
        if (!(t->usym = calloc(nuser, sizeof *t->usym)) || !(t->added = calloc(nuser, sizeof *t->added))) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
        for (size_t i = 0; i < np; i++) if (pc[i].type == SP_USER) {
            bn_added_token *a = &t->added[t->n_added++]; /* kept for token_id(); not matched as added tokens */
            a->text = t->text[i]; a->len = t->tlen[i]; a->id = (int32_t)i; a->special = 0;
            t->usym[t->n_usym++] = a;
        }
        t->n_added = 0; /* user symbols are matched inside the model (atomic), not before it */
    }
    /* merge ranks from scores: equal scores share a rank (ties go to the leftmost pair) */
    order = malloc(np * sizeof *order); rank = malloc(np * sizeof *rank);
    if (!order || !rank) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < np; i++) order[i] = (int)i;
    qsort_r(order, np, sizeof *order, cmp_score_desc, pc);
    for (size_t i = 0, rk = 0; i < np; i++) {
        if (i && pc[order[i]].score != pc[order[i - 1]].score) rk++;
        rank[order[i]] = (uint32_t)rk;
    }
    size_t nmerge = 0;
    for (size_t i = 0; i < np; i++) if (pc[i].type == SP_NORMAL) nmerge += pc[i].n;
    if ((s = bn_mergemap_init(&t->merges, nmerge))) goto done;
    for (size_t i = 0; i < np; i++) {
        if (pc[i].type != SP_NORMAL) continue; /* only normal pieces are reachable by merging */
        const char *p = pc[i].s; uint32_t n = pc[i].n;
        for (uint32_t k = (uint32_t)utf8_len1((unsigned char)p[0]); k < n; k += (uint32_t)utf8_len1((unsigned char)p[k])) {
            int32_t a = bn_tok_key_lookup(t, p, k), b = bn_tok_key_lookup(t, p + k, n - k);
            if (a < 0 || b < 0) continue;
            if (pc[a].type == SP_USER || pc[b].type == SP_USER) continue; /* frozen */
            if ((pc[a].type == SP_UNUSED && pc[a].n > (uint32_t)utf8_len1((unsigned char)p[0])) ||
                (pc[b].type == SP_UNUSED && pc[b].n > (uint32_t)utf8_len1((unsigned char)p[k]))) continue;
            bn_mergemap_put(&t->merges, a, b, rank[i], (int32_t)i);
        }
    }
    t->spm = 1;
    t->byte_fallback = byte_fallback;
    t->fuse_unk = 1;
    t->unk_id = -1;
    if (unk_id >= 0 && (size_t)unk_id < np) t->unk_id = (int32_t)unk_id;
    else for (size_t i = 0; i < np; i++) if (pc[i].type == SP_UNKNOWN) { t->unk_id = (int32_t)i; break; }
    t->bos = bos_id >= 0 && (size_t)bos_id < np ? (int)bos_id : -1;
    t->eos = eos_id >= 0 && (size_t)eos_id < np ? (int)eos_id : -1;
    /* pipeline: sentencepiece normalizer; HF's LLaMA decoder (Replace, ByteFallback, Fuse, Strip) */
    if (!(t->norm = calloc(1, sizeof *t->norm)) || !(t->decs = calloc(4, sizeof *t->decs))) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
    t->n_norm = 1;
    t->norm[0].kind = BN_NM_SPM; t->norm[0].spm_dummy_prefix = dummy; t->norm[0].spm_remove_ws = rmws; t->norm[0].spm_escape_ws = escws;
    t->n_decs = 4; t->has_decoder = 1;
    t->decs[0].kind = BN_DEC_REPLACE; t->decs[1].kind = BN_DEC_BYTEFALLBACK; t->decs[2].kind = BN_DEC_FUSE; t->decs[3].kind = BN_DEC_STRIP;
    t->decs[0].a = strdup("\xE2\x96\x81"); t->decs[0].alen = 3; t->decs[0].b = strdup(" "); t->decs[0].blen = 1;
    t->decs[3].a = strdup(" "); t->decs[3].alen = 1; t->decs[3].start = 1; t->decs[3].stop = 0;
    if (!t->decs[0].a || !t->decs[0].b || !t->decs[3].a) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
done:
    free(pc); free(order); free(rank);
    return s;
}
