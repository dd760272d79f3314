/* gguf_hf.c — bn_gguf_to_hf (`bitnet convert IN.gguf OUTDIR`): a BitNet GGUF file written back as
 * a Hugging Face folder in the 2B-4T packed layout, exactly:
 *   model.safetensors: BitLinear weights (any ternary GGUF type, decoded by gguf.h) as 2B-4T
 *     uint8 [out/4, in] (ternary.h) + "<name>_scale" [1] = the GGUF scale (the autobitlinear
 *     multiplier), as bf16 when the value is exactly a bf16, else f32; every float tensor as
 *     bf16 when all its values are exactly bf16 (so a folder -> GGUF -> folder round trip gives
 *     back its bytes), else as f16 when the GGUF tensor is f16, else f32 (quantized heads
 *     dequantized exactly); names through the architecture table (BN_NAMES_BITNET);
 *   config.json: the GGUF hyper-parameters (bn_gguf_config) as model_type "bitnet" with
 *     quantization_config autobitlinear / offline, hidden_act relu2 or silu (arch "bitnet");
 *   the tokenizer from tokenizer.ggml.*: gpt2 -> tokenizer.json (byte-level BPE, Llama-3 split
 *     regex with ignore_merges for pre llama-bpe / missing, the GPT-2 regex for gpt2 / default;
 *     token_type 3 / 4 as special / plain added tokens, 5 (unused) left out; a BOS template when
 *     there is a bos id), llama -> tokenizer.model (the SentencePiece ModelProto the GGUF loader
 *     reads, gguf_tokenizer.c); tokenizer_config.json with bos / eos / unk token text, the
 *     chat_template from tokenizer.chat_template, and the tokenizer class.
 * Every file goes through a temp file and a rename, config.json last. Not: the 1bitLLM layout
 * or a master (float) checkpoint; GGUF files of other architectures (refused by bn_gguf_config). */
#include "model/model.h"
#include "arch/arch.h"
#include "io/files.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/config.h"
#include "io/ternary.h"
#include "model/gguf_model.h"
#include "tokenizer/tokenizer_internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

bitnet_status bn_gguf_to_hf(const char *in, const char *out, const bitnet_convert_params *p);

static const char *LLAMA3_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static int exact_bf16(const float *f, int64_t n) {
    for (int64_t i = 0; i < n; i++) if (bn_bf16_to_f32(bn_f32_to_bf16(f[i])) != f[i]) return 0;
    return 1;
}
static int exact_f16(const float *f, int64_t n) {
    for (int64_t i = 0; i < n; i++) if (bn_f16_to_f32(bn_f32_to_f16(f[i])) != f[i]) return 0;
    return 1;
}

/* f[n] (shape sh[nd]) as name: bf16 when exact, else f16 when the GGUF tensor was f16 and the
 * values fit exactly, else f32. */
static bitnet_status put_float(bn_st_writer *w, const char *name, int nd, const int64_t *sh, const float *f, int64_t n, uint32_t gtype) {
    int bf = exact_bf16(f, n), h = !bf && gtype == BN_GT_F16 && exact_f16(f, n);
    if (!bf && !h) return bn_st_writer_add(w, name, BN_F32, nd, sh, f);
    uint16_t *b = malloc((size_t)n * 2 + 2);
    if (!b) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) b[i] = bf ? bn_f32_to_bf16(f[i]) : bn_f32_to_f16(f[i]);
    bitnet_status s = bn_st_writer_add(w, name, bf ? BN_BF16 : BN_F16, nd, sh, b);
    free(b);
    return s;
}

/* Every tensor of the model into w (q: scratch for the largest BitLinear weight). */
static bitnet_status put_tensors(bn_st_writer *w, const bn_gguf *g, const bn_config *c, const char *in, const bitnet_convert_params *p) {
    int total = (c->tied ? 2 : 3) + c->n_layers * BN_LAYER_SLOTS, done = 0;
    size_t maxn = (size_t)c->vocab_size * c->hidden_size;
    for (int si = 0; si < BN_LAYER_SLOTS; si++) {
        int64_t sh[2];
        if (bn_arch_shape(c, (bn_slot)si, sh) == 2 && (size_t)(sh[0] * sh[1]) > maxn) maxn = (size_t)(sh[0] * sh[1]);
    }
    float *f = malloc(maxn * sizeof *f);
    int8_t *q = malloc(maxn);
    uint8_t *pk = malloc(maxn / 4 + 1);
    bitnet_status s = f && q && pk ? BITNET_OK : bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < BN_LAYER_SLOTS * c->n_layers + 3; i++) {
        int l = i < 3 ? -1 : (i - 3) / BN_LAYER_SLOTS;
        bn_slot sl = i == 0 ? BN_S_EMBED : i == 1 ? BN_S_HEAD : i == 2 ? BN_S_FINAL_NORM : (bn_slot)((i - 3) % BN_LAYER_SLOTS);
        if (sl == BN_S_HEAD && c->tied) continue;
        char gn[256], hn[256], base[256];
        bn_arch_tensor_name(BN_NAMES_GGUF, sl, l, gn, sizeof gn);
        bn_arch_tensor_name(BN_NAMES_BITNET, sl, l, hn, sizeof hn);
        snprintf(base, sizeof base, "%.*s", (int)(strlen(gn) - 7), gn);
        int64_t sh[2]; int nd = bn_arch_shape(c, sl, sh);
        if (bn_arch_kind(sl) != BN_TK_LINEAR) {
            const bn_gguf_tensor *t = bn_gguf_find_tensor(g, gn);
            int64_t n = nd == 2 ? sh[0] * sh[1] : sh[0];
            s = bn_gguf_read_float(g, base, nd == 2 ? sh[0] : 0, nd == 2 ? sh[1] : sh[0], f);
            if (!s) s = put_float(w, hn, nd, sh, f, n, t ? t->type : BN_GT_F32);
        } else {
            float scale;
            if (sh[0] % 4) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has %lld rows, not a multiple of 4 as the 2B-4T packed layout needs", in, gn, (long long)sh[0]); break; }
            s = bn_gguf_read_linear(g, base, sh[0], sh[1], BN_I2S_X86, q, &scale);
            if (s) break;
            bn_pack_2b4t(q, (int)sh[0], (int)sh[1], pk);
            int64_t ps[2] = {sh[0] / 4, sh[1]}, one = 1;
            char sn[300]; snprintf(sn, sizeof sn, "%s_scale", hn);
            s = bn_st_writer_add(w, hn, BN_U8, 2, ps, pk);
            if (!s) s = put_float(w, sn, 1, &one, &scale, 1, BN_GT_F32);
        }
        if (!s && p->progress) p->progress(p->progress_ud, ++done, total);
    }
    free(f); free(q); free(pk);
    return s;
}

static cJSON *jbytelevel(int prefix, int regex, int trim) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", prefix);
    cJSON_AddBoolToObject(o, "trim_offsets", trim);
    cJSON_AddBoolToObject(o, "use_regex", regex);
    return o;
}

/* The post-processor: ByteLevel, then BOS + the sequence when bos >= 0 (bos_text its token). */
static cJSON *jpost(int bos, const char *bos_text) {
    cJSON *seq = cJSON_CreateObject(), *ps = cJSON_AddArrayToObject(seq, "processors");
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToArray(ps, jbytelevel(1, 1, 0));
    if (bos < 0) return seq;
    cJSON *tp = cJSON_CreateObject();
    cJSON_AddStringToObject(tp, "type", "TemplateProcessing");
    const char *parts[2] = {"single", "pair"};
    for (int k = 0; k < 2; k++) {
        cJSON *a = cJSON_AddArrayToObject(tp, parts[k]);
        for (int j = 0; j <= k; j++) {
            cJSON *st = cJSON_CreateObject(), *sti = cJSON_AddObjectToObject(st, "SpecialToken");
            cJSON_AddStringToObject(sti, "id", bos_text); cJSON_AddNumberToObject(sti, "type_id", 0);
            cJSON_AddItemToArray(a, st);
            cJSON *sq = cJSON_CreateObject(), *sqi = cJSON_AddObjectToObject(sq, "Sequence");
            cJSON_AddStringToObject(sqi, "id", j ? "B" : "A"); cJSON_AddNumberToObject(sqi, "type_id", 0);
            cJSON_AddItemToArray(a, sq);
        }
    }
    cJSON *sp = cJSON_AddObjectToObject(tp, "special_tokens"), *e = cJSON_AddObjectToObject(sp, bos_text);
    cJSON_AddStringToObject(e, "id", bos_text);
    cJSON *ids = cJSON_AddArrayToObject(e, "ids"), *tk = cJSON_AddArrayToObject(e, "tokens");
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(bos));
    cJSON_AddItemToArray(tk, cJSON_CreateString(bos_text));
    cJSON_AddItemToArray(ps, tp);
    return seq;
}

/* A NUL-terminated copy of a GGUF string (malloc'd). */
static char *gstr(bn_gguf_str x) {
    char *s = malloc(x.n + 1);
    if (s) { memcpy(s, x.s, x.n); s[x.n] = 0; }
    return s;
}

/* tokenizer.json (byte-level BPE) from gpt2 metadata. */
static cJSON *bpe_json(const bn_gguf *g, const char *in, bitnet_status *st) {
    const bn_gguf_kv *toks, *types = NULL, *merges = NULL;
    bn_gguf_str pre = {"", 0};
    if ((*st = bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GV_STRING, &toks))) return NULL;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.token_type") && (*st = bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GV_COUNT, &types))) return NULL;
    if (types && (types->arr_n != toks->arr_n || types->arr_type == BN_GV_STRING)) { *st = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.token_type must hold one integer per token", in); return NULL; }
    if (bn_gguf_find_kv(g, "tokenizer.ggml.merges") && (*st = bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GV_STRING, &merges))) return NULL;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.pre") && (*st = bn_gguf_get_str(g, "tokenizer.ggml.pre", &pre))) return NULL;
    int llama3 = pre.n == 0 || (pre.n == 9 && !memcmp(pre.s, "llama-bpe", 9)) || (pre.n == 6 && !memcmp(pre.s, "llama3", 6)) || (pre.n == 8 && !memcmp(pre.s, "llama-v3", 8));
    int gpt2 = (pre.n == 4 && !memcmp(pre.s, "gpt2", 4)) || (pre.n == 7 && !memcmp(pre.s, "default", 7));
    if (!llama3 && !gpt2) { *st = bn_err(BITNET_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%.*s' is not supported (llama-bpe, gpt2, default)", in, (int)(pre.n > 40 ? 40 : pre.n), pre.s); return NULL; }
    int64_t bos = -1;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.bos_token_id") && (*st = bn_gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, (int64_t)toks->arr_n - 1, &bos))) return NULL;
    int add_bos = 1;
    if (bn_gguf_find_kv(g, "tokenizer.ggml.add_bos_token") && (*st = bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos))) return NULL;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "version", "1.0");
    cJSON_AddNullToObject(r, "truncation"); cJSON_AddNullToObject(r, "padding");
    cJSON *added = cJSON_AddArrayToObject(r, "added_tokens");
    cJSON_AddNullToObject(r, "normalizer");
    cJSON *pt;
    if (llama3) {
        pt = cJSON_CreateObject();
        cJSON_AddStringToObject(pt, "type", "Sequence");
        cJSON *a = cJSON_AddArrayToObject(pt, "pretokenizers"), *sp = cJSON_CreateObject();
        cJSON_AddStringToObject(sp, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "pattern"), "Regex", LLAMA3_RE);
        cJSON_AddStringToObject(sp, "behavior", "Isolated"); cJSON_AddBoolToObject(sp, "invert", 0);
        cJSON_AddItemToArray(a, sp);
        cJSON_AddItemToArray(a, jbytelevel(0, 0, 1));
    } else pt = jbytelevel(0, 1, 1);
    cJSON_AddItemToObject(r, "pre_tokenizer", pt);
    char *bt = bos >= 0 ? gstr(bn_gguf_arr_str(toks, (uint64_t)bos)) : NULL;
    cJSON_AddItemToObject(r, "post_processor", jpost(add_bos && bt ? (int)bos : -1, bt ? bt : ""));
    free(bt);
    cJSON_AddItemToObject(r, "decoder", jbytelevel(1, 1, 1));
    cJSON *m = cJSON_AddObjectToObject(r, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout"); cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix"); cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", 0); cJSON_AddBoolToObject(m, "byte_fallback", 0);
    cJSON_AddBoolToObject(m, "ignore_merges", llama3);
    cJSON *v = cJSON_AddObjectToObject(m, "vocab"), *mg = cJSON_AddArrayToObject(m, "merges");
    for (uint64_t i = 0; i < toks->arr_n && !*st; i++) {
        int64_t ty = types ? bn_gguf_arr_int(types, i) : 1;
        char *tx = gstr(bn_gguf_arr_str(toks, i));
        if (!tx) { *st = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
        if (ty == 3 || ty == 4) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i); cJSON_AddStringToObject(a, "content", tx);
            cJSON_AddBoolToObject(a, "single_word", 0); cJSON_AddBoolToObject(a, "lstrip", 0); cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", ty == 4); cJSON_AddBoolToObject(a, "special", ty == 3);
            cJSON_AddItemToArray(added, a);
        } else if (ty != 5) {
            if (cJSON_GetObjectItemCaseSensitive(v, tx)) *st = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] '%.40s' repeats an earlier token", in, (unsigned long long)i, tx);
            else cJSON_AddNumberToObject(v, tx, (double)i);
        }
        free(tx);
    }
    for (uint64_t i = 0; merges && i < merges->arr_n && !*st; i++) {
        bn_gguf_str x = bn_gguf_arr_str(merges, i);
        const char *sp = memchr(x.s, ' ', x.n);
        if (!sp) { *st = bn_err(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not two tokens separated by a space", in, (unsigned long long)i); break; }
        bn_gguf_str a = {x.s, (uint64_t)(sp - x.s)}, b = {sp + 1, x.n - a.n - 1};
        char *as = gstr(a), *bs = gstr(b);
        cJSON *pr = cJSON_CreateArray();
        cJSON_AddItemToArray(pr, cJSON_CreateString(as ? as : "")); cJSON_AddItemToArray(pr, cJSON_CreateString(bs ? bs : ""));
        cJSON_AddItemToArray(mg, pr);
        if (!as || !bs) *st = bn_err(BITNET_ERR_NOMEM, "out of memory");
        free(as); free(bs);
    }
    if (*st) { cJSON_Delete(r); return NULL; }
    return r;
}

static bitnet_status write_json(cJSON *j, const char *dir, const char *name) {
    char *js = j ? cJSON_Print(j) : NULL, *p = bn_path_join(dir, name);
    bitnet_status s = js && p ? bn_write_file_atomic(p, js, strlen(js)) : bn_err(BITNET_ERR_NOMEM, "out of memory");
    free(js); free(p);
    return s;
}

/* The token text of metadata key idk (a token id) into o[key], if present and valid. */
static void tok_text(const bn_gguf *g, const bn_gguf_kv *toks, const char *idk, cJSON *o, const char *key) {
    int64_t id;
    if (!toks || !bn_gguf_find_kv(g, idk) || bn_gguf_get_int(g, idk, 0, (int64_t)toks->arr_n - 1, &id)) return;
    char *s = gstr(bn_gguf_arr_str(toks, (uint64_t)id));
    if (s) cJSON_AddStringToObject(o, key, s);
    free(s);
}

/* tokenizer.json or tokenizer.model, and tokenizer_config.json, from tokenizer.ggml.*. */
static bitnet_status put_tokenizer(const bn_gguf *g, const bn_config *c, const char *in, const char *out) {
    bn_gguf_str model;
    if (!bn_gguf_find_kv(g, "tokenizer.ggml.model")) return BITNET_OK;   /* no tokenizer in the file */
    bitnet_status s = bn_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (s) return s;
    int spm = model.n == 5 && !memcmp(model.s, "llama", 5);
    if (!spm && !(model.n == 4 && !memcmp(model.s, "gpt2", 4)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' cannot be written as a Hugging Face tokenizer (gpt2, llama)", in, (int)(model.n > 40 ? 40 : model.n), model.s);
    if (spm) {
        uint8_t *b; size_t n;
        if ((s = bn_tok_gguf_spm_proto(g, in, &b, &n))) return s;
        char *p = bn_path_join(out, "tokenizer.model");
        s = p ? bn_write_file_atomic(p, b, n) : bn_err(BITNET_ERR_NOMEM, "out of memory");
        free(p); free(b);
    } else {
        cJSON *j = bpe_json(g, in, &s);
        if (!s) s = write_json(j, out, "tokenizer.json");
        cJSON_Delete(j);
    }
    if (s) return s;
    const bn_gguf_kv *toks = bn_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && (toks->type != BN_GV_ARRAY || toks->arr_type != BN_GV_STRING)) toks = NULL;
    cJSON *tc = cJSON_CreateObject();
    tok_text(g, toks, "tokenizer.ggml.bos_token_id", tc, "bos_token");
    tok_text(g, toks, "tokenizer.ggml.eos_token_id", tc, "eos_token");
    if (spm) tok_text(g, toks, "tokenizer.ggml.unknown_token_id", tc, "unk_token");
    bn_gguf_str ct;
    if (bn_gguf_find_kv(g, "tokenizer.chat_template") && !bn_gguf_get_str(g, "tokenizer.chat_template", &ct)) {
        char *t = gstr(ct);
        if (t) cJSON_AddStringToObject(tc, "chat_template", t);
        free(t);
    }
    cJSON_AddStringToObject(tc, "tokenizer_class", spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast");
    cJSON_AddNumberToObject(tc, "model_max_length", c->max_pos);
    s = write_json(tc, out, "tokenizer_config.json");
    cJSON_Delete(tc);
    return s;
}

/* out is a folder we may write into: created when missing; one of the files we write already
 * there is refused unless force. */
static bitnet_status prepare_dir(const char *out, int force) {
    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode)) return bn_err(BITNET_ERR_ARG, "%s exists and is not a folder", out);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return bn_err(BITNET_ERR_IO, "%s: cannot create the folder: %s", out, strerror(errno));
    static const char *names[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "model.safetensors.index.json"};
    for (size_t i = 0; !force && i < sizeof names / sizeof names[0]; i++) {
        char *p = bn_path_join(out, names[i]);
        if (!p) return bn_err(BITNET_ERR_NOMEM, "out of memory");
        int ex = bn_file_exists(p);
        free(p);
        if (ex) return bn_err(BITNET_ERR_ARG, "%s already holds %s (pass --force to overwrite it)", out, names[i]);
    }
    return BITNET_OK;
}

bitnet_status bn_gguf_to_hf(const char *in, const char *out, const bitnet_convert_params *p) {
    size_t n = strlen(in);
    if (n < 5 || strcmp(in + n - 5, ".gguf")) return bn_err(BITNET_ERR_ARG, "convert: %s -> %s: a folder output needs a .gguf input (or give OUT a .gguf name)", in, out);
    const char *slash = strrchr(in, '/');
    char *dir = slash ? strndup(in, (size_t)(slash - in) + 1) : strdup(".");
    if (!dir) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bn_src src = bn_src_dir(dir);
    const void *map = NULL; size_t size = 0;
    bn_gguf *g = NULL;
    bn_st_writer *w = NULL;
    bn_config c;
    char *mp = NULL, *cp = NULL;
    bitnet_status s = bn_src_open(&src, slash ? slash + 1 : in, &map, &size);
    if (!s) s = bn_gguf_parse(map, size, in, &g);
    if (!s) s = bn_gguf_config(g, &c);
    if (!s) s = prepare_dir(out, p->flags & BITNET_CONVERT_FORCE);
    if (!s) s = bn_st_writer_new(&w);
    if (!s) s = put_tensors(w, g, &c, in, p);
    if (!s && (!(mp = bn_path_join(out, "model.safetensors")) || !(cp = bn_path_join(out, "config.json")))) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_st_writer_save(w, mp);
    bn_st_writer_free(w);
    if (!s) s = put_tokenizer(g, &c, in, out);
    if (!s) {
        c.family = BN_FAM_BITNET; c.linear_class = BN_LC_AUTOBITLINEAR; c.full_precision = 0;
        s = bn_config_save(&c, cp, 1);
    }
    free(mp); free(cp);
    bn_gguf_free(g);
    if (map) bn_files_close(&src.f, map, size);
    free(dir);
    return s;
}
