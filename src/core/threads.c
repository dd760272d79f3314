/* threads.c — the persistent pthread pool (see threads.h) and the physical-core count.
 *
 * Workers are created once (bn_pool_new) and wait for a job generation counter to change.
 * A job has nth parts; part 0 is the caller's, parts 1..nth-1 are claimed one at a time from a
 * ticket (job id in the high 32 bits, next part in the low 32) by whoever gets there first: a
 * worker, or the caller once its own part is done. So when a worker is descheduled (a busy
 * machine, more threads than free cores) the caller runs that part itself instead of waiting a
 * scheduler time slice for it; results do not depend on who runs a part (fn sees the same
 * ith/nth). Waiting polls briefly (plain loads, then sched_yield), for about BN_SPIN_NS (0.2 ms: back-to-back
 * kernel calls of a decode step never pay a wake-up), then sleeps on a condition variable.
 * bn_pool_run only takes the mutex when some worker is asleep (Dekker-style: the worker
 * publishes `sleeping` before its final check of the generation, the caller bumps the generation
 * before reading `sleeping`, both sequentially consistent). Completion is a countdown the caller
 * spins on (only parts already running are waited for).
 * Not: a task queue; partitioning is static (bn_split), one job at a time. */
#include "core/threads.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <time.h>

#include <stdio.h>
#include <unistd.h>

#ifndef BN_SPIN_NS
#define BN_SPIN_NS 200000LL /* poll ~0.2 ms before sleeping: a busy machine needs the core */
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
    _Alignas(64) atomic_int pending;  /* parts 1..n-1 of the current job not finished */
    _Alignas(64) _Atomic uint64_t ticket; /* job id << 32 | next unclaimed part */
    _Alignas(64) atomic_int sleeping; /* workers blocked (or about to block) on cv */
    atomic_int quit;
    bn_pool_fn fn;
    void *arg;
};

/* No PAUSE/YIELD hint on purpose: in a KVM guest a PAUSE loop triggers pause-loop exiting and
 * the vCPU gets descheduled, which made 2-thread GEMV calls 2x slower here. */
static inline void cpu_relax(void) { __asm__ volatile("" ::: "memory"); }

/* Claim and run unclaimed parts of the current job until none is left. A stale claim (the job
 * changed since the ticket was read) fails its compare-and-swap. fn/arg are read after a
 * successful claim: the caller cannot start the next job before this part is finished. */
static void run_parts(bn_pool *p) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    while ((int)(uint32_t)t < p->n) {
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        p->fn(p->arg, (int)(uint32_t)t, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static void *worker(void *p_) {
    bn_pool *p = p_;
    int seen = 0;
    for (;;) {
        int g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen && !atomic_load_explicit(&p->quit, memory_order_relaxed)) {
            long long t0 = bn_time_ns();
            for (unsigned spins = 0;; spins++) {
                g = atomic_load_explicit(&p->gen, memory_order_acquire);
                if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed)) break;
                if (spins < BN_PLAIN_SPINS) cpu_relax(); else sched_yield(); /* yield: a busy machine needs the core */
                if ((spins & 63) == 63 && bn_time_ns() - t0 > BN_SPIN_NS) {
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
        run_parts(p);
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
    atomic_init(&p->ticket, (uint64_t)n_threads); /* no job: nothing to claim */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) { pthread_mutex_destroy(&p->mu); pthread_cond_destroy(&p->cv); free(p); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0) {
            p->n = i; bn_pool_free(p);
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
    uint64_t job = (atomic_load_explicit(&p->ticket, memory_order_relaxed) >> 32) + 1;
    atomic_store_explicit(&p->ticket, job << 32 | 1u, memory_order_release); /* part 0 is ours */
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/arg/pending/ticket, ordered before reading sleeping */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    long long t0 = bn_time_ns();
    fn(arg, 0, p->n);
    /* Give the workers as long as our own part took to claim theirs (a worker that is merely slow
     * to wake keeps its part), then run the parts nobody has started: a descheduled worker
     * costs at most about one part's time, not a scheduler time slice. */
    long long t1 = bn_time_ns(), deadline = t1 + (t1 - t0);
    for (unsigned spins = 0; (int)(uint32_t)atomic_load_explicit(&p->ticket, memory_order_acquire) < p->n; spins++) {
        if ((spins & 15) == 15 && bn_time_ns() > deadline) { run_parts(p); break; }
        cpu_relax();
    }
    for (unsigned spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < BN_PLAIN_SPINS) cpu_relax(); else sched_yield(); /* oversubscribed machine: let the worker run */
    }
}

/* Physical cores among the CPUs this process may run on: distinct (package, core) pairs of the
 * CPUs in the affinity mask, from /sys/devices/system/cpu/cpuN/topology; without sysfs, the
 * CPUs in the mask; without that, the online CPUs. At least 1, at most 512. */
int bn_physical_cores(void) {
    cpu_set_t set;
    int n_cpu = 0, n_core = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        static long long seen[512];
        for (int c = 0; c < CPU_SETSIZE && n_core < 512; c++) {
            if (!CPU_ISSET(c, &set)) continue;
            n_cpu++;
            long core = -1, pkg = -1;
            char path[96];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
            FILE *f = fopen(path, "r");
            if (f) { if (fscanf(f, "%ld", &core) != 1) core = -1; fclose(f); }
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
            if ((f = fopen(path, "r"))) { if (fscanf(f, "%ld", &pkg) != 1) pkg = -1; fclose(f); }
            if (core < 0) { n_core = -1; break; } /* no topology: count CPUs */
            long long key = (long long)pkg << 32 | (unsigned long)core;
            int dup = 0;
            for (int i = 0; i < n_core && !dup; i++) dup = seen[i] == key;
            if (!dup) seen[n_core++] = key;
        }
    }
    int n = n_core > 0 ? n_core : n_cpu;
    if (n <= 0) { long o = sysconf(_SC_NPROCESSORS_ONLN); n = o > 0 ? (int)o : 1; }
    return n > 512 ? 512 : n;
}

int bitnet_physical_cores(void) { return bn_physical_cores(); }
