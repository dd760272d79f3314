/* chat.c — chat templates (include/bitnet.h "chat templates"): which of the known formats a
 * model's tokenizer_config.json chat_template is, and rendering OpenAI-style messages in it,
 * byte for byte as the Jinja template renders them (BOS text left to the tokenizer).
 * Not: a Jinja interpreter; templates other than the 2B-4T and Llama 3 ones are PLAIN. */
#include "core/util.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>

bitnet_chat_template bitnet_chat_template_from_jinja(const char *j) {
    if (!j) return BITNET_CHAT_PLAIN;
    if (strstr(j, "<|start_header_id|>")) return BITNET_CHAT_LLAMA3;
    if (strstr(j, "<|eot_id|>") && strstr(j, "Assistant: ")) return BITNET_CHAT_BITNET;
    return BITNET_CHAT_PLAIN;
}

/* The template string of a parsed tokenizer_config.json: "chat_template" is a string, or a list
 * of {"name", "template"} (HF's named templates: "default", else the first). NULL if none. */
static const char *config_template(const cJSON *root) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsString(ct)) return ct->valuestring;
    if (!cJSON_IsArray(ct)) return NULL;
    const char *first = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, ct) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name"), *t = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (!cJSON_IsString(t)) continue;
        if (cJSON_IsString(name) && !strcmp(name->valuestring, "default")) return t->valuestring;
        if (!first) first = t->valuestring;
    }
    return first;
}

bitnet_status bitnet_chat_template_detect(const char *path, bitnet_chat_template *out) {
    *out = BITNET_CHAT_PLAIN;
    if (!path) return bn_err(BITNET_ERR_ARG, "chat template: no path");
    char *file = bn_is_dir(path) ? bn_path_join(path, "tokenizer_config.json") : strdup(path);
    if (!file) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!bn_file_exists(file)) { free(file); return BITNET_OK; }
    char *text = NULL; size_t len = 0;
    bitnet_status s = bn_read_file(file, &text, &len);
    if (s) { bn_err_prefix(s, file); free(file); return s; }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        s = bn_err(BITNET_ERR_FORMAT, "%s: not a JSON object", file);
        free(file);
        return s;
    }
    *out = bitnet_chat_template_from_jinja(config_template(root));
    cJSON_Delete(root);
    free(file);
    return BITNET_OK;
}

static const char *const names[] = {"plain", "bitnet", "llama3"};

const char *bitnet_chat_template_name(bitnet_chat_template t) {
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

bitnet_status bitnet_chat_template_from_name(const char *name, bitnet_chat_template *out) {
    for (int i = 0; name && i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(name, names[i])) { *out = (bitnet_chat_template)i; return BITNET_OK; }
    return bn_err(BITNET_ERR_ARG, "unknown chat template '%s' (plain, bitnet, llama3)", name ? name : "(null)");
}

/* A growing string. */
typedef struct { char *b; size_t n, cap; int oom; } sbuf;
static void put(sbuf *s, const char *p, size_t n) {
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t cap = (s->n + n + 1) * 2;
        char *b = realloc(s->b, cap);
        if (!b) { s->oom = 1; return; }
        s->b = b; s->cap = cap;
    }
    memcpy(s->b + s->n, p, n); s->n += n; s->b[s->n] = 0;
}
static void puts_(sbuf *s, const char *p) { put(s, p, strlen(p)); }
/* Jinja's capitalize (Python str.capitalize, ASCII): first letter upper, the rest lower. */
static void put_capitalized(sbuf *s, const char *r) {
    for (size_t i = 0; r[i]; i++) {
        char c = (char)(i ? tolower((unsigned char)r[i]) : toupper((unsigned char)r[i]));
        put(s, &c, 1);
    }
}
/* Jinja's trim: without leading and trailing whitespace. */
static void put_trimmed(sbuf *s, const char *c) {
    size_t a = 0, b = strlen(c);
    while (a < b && isspace((unsigned char)c[a])) a++;
    while (b > a && isspace((unsigned char)c[b - 1])) b--;
    put(s, c + a, b - a);
}

bitnet_status bitnet_chat_apply(bitnet_chat_template t, const bitnet_chat_message *msgs, int n, int add_assistant,
                                char **out) {
    *out = NULL;
    if ((unsigned)t >= sizeof names / sizeof *names) return bn_err(BITNET_ERR_ARG, "chat template %d is unknown", (int)t);
    if (n < 0 || (n > 0 && !msgs)) return bn_err(BITNET_ERR_ARG, "chat: %d messages at %p", n, (const void *)msgs);
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].role[0] || !msgs[i].content)
            return bn_err(BITNET_ERR_ARG, "chat: message %d has no %s", i, msgs[i].content ? "role" : "content");
    sbuf s = {0};
    put(&s, "", 0);
    for (int i = 0; i < n; i++) {
        const bitnet_chat_message *m = &msgs[i];
        if (t == BITNET_CHAT_LLAMA3) {
            puts_(&s, "<|start_header_id|>"); puts_(&s, m->role); puts_(&s, "<|end_header_id|>\n\n");
            put_trimmed(&s, m->content); puts_(&s, "<|eot_id|>");
        } else {
            put_capitalized(&s, m->role); puts_(&s, ": "); puts_(&s, m->content);
            puts_(&s, t == BITNET_CHAT_BITNET ? "<|eot_id|>" : "\n");
        }
    }
    if (add_assistant)
        puts_(&s, t == BITNET_CHAT_LLAMA3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n"
                  : t == BITNET_CHAT_BITNET ? "Assistant: " : "Assistant:");
    if (s.oom) { free(s.b); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    *out = s.b;
    return BITNET_OK;
}
