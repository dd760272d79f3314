/* test_threads.c — the thread pool (src/core/threads.c): every part of every job runs exactly once,
 * a job completes while a worker is frozen (its parts are run by the caller: a descheduled
 * worker must not stall the pool), and the physical-core count is sane. */
#include "t.h"
#include "core/threads.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

typedef struct { atomic_int runs[8]; pthread_t who[8]; int spin_us; } job;

static void sleep_us(int us) { struct timespec ts = {0, us * 1000L}; nanosleep(&ts, NULL); }

static void fn(void *a, int ith, int nth) {
    job *j = a;
    atomic_fetch_add(&j->runs[ith], 1);
    j->who[ith] = pthread_self();
    if (ith == 0 && j->spin_us) sleep_us(j->spin_us); /* give the workers time to claim theirs */
}

static volatile sig_atomic_t frozen, release;
static void freeze(int sig) { (void)sig; frozen = 1; while (!release) sleep_us(1000); }

int main(void) {
    bn_pool *p;
    CHECK("pool of 3", bn_pool_new(3, &p) == BITNET_OK, "%s", bitnet_last_error());
    int ok = 1;
    for (int r = 0; r < 2000 && ok; r++) {
        job j = {.spin_us = r % 3 ? 0 : 20};
        bn_pool_run(p, fn, &j);
        for (int i = 0; i < 3; i++) ok &= atomic_load(&j.runs[i]) == 1;
    }
    CHECK("each part of 2000 jobs runs exactly once", ok, "");
    bn_pool_free(p);

    /* Freeze the worker (a signal handler that waits), then run jobs: the caller must run the
     * worker's part. Before, bn_pool_run waited for the worker forever; alarm() turns a hang into
     * a failure. */
    CHECK("pool of 2", bn_pool_new(2, &p) == BITNET_OK, "%s", bitnet_last_error());
    pthread_t worker = pthread_self();
    for (int r = 0; r < 1000 && pthread_equal(worker, pthread_self()); r++) {
        job j = {.spin_us = 2000};
        bn_pool_run(p, fn, &j);
        worker = j.who[1];
    }
    CHECK("the worker runs a part when it is awake", !pthread_equal(worker, pthread_self()), "");
    signal(SIGUSR1, freeze);
    pthread_kill(worker, SIGUSR1);
    for (int i = 0; i < 5000 && !frozen; i++) sleep_us(1000);
    CHECK("worker frozen", frozen, "");
    alarm(20);
    ok = 1;
    for (int r = 0; r < 100; r++) {
        job j = {0};
        bn_pool_run(p, fn, &j);
        ok &= atomic_load(&j.runs[0]) == 1 && atomic_load(&j.runs[1]) == 1 && pthread_equal(j.who[1], pthread_self());
    }
    alarm(0);
    CHECK("jobs complete with the worker frozen (the caller runs its part)", ok, "");
    release = 1;
    bn_pool_free(p);

    int n = bn_physical_cores(), on = (int)sysconf(_SC_NPROCESSORS_ONLN);
    CHECK("physical cores in [1, online CPUs]", n >= 1 && n <= on && n == bitnet_physical_cores(), "%d of %d online", n, on);
    T_DONE();
}
