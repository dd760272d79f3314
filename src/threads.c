/* threads.c — the persistent pthread pool (see threads.h).
 *
 * Workers are created once (bn_pool_new) and wait for a job generation counter to change.
 * Waiting polls briefly (plain loads), then keeps polling with sched_yield (so on a
 * machine shared with other processes the thread we wait for gets the core) for about
 * BN_SPIN_NS (back-to-back kernel calls of a decode step never pay a wake-up), then sleeps on a
 * condition variable. bn_pool_run only takes
 * the mutex when some worker is asleep (Dekker-style: the worker publishes `sleeping` before its
 * final check of the generation, the caller bumps the generation before reading `sleeping`,
 * both sequentially consistent). Completion is a countdown the caller spins on.
 * Not: a task queue or work stealing; partitioning is static (bn_split), one job at a time. */
#include "threads.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <time.h>

#ifndef BN_SPIN_NS
#define BN_SPIN_NS 3000000LL /* poll ~3 ms before sleeping */
#endif
#ifndef BN_PLAIN_SPINS
#define BN_PLAIN_SPINS 256 /* polls without a syscall before each sched_yield poll */
#endif

struct bn_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Alignas(64) atomic_int gen;      /* job generation; workers wait for it to change */
    _Alignas(64) atomic_int pending;  /* workers still running the current job */
    _Alignas(64) atomic_int sleeping; /* workers blocked (or about to block) on cv */
    atomic_int quit;
    bn_pool_fn fn;
    void *arg;
};

typedef struct { bn_pool *p; int ith; } worker_arg;

/* No PAUSE/YIELD hint on purpose: in a KVM guest a PAUSE loop triggers pause-loop exiting and
 * the vCPU gets descheduled, which made 2-thread GEMV calls 2x slower here. */
static inline void cpu_relax(void) { __asm__ volatile("" ::: "memory"); }

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *a_) {
    worker_arg *a = a_;
    bn_pool *p = a->p; int ith = a->ith;
    free(a);
    int seen = 0;
    for (;;) {
        int g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen && !atomic_load_explicit(&p->quit, memory_order_relaxed)) {
            long long t0 = now_ns();
            for (unsigned spins = 0;; spins++) {
                g = atomic_load_explicit(&p->gen, memory_order_acquire);
                if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed)) break;
                if (spins < BN_PLAIN_SPINS) cpu_relax(); else sched_yield(); /* yield: a busy machine needs the core */
                if ((spins & 63) == 63 && now_ns() - t0 > BN_SPIN_NS) {
                    pthread_mutex_lock(&p->mu);
                    atomic_fetch_add(&p->sleeping, 1);
                    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
                    atomic_fetch_sub(&p->sleeping, 1);
                    pthread_mutex_unlock(&p->mu);
                    break;
                }
            }
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
    if (!p->th) { pthread_mutex_destroy(&p->mu); pthread_cond_destroy(&p->cv); free(p); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
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
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/arg/pending, ordered before reading sleeping */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    for (unsigned spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < BN_PLAIN_SPINS) cpu_relax(); else sched_yield(); /* oversubscribed machine: let the worker run */
    }
}
