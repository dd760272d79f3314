/* tests/cuda/bench_barrier.cu — what one grid-wide dependency costs on this GPU (issue 11: how
 * much of a decode layer's time its five global steps must cost). Persistent grids (1 or 2
 * blocks per SM, 256-1024 threads) run 20000 barriers of five kinds; a CUDA graph of 1000 empty
 * kernels (with and without programmatic dependent launch) gives the bare kernel-boundary cost;
 * then the floor of a one-kernel decode step's norm (k_step: barrier, every block reads the row
 * the grid wrote in the step before, its sum of squares, max and int8 row, its slice of the next
 * row written), with the sum of squares either reduced by every block or produced by the writers.
 * First (sm_90+), whether a cooperative launch can also carry thread-block cluster dimensions at
 * the one-kernel decode step's shape (one 512-thread block per SM with 200 KB of shared memory;
 * grid the largest multiple of the cluster size <= the SMs), and if so what a cluster barrier
 * with a distributed shared-memory read costs next to the grid barrier (k_clcoop): the price of
 * merging the attention's splits inside a cluster instead of through global records and a counter.
 * Prints microseconds per barrier / per boundary / per step. Not part of the library, not a test. */
#include <cuda_runtime.h>
#include <cooperative_groups.h>
#include <stdio.h>
namespace cg = cooperative_groups;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e_)); return 1; } } while (0)

__device__ unsigned g_cnt;
__device__ unsigned g_flag[1024 * 32];
__device__ float g_sink;

__device__ __forceinline__ void red_release(unsigned *p, unsigned v) { asm volatile("red.release.gpu.global.add.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) { unsigned v; asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }
__device__ __forceinline__ void st_release(unsigned *p, unsigned v) { asm volatile("st.release.gpu.global.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ unsigned ld_relaxed(const unsigned *p) { unsigned v; asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }

/* kind 0: cooperative groups grid.sync(); 1: one counter, fence + atomicAdd + volatile poll;
 * 2: one counter, red.release + ld.acquire poll; 3: per-block flags (st.release), every block polls
 * all flags in parallel (ld.acquire, one thread per flag); 4: like 2, but poll relaxed + one fence. */
__global__ void k_bar(int kind, int iters) {
    unsigned nb = gridDim.x;
    float acc = 0;
    for (int it = 1; it <= iters; it++) {
        acc += threadIdx.x * 1e-9f;
        if (kind == 0) { cg::this_grid().sync(); continue; }
        __syncthreads();
        if (kind == 3) {
            if (threadIdx.x == 0) st_release(&g_flag[blockIdx.x * 32], (unsigned)it);
            for (unsigned b = threadIdx.x; b < nb; b += blockDim.x) while (ld_acquire(&g_flag[b * 32]) < (unsigned)it) {}
        } else if (threadIdx.x == 0) {
            unsigned target = (unsigned)it * nb;
            if (kind == 1) { __threadfence(); atomicAdd(&g_cnt, 1u); while (*(volatile unsigned *)&g_cnt < target) {} __threadfence(); }
            else if (kind == 2) { red_release(&g_cnt, 1u); while (ld_acquire(&g_cnt) < target) {} }
            else { red_release(&g_cnt, 1u); while (ld_relaxed(&g_cnt) < target) {} __threadfence(); }
        }
        __syncthreads();
    }
    if (acc == 12345.f) g_sink = acc;
}
/* One step a loop iteration, 1 block an SM (blockDim.x <= 1024, d <= 16 * blockDim.x): kind 0 the
 * barrier alone; 1 + the row read (ldcg) and its sum of squares reduced over the block; 2 + the
 * max of the normed row reduced over the block and the int8 row in shared memory (the norm of a
 * step); 3 as 2 but the sum of squares from the nb partials the writers left (each warp sums them
 * itself: one block reduction fewer, and the writers pay one warp sum over their slice); 4 as 2
 * with a weight-like stream beside it (sm_90: every block copies 64 KB a step into shared memory
 * with cp.async.bulk, issued once the row is in, from a 1 GiB buffer it walks through, as the
 * one-kernel step's refills do); 5 as 4 with the same 64 KB each step (no new DRAM pages). */
__device__ float g_row[2][16384];
__device__ float g_part[2][1024];
__device__ __forceinline__ float wsum(float v) { for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
__device__ __forceinline__ float wmax(float v) { for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
__device__ __forceinline__ unsigned sma(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
#define ST_CP 65536
__global__ void __launch_bounds__(1024, 1) k_step(int kind, int d, int iters, const unsigned char *big, size_t bigsz) {
#if __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) unsigned char cbuf[];  /* kinds 4, 5: ST_CP bytes */
    __shared__ __align__(8) unsigned long long cbar;
#endif
    __shared__ float shf[32], shm[32];
    __shared__ signed char xq[16384];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, nw = blockDim.x >> 5;
    const unsigned nb = gridDim.x;
    float acc = 0;
#if __CUDA_ARCH__ >= 900
    size_t coff = (size_t)blockIdx.x * ST_CP;
    if (kind >= 4 && tid == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sma(&cbar)) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
#else
    (void)big; (void)bigsz;
#endif
    for (int it = 1; it <= iters; it++) {
        const float *x = g_row[(it + 1) & 1];
        float *y = g_row[it & 1];
        __syncthreads();
        if (tid == 0) { unsigned target = (unsigned)it * nb; red_release(&g_cnt, 1u); while (ld_acquire(&g_cnt) < target) {} }
        __syncthreads();
        if (kind >= 1) {
            float v[16], ss = 0.f, m = 0.f, tot = 0.f;
#pragma unroll
            for (int k = 0; k < 16; k++) { int i = tid + k * blockDim.x; v[k] = i < d ? __ldcg(x + i) : 0.f; }
            if (kind == 3) {
                for (unsigned j = lane; j < nb; j += 32) tot += __ldcg(&g_part[(it + 1) & 1][j]);
                tot = wsum(tot);
            } else {
#pragma unroll
                for (int k = 0; k < 16; k++) ss = fmaf(v[k], v[k], ss);
                ss = wsum(ss);
                if (lane == 0) shf[w] = ss;
                __syncthreads();
                tot = wsum(lane < nw ? shf[lane] : 0.f);
            }
            float r = rsqrtf(tot / (float)d + 1e-6f);
#if __CUDA_ARCH__ >= 900
            if (kind >= 4 && tid == 0) {  /* the last step's copy is long done; this step's starts */
                if (it > 1) {
                    unsigned done = 0;
                    while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                               : "=r"(done) : "r"(sma(&cbar)), "r"((unsigned)(it - 2) & 1u) : "memory");
                }
                const unsigned char *src = big + (kind == 4 ? coff : (size_t)blockIdx.x * ST_CP);
                if (kind == 4) { coff += (size_t)nb * ST_CP; if (coff + ST_CP > bigsz) coff = (size_t)blockIdx.x * ST_CP; }
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(sma(&cbar)), "r"(ST_CP) : "memory");
                asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                             :: "r"(sma(cbuf)), "l"(src), "r"(ST_CP), "r"(sma(&cbar)) : "memory");
            }
#endif
            if (kind >= 2) {
#pragma unroll
                for (int k = 0; k < 16; k++) m = fmaxf(m, fabsf(v[k] * r));
                m = wmax(m);
                if (lane == 0) shm[w] = m;
                __syncthreads();
                m = fmaxf(wmax(lane < nw ? shm[lane] : 0.f), 1e-5f);
                float sc = 127.f / m;
#pragma unroll
                for (int k = 0; k < 16; k++) { int i = tid + k * blockDim.x; if (i < d) xq[i] = (signed char)rintf(v[k] * r * sc); }
                __syncthreads();
                if (tid == 0) acc += xq[it % d];
            } else if (tid == 0) acc += r;
        }
        /* this block's slice of the next row (and, kind 3, its sum of squares, by warp 0) */
        int cs = (d + (int)nb - 1) / (int)nb, i0 = (int)blockIdx.x * cs;
        for (int i = i0 + tid; i < i0 + cs && i < d; i += blockDim.x) y[i] = 1.0f + 1e-3f * (float)((i + it) & 255);
        if (kind == 3 && w == 0) {
            float p = 0.f;
            for (int i = i0 + lane; i < i0 + cs && i < d; i += 32) { float t = 1.0f + 1e-3f * (float)((i + it) & 255); p = fmaf(t, t, p); }
            p = wsum(p);
            if (lane == 0) g_part[it & 1][blockIdx.x] = p;
        }
    }
#if __CUDA_ARCH__ >= 900
    if (kind >= 4 && tid == 0) {  /* the last copy lands before the block exits */
        unsigned done = 0;
        while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                   : "=r"(done) : "r"(sma(&cbar)), "r"((unsigned)(iters - 1) & 1u) : "memory");
        acc += cbuf[iters & 1023];
    }
#endif
    if (acc == 12345.f) g_sink = acc;
}
/* iters x (cluster barrier, one value from every rank's shared memory, cluster barrier), then iters
 * grid barriers (counter: red.release + ld.acquire poll); times both with %globaltimer (block 0) */
__device__ unsigned long long g_clt[2];
__global__ void __launch_bounds__(512, 1) k_clcoop(int iters) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ float csm[];
    cg::cluster_group cl = cg::this_cluster();
    unsigned nb = gridDim.x;
    if (threadIdx.x < 32) csm[threadIdx.x] = (float)(blockIdx.x + threadIdx.x);
    cl.sync();
    unsigned long long t0, t1, t2;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    float acc = 0.f;
    for (int it = 0; it < iters; it++) {
        cl.sync();
        if (threadIdx.x < cl.num_blocks()) acc += cl.map_shared_rank(csm, threadIdx.x)[it & 31];
        cl.sync();
    }
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
    __shared__ int stop;  /* (a launch whose blocks are not all resident would never pass: give up after ~2 s) */
    if (threadIdx.x == 0) stop = 0;
    for (int it = 1; it <= iters; it++) {
        __syncthreads();
        if (threadIdx.x == 0 && !stop) {
            red_release(&g_cnt, 1);
            for (unsigned sp = 0; ld_acquire(&g_cnt) < (unsigned)it * nb; sp++)
                if ((sp & 255) == 255) {
                    unsigned long long t;
                    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
                    if (t - t1 > 2000000000ull) { stop = 1; break; }
                }
        }
        __syncthreads();
        if (stop) break;
    }
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t2));
    if (acc == -1.f) g_sink = acc;
    if (blockIdx.x == 0 && threadIdx.x == 0) { g_clt[0] = t1 - t0; g_clt[1] = stop ? ~0ull : t2 - t1; }
#endif
}
__global__ void k_empty(int pdl) {
#if __CUDA_ARCH__ >= 900
    if (pdl) asm volatile("griddepcontrol.wait;\n griddepcontrol.launch_dependents;" ::: "memory");
#endif
    if (threadIdx.x == 9999) g_sink = 1;
}
int main(void) {
    int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    int cc0; CK(cudaDeviceGetAttribute(&cc0, cudaDevAttrComputeCapabilityMajor, 0));
    if (cc0 >= 9) {
        const int dyn = 200 * 1024, csz[] = {2, 4, 8, 12, 16};
        CK(cudaFuncSetAttribute(k_clcoop, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn));
        if (cudaFuncSetAttribute(k_clcoop, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) cudaGetLastError();
        for (int ci = 0; ci < 5; ci++) {
            int C = csz[ci], nb = sms / C * C, it = 2000;
            cudaLaunchConfig_t c = {}; cudaLaunchAttribute at[2];
            c.gridDim = dim3(nb); c.blockDim = dim3(512); c.dynamicSmemBytes = dyn;
            at[0].id = cudaLaunchAttributeClusterDimension; at[0].val.clusterDim.x = C; at[0].val.clusterDim.y = 1; at[0].val.clusterDim.z = 1;
            at[1].id = cudaLaunchAttributeCooperative; at[1].val.cooperative = 1;
            c.attrs = at; c.numAttrs = 1;
            int ncl = 0;
            if (cudaOccupancyMaxActiveClusters(&ncl, k_clcoop, &c) != cudaSuccess) { cudaGetLastError(); ncl = -1; }
            c.numAttrs = 2;
            unsigned z = 0; CK(cudaMemcpyToSymbol(g_cnt, &z, 4));
            cudaError_t le = cudaLaunchKernelEx(&c, k_clcoop, it);
            if (le == cudaSuccess) le = cudaDeviceSynchronize();
            if (le != cudaSuccess) {
                cudaGetLastError();
                printf("cooperative + clusters of %2d, %3d blocks x 512 threads, %d KB shared: refused (%s); max active clusters %d (needs %d)\n",
                       C, nb, dyn / 1024, cudaGetErrorString(le), ncl, nb / C);
                continue;
            }
            unsigned long long t[2]; CK(cudaMemcpyFromSymbol(t, g_clt, sizeof t));
            if (t[1] == ~0ull) { printf("cooperative + clusters of %2d, %3d blocks: launched, but the grid barrier timed out (blocks not all resident)\n", C, nb); continue; }
            printf("cooperative + clusters of %2d, %3d blocks x 512 threads, %d KB shared: ok; cluster barrier + DSMEM read + cluster barrier %.3f us, "
                   "grid barrier %.3f us; max active clusters %d\n", C, nb, dyn / 1024, t[0] / 1e3 / it, t[1] / 1e3 / it, ncl);
        }
    }
    const char *names[] = {"grid.sync (cooperative groups)", "counter: fence+atomicAdd+volatile poll", "counter: red.release + ld.acquire poll",
                           "per-block flags: st.release, parallel ld.acquire poll", "counter: red.release, relaxed poll + fence"};
    int iters = 20000;
    for (int per = 1; per <= 2; per++)
        for (int th = 256; th <= 1024; th *= 2)
            for (int kind = 0; kind < 5; kind++) {
                int nb = sms * per;
                int occ; CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k_bar, th, 0));
                if (occ < per) continue;
                unsigned z = 0; CK(cudaMemcpyToSymbol(g_cnt, &z, 4));
                void *fp; CK(cudaGetSymbolAddress(&fp, g_flag)); CK(cudaMemset(fp, 0, sizeof(unsigned) * 1024 * 32));
                int k = kind, n = iters; void *args[] = {&k, &n};
                CK(cudaLaunchCooperativeKernel((void *)k_bar, nb, th, args, 0, 0)); CK(cudaDeviceSynchronize());
                CK(cudaMemcpyToSymbol(g_cnt, &z, 4)); CK(cudaMemset(fp, 0, sizeof(unsigned) * 1024 * 32));
                cudaEventRecord(a);
                CK(cudaLaunchCooperativeKernel((void *)k_bar, nb, th, args, 0, 0));
                cudaEventRecord(b); CK(cudaEventSynchronize(b));
                float ms; cudaEventElapsedTime(&ms, a, b);
                printf("barrier %-52s blocks %3d x %4d threads: %.3f us\n", names[kind], nb, th, ms * 1000.f / iters);
            }
    /* kernel boundaries: a graph of N empty kernels, grid = SMs x 1, 512 threads */
    cudaStream_t st; cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    for (int pdl = 0; pdl <= 1; pdl++) {
        int N = 1000;
        cudaGraph_t gr; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
        for (int i = 0; i < N; i++) {
            cudaLaunchConfig_t c = {}; cudaLaunchAttribute at[1];
            c.gridDim = dim3(sms); c.blockDim = dim3(512); c.stream = st;
            at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[0].val.programmaticStreamSerializationAllowed = 1;
            c.attrs = at; c.numAttrs = pdl;
            CK(cudaLaunchKernelEx(&c, k_empty, pdl));
        }
        CK(cudaStreamEndCapture(st, &gr)); CK(cudaGraphInstantiate(&ge, gr, 0));
        CK(cudaGraphLaunch(ge, st)); CK(cudaStreamSynchronize(st));
        cudaEventRecord(a, st); CK(cudaGraphLaunch(ge, st)); cudaEventRecord(b, st); CK(cudaEventSynchronize(b));
        float ms; cudaEventElapsedTime(&ms, a, b);
        printf("kernel boundary in a graph, %d blocks x 512 empty kernels, PDL %d: %.3f us\n", sms, pdl, ms * 1000.f / N);
    }
    /* the floor of a one-kernel step's norm */
    const char *sn[] = {"barrier only", "+ row read, sum of squares (block)", "+ max, int8 row (a step's norm)", "same, sum of squares from the writers",
                        "a step's norm + 64 KB/block streamed beside", "a step's norm + the same 64 KB each step"};
    static const int ds[2] = {2560, 6912}, ths[2] = {512, 1024};
    int cc; CK(cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, 0));
    size_t bigsz = (size_t)1 << 30;
    unsigned char *big = NULL;
    CK(cudaMalloc((void **)&big, bigsz)); CK(cudaMemset(big, 1, bigsz));
    CK(cudaFuncSetAttribute(k_step, cudaFuncAttributeMaxDynamicSharedMemorySize, ST_CP));
    for (int di = 0; di < 2; di++)
        for (int ti = 0; ti < 2; ti++)
            for (int kind = 0; kind < 6; kind++) {
                int d = ds[di], th = ths[ti], n = iters, k = kind;
                size_t dyn = kind >= 4 ? ST_CP : 0;
                if (d > 16 * th || (kind >= 4 && cc < 9)) continue;
                int occ; CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k_step, th, dyn));
                if (occ < 1) continue;
                void *rp, *pp; CK(cudaGetSymbolAddress(&rp, g_row)); CK(cudaGetSymbolAddress(&pp, g_part));
                CK(cudaMemset(rp, 0, sizeof(float) * 2 * 16384)); CK(cudaMemset(pp, 0, sizeof(float) * 2 * 1024));
                unsigned z = 0; CK(cudaMemcpyToSymbol(g_cnt, &z, 4));
                void *args[] = {&k, &d, &n, &big, &bigsz};
                CK(cudaLaunchCooperativeKernel((void *)k_step, sms, th, args, dyn, 0)); CK(cudaDeviceSynchronize());
                CK(cudaMemcpyToSymbol(g_cnt, &z, 4));
                cudaEventRecord(a);
                CK(cudaLaunchCooperativeKernel((void *)k_step, sms, th, args, dyn, 0));
                cudaEventRecord(b); CK(cudaEventSynchronize(b));
                float ms; cudaEventElapsedTime(&ms, a, b);
                printf("step d %4d, %3d blocks x %4d threads, %-44s %.3f us\n", d, sms, th, sn[kind], ms * 1000.f / iters);
            }
    cudaFree(big);
    return 0;
}
