/* gguf_write.c — bitnet_convert / bitnet_convert_gguf to a .gguf file: a model folder (2B-4T
 * packed or master, 1bitLLM; through config.json + safetensors) or a GGUF file, written as a GGUF
 * v3 file whose BitLinear weights are TQ2_0, TQ1_0 (llama.cpp) or I2_S (bitnet.cpp, x86 layout),
 * exactly:
 *   TQ1_0 / TQ2_0: the ternary codes with d = 1 in every block and the tensor's scale in a
 *     1-element F32 "<name>.scale" (llama.cpp's bitnet per-tensor scale), so the file holds the
 *     scale in full float precision; a matrix whose rows are not a multiple of 256 (the TQ block)
 *     is written as F16 {-1,0,1} plus its .scale;
 *   I2_S: codes + f32 scale (all shapes whose element count is a multiple of 128);
 * norms as F32, token_embd / output in the source's float type (F32/F16/BF16; quantized GGUF
 * heads as F32) or the --head type (F32/F16/BF16/Q8_0/Q6_K/Q4_0, gguf_encode.c),
 * hyper-parameters under "bitnet-b1.58" (relu2) or "bitnet" (silu), and the tokenizer: from a
 * GGUF source its tokenizer.* metadata copied; from a folder a byte-level BPE tokenizer.json as
 * gpt2 metadata, else a SentencePiece tokenizer.model as llama metadata (tokens, scores,
 * token_type), and tokenizer_config.json's chat_template. Progress through the caller's
 * callback, one call per tensor. Written through a temp file and a rename.
 * Not: the HF folder writer (gguf_hf.c), TQ blocks with their own scales. */
#include "model/model.h"
#include "arch/arch.h"
#include "io/files.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "io/ternary.h"
#include "tokenizer/tokenizer_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

/* GGUF file in -> HF folder out (gguf_hf.c). */
bitnet_status bn_gguf_to_hf(const char *in, const char *out, const bitnet_convert_params *p);

typedef struct { uint8_t *b; size_t n, cap; int oom; } wbuf;
static void wput(wbuf *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t c = (w->n + n) * 2 + 4096;
        uint8_t *q = realloc(w->b, c);
        if (!q) { w->oom = 1; return; }
        w->b = q; w->cap = c;
    }
    memcpy(w->b + w->n, p, n); w->n += n;
}
static void w32(wbuf *w, uint32_t v) { wput(w, &v, 4); }
static void w64(wbuf *w, uint64_t v) { wput(w, &v, 8); }
static void wstr(wbuf *w, const char *s, size_t n) { w64(w, n); wput(w, s, n); }

typedef struct { char name[128]; uint32_t nd; uint64_t ne[2]; uint32_t type; uint8_t *data; size_t n; } otensor;
typedef struct { wbuf kv; uint64_t nkv; otensor *t; int nt, cap; } gwriter;

static void kv_str(gwriter *g, const char *k, const char *v) { wstr(&g->kv, k, strlen(k)); w32(&g->kv, BN_GV_STRING); wstr(&g->kv, v, strlen(v)); g->nkv++; }
static void kv_u32(gwriter *g, const char *k, uint32_t v) { wstr(&g->kv, k, strlen(k)); w32(&g->kv, BN_GV_U32); w32(&g->kv, v); g->nkv++; }
static void kv_f32(gwriter *g, const char *k, float v) { wstr(&g->kv, k, strlen(k)); w32(&g->kv, BN_GV_F32); wput(&g->kv, &v, 4); g->nkv++; }
/* A copy of an existing entry (arrays re-emit their element type and count). */
static void kv_copy(gwriter *g, const bn_gguf_kv *kv) {
    wstr(&g->kv, kv->key, strlen(kv->key)); w32(&g->kv, kv->type);
    if (kv->type == BN_GV_ARRAY) { w32(&g->kv, kv->arr_type); w64(&g->kv, kv->arr_n); }
    wput(&g->kv, kv->val, (size_t)kv->val_size);
    g->nkv++;
}
/* Add a tensor (takes data). ne in ggml order. */
static bitnet_status add_t(gwriter *g, const char *name, uint32_t nd, int64_t ne0, int64_t ne1, uint32_t type, uint8_t *data, size_t n) {
    if (g->nt == g->cap) {
        int c = g->cap ? 2 * g->cap : 64;
        otensor *q = realloc(g->t, (size_t)c * sizeof *q);
        if (!q) { free(data); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
        g->t = q; g->cap = c;
    }
    otensor *t = &g->t[g->nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd; t->ne[0] = (uint64_t)ne0; t->ne[1] = (uint64_t)ne1; t->type = type; t->data = data; t->n = n;
    return BITNET_OK;
}

/* ---- encoders (inverse of gguf_decode.c) ---- */
static void enc_tq2(const int8_t *q, int64_t n, uint8_t *o) {
    for (int64_t b = 0; b < n / 256; b++, q += 256, o += 66) {
        memset(o, 0, 64);
        for (int e = 0; e < 256; e++) o[32 * (e / 128) + e % 32] |= (uint8_t)((q[e] + 1) << (2 * ((e % 128) / 32)));
        o[64] = 0x00; o[65] = 0x3c;   /* d = 1.0 (fp16) */
    }
}
static uint8_t tq1_byte(const int8_t *q, int stride, int ntr) {  /* ntr trits, most significant first, padded to 5 */
    unsigned v = 0;
    for (int i = 0; i < 5; i++) v = v * 3 + (i < ntr ? (unsigned)(q[i * stride] + 1) : 0);
    return (uint8_t)((v * 256 + 242) / 243);
}
static void enc_tq1(const int8_t *q, int64_t n, uint8_t *o) {
    for (int64_t b = 0; b < n / 256; b++, q += 256, o += 54) {
        for (int m = 0; m < 32; m++) o[m] = tq1_byte(q + m, 32, 5);
        for (int m = 0; m < 16; m++) o[32 + m] = tq1_byte(q + 160 + m, 16, 5);
        for (int m = 0; m < 4; m++) o[48 + m] = tq1_byte(q + 240 + m, 4, 4);
        o[52] = 0x00; o[53] = 0x3c;
    }
}
static void enc_i2s(const int8_t *q, int64_t n, float scale, uint8_t *o) {
    memset(o, 0, (size_t)(n / 4) + 32);
    for (int64_t b = 0; b < n / 128; b++)
        for (int j = 0; j < 128; j++) o[b * 32 + j % 32] |= (uint8_t)((q[b * 128 + j] + 1) << (6 - 2 * (j / 32)));
    memcpy(o + n / 4, &scale, 4);
}

/* ---- sources ---- */
typedef struct { bn_config cfg; bn_st *st; bn_gguf *g; const void *map; size_t size; bn_src src; char *dir; } csrc;

static bitnet_status src_linear(csrc *s, bn_slot sl, int l, int rows, int cols, int8_t *q, float *scale) {
    char n[256];
    if (s->g) {
        bn_arch_tensor_name(BN_NAMES_GGUF, sl, l, n, sizeof n);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(s->g, n);
        n[strlen(n) - 7] = 0;
        bitnet_status st = bn_gguf_read_linear(s->g, n, rows, cols, BN_I2S_X86, q, scale);
        if (!st) bn_files_release(&s->src.f, s->map, s->size, t->data, t->nbytes);   /* read: its pages may go */
        return st;
    }
    bn_arch_tensor_name(bn_arch_naming(&s->cfg), sl, l, n, sizeof n);
    const bn_tensor *t = bn_st_find(s->st, n);
    if (!t) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", s->dir, n);
    if (t->dtype == BN_U8) {
        int64_t sh[2] = {rows / 4, cols};
        bitnet_status st = bn_st_get(s->st, n, 1u << BN_U8, 2, sh, &t);
        if (st) return st;
        char sn[300]; snprintf(sn, sizeof sn, "%s_scale", n);
        const bn_tensor *ts = bn_st_find(s->st, sn);
        if (!ts || ts->numel != 1 || !(BN_FLOAT_DTYPES & (1u << ts->dtype))) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' must be one float value", t->file, sn);
        float ws; bn_tensor_to_f32(ts, &ws, 0, 1);
        char what[400]; snprintf(what, sizeof what, "%s: '%s'", ts->file, sn);
        if ((st = bn_scale_multiplier(ws, s->cfg.linear_class, what, scale))) return st;
        if (bn_unpack_2b4t(t->data, rows, cols, q)) return bn_err(BITNET_ERR_FORMAT, "%s: '%s' holds the invalid ternary code 3", t->file, n);
        bn_st_release(s->st, t->data, t->nbytes);
        return BITNET_OK;
    }
    int64_t sh[2] = {rows, cols};
    float *f = malloc((size_t)rows * cols * sizeof *f);
    if (!f) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status st = bn_arch_read_f32(s->st, n, 2, sh, f);
    if (!st) *scale = bn_ternarize(f, (int64_t)rows * cols, q);
    if (!st) bn_st_release(s->st, t->data, t->nbytes);
    free(f);
    return st;
}

/* Float tensor of slot sl: values into *f (malloc'd) and the GGUF type to write it in. */
static bitnet_status src_float(csrc *s, bn_slot sl, int l, int64_t rows, int64_t cols, float **f, uint32_t *type) {
    char n[256];
    int64_t cnt = (rows ? rows : 1) * cols;
    if (!(*f = malloc((size_t)cnt * sizeof **f))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    *type = BN_GT_F32;
    if (s->g) {
        bn_arch_tensor_name(BN_NAMES_GGUF, sl, l, n, sizeof n);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(s->g, n);
        if (t && (t->type == BN_GT_F16 || t->type == BN_GT_BF16)) *type = t->type;
        n[strlen(n) - 7] = 0;
        bitnet_status st = bn_gguf_read_float(s->g, n, rows, cols, *f);
        if (!st) bn_files_release(&s->src.f, s->map, s->size, t->data, t->nbytes);
        return st;
    }
    bn_arch_tensor_name(bn_arch_naming(&s->cfg), sl, l, n, sizeof n);
    const bn_tensor *t = bn_st_find(s->st, n);
    if (t && t->dtype == BN_F16) *type = BN_GT_F16;
    if (t && t->dtype == BN_BF16) *type = BN_GT_BF16;
    int64_t sh[2] = {rows ? rows : cols, cols};
    bitnet_status st = bn_arch_read_f32(s->st, n, rows ? 2 : 1, rows ? sh : sh + 1, *f);
    if (!st) bn_st_release(s->st, t->data, t->nbytes);
    return st;
}

/* f[n] (innermost dimension ne0) encoded as type into a malloc'd *d of *nb bytes. */
static bitnet_status to_type(const float *f, int64_t n, int64_t ne0, uint32_t type, const char *name, uint8_t **d, size_t *nb) {
    *d = NULL;
    bitnet_status st = bn_gguf_type_nbytes(type, n, ne0, name, nb);
    if (st) return st;
    if (!(*d = malloc(*nb))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    if ((st = bn_gguf_encode_f32(type, f, n, ne0, name, *d))) { free(*d); *d = NULL; }
    return st;
}

static bitnet_status open_source(const char *in, csrc *s) {
    memset(s, 0, sizeof *s);
    size_t n = strlen(in);
    bitnet_status st;
    if (n > 5 && !strcmp(in + n - 5, ".gguf")) {
        const char *slash = strrchr(in, '/');
        s->dir = slash ? strndup(in, (size_t)(slash - in) + 1) : strdup(".");
        if (!s->dir) return bn_err(BITNET_ERR_NOMEM, "out of memory");
        s->src = bn_src_dir(s->dir);
        const char *name = slash ? slash + 1 : in;
        if ((st = bn_src_open(&s->src, name, &s->map, &s->size))) return st;
        if ((st = bn_gguf_parse(s->map, s->size, in, &s->g))) return st;
        return bn_gguf_config(s->g, &s->cfg);   /* the GGUF model loader's rules */
    }
    if (!bn_is_dir(in)) return bn_err(BITNET_ERR_IO, "%s: not a model folder or a .gguf file", in);
    if (!(s->dir = strdup(in))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    if ((st = bn_config_load(in, &s->cfg))) return st;
    return bn_st_open_dir(in, &s->st);
}
static void close_source(csrc *s) {
    bn_gguf_free(s->g);
    if (s->map) bn_files_close(&s->src.f, s->map, s->size);
    bn_st_free(s->st);
    free(s->dir);
}

static int cmp_rank(const void *a, const void *b, void *ctx) {
    const bn_mergemap *m = ctx;
    uint32_t x = m->rank[*(const uint32_t *)a], y = m->rank[*(const uint32_t *)b];
    return x < y ? -1 : x > y;
}
/* Start an array entry key of n elements of type et (the caller writes the elements). */
static void kv_arr(gwriter *g, const char *key, uint32_t et, uint64_t n) {
    wstr(&g->kv, key, strlen(key)); w32(&g->kv, BN_GV_ARRAY); w32(&g->kv, et); w64(&g->kv, n); g->nkv++;
}
static void kv_bool(gwriter *g, const char *k, int v) { uint8_t b = (uint8_t)!!v; wstr(&g->kv, k, strlen(k)); w32(&g->kv, BN_GV_BOOL); wput(&g->kv, &b, 1); g->nkv++; }

/* tokenizer.ggml.* (gpt2) from a byte-level BPE tokenizer t: tokens, token_type (added special
 * tokens 3, other added 4, holes "[PADn]" 5), merges in rank order, pre llama-bpe when the
 * tokenizer splits with a regex first and ignores merges (Llama 3), else gpt2; eot id.
 * *done = 0 (nothing written) when t is not such a tokenizer. */
static bitnet_status bpe_tokenizer(gwriter *g, const bitnet_tokenizer *t, int *done) {
    int llama3 = t->n_pre >= 2 && t->pre[0].kind == BN_PT_SPLIT && t->pre[1].kind == BN_PT_BYTELEVEL && !t->pre[1].re && t->ignore_merges;
    int gpt2 = t->n_pre == 1 && t->pre[0].kind == BN_PT_BYTELEVEL && t->pre[0].re && !t->ignore_merges;
    *done = 0;
    if (t->spm || !t->byte_level || (!llama3 && !gpt2)) return BITNET_OK;
    uint8_t *ty = calloc((size_t)t->n_vocab, 1);
    uint32_t *ord = malloc(((size_t)t->merges.mask + 1) * sizeof *ord);
    if (!ty || !ord) { free(ty); free(ord); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < t->n_vocab; i++) ty[i] = 1;
    for (int i = 0; i < t->n_added; i++) ty[t->added[i].id] = t->added[i].special ? 3 : 4;
    kv_str(g, "tokenizer.ggml.model", "gpt2");
    kv_str(g, "tokenizer.ggml.pre", llama3 ? "llama-bpe" : "gpt2");
    wbuf *w = &g->kv;
    kv_arr(g, "tokenizer.ggml.tokens", BN_GV_STRING, (uint64_t)t->n_vocab);
    for (int i = 0; i < t->n_vocab; i++) {
        char hole[32];
        if (t->text[i]) wstr(w, t->text[i], t->tlen[i]);
        else { int n = snprintf(hole, sizeof hole, "[PAD%d]", i); wstr(w, hole, (size_t)n); ty[i] = 5; }
    }
    kv_arr(g, "tokenizer.ggml.token_type", BN_GV_I32, (uint64_t)t->n_vocab);
    for (int i = 0; i < t->n_vocab; i++) w32(w, ty[i]);
    uint32_t nm = 0;
    for (uint32_t i = 0; i <= t->merges.mask; i++) if (t->merges.key[i] != UINT64_MAX) ord[nm++] = i;
    qsort_r(ord, nm, sizeof *ord, cmp_rank, (void *)&t->merges);
    kv_arr(g, "tokenizer.ggml.merges", BN_GV_STRING, nm);
    for (uint32_t i = 0; i < nm; i++) {
        uint64_t key = t->merges.key[ord[i]];
        int32_t a = (int32_t)(key >> 32), b = (int32_t)(key & 0xffffffffu);
        w64(w, (uint64_t)t->tlen[a] + 1 + t->tlen[b]);
        wput(w, t->text[a], t->tlen[a]); wput(w, " ", 1); wput(w, t->text[b], t->tlen[b]);
    }
    if (t->eot >= 0) kv_u32(g, "tokenizer.ggml.eot_token_id", (uint32_t)t->eot);
    free(ty); free(ord);
    *done = 1;
    return BITNET_OK;
}

/* tokenizer.ggml.* (llama) from a SentencePiece tokenizer.model: tokens, scores and token_type
 * (SentencePiece's piece types are GGUF's numbers), padded to vocab with "[PADn]" (type 5,
 * unused), unk id, add_space_prefix (the dummy prefix), add_bos_token. What GGUF metadata
 * cannot say is refused: removing extra whitespace, not escaping whitespace, byte pieces
 * without byte fallback. */
static bitnet_status spm_tokenizer(gwriter *g, const char *path, int vocab) {
    char *buf; size_t len;
    bitnet_status st = bn_read_file(path, &buf, &len);
    if (st) return st;
    bn_sp_model m;
    if ((st = bn_tok_spm_read(buf, len, path, &m))) { free(buf); return st; }
    int bytes = 0;
    for (size_t i = 0; i < m.np; i++) bytes |= m.pc[i].type == 6;
    if (m.rmws || !m.escws || (bytes && !m.byte_fallback))
        st = bn_err(BITNET_ERR_UNSUPPORTED, "%s: %s, which GGUF tokenizer metadata cannot say", path,
                    m.rmws ? "the normalizer removes extra whitespace" : !m.escws ? "the normalizer does not escape whitespace" : "byte pieces without byte fallback");
    uint64_t n = m.np > (size_t)vocab ? m.np : (uint64_t)vocab;
    if (!st) {
        wbuf *w = &g->kv;
        kv_str(g, "tokenizer.ggml.model", "llama");
        kv_arr(g, "tokenizer.ggml.tokens", BN_GV_STRING, n);
        for (uint64_t i = 0; i < n; i++) {
            char hole[32];
            if (i < m.np) wstr(w, m.pc[i].s, m.pc[i].n);
            else { int k = snprintf(hole, sizeof hole, "[PAD%llu]", (unsigned long long)i); wstr(w, hole, (size_t)k); }
        }
        kv_arr(g, "tokenizer.ggml.scores", BN_GV_F32, n);
        for (uint64_t i = 0; i < n; i++) { float sc = i < m.np ? m.pc[i].score : 0.0f; wput(w, &sc, 4); }
        kv_arr(g, "tokenizer.ggml.token_type", BN_GV_I32, n);
        for (uint64_t i = 0; i < n; i++) w32(w, i < m.np ? (uint32_t)m.pc[i].type : 5u);
        if (m.unk_id >= 0 && (uint64_t)m.unk_id < n) kv_u32(g, "tokenizer.ggml.unknown_token_id", (uint32_t)m.unk_id);
        kv_bool(g, "tokenizer.ggml.add_space_prefix", m.dummy);
        kv_bool(g, "tokenizer.ggml.add_bos_token", 1);
        kv_bool(g, "tokenizer.ggml.add_eos_token", 0);
    }
    free(m.pc); free(buf);
    return st;
}

/* The folder's tokenizer as tokenizer.ggml.* metadata: bos/eos ids from the config; a
 * byte-level BPE tokenizer.json as gpt2, else a tokenizer.model as llama (SentencePiece), else
 * the ids alone; tokenizer_config.json's chat_template (a string) as tokenizer.chat_template. */
static bitnet_status folder_tokenizer(gwriter *g, const char *dir, const bn_config *c) {
    bitnet_tokenizer *t = NULL;
    if (c->bos_id >= 0) kv_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (c->eos_id >= 0) kv_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
    bitnet_status st = BITNET_OK;
    int done = 0;
    char *tj = bn_path_join(dir, "tokenizer.json"), *tm = bn_path_join(dir, "tokenizer.model"), *tc = bn_path_join(dir, "tokenizer_config.json");
    if (!tj || !tm || !tc) st = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!st && bn_file_exists(tj) && bitnet_tokenizer_load(tj, &t) == BITNET_OK) st = bpe_tokenizer(g, t, &done);
    bitnet_tokenizer_free(t);
    if (!st && !done && bn_file_exists(tm)) st = spm_tokenizer(g, tm, c->vocab_size);
    char *js = NULL; size_t len;
    if (!st && bn_file_exists(tc) && bn_read_file_max(tc, BN_SMALL_FILE_MAX, &js, &len) == BITNET_OK) {
        cJSON *r = cJSON_ParseWithLength(js, len);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(r, "chat_template");
        if (cJSON_IsString(ct)) kv_str(g, "tokenizer.chat_template", ct->valuestring);
        cJSON_Delete(r);
    }
    free(js); free(tj); free(tm); free(tc);
    return st;
}

/* Hyper-parameters under arch ("bitnet-b1.58" for the 2B-4T family, "bitnet" for 1bitLLM). */
static void write_hparams(gwriter *g, const bn_config *c, const char *arch) {
    char k[160];
    kv_str(g, "general.architecture", arch);
    kv_str(g, "general.name", "converted by bitnet.c");
    kv_u32(g, "general.alignment", 32);
#define KU(KEY, V) (snprintf(k, sizeof k, "%s." KEY, arch), kv_u32(g, k, (uint32_t)(V)))
#define KF(KEY, V) (snprintf(k, sizeof k, "%s." KEY, arch), kv_f32(g, k, (V)))
    KU("vocab_size", c->vocab_size); KU("context_length", c->max_pos); KU("embedding_length", c->hidden_size);
    KU("block_count", c->n_layers); KU("feed_forward_length", c->intermediate_size);
    KU("attention.head_count", c->n_heads); KU("attention.head_count_kv", c->n_kv_heads);
    KU("rope.dimension_count", c->head_dim); KF("rope.freq_base", c->rope_theta);
    KF("attention.layer_norm_rms_epsilon", c->norm_eps);
#undef KU
#undef KF
}

typedef struct { const bitnet_convert_params *p; int done, total; } cprog;
static void tick(cprog *pr) { pr->done++; if (pr->p->progress) pr->p->progress(pr->p->progress_ud, pr->done, pr->total); }

enum { HEAD_AS_SOURCE = 0xFFFFFFFEu };   /* no --head: the source's float type (F32 is GGUF type 0) */

/* token_embd, output (unless tied) in type head (HEAD_AS_SOURCE: the source's float type) and
 * output_norm. */
static bitnet_status write_globals(gwriter *g, csrc *s, uint32_t head, const char *in, cprog *pr) {
    const bn_config *c = &s->cfg;
    bn_slot gl[3] = {BN_S_EMBED, BN_S_HEAD, BN_S_FINAL_NORM};
    bitnet_status st = BITNET_OK;
    for (int i = 0; i < 3 && !st; i++) {
        if (gl[i] == BN_S_HEAD && c->tied) continue;
        int64_t sh[2]; int nd = bn_arch_shape(c, gl[i], sh);
        int64_t rows = nd == 2 ? sh[0] : 0, cols = nd == 2 ? sh[1] : sh[0];
        float *f = NULL; uint32_t ty;
        char n[256];
        bn_arch_tensor_name(BN_NAMES_GGUF, gl[i], -1, n, sizeof n);
        st = src_float(s, gl[i], -1, rows, cols, &f, &ty);
        if (gl[i] == BN_S_FINAL_NORM) ty = BN_GT_F32;
        else if (head != HEAD_AS_SOURCE) ty = head;
        uint8_t *d = NULL; size_t nb = 0;
        if (!st && (st = to_type(f, (rows ? rows : 1) * cols, cols, ty, n, &d, &nb))) { char pre[600]; snprintf(pre, sizeof pre, "%s: ", in); bn_err_prefix(st, pre); }
        if (!st) st = add_t(g, n, (uint32_t)nd, cols, rows ? rows : 1, ty, d, nb);
        free(f);
        if (!st) tick(pr);
    }
    return st;
}

/* The tensors of layer l: norms F32, BitLinear weights as lt (q: scratch for the largest). */
static bitnet_status write_layer(gwriter *g, csrc *s, int l, uint32_t lt, int8_t *q, const char *in, cprog *pr) {
    bitnet_status st = BITNET_OK;
    for (int si = 0; si < BN_LAYER_SLOTS && !st; si++) {
        bn_slot sl = (bn_slot)si;
        int64_t sh[2]; bn_arch_shape(&s->cfg, sl, sh);
        char n[256], base[256];
        bn_arch_tensor_name(BN_NAMES_GGUF, sl, l, n, sizeof n);
        snprintf(base, sizeof base, "%.*s", (int)(strlen(n) - 7), n);
        uint8_t *d = NULL; size_t nb = 0;
        if (bn_arch_kind(sl) == BN_TK_NORM) {
            float *f = NULL; uint32_t ty;
            st = src_float(s, sl, l, 0, sh[0], &f, &ty);
            if (!st) st = to_type(f, sh[0], sh[0], BN_GT_F32, n, &d, &nb);
            if (!st) st = add_t(g, n, 1, sh[0], 1, BN_GT_F32, d, nb);
            free(f);
            if (!st) tick(pr);
            continue;
        }
        int64_t R = sh[0], C = sh[1], N = R * C;
        float scale;
        if ((st = src_linear(s, sl, l, (int)R, (int)C, q, &scale))) break;
        uint32_t ty = lt;
        if (lt == BN_GT_I2_S) {
            if (N % 128) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has %lld weights, not a multiple of 128 (i2_s)", in, n, (long long)N);
            nb = (size_t)(N / 4) + 32;
            if (!(d = malloc(nb))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
            enc_i2s(q, N, scale, d);
        } else if (C % 256 == 0) {
            nb = (size_t)(N / 256) * (lt == BN_GT_TQ2_0 ? 66 : 54);
            if (!(d = malloc(nb))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
            if (lt == BN_GT_TQ2_0) enc_tq2(q, N, d); else enc_tq1(q, N, d);
        } else {              /* rows not a multiple of the TQ block: F16 {-1,0,1} */
            ty = BN_GT_F16; nb = (size_t)N * 2;
            if (!(d = malloc(nb))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
            for (int64_t i = 0; i < N; i++) { uint16_t h = q[i] > 0 ? 0x3c00 : q[i] < 0 ? 0xbc00 : 0; memcpy(d + 2 * i, &h, 2); }
        }
        if ((st = add_t(g, n, 2, C, R, ty, d, nb))) break;
        if (lt != BN_GT_I2_S) {
            char sn[300]; snprintf(sn, sizeof sn, "%s.scale", base);
            float *sv = malloc(4);
            if (!sv) return bn_err(BITNET_ERR_NOMEM, "out of memory");
            *sv = scale;
            st = add_t(g, sn, 1, 1, 1, BN_GT_F32, (uint8_t *)sv, 4);
        }
        if (!st) tick(pr);
    }
    return st;
}

/* Header, metadata, tensor infos and 32-aligned data, written to out atomically (streamed from
 * the tensors' own buffers: nothing is assembled twice in memory). */
static bitnet_status assemble(const gwriter *g, const char *out) {
    wbuf o = {0};
    wput(&o, "GGUF", 4); w32(&o, 3); w64(&o, (uint64_t)g->nt); w64(&o, g->nkv);
    wput(&o, g->kv.b, g->kv.n);
    uint64_t off = 0;
    for (int i = 0; i < g->nt; i++) {
        const otensor *t = &g->t[i];
        wstr(&o, t->name, strlen(t->name)); w32(&o, t->nd);
        for (uint32_t d = 0; d < t->nd; d++) w64(&o, t->ne[d]);
        w32(&o, t->type); w64(&o, off);
        off += (t->n + 31) & ~(uint64_t)31;
    }
    static const uint8_t zero[32];
    wput(&o, zero, (32 - o.n % 32) % 32);
    int np = 1 + 2 * g->nt;
    const void **parts = malloc((size_t)np * sizeof *parts);
    size_t *lens = malloc((size_t)np * sizeof *lens);
    bitnet_status st = BITNET_OK;
    if (o.oom || g->kv.oom || !parts || !lens) st = bn_err(BITNET_ERR_NOMEM, "out of memory assembling %s", out);
    else {
        parts[0] = o.b; lens[0] = o.n;
        for (int i = 0; i < g->nt; i++) {
            parts[1 + 2 * i] = g->t[i].data; lens[1 + 2 * i] = g->t[i].n;
            parts[2 + 2 * i] = zero; lens[2 + 2 * i] = (32 - g->t[i].n % 32) % 32;
        }
        st = bn_write_parts_atomic(out, parts, lens, np);
    }
    free(o.b); free(parts); free(lens);
    return st;
}

static uint32_t head_type(const char *h) {
    static const struct { const char *n; uint32_t t; } H[] = {
        {"f32", BN_GT_F32}, {"f16", BN_GT_F16}, {"bf16", BN_GT_BF16}, {"q8_0", BN_GT_Q8_0}, {"q6_k", BN_GT_Q6_K}, {"q4_0", BN_GT_Q4_0}};
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++) if (!strcmp(h, H[i].n)) return H[i].t;
    return UINT32_MAX;
}

static bitnet_status convert_to_gguf(const char *in, const char *out, const bitnet_convert_params *p) {
    const char *type = p->type ? p->type : "i2_s";
    uint32_t lt = !strcmp(type, "tq2_0") ? BN_GT_TQ2_0 : !strcmp(type, "tq1_0") ? BN_GT_TQ1_0 : !strcmp(type, "i2_s") ? BN_GT_I2_S : 0;
    if (!lt) return bn_err(BITNET_ERR_ARG, "convert: unknown type '%s' (tq2_0, tq1_0, i2_s)", type);
    uint32_t head = p->head && *p->head ? head_type(p->head) : HEAD_AS_SOURCE;
    if (head == UINT32_MAX) return bn_err(BITNET_ERR_ARG, "convert: unknown head type '%s' (f32, f16, bf16, q8_0, q6_k, q4_0)", p->head);
    struct stat sb;
    if (!(p->flags & BITNET_CONVERT_FORCE) && stat(out, &sb) == 0) return bn_err(BITNET_ERR_ARG, "%s already exists (pass --force to overwrite it)", out);
    csrc s;
    bitnet_status st = open_source(in, &s);
    gwriter g = {0};
    int8_t *q = NULL;
    const bn_config *c = &s.cfg;
    if (st) goto done;
    if (c->head_dim * c->n_heads != c->hidden_size) { st = bn_err(BITNET_ERR_UNSUPPORTED, "%s: head_dim %d x heads %d != hidden %d cannot be said in GGUF", in, c->head_dim, c->n_heads, c->hidden_size); goto done; }
    write_hparams(&g, c, c->act == BN_ACT_SILU ? "bitnet" : "bitnet-b1.58");   /* the arch says the activation */
    if (s.g) {
        for (int i = 0; i < bn_gguf_n_kv(s.g); i++) {
            const bn_gguf_kv *kv = bn_gguf_kv_at(s.g, i);
            if (!strncmp(kv->key, "tokenizer.", 10)) kv_copy(&g, kv);
        }
    } else if ((st = folder_tokenizer(&g, s.dir, c))) goto done;
    cprog pr = {p, 0, (c->tied ? 2 : 3) + c->n_layers * BN_LAYER_SLOTS};
    if ((st = write_globals(&g, &s, head, in, &pr))) goto done;
    size_t maxn = 1;
    for (int si = 0; si < BN_LAYER_SLOTS; si++) {
        int64_t sh[2];
        if (bn_arch_kind((bn_slot)si) == BN_TK_LINEAR && bn_arch_shape(c, (bn_slot)si, sh) == 2 && (size_t)(sh[0] * sh[1]) > maxn) maxn = (size_t)(sh[0] * sh[1]);
    }
    if (!(q = malloc(maxn))) st = bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers && !st; l++) st = write_layer(&g, &s, l, lt, q, in, &pr);
    if (!st) st = assemble(&g, out);
done:
    for (int i = 0; i < g.nt; i++) free(g.t[i].data);
    free(g.t); free(g.kv.b); free(q);
    close_source(&s);
    return st;
}

bitnet_convert_params bitnet_convert_default_params(void) {
    return (bitnet_convert_params){.type = "i2_s"};
}

bitnet_status bitnet_convert_gguf(const char *in, const char *out, const char *type, int flags) {
    if (!in || !out || !type) return bn_err(BITNET_ERR_ARG, "bitnet_convert_gguf: NULL argument");
    bitnet_convert_params p = bitnet_convert_default_params();
    p.type = type; p.flags = flags;
    return convert_to_gguf(in, out, &p);
}

bitnet_status bitnet_convert(const char *in, const char *out, const bitnet_convert_params *pp) {
    if (!in || !out) return bn_err(BITNET_ERR_ARG, "bitnet_convert: NULL argument");
    bitnet_convert_params p = pp ? *pp : bitnet_convert_default_params();
    size_t n = strlen(out);
    if (n >= 5 && !strcmp(out + n - 5, ".gguf")) return convert_to_gguf(in, out, &p);
    return bn_gguf_to_hf(in, out, &p);
}
