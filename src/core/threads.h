/* threads.h — a small persistent thread pool: n-1 workers plus the calling thread.
 * bn_pool_run(p, fn, arg) calls fn(arg, ith, nth) for ith = 0..nth-1 concurrently (ith 0 on
 * the caller) and returns when all are done; a part no worker has started yet is run by the
 * caller. Workers spin briefly, then sleep on a condvar.
 * Not: a task queue; one job at a time, called from one thread. */
#ifndef BITNET_THREADS_H
#define BITNET_THREADS_H
#include "core/util.h"
typedef struct bn_pool bn_pool;
typedef void (*bn_pool_fn)(void *arg, int ith, int nth);
bitnet_status bn_pool_new(int n_threads, bn_pool **out);
void bn_pool_free(bn_pool *p);
int bn_pool_size(const bn_pool *p);
void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *arg);
/* Physical cores this process may use (>= 1; see bitnet_physical_cores in bitnet.h). */
int bn_physical_cores(void);
/* Split [0, n) into nth parts aligned to `align`; part ith is [*a, *b). */
static inline void bn_split(int n, int align, int ith, int nth, int *a, int *b) {
    int blocks = (n + align - 1) / align;
    int b0 = (int)((long long)blocks * ith / nth), b1 = (int)((long long)blocks * (ith + 1) / nth);
    *a = b0 * align < n ? b0 * align : n;
    *b = b1 * align < n ? b1 * align : n;
}
#endif
