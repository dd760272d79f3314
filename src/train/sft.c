/* sft.c — chat SFT JSONL to a packed token stream with an assistant-only loss mask (see sft.h).
 * Not: a trainer (data.c reads the stream, train.c ignores the masked targets). */
#include "train/sft.h"
#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct { int32_t *ids; uint8_t *mask; size_t n, cap; int oom; } tbuf;

static void tb_push(tbuf *b, const int32_t *ids, int n, int m) {
    if (b->oom) return;
    if (b->n + (size_t)n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + (size_t)n > cap) cap *= 2;
        int32_t *p = realloc(b->ids, cap * sizeof *p);
        if (p) b->ids = p;
        uint8_t *q = p ? realloc(b->mask, cap) : NULL;
        if (!q) { b->oom = 1; return; }
        b->mask = q; b->cap = cap;
    }
    memcpy(b->ids + b->n, ids, (size_t)n * sizeof *ids);
    memset(b->mask + b->n, m ? 1 : 0, (size_t)n);
    b->n += (size_t)n;
}

/* Encode text as one segment (BOS first when *first) and push it with mask m. */
static bitnet_status seg(tbuf *b, const bitnet_tokenizer *tok, const char *text, size_t len, int *first, int m) {
    int32_t *ids = NULL; int k = 0;
    int flags = *first ? BITNET_TOK_BOS : BITNET_TOK_CONTINUE;
    bitnet_status s = bitnet_tokenizer_encode_ex(tok, text, len, flags, &ids, &k);
    if (s) return s;
    int skip = 0;
    if (*first && k > 0 && ids[0] == bitnet_tokenizer_bos(tok)) { tb_push(b, ids, 1, 0); skip = 1; }
    tb_push(b, ids + skip, k - skip, m);
    free(ids);
    *first = 0;
    return BITNET_OK;
}

/* msgs[n] of one conversation into b (see sft.h for the layout). */
static bitnet_status render(tbuf *b, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                            const bitnet_chat_message *msgs, int n, bn_sft_stats *st) {
    char *pre = NULL, *txt = NULL;
    bitnet_status s = bitnet_chat_apply(tmpl, NULL, 0, 1, &pre);
    size_t np = pre ? strlen(pre) : 0, start = b->n;
    int first = 1;
    for (int i = 0; i < n && !s; i++) {
        int asst = !strcmp(msgs[i].role, "assistant");
        int next_asst = i + 1 < n && !strcmp(msgs[i + 1].role, "assistant");
        if (asst) {
            if ((s = bitnet_chat_apply(tmpl, &msgs[i], 1, 0, &txt))) break;
            if (strncmp(txt, pre, np)) { s = bn_err(BITNET_ERR_UNSUPPORTED, "the %s template's assistant turn does not start with its prefix", bitnet_chat_template_name(tmpl)); break; }
            if (i == 0 || !strcmp(msgs[i - 1].role, "assistant")) s = seg(b, tok, pre, np, &first, 0);
            if (!s) s = seg(b, tok, txt + np, strlen(txt + np), &first, 1);
        } else {
            if ((s = bitnet_chat_apply(tmpl, &msgs[i], 1, next_asst, &txt))) break;
            s = seg(b, tok, txt, strlen(txt), &first, 0);
        }
        free(txt); txt = NULL;
    }
    int eos = bitnet_tokenizer_eos(tok);
    if (!s && eos >= 0 && b->n > start && !b->oom && b->ids[b->n - 1] != eos) {
        int32_t e = eos;
        tb_push(b, &e, 1, n > 0 && !strcmp(msgs[n - 1].role, "assistant"));
    }
    free(txt); free(pre);
    if (!s && b->oom) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) {
        st->examples++; st->tokens += (int64_t)(b->n - start);
        for (size_t i = start; i < b->n; i++) st->trained += b->mask[i];
    }
    return s;
}

/* One JSONL line (NUL-terminated) into b; errors are left for the caller to prefix. */
static bitnet_status line_to_tokens(tbuf *b, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                                    const char *line, bn_sft_stats *st) {
    cJSON *j = cJSON_Parse(line);
    if (!j) return bn_err(BITNET_ERR_FORMAT, "not valid JSON");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "messages");
    bitnet_status s = BITNET_OK;
    int n = cJSON_IsArray(ms) ? cJSON_GetArraySize(ms) : -1;
    bitnet_chat_message *msgs = n > 0 ? calloc((size_t)n, sizeof *msgs) : NULL;
    if (n < 1) s = bn_err(BITNET_ERR_FORMAT, "needs a non-empty \"messages\" array");
    else if (!msgs) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(ms, i);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !r->valuestring[0] || !cJSON_IsString(c))
            s = bn_err(BITNET_ERR_FORMAT, "message %d needs string \"role\" and \"content\"", i);
        else msgs[i] = (bitnet_chat_message){r->valuestring, c->valuestring};
    }
    if (!s) s = render(b, tok, tmpl, msgs, n, st);
    free(msgs); cJSON_Delete(j);
    return s;
}

bitnet_status bn_sft_load_jsonl(const char *path, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                                int32_t **ids, uint8_t **mask, size_t *n, bn_sft_stats *st) {
    *ids = NULL; *mask = NULL; *n = 0;
    bn_sft_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (!tok) return bn_err(BITNET_ERR_ARG, "%s: no tokenizer given for the chat data", path);
    char *txt = NULL; size_t len = 0;
    bitnet_status s = bn_read_file(path, &txt, &len);
    if (s) return s;
    if (memchr(txt, 0, len)) { free(txt); return bn_err(BITNET_ERR_FORMAT, "%s: holds a NUL byte (not a JSONL text file)", path); }
    tbuf b = {0};
    int lineno = 0;
    for (char *p = txt; !s && p < txt + len;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        lineno++;
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q && (s = line_to_tokens(&b, tok, tmpl, q, st))) {
            char pre[600];
            snprintf(pre, sizeof pre, "%s line %d: ", path, lineno);
            s = bn_err_prefix(s, pre);
        }
        p = e ? e + 1 : txt + len;
    }
    free(txt);
    if (!s && st->examples == 0) s = bn_err(BITNET_ERR_FORMAT, "%s: no conversations in the file", path);
    if (s) { free(b.ids); free(b.mask); return s; }
    *ids = b.ids; *mask = b.mask; *n = b.n;
    return BITNET_OK;
}
