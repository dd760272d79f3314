/* serve_engine.c — the decoding side of `bitnet serve`: --parallel slots, a bounded FIFO of
 * waiting requests, and one engine thread that runs every active slot forward together, step
 * by step (continuous batching): a newcomer joins between steps, its prompt fed in chunks of at
 * most `chunk` tokens per step so running streams keep flowing; a finished or cancelled request
 * leaves its slot at once. Each slot remembers the tokens in its KV cache, and a request is
 * placed in the free slot sharing the longest prefix with its prompt, which is reused (prompt
 * caching: a chat that extends the slot's previous conversation only evaluates the new turn).
 * Stop strings are matched on the generated text across token boundaries: text that could be
 * the start of a stop string is held back until it cannot. A step whose sampling slots are all
 * greedy (temperature 0, no bias, no penalties) runs bitnet_ctx_decode_greedy (on a GPU only
 * the ids come back); any other step copies the logits rows and samples the slots in parallel
 * on n_sample_threads threads (each slot's sampler, detokenizer and row are its own, so the
 * draws are those of one thread). Not: the HTTP layer (cmd_serve.c). */
#include "serve.h"
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    srv_req *r;               /* NULL: free */
    int32_t *cache; int n_cache; /* the tokens in this slot's KV cache, in order */
    int n_fed;                /* prompt tokens of r in the cache */
    int pending;              /* sampled id to feed at the next step (-1: none) */
    bitnet_sampler *smp;
    bitnet_detok *dt;
    char *gen; size_t glen, gcap; /* generated text (before stop-string cutting) */
    size_t released;          /* bytes of gen handed to r->text */
    long long used;           /* step it was last given a request (least recently used wins ties) */
    /* this step */
    int n_in, want;           /* tokens fed, whether its logits are needed */
    int row;                  /* its logits row this step (want only) */
    int tok;                  /* the sampled id (-1: end of text), step_sample */
    const char *piece;        /* its text (the detokenizer's, valid until its next call) */
    int wake;                 /* r->text grew: wake its HTTP thread after the lock is released */
} slot;

struct srv_engine {
    srv_engine_params p;
    int vocab;
    bitnet_ctx *ctx;          /* one context, a sequence per slot */
    slot *slots;
    float *logits;            /* [n_parallel][vocab] */
    int32_t *next;            /* [n_parallel] greedy ids of a greedy step, by row */
    int32_t *b_tok, *b_seq; int8_t *b_want; /* the step's batch */
    srv_req **queue; int q_head, q_len;
    int draining, stop, busy;
    long long step, tokens;
    srv_engine_stat st;       /* tokens/steps are the two fields above, filled on reading */
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_t th;
    /* parallel sampling: the step's slots to sample, handed out under smu */
    pthread_mutex_t smu;
    pthread_cond_t s_go, s_fin;
    int *s_list, s_n, s_next, s_done, s_quit;
    pthread_t *s_th; int n_s_th;   /* the n_sample_threads - 1 helper threads started */
};

static void req_unref(srv_req *r) { if (--r->refs == 0) srv_req_free(r); }   /* under mu */

static double now_ms(void) { return cli_time() * 1e3; }

/* Append n bytes to r->text (under mu). NUL bytes are dropped (the JSON writer would cut there). */
static int req_append(srv_req *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1) cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t) return -1;
        r->text = t; r->cap = cap;
    }
    for (size_t i = 0; i < n; i++) if (s[i]) r->text[r->len++] = s[i];
    r->text[r->len] = 0;
    return 0;
}

static void slot_clear(slot *s) {
    bitnet_sampler_free(s->smp); s->smp = NULL;
    bitnet_detok_free(s->dt); s->dt = NULL;
    s->r = NULL; s->glen = s->released = 0; s->pending = -1; s->n_fed = 0;
}

/* Finish the slot's request (under mu): reason "stop"/"length", or an error when status != 0. */
static void slot_finish(srv_engine *E, slot *s, const char *reason, int status, const char *msg) {
    srv_req *r = s->r;
    if (!r) return;
    if (status) srv_error_set(&r->err, status, "server_error", NULL, "%s", msg);
    else {
        req_append(r, s->gen + s->released, s->glen - s->released);   /* nothing is held back now */
        r->finish = reason;
    }
    r->ms_total = now_ms() - r->t_admit;
    r->done = 1;
    pthread_cond_broadcast(&r->cv); E->st.wakeups++;
    req_unref(r);
    slot_clear(s);
    E->busy--;
}

/* Longest k such that the last k bytes of g[from..n) are a proper prefix of some stop string. */
static size_t holdback(const srv_req *r, const char *g, size_t from, size_t n) {
    size_t best = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t L = strlen(r->stop[i]);
        for (size_t k = L - 1; k > best; k--)
            if (k <= n - from && !memcmp(g + n - k, r->stop[i], k)) { best = k; break; }
    }
    return best;
}

/* A new piece of text for slot s (under mu): append, cut at a stop string, release what is safe.
 * Returns 1 if a stop string ended the request. */
static int slot_text(srv_engine *E, slot *s, const char *piece) {
    srv_req *r = s->r;
    size_t n = strlen(piece);
    if (s->glen + n + 1 > s->gcap) {
        size_t cap = s->gcap ? s->gcap * 2 : 256;
        while (cap < s->glen + n + 1) cap *= 2;
        char *t = realloc(s->gen, cap);
        if (!t) { slot_finish(E, s, NULL, 500, "out of memory"); return 1; }
        s->gen = t; s->gcap = cap;
    }
    memcpy(s->gen + s->glen, piece, n + 1);
    size_t old = s->glen;
    s->glen += n;
    /* a stop string can only end inside the new piece, so it starts at most maxlen-1 before it */
    size_t best = (size_t)-1;
    for (int i = 0; i < r->n_stop; i++) {
        size_t L = strlen(r->stop[i]);
        size_t from = old + 1 > L ? old + 1 - L : 0;
        if (from < s->released) from = s->released;
        for (size_t p = from; p + L <= s->glen; p++)
            if (!memcmp(s->gen + p, r->stop[i], L)) { if (p < best) best = p; break; }
    }
    if (best != (size_t)-1) {
        s->glen = best;
        s->gen[best] = 0;
        slot_finish(E, s, "stop", 0, NULL);
        return 1;
    }
    size_t keep = holdback(r, s->gen, s->released, s->glen);
    if (s->glen - keep > s->released) {
        if (req_append(r, s->gen + s->released, s->glen - keep - s->released)) { slot_finish(E, s, NULL, 500, "out of memory"); return 1; }
        s->released = s->glen - keep;
        s->wake = r->stream;   /* a non-streamed request's thread waits for the end (slot_finish) */
    }
    return 0;
}

static int lcp(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* Give queued requests free slots (under mu). */
static void admit(srv_engine *E) {
    while (E->q_len > 0 && E->busy < E->p.n_parallel) {
        srv_req *r = E->queue[E->q_head];
        E->q_head = (E->q_head + 1) % E->p.queue_max; E->q_len--;
        if (r->cancelled) { r->done = 1; req_unref(r); continue; }
        int bi = -1, bl = -1;
        for (int i = 0; i < E->p.n_parallel; i++) {
            slot *s = &E->slots[i];
            if (s->r) continue;
            int l = lcp(s->cache, s->n_cache, r->prompt, r->n_prompt);
            if (l > bl || (l == bl && s->used < E->slots[bi].used)) { bi = i; bl = l; }
        }
        slot *s = &E->slots[bi];
        if (bl >= r->n_prompt) bl = r->n_prompt - 1;   /* the last prompt token is fed again for its logits */
        bitnet_ctx_seq_truncate(E->ctx, bi, bl);
        s->n_cache = bl;
        s->r = r; s->n_fed = bl; s->pending = -1; s->used = E->step; s->glen = s->released = 0;
        r->n_cached = bl;
        r->t_admit = now_ms();
        E->busy++;
        if (bitnet_sampler_new(&r->sp, E->vocab, &s->smp) || bitnet_detok_new(E->p.tok, &s->dt)) {
            slot_finish(E, s, NULL, 500, bitnet_last_error());
            continue;
        }
        for (int i = 0; i < r->n_prompt; i++) bitnet_sampler_accept(s->smp, r->prompt[i]);
    }
}

/* Whether the sampler of r picks the largest logit, lowest id first: what decode_greedy returns. */
static int req_greedy(const srv_req *r) {
    const bitnet_sampler_params *p = &r->sp;
    return p->temperature <= 0.f && p->n_logit_bias == 0 && p->repeat_penalty == 1.0f &&
           p->frequency_penalty == 0.f && p->presence_penalty == 0.f;
}

/* Slot s's token id (from its sampler on its logits row, or the greedy id when lg is NULL):
 * s->tok gets the id (-1: end of text, unless the request ignores it, or nothing pickable) and
 * s->piece its text. Touches only the slot's own state (any thread). A cancelled request is
 * sampled anyway (its flag is read under the lock later; the token is then dropped with it). */
static void sample_slot(srv_engine *E, slot *s, float *lg, int greedy_id) {
    int id = lg ? bitnet_sampler_sample(s->smp, lg) : greedy_id;
    s->tok = id < 0 || (!s->r->ignore_eos && bitnet_tokenizer_is_eog(E->p.tok, id)) ? -1 : id;
    s->piece = "";
    if (s->tok < 0) return;
    bitnet_sampler_accept(s->smp, id);
    if (bitnet_detok_push(s->dt, id, &s->piece)) s->piece = "";
}

/* Take slots from the step's list and sample them until none is left (called and returns with
 * smu held; the last one done signals s_fin). */
static void sample_work(srv_engine *E) {
    while (E->s_next < E->s_n) {
        slot *s = &E->slots[E->s_list[E->s_next++]];
        pthread_mutex_unlock(&E->smu);
        sample_slot(E, s, E->logits + (size_t)s->row * E->vocab, 0);
        pthread_mutex_lock(&E->smu);
        if (++E->s_done == E->s_n) pthread_cond_signal(&E->s_fin);
    }
}

static void *sampler_main(void *arg) {
    srv_engine *E = arg;
    pthread_mutex_lock(&E->smu);
    for (;;) {
        while (E->s_next >= E->s_n && !E->s_quit) pthread_cond_wait(&E->s_go, &E->smu);
        if (E->s_quit) break;
        sample_work(E);
    }
    pthread_mutex_unlock(&E->smu);
    return NULL;
}

/* Sample every slot that wanted logits this step (the engine thread, without mu): greedy ids
 * from E->next, or the logits rows on the engine thread and the sampling helpers together. */
static void step_sample(srv_engine *E, int greedy) {
    int n = 0;
    for (int i = 0; i < E->p.n_parallel; i++) {
        slot *s = &E->slots[i];
        if (!s->n_in || !s->want) continue;
        if (greedy) sample_slot(E, s, NULL, E->next[s->row]);
        else E->s_list[n++] = i;
    }
    if (n == 0) return;
    pthread_mutex_lock(&E->smu);
    E->s_n = n; E->s_next = 0; E->s_done = 0;
    if (n > 1 && E->n_s_th > 0) pthread_cond_broadcast(&E->s_go);
    sample_work(E);
    while (E->s_done < E->s_n) pthread_cond_wait(&E->s_fin, &E->smu);
    E->s_n = E->s_next = 0;
    pthread_mutex_unlock(&E->smu);
}

/* Commit a step to the requests (under mu): prompt progress, the sampled tokens' text (stop
 * strings, max_tokens, a full context), finished requests. st: the step's status. */
static void step_commit(srv_engine *E, bitnet_status st) {
    E->step++;
    for (int i = 0; i < E->p.n_parallel; i++) {
        slot *s = &E->slots[i];
        if (!s->n_in) continue;
        if (st) { slot_finish(E, s, NULL, 500, bitnet_last_error()); s->n_cache = bitnet_ctx_seq_pos(E->ctx, i); continue; }
        srv_req *r = s->r;
        s->n_cache += s->n_in;
        if (s->n_fed < r->n_prompt) {
            s->n_fed += s->n_in; r->prefill_steps++;
            if (s->n_fed == r->n_prompt) { r->step_prefill_end = E->step; r->ms_prefill = now_ms() - r->t_admit; }
        } else s->pending = -1;
        if (!s->want) continue;
        r->step_last = E->step;
        if (r->cancelled) continue;   /* dropped by engine_main */
        if (s->tok < 0) { slot_finish(E, s, "stop", 0, NULL); continue; }
        r->n_gen++; E->tokens++;
        if (slot_text(E, s, s->piece)) continue;
        if (r->n_gen == r->max_tokens || s->n_cache >= E->p.n_ctx) {
            if (slot_text(E, s, bitnet_detok_flush(s->dt))) continue;
            slot_finish(E, s, "length", 0, NULL);
            continue;
        }
        s->pending = s->tok;
    }
}

/* One step: every active slot feeds a prompt chunk or its pending token, all in one batch; the
 * forward and the sampling run without the lock, the HTTP threads are woken after it. Called
 * without mu; returns the ms spent after the sampling and sets *wakeups to the HTTP threads woken
 * (for E->st, added under mu). */
static double step(srv_engine *E, int *wakeups) {
    int n = 0, nw = 0, greedy = 1;
    for (int i = 0; i < E->p.n_parallel; i++) {
        slot *s = &E->slots[i];
        s->n_in = 0; s->want = 0; s->wake = 0;
        if (!s->r) continue;
        const int32_t *src; int k;
        if (s->n_fed < s->r->n_prompt) {
            k = s->r->n_prompt - s->n_fed;
            if (k > E->p.chunk) k = E->p.chunk;
            src = s->r->prompt + s->n_fed;
            s->want = s->n_fed + k == s->r->n_prompt;
        } else if (s->pending >= 0) {
            k = 1; src = &s->pending; s->want = 1;
        } else continue;
        memcpy(s->cache + s->n_cache, src, (size_t)k * sizeof *src);
        for (int j = 0; j < k; j++) { E->b_tok[n + j] = src[j]; E->b_seq[n + j] = i; E->b_want[n + j] = 0; }
        n += k;
        E->b_want[n - 1] = (int8_t)s->want;
        if (s->want) { s->row = nw++; greedy &= req_greedy(s->r); }
        s->n_in = k;
    }
    *wakeups = 0;
    if (n == 0) return 0;
    bitnet_batch b = {.n = n, .token = E->b_tok, .seq_id = E->b_seq, .logits = E->b_want};
    double t0 = now_ms();
    if (nw == 0) greedy = 0;
    bitnet_status st = greedy ? bitnet_ctx_decode_greedy(E->ctx, &b, E->next) : bitnet_ctx_decode(E->ctx, &b, E->logits);
    double t1 = now_ms();
    if (!st) step_sample(E, greedy);
    double t2 = now_ms();
    pthread_mutex_lock(&E->mu);
    step_commit(E, st);
    E->st.rows += n; E->st.sampled += nw; E->st.steps_greedy += greedy;
    E->st.ms_decode += t1 - t0; E->st.ms_sample += t2 - t1;
    pthread_mutex_unlock(&E->mu);
    /* r stays valid: only this thread drops the engine's reference (slot_finish) */
    int woken = 0;
    for (int i = 0; i < E->p.n_parallel; i++)
        if (E->slots[i].wake && E->slots[i].r) { pthread_cond_broadcast(&E->slots[i].r->cv); woken++; }
    *wakeups = woken;
    return now_ms() - t2;
}

static void *engine_main(void *arg) {
    srv_engine *E = arg;
    pthread_mutex_lock(&E->mu);
    for (;;) {
        for (int i = 0; i < E->p.n_parallel; i++) {
            slot *s = &E->slots[i];
            if (s->r && (s->r->cancelled || E->stop)) slot_finish(E, s, NULL, 499, "cancelled");
        }
        if (E->stop) break;
        admit(E);
        if (E->busy == 0) {
            double t0 = now_ms();
            pthread_cond_wait(&E->work, &E->mu);
            E->st.ms_idle += now_ms() - t0;
            continue;
        }
        pthread_mutex_unlock(&E->mu);
        int woken;
        double ms = step(E, &woken);
        pthread_mutex_lock(&E->mu);
        E->st.ms_stream += ms; E->st.wakeups += woken;
    }
    while (E->q_len > 0) {   /* stopped: whatever still waits is refused */
        srv_req *r = E->queue[E->q_head];
        E->q_head = (E->q_head + 1) % E->p.queue_max; E->q_len--;
        srv_error_set(&r->err, 503, "server_error", NULL, "the server is shutting down");
        r->done = 1; pthread_cond_broadcast(&r->cv); req_unref(r);
    }
    pthread_mutex_unlock(&E->mu);
    return NULL;
}

bitnet_status srv_engine_start(const srv_engine_params *p, srv_engine **out) {
    *out = NULL;
    srv_engine *E = calloc(1, sizeof *E);
    if (!E) return BITNET_ERR_NOMEM;
    E->p = *p;
    bitnet_model_info info; bitnet_model_get_info(p->model, &info);
    E->vocab = info.vocab_size;
    bitnet_ctx_params cp = bitnet_ctx_default_params();
    cp.n_ctx = p->n_ctx; cp.n_threads = p->n_threads; cp.n_seq_max = p->n_parallel;
    bitnet_status st = bitnet_ctx_new(p->model, &cp, &E->ctx);
    if (st) { free(E); return st; }
    size_t nb = (size_t)p->n_parallel * (size_t)p->chunk;
    E->slots = calloc((size_t)p->n_parallel, sizeof *E->slots);
    E->logits = malloc((size_t)p->n_parallel * E->vocab * sizeof(float));
    E->next = malloc((size_t)p->n_parallel * sizeof(int32_t));
    E->s_list = malloc((size_t)p->n_parallel * sizeof(int));
    E->b_tok = malloc(nb * sizeof(int32_t)); E->b_seq = malloc(nb * sizeof(int32_t)); E->b_want = malloc(nb);
    E->queue = calloc((size_t)p->queue_max, sizeof *E->queue);
    int ok = E->slots && E->logits && E->next && E->s_list && E->b_tok && E->b_seq && E->b_want && E->queue;
    for (int i = 0; ok && i < p->n_parallel; i++) {
        E->slots[i].pending = -1;
        ok = (E->slots[i].cache = malloc((size_t)p->n_ctx * sizeof(int32_t))) != NULL;
    }
    pthread_mutex_init(&E->mu, NULL);
    pthread_cond_init(&E->work, NULL);
    pthread_mutex_init(&E->smu, NULL);
    pthread_cond_init(&E->s_go, NULL); pthread_cond_init(&E->s_fin, NULL);
    int nh = p->n_sample_threads > p->n_parallel ? p->n_parallel - 1 : p->n_sample_threads - 1;
    if (ok && nh > 0 && !(E->s_th = calloc((size_t)nh, sizeof *E->s_th))) ok = 0;
    while (ok && E->n_s_th < nh)
        if (pthread_create(&E->s_th[E->n_s_th], NULL, sampler_main, E)) ok = 0; else E->n_s_th++;
    if (!ok || pthread_create(&E->th, NULL, engine_main, E)) {
        srv_engine_free(E);   /* th not started: nothing to join */
        return BITNET_ERR_NOMEM;
    }
    *out = E;
    return BITNET_OK;
}

int srv_engine_submit(srv_engine *E, srv_req *r, srv_error *e) {
    pthread_mutex_lock(&E->mu);
    int rc = 0;
    if (E->draining || E->stop) { srv_error_set(e, 503, "server_error", NULL, "the server is shutting down"); rc = -1; }
    else if (E->q_len >= E->p.queue_max) {
        srv_error_set(e, 503, "server_error", NULL, "too many requests: %d running and %d waiting; retry later", E->busy, E->q_len);
        rc = -1;
    } else {
        r->refs++;
        E->queue[(E->q_head + E->q_len) % E->p.queue_max] = r; E->q_len++;
        pthread_cond_signal(&E->work);
    }
    pthread_mutex_unlock(&E->mu);
    return rc;
}

int srv_engine_wait(srv_engine *E, srv_req *r, size_t have, int timeout_ms, char **snap, size_t *snap_len) {
    *snap = NULL; *snap_len = 0;
    pthread_mutex_lock(&E->mu);
    if (r->len <= have && !r->done) {
        struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L; ts.tv_sec += timeout_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&r->cv, &E->mu, &ts);
    }
    if (r->len > have && (*snap = malloc(r->len - have + 1))) {
        memcpy(*snap, r->text + have, r->len - have); (*snap)[r->len - have] = 0;
        *snap_len = r->len - have;
    }
    int done = r->done && (*snap_len == r->len - have);
    pthread_mutex_unlock(&E->mu);
    return done;
}

void srv_engine_release(srv_engine *E, srv_req *r, int cancel) {
    pthread_mutex_lock(&E->mu);
    if (cancel && !r->done) { r->cancelled = 1; pthread_cond_signal(&E->work); }
    req_unref(r);
    pthread_mutex_unlock(&E->mu);
}

void srv_engine_counts(srv_engine *E, int *busy, int *idle, int *queued) {
    pthread_mutex_lock(&E->mu);
    *busy = E->busy; *idle = E->p.n_parallel - E->busy; *queued = E->q_len;
    pthread_mutex_unlock(&E->mu);
}

void srv_engine_drain(srv_engine *E) { pthread_mutex_lock(&E->mu); E->draining = 1; pthread_mutex_unlock(&E->mu); }

int srv_engine_pending(srv_engine *E) {
    pthread_mutex_lock(&E->mu);
    int n = E->busy + E->q_len;
    pthread_mutex_unlock(&E->mu);
    return n;
}

void srv_engine_stats(srv_engine *E, srv_engine_stat *st) {
    pthread_mutex_lock(&E->mu);
    *st = E->st;
    st->tokens = E->tokens; st->steps = E->step;
    pthread_mutex_unlock(&E->mu);
}

void srv_engine_halt(srv_engine *E) {
    if (!E || !E->th) return;
    pthread_mutex_lock(&E->mu);
    E->stop = 1;
    pthread_cond_signal(&E->work);
    pthread_mutex_unlock(&E->mu);
    pthread_join(E->th, NULL);
    E->th = 0;
}

void srv_engine_free(srv_engine *E) {
    if (!E) return;
    srv_engine_halt(E);
    pthread_mutex_lock(&E->smu); E->s_quit = 1; pthread_cond_broadcast(&E->s_go); pthread_mutex_unlock(&E->smu);
    for (int i = 0; i < E->n_s_th; i++) pthread_join(E->s_th[i], NULL);
    free(E->s_th); free(E->s_list); free(E->next);
    pthread_mutex_destroy(&E->smu); pthread_cond_destroy(&E->s_go); pthread_cond_destroy(&E->s_fin);
    for (int i = 0; E->slots && i < E->p.n_parallel; i++) { free(E->slots[i].cache); free(E->slots[i].gen); }
    free(E->slots); free(E->logits); free(E->b_tok); free(E->b_seq); free(E->b_want); free(E->queue);
    bitnet_ctx_free(E->ctx);
    pthread_mutex_destroy(&E->mu); pthread_cond_destroy(&E->work);
    free(E);
}
