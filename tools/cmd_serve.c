/* cmd_serve.c — `bitnet serve`: an OpenAI-compatible HTTP server on libmicrohttpd.
 * Endpoints: POST /v1/chat/completions, POST /v1/completions (stream: true as server-sent
 * events ending with `data: [DONE]`), GET /v1/models, GET /health, and the chat page at GET /.
 * Every error is an OpenAI-style JSON body with a 4xx/5xx status. One thread per connection
 * (bounded by --max-connections); requests go to the engine (serve_engine.c), which decodes up
 * to --parallel of them together; a full queue is a 503 with Retry-After. A client that goes
 * away is noticed within ~50 ms (its socket is polled while it waits) and its slot freed.
 * SIGINT/SIGTERM: stop taking requests (503), finish the running and queued ones, exit 0; a
 * second signal cancels what is left. Binds 127.0.0.1 by default.
 * Not: TLS, HTTP/2, multiple models. Built only when pkg-config finds libmicrohttpd. */
#include "cli.h"
#include "args.h"
#include "serve.h"
#include "gen.h"
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    srv_engine *E;
    srv_model_ref m;
    const char *api_key;
    size_t max_body;
    atomic_int inflight;      /* completion requests an HTTP thread still holds */
    atomic_int draining;
    int n_parallel;
} server;

typedef struct conn {         /* per HTTP request */
    char *body; size_t len, cap;
    int too_big;
} conn;

/* ---- plain responses ---- */
static enum MHD_Result send_body(struct MHD_Connection *c, int status, const char *ctype, const char *body, size_t len,
                                 const char *h1, const char *v1) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (h1) MHD_add_response_header(resp, h1, v1);
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}
static enum MHD_Result send_json(struct MHD_Connection *c, int status, char *json, const char *h1, const char *v1) {
    if (!json) return send_body(c, 500, "application/json", "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}", 84, NULL, NULL);
    enum MHD_Result r = send_body(c, status, "application/json", json, strlen(json), h1, v1);
    free(json);
    return r;
}
static enum MHD_Result send_error(struct MHD_Connection *c, const srv_error *e) {
    const char *h = NULL, *v = NULL;
    if (e->status == 503) { h = "Retry-After"; v = "1"; }
    else if (e->status == 401) { h = "WWW-Authenticate"; v = "Bearer"; }
    return send_json(c, e->status, srv_error_json(e), h, v);
}
static enum MHD_Result fail(struct MHD_Connection *c, int status, const char *type, const char *fmt, const char *arg) {
    srv_error e; srv_error_set(&e, status, type, NULL, fmt, arg);
    return send_error(c, &e);
}

/* 1 if the client closed its side (or the socket failed). */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    char b;
    return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* ---- streaming ---- */
typedef struct stream {
    server *S;
    srv_req *r;
    struct MHD_Connection *c;
    size_t have;              /* bytes of r->text turned into events */
    char *out; size_t olen, ooff; /* events not yet handed to MHD */
    int finished;             /* the closing events are in out */
} stream;

static int out_add(stream *s, char *ev) {
    if (!ev) return -1;
    size_t n = strlen(ev);
    char *t = realloc(s->out, s->olen + n);
    if (!t) { free(ev); return -1; }
    s->out = t; memcpy(s->out + s->olen, ev, n); s->olen += n;
    free(ev);
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *s = cls;
    (void)pos;
    while (s->ooff == s->olen) {
        if (s->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        s->olen = s->ooff = 0;
        char *snap; size_t n;
        int done = srv_engine_wait(s->S->E, s->r, s->have, 50, &snap, &n);
        if (n) {
            s->have += n;
            int bad = out_add(s, srv_chunk_sse(s->r, snap, n, 0));
            s->r->role_sent = 1;
            free(snap);
            if (bad) return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (done) {
            if (s->r->err.status) {
                char *j = srv_error_json(&s->r->err), *ev = j ? malloc(strlen(j) + 9) : NULL;
                if (ev) sprintf(ev, "data: %s\n\n", j);
                free(j);
                out_add(s, ev);
            } else {
                out_add(s, srv_chunk_sse(s->r, NULL, 0, 1));
                if (s->r->include_usage) out_add(s, srv_usage_sse(s->r));
            }
            out_add(s, strdup("data: [DONE]\n\n"));
            s->finished = 1;
        } else if (!n && client_gone(s->c)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t k = s->olen - s->ooff < max ? s->olen - s->ooff : max;
    memcpy(buf, s->out + s->ooff, k);
    s->ooff += k;
    return (ssize_t)k;
}

static void stream_free(void *cls) {
    stream *s = cls;
    srv_engine_release(s->S->E, s->r, !s->finished);
    atomic_fetch_sub(&s->S->inflight, 1);
    free(s->out);
    free(s);
}

/* ---- completions ---- */
static enum MHD_Result completion(server *S, struct MHD_Connection *c, int kind, conn *k) {
    srv_error e;
    srv_req *r = srv_req_parse(&S->m, kind, k->body ? k->body : "", k->len, &e);
    if (!r) return send_error(c, &e);
    if (srv_engine_submit(S->E, r, &e)) { srv_req_free(r); return send_error(c, &e); }
    atomic_fetch_add(&S->inflight, 1);
    if (r->stream) {
        stream *s = calloc(1, sizeof *s);
        if (!s) { srv_engine_release(S->E, r, 1); atomic_fetch_sub(&S->inflight, 1); return MHD_NO; }
        s->S = S; s->r = r; s->c = c;
        if (kind == SRV_CHAT) { out_add(s, srv_chunk_sse(r, "", 0, 0)); r->role_sent = 1; }
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        if (!resp) { stream_free(s); return MHD_NO; }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result res = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return res;
    }
    /* not streamed: this connection's thread waits for the end (the engine signals only that),
     * watching for a hang-up every 50 ms */
    size_t have = 0;
    char *snap; size_t n;
    int gone = 0;
    while (!srv_engine_wait(S->E, r, have, 50, &snap, &n)) {
        have += n; free(snap);
        if (client_gone(c)) { gone = 1; break; }
    }
    free(snap);
    enum MHD_Result res = MHD_NO;
    if (!gone) res = r->err.status ? send_error(c, &r->err) : send_json(c, 200, srv_response_json(r), NULL, NULL);
    srv_engine_release(S->E, r, gone);
    atomic_fetch_sub(&S->inflight, 1);
    return res;
}

static char *models_json(server *S) {
    char *s = malloc(512 + strlen(S->m.name));
    if (s) sprintf(s, "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"bitnet.c\",\"meta\":{\"n_ctx\":%d,\"vocab_size\":%d}}]}",
                   S->m.name, (long long)time(NULL), S->m.n_ctx, S->m.vocab);
    return s;
}

static int key_ok(server *S, struct MHD_Connection *c) {
    if (!S->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(S->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)h[i] ^ (unsigned char)S->api_key[i % (b ? b : 1)];
    return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **con_cls) {
    server *S = cls;
    (void)version;
    conn *k = *con_cls;
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    int cmpl = !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
    if (!k) {   /* headers are in: check what can be checked before the body */
        if (!(k = calloc(1, sizeof *k))) return MHD_NO;
        *con_cls = k;
        if (!strncmp(url, "/v1/", 4) && !key_ok(S, c)) {
            srv_error e; srv_error_set(&e, 401, "authentication_error", NULL, "%s", "invalid or missing API key (send Authorization: Bearer KEY)");
            e.code = "invalid_api_key";
            return send_error(c, &e);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > S->max_body) k->too_big = 1;
        return MHD_YES;
    }
    if (*data_size) {   /* a piece of the body */
        if (!k->too_big && k->len + *data_size > S->max_body) k->too_big = 1;
        if (!k->too_big) {
            if (k->len + *data_size + 1 > k->cap) {
                size_t cap = k->cap ? k->cap : 4096;
                while (cap < k->len + *data_size + 1) cap *= 2;
                char *t = realloc(k->body, cap);
                if (!t) return MHD_NO;
                k->body = t; k->cap = cap;
            }
            memcpy(k->body + k->len, data, *data_size);
            k->len += *data_size;
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (k->too_big) {
        char lim[64]; snprintf(lim, sizeof lim, "%zu", S->max_body);
        return fail(c, 413, "invalid_request_error", "the request body is larger than the limit of %s bytes (--max-body)", lim);
    }
    if (chat || cmpl) {
        if (!post) return send_json(c, 405, strdup("{\"error\":{\"message\":\"use POST\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}"), "Allow", "POST");
        return completion(S, c, chat ? SRV_CHAT : SRV_COMPLETION, k);
    }
    int models = !strcmp(url, "/v1/models") || !strcmp(url, "/models"), health = !strcmp(url, "/health");
    int page = !strcmp(url, "/") || !strcmp(url, "/index.html");
    if (models || health || page) {
        if (!get) return send_json(c, 405, strdup("{\"error\":{\"message\":\"use GET\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}"), "Allow", "GET, HEAD");
        if (page) return send_body(c, 200, "text/html; charset=utf-8", (const char *)serve_page, serve_page_len, "Cache-Control", "no-cache");
        if (models) return send_json(c, 200, models_json(S), NULL, NULL);
        int busy, idle, queued;
        srv_engine_counts(S->E, &busy, &idle, &queued);
        srv_engine_stat es;
        srv_engine_stats(S->E, &es);
        char *j = malloc(512);
        if (j) snprintf(j, 512, "{\"status\":\"%s\",\"slots_idle\":%d,\"slots_processing\":%d,\"queued\":%d,"
                        "\"tokens_generated\":%lld,\"decode_steps\":%lld,\"engine\":{\"batch_rows\":%lld,\"sampled\":%lld,"
                        "\"decode_ms\":%.3f,\"sample_ms\":%.3f,\"stream_ms\":%.3f,\"idle_ms\":%.3f,\"wakeups\":%lld,\"greedy_steps\":%lld}}",
                        atomic_load(&S->draining) ? "shutting down" : "ok", idle, busy, queued, es.tokens, es.steps,
                        es.rows, es.sampled, es.ms_decode, es.ms_sample, es.ms_stream, es.ms_idle, es.wakeups, es.steps_greedy);
        return send_json(c, atomic_load(&S->draining) ? 503 : 200, j, NULL, NULL);
    }
    return fail(c, 404, "invalid_request_error", "no such endpoint: %s", url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode tc) {
    (void)cls; (void)c; (void)tc;
    conn *k = *con_cls;
    if (k) { free(k->body); free(k); }
    *con_cls = NULL;
}

static const char *base_name(const char *dir, char *buf, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(buf, cap, "%.*s", (int)(n - b), dir + b);
    return buf;
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *host = "127.0.0.1", *api_key = NULL, *device = "cpu", *head = "exact", *alias = NULL, *tmpl_s = NULL;
    gen_sampling lo = {0};   /* only its --lora list is used */
    int port = 8080, parallel = 4, n_ctx = 0, threads = 0, sample_threads = 0, queue = 64, chunk = 64, max_conn = 256, max_body_kib = 1024;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder (config.json, model.safetensors, tokenizer)"),
        OPT_STR(0, "host", &host, "ADDR", "IPv4 address to listen on (default 127.0.0.1: this machine only)"),
        OPT_INT(0, "port", 0, 65535, &port, "N", "TCP port (0: any free port; the log line says which)"),
        OPT_INT(0, "parallel|np", 1, 256, &parallel, "N", "requests decoded together (slots)"),
        OPT_INT('c', "ctx-size", 0, 1 << 24, &n_ctx, "N", "context length per slot (0 = the model's, at most 4096; default 0)"),
        OPT_INT('t', "threads", 0, 512, &threads, "N", "threads (0 = the physical cores; default 0)"),
        OPT_INT(0, "sample-threads", 0, 256, &sample_threads, "N", "threads that sample a step's requests in parallel (0 = min(--parallel, -t); default 0)"),
        OPT_STR(0, "device", &device, "cpu|cuda|cuda:N", "where the model runs (default cpu; bitnet info --devices lists them)"),
        OPT_CHOICE(0, "head", &head, "exact|q8|q4", "LM head precision"),
        OPT_STR(0, "api-key", &api_key, "KEY", "require Authorization: Bearer KEY on /v1/ endpoints"),
        OPT_STR(0, "alias", &alias, "NAME", "model id in responses (default: the folder's name)"),
        OPT_CHOICE(0, "chat-template", &tmpl_s, "bitnet|llama3|plain", "chat template (default: from tokenizer_config.json)"),
        OPT_INT(0, "queue", 0, 1 << 20, &queue, "N", "requests that may wait for a slot before 503"),
        OPT_INT(0, "chunk|batch-size", 1, 4096, &chunk, "N", "prompt tokens per slot per step (prefill chunk)"),
        OPT_INT(0, "max-body", 1, 1 << 20, &max_body_kib, "KIB", "largest request body in KiB (413 beyond)"),
        OPT_INT(0, "max-connections", 1, 65536, &max_conn, "N", "open connections at most"),
        OPT_FUNC(0, "lora", gen_parse_lora, &lo, "DIR", "apply the PEFT LoRA adapter in DIR to every request (repeatable)"),
        OPT_FUNC(0, "lora-scale", gen_parse_lora_scale, &lo, "S", "scale of the --lora before it (1)"),
        OPT_END,
    };
    args_spec spec = {"serve",
        "usage: bitnet serve -m MODEL_DIR [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX] [-t THREADS] [--device cpu|cuda] [--api-key KEY] [--lora DIR [--lora-scale S]]...\n"
        "  OpenAI-compatible server: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health;\n"
        "  a chat page at http://HOST:PORT/\n",
        {opts}, {"options"}, 0};
    int ar = args_parse(&spec, argc, argv, NULL, NULL);
    if (ar != ARGS_OK) return ar == ARGS_HELP ? 0 : 2;
    if (!model) return args_error(&spec, "need -m MODEL_DIR"), 2;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return args_error(&spec, "--host needs an IPv4 address like 127.0.0.1, got '%s'", host), 2;

    bitnet_model *m = NULL; bitnet_tokenizer *tok = NULL; srv_engine *E = NULL; struct MHD_Daemon *d = NULL;
    int rc = 1;
    if (cli_load_model_on(model, device, &m)) { cli_fail("cannot load the model"); goto done; }
    for (int i = 0; i < lo.n_lora; i++)
        if (bitnet_model_load_lora(m, lo.lora[i], lo.lora_scale[i])) { cli_fail("--lora"); goto done; }
    if (strcmp(head, "exact") && bitnet_model_set_head(m, !strcmp(head, "q8") ? BITNET_HEAD_Q8 : BITNET_HEAD_Q4)) { cli_fail("--head"); goto done; }
    if (bitnet_tokenizer_load(model, &tok)) { cli_fail("tokenizer"); goto done; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    if (bitnet_tokenizer_vocab_size(tok) > info.vocab_size) {
        fprintf(stderr, "bitnet serve: %s: the tokenizer has %d tokens but the model's vocabulary is %d\n", model, bitnet_tokenizer_vocab_size(tok), info.vocab_size);
        goto done;
    }
    if (n_ctx > info.max_seq_len) { fprintf(stderr, "bitnet serve: -c %d exceeds the model's %d positions\n", n_ctx, info.max_seq_len); goto done; }
    if (n_ctx == 0) n_ctx = info.max_seq_len < 4096 ? info.max_seq_len : 4096;
    bitnet_chat_template tmpl;
    if (tmpl_s) bitnet_chat_template_from_name(tmpl_s, &tmpl);
    else if (bitnet_chat_template_detect(model, &tmpl)) { cli_fail("chat template"); goto done; }
    if (threads == 0) threads = bitnet_physical_cores();
    if (sample_threads == 0) sample_threads = threads < parallel ? threads : parallel;

    char name[128];
    static server S;
    S.m = (srv_model_ref){.tok = tok, .vocab = info.vocab_size, .n_ctx = n_ctx, .chat_template = (int)tmpl,
                          .name = alias ? alias : base_name(model, name, sizeof name)};
    S.api_key = api_key; S.max_body = (size_t)max_body_kib * 1024; S.n_parallel = parallel;
    if (queue < 1) queue = 1;
    srv_engine_params ep = {.model = m, .tok = tok, .n_parallel = parallel, .n_ctx = n_ctx, .n_threads = threads,
                            .queue_max = queue, .chunk = chunk, .n_sample_threads = sample_threads};
    /* signals are taken by sigtimedwait below; every thread started from here inherits the mask */
    sigset_t sigs; sigemptyset(&sigs); sigaddset(&sigs, SIGINT); sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (srv_engine_start(&ep, &E)) { cli_fail("cannot start the engine"); goto done; }
    S.E = E;
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handle, &S,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_END);
    if (!d) { fprintf(stderr, "bitnet serve: cannot listen on %s:%d: %s\n", host, port, strerror(errno)); goto done; }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "bitnet serve: listening on http://%s:%u (model %s on %s, %d slots of %d tokens, %d threads, %d sampling, chat template %s)\n",
            host, di ? di->port : (unsigned)port, S.m.name, device, parallel, n_ctx, threads, sample_threads, bitnet_chat_template_name(tmpl));
    for (;;) {   /* wait for SIGINT/SIGTERM */
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGINT || sig == SIGTERM) break;
    }
    fprintf(stderr, "bitnet serve: shutting down: finishing %d request(s); a second signal cancels them\n", srv_engine_pending(E));
    atomic_store(&S.draining, 1);
    srv_engine_drain(E);
    struct timespec tick = {0, 20 * 1000000L};
    while (srv_engine_pending(E) > 0 || atomic_load(&S.inflight) > 0) {
        if (sigtimedwait(&sigs, NULL, &tick) > 0) { fprintf(stderr, "bitnet serve: cancelling\n"); break; }
    }
    srv_engine_stat es; srv_engine_stats(E, &es);
    fprintf(stderr, "bitnet serve: stopped (%lld tokens generated in %lld steps; engine thread: %.0f ms in the forward, "
            "%.0f ms sampling, %.0f ms streaming, %.0f ms idle)\n", es.tokens, es.steps, es.ms_decode, es.ms_sample, es.ms_stream, es.ms_idle);
    rc = 0;
done:
    if (E) srv_engine_halt(E);   /* what is left fails; the connection threads then end */
    if (d) MHD_stop_daemon(d);
    srv_engine_free(E);
    bitnet_tokenizer_free(tok);
    bitnet_model_free(m);
    return rc;
}
