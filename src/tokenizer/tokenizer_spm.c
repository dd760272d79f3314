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

typedef bn_sp_piece sp_piece;

static int cmp_score_desc(const void *a, const void *b, void *ctx) {
    const sp_piece *p = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (p[x].score != p[y].score) return p[x].score > p[y].score ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int utf8_len1(unsigned char c) { return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

typedef bn_sp_model sp_model;

/* One SentencePiece message (field 1) appended to m->pc after its checks. */
static bitnet_status parse_piece(pb_rd q, sp_model *m, const char *path) {
    sp_piece p = {"", 0, 0.0f, SP_NORMAL};
    pb_rd qs; uint32_t f, wt; uint64_t v;
    size_t np = m->np;
    while (q.p < q.end) {
        if (!pb_next(&q, &f, &wt, &v, &qs)) return bn_err(BITNET_ERR_FORMAT, "%s: malformed piece %zu", path, np);
        if (f == 1 && wt == 2) { p.s = (const char *)qs.p; p.n = (uint32_t)v; }
        else if (f == 2 && wt == 5) { uint32_t u = (uint32_t)v; memcpy(&p.score, &u, 4); }
        else if (f == 3 && wt == 0) p.type = (int)v;
    }
    if (p.type < 1 || p.type > 6) return bn_err(BITNET_ERR_FORMAT, "%s: piece %zu has unknown type %d", path, np, p.type);
    if (!p.n) return bn_err(BITNET_ERR_FORMAT, "%s: piece %zu is empty", path, np);
    if (p.score != p.score) return bn_err(BITNET_ERR_FORMAT, "%s: piece %zu has a NaN score", path, np);
    if (np == m->cp) {
        m->cp = m->cp ? m->cp * 2 : 1024;
        sp_piece *q2 = realloc(m->pc, m->cp * sizeof *q2);
        if (!q2) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        m->pc = q2;
    }
    if (np >= (1u << 24)) return bn_err(BITNET_ERR_FORMAT, "%s: too many pieces", path);
    m->pc[m->np++] = p;
    return BITNET_OK;
}

/* TrainerSpec (field 2): model type, byte fallback, whitespace suffix, special ids. */
static bitnet_status parse_trainer(pb_rd q, sp_model *m, const char *path) {
    pb_rd qs; uint32_t f, wt; uint64_t v;
    while (q.p < q.end) {
        if (!pb_next(&q, &f, &wt, &v, &qs)) return bn_err(BITNET_ERR_FORMAT, "%s: malformed trainer_spec", path);
        if (wt != 0) continue;
        if (f == 3) m->model_type = (int)v;
        else if (f == 35) m->byte_fallback = v != 0;
        else if (f == 24) m->ws_suffix = v != 0;
        else if (f == 40) m->unk_id = (int32_t)v;
        else if (f == 41) m->bos_id = (int32_t)v;
        else if (f == 42) m->eos_id = (int32_t)v;
    }
    return BITNET_OK;
}

/* NormalizerSpec (field 3): name, charsmap size, the three whitespace flags. */
static bitnet_status parse_normalizer(pb_rd q, sp_model *m, const char *path) {
    pb_rd qs; uint32_t f, wt; uint64_t v;
    while (q.p < q.end) {
        if (!pb_next(&q, &f, &wt, &v, &qs)) return bn_err(BITNET_ERR_FORMAT, "%s: malformed normalizer_spec", path);
        if (f == 1 && wt == 2) { size_t n = v < sizeof m->nname - 1 ? (size_t)v : sizeof m->nname - 1; memcpy(m->nname, qs.p, n); m->nname[n] = 0; }
        else if (f == 2 && wt == 2) m->charsmap = (size_t)v;
        else if (f == 3 && wt == 0) m->dummy = v != 0;
        else if (f == 4 && wt == 0) m->rmws = v != 0;
        else if (f == 5 && wt == 0) m->escws = v != 0;
    }
    return BITNET_OK;
}

/* Parse the whole ModelProto in buf[len] into m (m->pc is the caller's to free), then refuse
 * what the tokenizer does not implement. */
static bitnet_status parse_model(const char *buf, size_t len, sp_model *m, const char *path) {
    pb_rd r = {(const uint8_t *)buf, (const uint8_t *)buf + len}, sub;
    uint32_t f, wt; uint64_t v;
    bitnet_status s = BITNET_OK;
    while (r.p < r.end && !s) {
        if (!pb_next(&r, &f, &wt, &v, &sub)) return bn_err(BITNET_ERR_FORMAT, "%s: malformed or truncated protobuf at byte %zu", path, (size_t)(r.p - (const uint8_t *)buf));
        if (f == 1 && wt == 2) s = parse_piece(sub, m, path);
        else if (f == 2 && wt == 2) s = parse_trainer(sub, m, path);
        else if (f == 3 && wt == 2) s = parse_normalizer(sub, m, path);
    }
    if (s) return s;
    if (!m->np) return bn_err(BITNET_ERR_FORMAT, "%s: no pieces (not a SentencePiece model?)", path);
    if (m->model_type != 2) {
        static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece model type %s is not supported (only BPE)", path,
                      m->model_type >= 1 && m->model_type <= 4 ? names[m->model_type] : "unknown");
    }
    if (m->charsmap) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece normalizer '%s' with a precompiled charsmap is not supported (only identity)", path, m->nname);
    if (m->ws_suffix) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: SentencePiece treat_whitespace_as_suffix is not supported", path);
    return BITNET_OK;
}

bitnet_status bn_tok_spm_read(const char *buf, size_t len, const char *path, bn_sp_model *m) {
    *m = (sp_model){.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .dummy = 1, .rmws = 1, .escws = 1};  /* protobuf defaults */
    bitnet_status s = parse_model(buf, len, m, path);
    if (s) { free(m->pc); m->pc = NULL; m->np = 0; }
    return s;
}

/* The vocabulary (text and key of each piece) and the user-defined symbols of t. */
static bitnet_status set_vocab(bitnet_tokenizer *t, const sp_model *m, const char *path) {
    const sp_piece *pc = m->pc; size_t np = m->np;
    bitnet_status s;
    if ((s = bn_tok_alloc_vocab(t, (int)np))) return s;
    size_t nuser = 0;
    for (size_t i = 0; i < np; i++) {
        if (!(t->text[i] = bn_tok_strdup(t, pc[i].s, pc[i].n))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        t->tlen[i] = pc[i].n;
        t->key[i] = t->text[i]; t->klen[i] = pc[i].n;
        if (pc[i].type == SP_USER) nuser++;
    }
    if ((s = bn_tok_build_keymap(t, path))) return s;
    if (nuser) {
        if (!(t->usym = calloc(nuser, sizeof *t->usym)) || !(t->added = calloc(nuser, sizeof *t->added))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < np; i++) if (pc[i].type == SP_USER) {
            bn_added_token *a = &t->added[t->n_added++]; /* kept for token_id(); not matched as added tokens */
            a->text = t->text[i]; a->len = t->tlen[i]; a->id = (int32_t)i; a->special = 0;
            t->usym[t->n_usym++] = a;
        }
        t->n_added = 0; /* user symbols are matched inside the model (atomic), not before it */
    }
    return BITNET_OK;
}

/* The merge map: every split of a normal piece into two pieces merges at the piece's rank. */
static bitnet_status set_merges(bitnet_tokenizer *t, const sp_model *m, const char *path) {
    const sp_piece *pc = m->pc; size_t np = m->np;
    bitnet_status s = BITNET_OK;
    /* merge ranks from scores: equal scores share a rank (ties go to the leftmost pair) */
    int *order = malloc(np * sizeof *order); uint32_t *rank = malloc(np * sizeof *rank);
    if (!order || !rank) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < np; i++) order[i] = (int)i;
    qsort_r(order, np, sizeof *order, cmp_score_desc, (void *)pc);
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
done:
    free(order); free(rank);
    return s;
}

/* Special ids, and the pipeline: sentencepiece normalizer; HF's LLaMA decoder (Replace,
 * ByteFallback, Fuse, Strip). */
static bitnet_status set_pipeline(bitnet_tokenizer *t, const sp_model *m, const char *path) {
    size_t np = m->np;
    t->spm = 1;
    t->byte_fallback = m->byte_fallback;
    t->fuse_unk = 1;
    t->unk_id = -1;
    if (m->unk_id >= 0 && (size_t)m->unk_id < np) t->unk_id = (int32_t)m->unk_id;
    else for (size_t i = 0; i < np; i++) if (m->pc[i].type == SP_UNKNOWN) { t->unk_id = (int32_t)i; break; }
    t->bos = m->bos_id >= 0 && (size_t)m->bos_id < np ? (int)m->bos_id : -1;
    t->eos = m->eos_id >= 0 && (size_t)m->eos_id < np ? (int)m->eos_id : -1;
    if (!(t->norm = calloc(1, sizeof *t->norm)) || !(t->decs = calloc(4, sizeof *t->decs))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    t->n_norm = 1;
    t->norm[0].kind = BN_NM_SPM; t->norm[0].spm_dummy_prefix = m->dummy; t->norm[0].spm_remove_ws = m->rmws; t->norm[0].spm_escape_ws = m->escws;
    t->n_decs = 4; t->has_decoder = 1;
    t->decs[0].kind = BN_DEC_REPLACE; t->decs[1].kind = BN_DEC_BYTEFALLBACK; t->decs[2].kind = BN_DEC_FUSE; t->decs[3].kind = BN_DEC_STRIP;
    t->decs[0].a = strdup("\xE2\x96\x81"); t->decs[0].alen = 3; t->decs[0].b = strdup(" "); t->decs[0].blen = 1;
    t->decs[3].a = strdup(" "); t->decs[3].alen = 1; t->decs[3].start = 1; t->decs[3].stop = 0;
    if (!t->decs[0].a || !t->decs[0].b || !t->decs[3].a) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    return BITNET_OK;
}

bitnet_status bn_tok_load_spm(bitnet_tokenizer *t, const char *path) {
    char *buf = NULL; size_t len = 0;
    bitnet_status s = bn_read_file(path, &buf, &len);
    if (s) return s;
    s = bn_tok_parse_spm(t, buf, len, path);
    free(buf);
    return s;
}

bitnet_status bn_tok_parse_spm(bitnet_tokenizer *t, const char *buf, size_t len, const char *path) {
    sp_model m = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .dummy = 1, .rmws = 1, .escws = 1};
    bitnet_status s;
    if (!(s = parse_model(buf, len, &m, path)) && !(s = set_vocab(t, &m, path)) && !(s = set_merges(t, &m, path)))
        s = set_pipeline(t, &m, path);
    free(m.pc);
    return s;
}
