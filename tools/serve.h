/* serve.h — the pieces of `bitnet serve` (an OpenAI-compatible HTTP server): a request parsed
 * and validated from its JSON body (serve_api.c), the engine that decodes up to --parallel
 * requests together (serve_engine.c), and the HTTP layer on libmicrohttpd (cmd_serve.c).
 * Uses only the public bitnet.h. Not: a general web server (no TLS, no keep-alive tuning). */
#ifndef BITNET_SERVE_H
#define BITNET_SERVE_H
#include "bitnet.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum { SRV_CHAT = 0, SRV_COMPLETION = 1 };
enum { SRV_MAX_STOP = 4 };

/* An OpenAI-style error: HTTP status, message, type and the offending param (may be NULL). */
typedef struct srv_error {
    int status;
    char message[512];
    const char *type;   /* "invalid_request_error", "authentication_error", "server_error", ... */
    char param[64];
    const char *code;   /* NULL or a short code ("context_length_exceeded") */
} srv_error;

/* One request from HTTP to the engine and back. Fields up to `state` are set by the parser and
 * read-only afterwards; the state below is guarded by the engine's mutex. */
typedef struct srv_req {
    int kind;                 /* SRV_CHAT or SRV_COMPLETION */
    int stream, include_usage;
    int max_tokens;           /* -1: until the context is full */
    int ignore_eos;           /* llama.cpp's "ignore_eos": an end-of-generation token does not end the request */
    bitnet_sampler_params sp;
    bitnet_logit_bias *bias; int n_bias;
    char *stop[SRV_MAX_STOP]; int n_stop;
    char *prompt_text;        /* rendered prompt (chat: the template applied), or NULL with ids */
    int32_t *prompt; int n_prompt; /* tokens (BOS included where it belongs) */
    char model[128];
    char id[48];
    long long created;
    /* ---- state ---- */
    char *text; size_t len, cap;  /* text released to the client so far (stop strings cut) */
    size_t sent;                  /* bytes of text the HTTP side has written */
    int done;                     /* 1: finished (finish_reason set) or failed (err.status) */
    const char *finish;           /* "stop" or "length" */
    int n_gen, n_cached;          /* completion tokens; prompt tokens reused from the slot's cache */
    /* engine steps (E->step numbering, 1-based) and times (ms since admission): for "timings" */
    int prefill_steps;            /* steps that fed a piece of the prompt */
    long long step_prefill_end;   /* the step of the last prompt piece (the first token's) */
    long long step_last;          /* the step that sampled the last token */
    double t_admit, ms_prefill, ms_total; /* admission (engine clock, ms); prefill and total time */
    int cancelled;                /* the client went away: the engine drops it at the next step */
    int refs;                     /* HTTP side + engine side; freed at 0 */
    int role_sent;                /* streaming chat: the first delta (role) went out */
    srv_error err;                /* err.status != 0: failed */
    pthread_cond_t cv;            /* signalled when text grows or done is set */
} srv_req;

/* ---- serve_api.c: JSON in and out ---- */
typedef struct srv_model_ref {
    const bitnet_tokenizer *tok;
    int vocab, n_ctx;
    int chat_template;        /* bitnet_chat_template */
    const char *name;         /* model id for responses */
} srv_model_ref;
/* Parse and validate a request body (len bytes, not NUL-terminated) of kind SRV_CHAT or
 * SRV_COMPLETION into a new request (refs = 1). On a bad body returns NULL and fills *e (400). */
srv_req *srv_req_parse(const srv_model_ref *m, int kind, const char *body, size_t len, srv_error *e);
void srv_req_free(srv_req *r);
/* Set *e to an error (status, type, param may be NULL, printf-style message). */
void srv_error_set(srv_error *e, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The JSON body of an error ({"error": {...}}), malloc'd. */
char *srv_error_json(const srv_error *e);
/* The non-streamed response body of a finished request (with usage, and llama.cpp-style
 * "timings" carrying the engine's step numbers), malloc'd. */
char *srv_response_json(const srv_req *r);
/* One SSE event "data: {...}\n\n" for a streamed request: a text delta (text[len]), or with
 * final = 1 the closing chunk carrying finish_reason; malloc'd. */
char *srv_chunk_sse(const srv_req *r, const char *text, size_t len, int final);
/* The usage chunk (stream_options.include_usage; with "timings" too), malloc'd. */
char *srv_usage_sse(const srv_req *r);

/* ---- serve_engine.c: slots and continuous batching ---- */
typedef struct srv_engine srv_engine;
typedef struct srv_engine_params {
    const bitnet_model *model;
    const bitnet_tokenizer *tok;
    int n_parallel, n_ctx, n_threads;
    int queue_max;            /* requests waiting for a slot before 503 */
    int chunk;                /* prompt tokens per slot per step (prefill chunk) */
    int n_sample_threads;     /* threads that sample the slots of a step (the engine's own included; >= 1) */
} srv_engine_params;
/* Start the engine thread. Prints nothing; returns a status (bn errors in bitnet_last_error). */
bitnet_status srv_engine_start(const srv_engine_params *p, srv_engine **out);
/* Queue a request (the engine takes a reference). Returns 0, or fills *e (503 queue full or
 * draining, 400 prompt too long) and returns -1. */
int srv_engine_submit(srv_engine *E, srv_req *r, srv_error *e);
/* Wait until r has more text than `have` bytes or is done, or timeout_ms passes (the engine
 * signals a streamed request when its text grows, a non-streamed one only when it is done, so
 * the latter sees growth only at a timeout); returns with
 * the engine lock released. *snap gets a copy of the new text (malloc'd, caller frees) and its
 * length; returns 1 when r is done (after this text), else 0. */
int srv_engine_wait(srv_engine *E, srv_req *r, size_t have, int timeout_ms, char **snap, size_t *snap_len);
/* The client is gone: the engine frees r's slot at its next step. Drops the HTTP reference. */
void srv_engine_release(srv_engine *E, srv_req *r, int cancel);
/* Counts for /health. */
void srv_engine_counts(srv_engine *E, int *busy, int *idle, int *queued);
/* Refuse new requests (503) from now on. */
void srv_engine_drain(srv_engine *E);
/* Requests active or queued. */
int srv_engine_pending(srv_engine *E);
/* Stop the thread: requests still running or queued fail (503/499). Requests stay valid. */
void srv_engine_halt(srv_engine *E);
/* Free the engine (after srv_engine_halt and after every HTTP thread has released its requests). */
void srv_engine_free(srv_engine *E);
/* The engine's counters since it started (for /health and the log): where its thread's time went. */
typedef struct srv_engine_stat {
    long long tokens, steps;  /* tokens generated, decode steps */
    long long rows, sampled;  /* batch entries fed, and slots that sampled a token, over all steps */
    double ms_decode;         /* in bitnet_ctx_decode (the batched forward) */
    double ms_sample;         /* sampling and detokenizing the new tokens */
    double ms_stream;         /* their text to the requests (stop strings, under the lock), waking the HTTP threads */
    double ms_idle;           /* waiting for a request (no slot busy) */
    long long steps_greedy;   /* steps run by bitnet_ctx_decode_greedy (every sampling slot greedy: ids only) */
    long long wakeups;        /* HTTP threads woken (streamed text, a finished request) */
} srv_engine_stat;
void srv_engine_stats(srv_engine *E, srv_engine_stat *st);

/* ---- serve_page.c (generated from serve_page.html) ---- */
extern const unsigned char serve_page[];
extern const size_t serve_page_len;
#endif
