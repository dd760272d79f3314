/* serve_api.c — the JSON side of `bitnet serve`: parse and validate an OpenAI request body
 * (/v1/chat/completions, /v1/completions) into a srv_req, and write OpenAI-format responses,
 * stream chunks and error bodies. Validation is strict about the fields we implement (types and
 * ranges; a bad one is a 400 naming the param); unknown fields are ignored as OpenAI clients
 * send extras; known-but-unsupported features asked for (n > 1, logprobs, tools) are a 400.
 * Not: the HTTP layer (cmd_serve.c) or the decoding (serve_engine.c). */
#include "serve.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void srv_error_set(srv_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap; va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *srv_error_json(const srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(o, "param", e->param); else cJSON_AddNullToObject(o, "param");
    if (e->code) cJSON_AddStringToObject(o, "code", e->code); else cJSON_AddNullToObject(o, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

void srv_req_free(srv_req *r) {
    if (!r) return;
    free(r->bias);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->prompt_text); free(r->prompt); free(r->text);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* ---- field readers: each returns 0 (absent or null: *out untouched), 1 (set) or -1 (bad, e set) ---- */
static cJSON *field(const cJSON *o, const char *name) {
    cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}
static int get_num(const cJSON *o, const char *name, double lo, double hi, double *out, srv_error *e) {
    cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)) {
        srv_error_set(e, 400, "invalid_request_error", name, "'%s' must be a number", name); return -1; }
    if (f->valuedouble < lo || f->valuedouble > hi) {
        srv_error_set(e, 400, "invalid_request_error", name, "'%s' must be in [%g, %g], got %g", name, lo, hi, f->valuedouble); return -1; }
    *out = f->valuedouble;
    return 1;
}
static int get_int(const cJSON *o, const char *name, double lo, double hi, long long *out, srv_error *e) {
    cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble != floor(f->valuedouble)) {
        srv_error_set(e, 400, "invalid_request_error", name, "'%s' must be an integer", name); return -1; }
    if (f->valuedouble < lo || f->valuedouble > hi) {
        srv_error_set(e, 400, "invalid_request_error", name, "'%s' must be in [%.0f, %.0f], got %.0f", name, lo, hi, f->valuedouble); return -1; }
    *out = (long long)f->valuedouble;
    return 1;
}
static int get_bool(const cJSON *o, const char *name, int *out, srv_error *e) {
    cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) { srv_error_set(e, 400, "invalid_request_error", name, "'%s' must be true or false", name); return -1; }
    *out = cJSON_IsTrue(f);
    return 1;
}

/* Message content: a string, or an array of {"type": "text", "text": "..."} parts (joined). */
static char *content_text(const cJSON *c, int i, srv_error *e) {
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    if (cJSON_IsArray(c)) {
        size_t len = 0; char *s = calloc(1, 1);
        const cJSON *p;
        cJSON_ArrayForEach(p, c) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type"), *tx = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (!cJSON_IsObject(p) || !cJSON_IsString(ty) || strcmp(ty->valuestring, "text") || !cJSON_IsString(tx)) {
                free(s);
                srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d].content: only text parts ({\"type\": \"text\", \"text\": ...}) are supported", i);
                return NULL;
            }
            size_t n = strlen(tx->valuestring);
            char *q = s ? realloc(s, len + n + 1) : NULL;
            if (!q) { free(s); srv_error_set(e, 500, "server_error", NULL, "out of memory"); return NULL; }
            s = q; memcpy(s + len, tx->valuestring, n + 1); len += n;
        }
        return s;
    }
    srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d].content must be a string or an array of text parts", i);
    return NULL;
}

/* The byte offsets in text (the rendering of cm[0..n) plus the assistant prefix) where each
 * assistant message's content starts and ends, in order, into cut[] (room for 2n); returns how
 * many. The content starts where rendering the messages before it with the assistant prefix
 * ends (what a request with those messages had as its whole prompt) and ends before the
 * template's end of turn (the common suffix of an assistant message rendered with content ""
 * and "x"). A message whose pieces do not line up gives no cut. -1: out of memory. */
static int chat_cuts(const srv_model_ref *m, const bitnet_chat_message *cm, int n, const char *text, size_t *cut) {
    bitnet_chat_template t = (bitnet_chat_template)m->chat_template;
    char *e0 = NULL, *e1 = NULL;
    bitnet_chat_message a0 = {"assistant", ""}, a1 = {"assistant", "x"};
    if (bitnet_chat_apply(t, &a0, 1, 0, &e0) || bitnet_chat_apply(t, &a1, 1, 0, &e1)) { free(e0); free(e1); return -1; }
    size_t l0 = strlen(e0), l1 = strlen(e1), tail = 0, tl = strlen(text);
    while (tail < l0 && tail < l1 && e0[l0 - 1 - tail] == e1[l1 - 1 - tail]) tail++;
    free(e1);
    int nc = 0;
    for (int k = 0; k < n; k++) {
        if (strcmp(cm[k].role, "assistant")) continue;
        char *pre = NULL, *upto = NULL;
        if (bitnet_chat_apply(t, cm, k, 1, &pre) || bitnet_chat_apply(t, cm, k + 1, 0, &upto)) { free(pre); free(upto); nc = -1; break; }
        size_t lp = strlen(pre), lu = strlen(upto);
        if (lp <= tl && !memcmp(text, pre, lp) && lu <= tl && !memcmp(text, upto, lu) && lu >= lp + tail &&
            !memcmp(upto + lu - tail, e0 + l0 - tail, tail) && (nc == 0 || lp >= cut[nc - 1])) {
            cut[nc++] = lp;
            cut[nc++] = lu - tail;
        }
        free(pre); free(upto);
    }
    free(e0);
    return nc;
}

/* Tokens of a rendered conversation (BOS first): the text encoded in pieces split at chat_cuts,
 * so that the tokens of a conversation that extends an earlier request by its reply begin with
 * exactly that request's prompt tokens, then the reply's own tokens (the slot's cache holds
 * them: prompt caching reuses both). The text is the one bitnet_chat_apply renders; only the
 * token boundaries at each assistant content's start and end are fixed, as `bitnet chat`
 * feeds turns. Not a tokenization that depends on any cache: the same messages always give the
 * same tokens. */
static bitnet_status chat_tokens(const srv_model_ref *m, const bitnet_chat_message *cm, int n, const char *text,
                                 int32_t **ids, int *n_ids) {
    *ids = NULL; *n_ids = 0;
    size_t *cut = malloc((size_t)(2 * n + 2) * sizeof *cut), tl = strlen(text);
    if (!cut) return BITNET_ERR_NOMEM;
    int nc = chat_cuts(m, cm, n, text, cut);
    if (nc < 0) { free(cut); return BITNET_ERR_NOMEM; }
    cut[nc++] = tl;
    bitnet_status st = BITNET_OK;
    size_t from = 0;
    for (int i = 0; i < nc && !st; i++) {
        if (cut[i] <= from) continue;   /* empty piece (BOS goes with the first non-empty one) */
        int32_t *p = NULL; int np = 0;
        st = bitnet_tokenizer_encode_ex(m->tok, text + from, cut[i] - from, from == 0 ? BITNET_TOK_BOS : BITNET_TOK_CONTINUE, &p, &np);
        int32_t *q = st ? NULL : realloc(*ids, (size_t)(*n_ids + np + 1) * sizeof *q);
        if (!st && !q) st = BITNET_ERR_NOMEM;
        if (!st) { memcpy(q + *n_ids, p, (size_t)np * sizeof *q); *ids = q; *n_ids += np; }
        free(p);
        from = cut[i];
    }
    free(cut);
    if (st) { free(*ids); *ids = NULL; *n_ids = 0; }
    return st;
}

/* Render the chat messages with the model's template (library bitnet_chat_apply) and encode
 * them (chat_tokens) into *ids; returns the text, or NULL with *e set. */
static char *render_chat(const srv_model_ref *m, const cJSON *msgs, int32_t **ids, int *n_ids, srv_error *e) {
    if (!cJSON_IsArray(msgs)) { srv_error_set(e, 400, "invalid_request_error", "messages", "'messages' must be an array of {role, content} objects"); return NULL; }
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) { srv_error_set(e, 400, "invalid_request_error", "messages", "'messages' must not be empty"); return NULL; }
    bitnet_chat_message *cm = calloc((size_t)n, sizeof *cm);
    char **texts = calloc((size_t)n, sizeof *texts);
    char *out = NULL;
    if (!cm || !texts) { srv_error_set(e, 500, "server_error", NULL, "out of memory"); goto done; }
    int i = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role"), *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsObject(msg)) { srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d] must be an object", i); goto done; }
        if (!cJSON_IsString(role) || !role->valuestring[0]) { srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d].role must be a non-empty string", i); goto done; }
        static const char *roles[] = {"system", "user", "assistant", "developer"};
        int known = 0;
        for (int k = 0; k < 4; k++) known |= !strcmp(role->valuestring, roles[k]);
        if (!known) { srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d].role '%.40s' is not one of system, user, assistant, developer", i, role->valuestring); goto done; }
        if (!content) { srv_error_set(e, 400, "invalid_request_error", "messages", "messages[%d] has no content", i); goto done; }
        if (!(texts[i] = content_text(content, i, e))) goto done;
        cm[i].role = !strcmp(role->valuestring, "developer") ? "system" : role->valuestring;
        cm[i].content = texts[i];
        i++;
    }
    bitnet_status st;
    if (bitnet_chat_apply((bitnet_chat_template)m->chat_template, cm, n, 1, &out))
        srv_error_set(e, 400, "invalid_request_error", "messages", "cannot render the messages: %s", bitnet_last_error());
    else if ((st = chat_tokens(m, cm, n, out, ids, n_ids))) {
        if (st == BITNET_ERR_NOMEM) srv_error_set(e, 500, "server_error", NULL, "out of memory");
        else srv_error_set(e, 400, "invalid_request_error", "messages", "cannot tokenize the messages: %s", bitnet_last_error());
        free(out); out = NULL;
    }
done:
    if (texts) for (int k = 0; k < n; k++) free(texts[k]);
    free(texts); free(cm);
    return out;
}

static void random_id(char *dst, size_t cap, const char *prefix) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[12] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(b, 1, sizeof b, f) != sizeof b) { unsigned long long t = (unsigned long long)time(NULL) ^ (unsigned long long)clock(); memcpy(b, &t, sizeof t); }
    if (f) fclose(f);
    size_t o = (size_t)snprintf(dst, cap, "%s", prefix);
    for (size_t i = 0; i < sizeof b && o + 2 < cap; i++) { dst[o++] = hex[b[i] >> 4]; dst[o++] = hex[b[i] & 15]; }
    dst[o] = 0;
}

/* A new request of kind with OpenAI's defaults (refs = 1, a fresh id), or NULL (out of memory). */
static srv_req *req_new(int kind) {
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_cond_init(&r->cv, NULL);
    r->refs = 1;
    r->kind = kind;
    r->max_tokens = kind == SRV_COMPLETION ? 16 : -1;   /* OpenAI's defaults */
    r->created = (long long)time(NULL);
    random_id(r->id, sizeof r->id, kind == SRV_CHAT ? "chatcmpl-" : "cmpl-");
    bitnet_sampler_params_default(&r->sp);
    r->sp.temperature = 1.0f; r->sp.top_k = 0; r->sp.top_p = 1.0f; r->sp.min_p = 0.0f;  /* OpenAI's defaults */
    r->sp.repeat_penalty = 1.0f; r->sp.frequency_penalty = r->sp.presence_penalty = 0;
    r->sp.seed = BITNET_SEED_RANDOM;
    return r;
}

/* The scalar fields of the body object root (model, stream, max_tokens, the sampling numbers,
 * and the unsupported features that must be absent or off) into r. 0, or -1 with *e set. */
static int parse_options(const cJSON *root, srv_req *r, srv_error *e) {
    cJSON *f;
    if ((f = field(root, "model"))) {
        if (!cJSON_IsString(f)) { srv_error_set(e, 400, "invalid_request_error", "model", "'model' must be a string"); return -1; }
    }
    double d; long long ll; int b;
    if (get_bool(root, "stream", &r->stream, e) < 0) return -1;
    if ((f = field(root, "stream_options"))) {
        if (!cJSON_IsObject(f)) { srv_error_set(e, 400, "invalid_request_error", "stream_options", "'stream_options' must be an object"); return -1; }
        if (get_bool(f, "include_usage", &r->include_usage, e) < 0) return -1;
    }
    int got = get_int(root, "max_tokens", 1, 1 << 30, &ll, e);
    if (got < 0) return -1;
    if (got) r->max_tokens = (int)ll;
    if ((got = get_int(root, "max_completion_tokens", 1, 1 << 30, &ll, e)) < 0) return -1;
    if (got) r->max_tokens = (int)ll;
    if ((got = get_num(root, "temperature", 0, 2, &d, e)) < 0) return -1;
    if (got) r->sp.temperature = (float)d;
    if ((got = get_num(root, "top_p", 0, 1, &d, e)) < 0) return -1;
    if (got) {
        if (d <= 0) { srv_error_set(e, 400, "invalid_request_error", "top_p", "'top_p' must be in (0, 1], got %g", d); return -1; }
        r->sp.top_p = (float)d;
    }
    if ((got = get_int(root, "top_k", 0, 1 << 30, &ll, e)) < 0) return -1;
    if (got) r->sp.top_k = (int)ll;
    if ((got = get_num(root, "min_p", 0, 1, &d, e)) < 0) return -1;
    if (got) r->sp.min_p = (float)d;
    if ((got = get_num(root, "presence_penalty", -2, 2, &d, e)) < 0) return -1;
    if (got) r->sp.presence_penalty = (float)d;
    if ((got = get_num(root, "frequency_penalty", -2, 2, &d, e)) < 0) return -1;
    if (got) r->sp.frequency_penalty = (float)d;
    if ((got = get_num(root, "repeat_penalty", 0, 10, &d, e)) < 0) return -1;
    if (got) {
        if (d <= 0) { srv_error_set(e, 400, "invalid_request_error", "repeat_penalty", "'repeat_penalty' must be > 0"); return -1; }
        r->sp.repeat_penalty = (float)d;
    }
    if ((got = get_int(root, "seed", -9007199254740991.0, 9007199254740991.0, &ll, e)) < 0) return -1;
    if (got) r->sp.seed = (uint64_t)ll == BITNET_SEED_RANDOM ? 0 : (uint64_t)ll;
    if ((got = get_int(root, "n", 1, 1 << 30, &ll, e)) < 0) return -1;
    if (got && ll != 1) { srv_error_set(e, 400, "invalid_request_error", "n", "only n = 1 is supported"); return -1; }
    if ((got = get_int(root, "best_of", 1, 1 << 30, &ll, e)) < 0) return -1;
    if (got && ll != 1) { srv_error_set(e, 400, "invalid_request_error", "best_of", "only best_of = 1 is supported"); return -1; }
    if (get_bool(root, "ignore_eos", &r->ignore_eos, e) < 0) return -1;
    if (get_bool(root, "echo", &b, e) < 0) return -1;
    if ((f = field(root, "echo")) && cJSON_IsTrue(f)) { srv_error_set(e, 400, "invalid_request_error", "echo", "'echo' is not supported"); return -1; }
    if ((f = field(root, "logprobs")) && !cJSON_IsFalse(f)) {
        if (!cJSON_IsBool(f) && !cJSON_IsNumber(f)) { srv_error_set(e, 400, "invalid_request_error", "logprobs", "'logprobs' must be a boolean or an integer"); return -1; }
        if (cJSON_IsTrue(f) || (cJSON_IsNumber(f) && f->valuedouble != 0)) { srv_error_set(e, 400, "invalid_request_error", "logprobs", "'logprobs' is not supported"); return -1; }
    }
    if ((f = field(root, "tools")) && !(cJSON_IsArray(f) && cJSON_GetArraySize(f) == 0)) {
        srv_error_set(e, 400, "invalid_request_error", "tools", "'tools' (function calling) is not supported"); return -1; }
    if ((f = field(root, "user")) && !cJSON_IsString(f)) { srv_error_set(e, 400, "invalid_request_error", "user", "'user' must be a string"); return -1; }
    return 0;
}

/* "stop" (absent, a string, or up to SRV_MAX_STOP strings; empty ones dropped) and
 * "logit_bias" ({"id": bias in [-100, 100]}, -100 bans: -inf) into r. 0, or -1 with *e set. */
static int parse_stop_bias(const srv_model_ref *m, const cJSON *root, srv_req *r, srv_error *e) {
    cJSON *f;
    if ((f = field(root, "stop"))) {
        if (cJSON_IsString(f)) {
            if (f->valuestring[0]) r->stop[r->n_stop++] = strdup(f->valuestring);
        } else if (cJSON_IsArray(f)) {
            if (cJSON_GetArraySize(f) > SRV_MAX_STOP) { srv_error_set(e, 400, "invalid_request_error", "stop", "'stop' holds at most %d strings", SRV_MAX_STOP); return -1; }
            const cJSON *s;
            cJSON_ArrayForEach(s, f) {
                if (!cJSON_IsString(s)) { srv_error_set(e, 400, "invalid_request_error", "stop", "'stop' must be a string or an array of strings"); return -1; }
                if (s->valuestring[0]) r->stop[r->n_stop++] = strdup(s->valuestring);
            }
        } else { srv_error_set(e, 400, "invalid_request_error", "stop", "'stop' must be a string or an array of strings"); return -1; }
        for (int i = 0; i < r->n_stop; i++) if (!r->stop[i]) { srv_error_set(e, 500, "server_error", NULL, "out of memory"); return -1; }
    }
    if ((f = field(root, "logit_bias"))) {
        if (!cJSON_IsObject(f)) { srv_error_set(e, 400, "invalid_request_error", "logit_bias", "'logit_bias' must be an object mapping token ids to numbers"); return -1; }
        int n = cJSON_GetArraySize(f);
        r->bias = calloc((size_t)(n ? n : 1), sizeof *r->bias);
        if (!r->bias) { srv_error_set(e, 500, "server_error", NULL, "out of memory"); return -1; }
        const cJSON *x;
        cJSON_ArrayForEach(x, f) {
            char *end; long id = strtol(x->string, &end, 10);
            if (!x->string[0] || *end || id < 0 || id >= m->vocab) {
                srv_error_set(e, 400, "invalid_request_error", "logit_bias", "logit_bias key '%.40s' is not a token id in [0, %d)", x->string, m->vocab); return -1; }
            if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < -100 || x->valuedouble > 100) {
                srv_error_set(e, 400, "invalid_request_error", "logit_bias", "logit_bias[%ld] must be a number in [-100, 100]", id); return -1; }
            r->bias[r->n_bias].token = (int32_t)id;
            r->bias[r->n_bias].bias = x->valuedouble == -100 ? -INFINITY : (float)x->valuedouble;
            r->n_bias++;
        }
    }
    r->sp.logit_bias = r->bias; r->sp.n_logit_bias = r->n_bias;
    return 0;
}

/* The prompt into r->prompt_text / r->prompt: chat "messages" (rendered and encoded), or the
 * completion "prompt" (a string, an array of one string, or token ids); it must be non-empty
 * and fit the context. 0, or -1 with *e set. */
static int parse_prompt(const srv_model_ref *m, int kind, const cJSON *root, srv_req *r, srv_error *e) {
    if (kind == SRV_CHAT) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
        if (!msgs) { srv_error_set(e, 400, "invalid_request_error", "messages", "'messages' is required"); return -1; }
        if (!(r->prompt_text = render_chat(m, msgs, &r->prompt, &r->n_prompt, e))) return -1;
    } else {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!p) { srv_error_set(e, 400, "invalid_request_error", "prompt", "'prompt' is required"); return -1; }
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0))) p = cJSON_GetArrayItem(p, 0);
        if (cJSON_IsString(p)) {
            if (!(r->prompt_text = strdup(p->valuestring))) { srv_error_set(e, 500, "server_error", NULL, "out of memory"); return -1; }
        } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0 && cJSON_IsNumber(cJSON_GetArrayItem(p, 0))) {
            int n = cJSON_GetArraySize(p);
            r->prompt = malloc((size_t)n * sizeof *r->prompt);
            if (!r->prompt) { srv_error_set(e, 500, "server_error", NULL, "out of memory"); return -1; }
            const cJSON *x;
            cJSON_ArrayForEach(x, p) {
                if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 || x->valuedouble >= m->vocab) {
                    srv_error_set(e, 400, "invalid_request_error", "prompt", "prompt[%d] is not a token id in [0, %d)", r->n_prompt, m->vocab); return -1; }
                r->prompt[r->n_prompt++] = (int32_t)x->valuedouble;
            }
        } else {
            srv_error_set(e, 400, "invalid_request_error", "prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
            return -1;
        }
    }
    if (r->prompt_text && kind == SRV_COMPLETION) {
        if (bitnet_tokenizer_encode(m->tok, r->prompt_text, strlen(r->prompt_text), 1, &r->prompt, &r->n_prompt)) {
            srv_error_set(e, 400, "invalid_request_error", "prompt", "cannot tokenize the prompt: %s", bitnet_last_error()); return -1; }
    }
    if (r->n_prompt == 0) { srv_error_set(e, 400, "invalid_request_error", "prompt", "the prompt is empty"); return -1; }
    if (r->n_prompt > m->n_ctx) {
        srv_error_set(e, 400, "invalid_request_error", kind == SRV_CHAT ? "messages" : "prompt",
                      "the prompt has %d tokens but the context holds %d (start the server with a larger -c, or shorten the prompt)", r->n_prompt, m->n_ctx);
        e->code = "context_length_exceeded";
        return -1;
    }
    return 0;
}

srv_req *srv_req_parse(const srv_model_ref *m, int kind, const char *body, size_t len, srv_error *e) {
    memset(e, 0, sizeof *e);
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &endp, 0);
    if (!root) {
        size_t at = endp && endp >= body && endp <= body + len ? (size_t)(endp - body) : 0;
        srv_error_set(e, 400, "invalid_request_error", NULL, "the body is not valid JSON (near byte %zu)", at);
        return NULL;
    }
    srv_req *r = req_new(kind);
    if (!r) { cJSON_Delete(root); srv_error_set(e, 500, "server_error", NULL, "out of memory"); return NULL; }
    snprintf(r->model, sizeof r->model, "%s", m->name);
    int bad = 0;
    if (!cJSON_IsObject(root)) { srv_error_set(e, 400, "invalid_request_error", NULL, "the body must be a JSON object"); bad = 1; }
    else bad = parse_options(root, r, e) || parse_stop_bias(m, root, r, e) || parse_prompt(m, kind, root, r, e);
    cJSON_Delete(root);
    if (bad) { srv_req_free(r); return NULL; }
    return r;
}

/* ---- responses ---- */
static cJSON *usage_obj(const srv_req *r) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->n_gen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", r->n_cached);
    return u;
}

/* llama.cpp-style "timings" (not in OpenAI's API; clients ignore it), plus the engine's step
 * numbers: the prompt pieces took prefill_steps steps ending at prefill_end_step, and the tokens
 * were sampled one per step from prefill_end_step to last_step when no step skipped this request. */
static cJSON *timings_obj(const srv_req *r) {
    cJSON *t = cJSON_CreateObject();
    int pn = r->n_prompt - r->n_cached;
    double gen_ms = r->ms_total - r->ms_prefill;
    cJSON_AddNumberToObject(t, "prompt_n", pn);
    cJSON_AddNumberToObject(t, "prompt_ms", r->ms_prefill);
    cJSON_AddNumberToObject(t, "predicted_n", r->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", gen_ms);
    if (r->n_gen > 1 && gen_ms > 0) cJSON_AddNumberToObject(t, "predicted_per_second", (r->n_gen - 1) * 1e3 / gen_ms);
    cJSON_AddNumberToObject(t, "prefill_steps", r->prefill_steps);
    cJSON_AddNumberToObject(t, "prefill_end_step", (double)r->step_prefill_end);
    cJSON_AddNumberToObject(t, "last_step", (double)r->step_last);
    return t;
}

static cJSON *head(const srv_req *r, int chunk) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", r->kind == SRV_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddStringToObject(o, "system_fingerprint", "bitnet.c-" BITNET_VERSION);
    return o;
}

/* cJSON strings end at NUL: text with a NUL byte is cut there (the engine never stores one). */
static cJSON *str_n(const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (!t) return cJSON_CreateString("");
    memcpy(t, s, n); t[n] = 0;
    cJSON *j = cJSON_CreateString(t);
    free(t);
    return j;
}

char *srv_response_json(const srv_req *r) {
    cJSON *o = head(r, 0), *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SRV_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", str_n(r->text ? r->text : "", r->len));
    } else {
        cJSON_AddItemToObject(c, "text", str_n(r->text ? r->text : "", r->len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", r->finish ? r->finish : "stop");
    cJSON_AddItemToObject(o, "usage", usage_obj(r));
    cJSON_AddItemToObject(o, "timings", timings_obj(r));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *sse(cJSON *o) {
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!j) return NULL;
    size_t n = strlen(j);
    char *s = malloc(n + 9);
    if (s) { memcpy(s, "data: ", 6); memcpy(s + 6, j, n); memcpy(s + 6 + n, "\n\n", 3); }
    free(j);
    return s;
}

char *srv_chunk_sse(const srv_req *r, const char *text, size_t len, int final) {
    cJSON *o = head(r, 1), *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SRV_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (!r->role_sent) cJSON_AddStringToObject(d, "role", "assistant");
        if (!final || len) cJSON_AddItemToObject(d, "content", str_n(text ? text : "", len));
    } else {
        cJSON_AddItemToObject(c, "text", str_n(text ? text : "", len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (final) cJSON_AddStringToObject(c, "finish_reason", r->finish ? r->finish : "stop");
    else cJSON_AddNullToObject(c, "finish_reason");
    if (r->include_usage) cJSON_AddNullToObject(o, "usage");
    return sse(o);
}

char *srv_usage_sse(const srv_req *r) {
    cJSON *o = head(r, 1);
    cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToObject(o, "usage", usage_obj(r));
    cJSON_AddItemToObject(o, "timings", timings_obj(r));
    return sse(o);
}
