/* tests/cuda/bench_barrier.cu — what one grid-wide dependency costs on this GPU (issue 11: how
 * much of a decode layer's time its five global steps must cost). Persistent grids (1 or 2
 * blocks per SM, 256-1024 threads) run 20000 barriers of five kinds; a CUDA graph of 1000 empty
 * kernels (with and without programmatic dependent launch) gives the bare kernel-boundary cost.
 * Prints microseconds per barrier / per boundary. Not part of the library, not a test. */
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
__global__ void k_empty(int pdl) {
#if __CUDA_ARCH__ >= 900
    if (pdl) asm volatile("griddepcontrol.wait;\n griddepcontrol.launch_dependents;" ::: "memory");
#endif
    if (threadIdx.x == 9999) g_sink = 1;
}
int main(void) {
    int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
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
    return 0;
}
