/* threads.c — the persistent pthread pool (see threads.h). */
#include "threads.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>

struct bn_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int gen;        /* job generation; workers wait for it to change */
    atomic_int pending;    /* workers still running the current job */
    atomic_int quit;
    bn_pool_fn fn;
    void *arg;
};

typedef struct { bn_pool *p; int ith; } worker_arg;

static void *worker(void *a_) {
    worker_arg *a = a_;
    bn_pool *p = a->p; int ith = a->ith;
    free(a);
    int seen = 0;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->quit)) {
            if (++spins < 20000) { sched_yield(); continue; }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) break;
        seen = g;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

bitnet_status bn_pool_new(int n_threads, bn_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 512) return bn_err(BITNET_ERR_ARG, "thread count %d is out of range (1..512)", n_threads);
    bn_pool *p = calloc(1, sizeof *p);
    if (!p) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) { free(p); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) { p->n = i; bn_pool_free(p); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
        a->p = p; a->ith = i;
        if (pthread_create(&p->th[i], NULL, worker, a) != 0) {
            free(a); p->n = i; bn_pool_free(p);
            return bn_err(BITNET_ERR_NOMEM, "cannot create thread %d", i);
        }
    }
    *out = p;
    return BITNET_OK;
}

void bn_pool_free(bn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->th); free(p);
}

int bn_pool_size(const bn_pool *p) { return p ? p->n : 1; }

void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *arg) {
    if (!p || p->n == 1) { fn(arg, 0, 1); return; }
    p->fn = fn; p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) sched_yield();
}
