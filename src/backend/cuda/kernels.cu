/* kernels.cu — the CUDA kernels behind bn_cuda.h (contracts and the cu2 ternary layout there).
 * Ternary products with exact int32 sums: a streaming dp4a GEMV for a few tokens (lane = row of
 * the interleaved layout) and int8 tensor cores (mma.sync) for more; the memory-bound float
 * kernels (norms with fused residual add / gated activation / quantizer, heads) read 16 bytes
 * per access where they can; the one-token GEMV can run the RMSNorm + quantizer of its input
 * itself and the residual add of its output. Attention: flash-decoding (split positions, online
 * softmax; on sm_90+ the splits of a head group form one thread-block cluster and merge through
 * distributed shared memory) for decode, shared-memory tiles (fp32) for prefill. Float kernels keep the CPU's
 * operation order where it is a single operation (scale, rope, relu2, add) and differ only in
 * the order of sums.
 * Not here: a wgmma GEMM, a tensor-core attention, graphs (the backend). */
extern "C" {
#include "backend/cuda/bn_cuda.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
}
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cooperative_groups.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ST(s) ((cudaStream_t)(s))
namespace cg = cooperative_groups;

/* Programmatic dependent launch (sm_90+): every kernel is launched with the attribute when the
 * device supports it, so a kernel's blocks can start while its predecessor finishes; each kernel
 * runs pdl_entry() (griddepcontrol.wait: the predecessor has finished and its writes are visible;
 * then launch_dependents) before it touches memory another kernel writes. Only loads of data no
 * kernel of the forward writes (weights, earlier KV cache rows) may come before it. Without the
 * attribute both instructions are no-ops. */
static int g_pdl = 0;
extern "C" void bn_cu_set_pdl(int on) { g_pdl = on; }
extern "C" int bn_cu_get_pdl(void) { return g_pdl; }
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_entry() { pdl_wait(); pdl_trigger(); }
/* Launch k with programmatic dependent launch when g_pdl, as a grid of thread-block clusters of
 * cl blocks when cl.x > 0 (cudaLaunchAttributeClusterDimension; sm_90+). */
template <typename... K, typename... A>
static cudaError_t launch_cl(void (*k)(K...), dim3 g, dim3 b, size_t smem, cudaStream_t s, dim3 cl, A &&...a) {
    cudaLaunchConfig_t c;
    memset(&c, 0, sizeof c);
    c.gridDim = g; c.blockDim = b; c.dynamicSmemBytes = smem; c.stream = s;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (cl.x) {
        at[na].id = cudaLaunchAttributeClusterDimension;
        at[na].val.clusterDim.x = cl.x; at[na].val.clusterDim.y = cl.y; at[na].val.clusterDim.z = cl.z; na++;
    }
    if (g_pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    c.attrs = at; c.numAttrs = na;
    return cudaLaunchKernelEx(&c, k, static_cast<A &&>(a)...);
}
template <typename... K, typename... A>
static void launch(void (*k)(K...), dim3 g, dim3 b, size_t smem, cudaStream_t s, A &&...a) {
    launch_cl(k, g, b, smem, s, dim3(0, 0, 0), static_cast<A &&>(a)...);
}
/* Cluster path (sm_90+; bn_cu_set_cluster): decode attention splits merged through distributed
 * shared memory; bn_cu_device_open turns it on for sm_90+. */
static int g_cl = 0;
extern "C" void bn_cu_set_cluster(int on) { g_cl = on; }
/* The one-kernel decode step (bn_cu_mega, below): on by default on sm_90+ (env BITNET_CUDA_MEGA=0: off). */
static int g_mega = 0;
extern "C" void bn_cu_set_mega(int on) { g_mega = on; }
extern "C" int bn_cu_get_mega(void) { return g_mega; }
static int g_mega_built = 0;
extern "C" int bn_cu_mega_built(void) { return g_mega_built; }
extern "C" int bn_cu_get_cluster(void) { return g_cl; }

static bitnet_status cerr(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return BITNET_OK;
    if (e == cudaErrorMemoryAllocation)
        return bn_err(BITNET_ERR_NOMEM, "cuda: out of GPU memory (%s)", what);
    return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: %s: %s", what, cudaGetErrorString(e));
}
static bitnet_status launched(const char *what) { return cerr(cudaGetLastError(), what); }

/* ---- device ---- */
extern "C" int bn_cu_device_count(const char **why) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) *why = e == cudaErrorNoDevice ? "no CUDA GPU found"
                      : e == cudaErrorInsufficientDriver ? "the NVIDIA driver is missing or older than this build's CUDA runtime"
                      : cudaGetErrorString(e);
        cudaGetLastError();
        return 0;
    }
    if (n == 0 && why) *why = "no CUDA GPU found";
    return n;
}

extern "C" bitnet_status bn_cu_device_open(int dev, char *name, size_t nlen, size_t *mem_total, int *sms, int *cc) {
    const char *why = NULL;
    int n = bn_cu_device_count(&why);
    if (n == 0) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: %s", why ? why : "no CUDA GPU found");
    if (dev < 0 || dev >= n) return bn_err(BITNET_ERR_ARG, "cuda: device %d does not exist (%d GPU%s found)", dev, n, n == 1 ? "" : "s");
    bitnet_status s = cerr(cudaSetDevice(dev), "cudaSetDevice");
    if (s) return s;
    cudaDeviceProp p;
    if ((s = cerr(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties"))) return s;
    if (p.major < 8) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: device %d (%s) has compute capability %d.%d; this build needs 8.0 or newer", dev, p.name, p.major, p.minor);
    if (name && nlen) { strncpy(name, p.name, nlen - 1); name[nlen - 1] = 0; }
    if (mem_total) *mem_total = p.totalGlobalMem;
    if (sms) *sms = p.multiProcessorCount;
    if (cc) *cc = p.major * 10 + p.minor;
    const char *pe = getenv("BITNET_CUDA_PDL");
    g_pdl = p.major >= 9 && !(pe && !strcmp(pe, "0"));
    const char *ce = getenv("BITNET_CUDA_CLUSTER");
    g_cl = p.major < 9 ? 0 : ce && *ce >= '0' && *ce <= '4' && !ce[1] ? *ce - '0' : 1;  /* 1: the fastest variant on the H200 (16 warps: one position step a split up to 1024 positions) */
    const char *me = getenv("BITNET_CUDA_MEGA");
    g_mega = p.major >= 9 && !(me && !strcmp(me, "0"));  /* the default on sm_90+: ~5% ahead of the kernels on the H200 */
    /* a first call that touches the context, so a broken driver shows here and not later */
    return cerr(cudaFree(0), "creating the CUDA context");
}

extern "C" bitnet_status bn_cu_malloc(void **p, size_t bytes, const char *what) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        if (e == cudaErrorMemoryAllocation) {
            size_t fr = 0, tot = 0;
            cudaMemGetInfo(&fr, &tot);
            cudaGetLastError();
            return bn_err(BITNET_ERR_NOMEM, "cuda: out of GPU memory allocating %.1f MiB for %s (%.1f MiB free of %.1f MiB)",
                          bytes / 1048576.0, what, fr / 1048576.0, tot / 1048576.0);
        }
        return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: allocating %s: %s", what, cudaGetErrorString(e));
    }
    return BITNET_OK;
}
extern "C" void bn_cu_free(void *p) { if (p) cudaFree(p); }
extern "C" bitnet_status bn_cu_stream_new(void **s) {
    cudaStream_t st = NULL;
    bitnet_status r = cerr(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
    *s = r ? NULL : (void *)st;
    return r;
}
extern "C" void bn_cu_stream_free(void *s) { if (s) cudaStreamDestroy(ST(s)); }
extern "C" void *bn_cu_host_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) { cudaGetLastError(); return NULL; }
    return p;
}
extern "C" void bn_cu_host_free(void *p) { if (p) cudaFreeHost(p); }
extern "C" bitnet_status bn_cu_h2d(void *dst, const void *src, size_t n, void *s) {
    return cerr(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, ST(s)), "copy to the GPU");
}
extern "C" bitnet_status bn_cu_d2h(void *dst, const void *src, size_t n, void *s) {
    bitnet_status r = cerr(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, ST(s)), "copy from the GPU");
    return r ? r : cerr(cudaStreamSynchronize(ST(s)), "running GPU work");
}
extern "C" bitnet_status bn_cu_memset(void *dst, int byte, size_t n, void *s) {
    return cerr(cudaMemsetAsync(dst, byte, n, ST(s)), "cudaMemsetAsync");
}
extern "C" bitnet_status bn_cu_sync(void *s) { return cerr(cudaStreamSynchronize(ST(s)), "running GPU work"); }

/* ---- reductions ---- */
__device__ __forceinline__ int warp_sum_i(int v) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_sum_f(float v) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max_f(float v) {
    for (int o = 16; o; o >>= 1) { float w = __shfl_xor_sync(0xffffffffu, v, o); v = w > v ? w : v; }
    return v;
}
/* Block-wide reductions (blockDim.x a multiple of 32, <= 1024; sh: 33 entries; id: the identity
 * of op): warp trees, then one warp over the warp results; every thread gets the result. */
template <typename T, typename F>
__device__ T block_reduce(T v, F op, T *sh, T id) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();  /* sh may still be read by a previous reduction */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        T r = lane < nw ? sh[lane] : id;
        for (int o = 16; o; o >>= 1) r = op(r, __shfl_xor_sync(0xffffffffu, r, o));
        if (lane == 0) sh[32] = r;
    }
    __syncthreads();
    return sh[32];
}
struct OpMax { __device__ float operator()(float a, float b) const { return b > a ? b : a; } };
struct OpAddF { __device__ float operator()(float a, float b) const { return a + b; } };
struct OpAddI { __device__ int operator()(int a, int b) const { return a + b; } };

/* ---- activation quantization: one block per row ---- */
__global__ void k_quant(const float *x, int cols, int ldx, int8_t *xq, int kp, float *xs, int32_t *xsum) {
    pdl_entry();
    __shared__ float shf[33];
    __shared__ int shi[33];
    int t = blockIdx.x;
    const float *xr = x + (size_t)t * ldx;
    float m = 0.f;
    for (int k = threadIdx.x; k < cols; k += blockDim.x) { float a = fabsf(xr[k]); if (a > m) m = a; }
    m = block_reduce(m, OpMax(), shf, 0.f);
    if (m < 1e-5f) m = 1e-5f;
    float s = 127.0f / m;
    int sum = 0;
    int8_t *q = xq + (size_t)t * kp;
    for (int k = threadIdx.x; k < kp; k += blockDim.x) {
        int v = 0;
        if (k < cols) {
            float f = rintf(__fmul_rn(xr[k], s));
            v = f > 127.f ? 127 : f < -128.f ? -128 : (int)f;
        }
        q[k] = (int8_t)v;
        sum += v;
    }
    sum = block_reduce(sum, OpAddI(), shi, 0);
    if (threadIdx.x == 0) { xs[t] = s; xsum[t] = sum; }
}

extern "C" bitnet_status bn_cu_quant(const float *x, int n, int cols, int ldx, int8_t *xq, int kp, float *xs, int32_t *xsum, void *s) {
    if (n <= 0) return BITNET_OK;
    launch(k_quant, n, cols >= 2048 ? 1024 : 256, 0, ST(s), x, cols, ldx, xq, kp, xs, xsum);
    return launched("activation quantization");
}

/* ---- ternary layout (cu2, row-interleaved; bn_cuda.h) ---- */
#define TG_RG 32  /* rows per interleaved group */
static int tg_groups(int rows) { return (rows + TG_RG - 1) / TG_RG; }
extern "C" size_t bn_cu_tern_bytes(int rows, int cols) { return (size_t)tg_groups(rows) * TG_RG * (size_t)(bn_kpad(cols) / 4); }

extern "C" void bn_cu_tern_pack(const int8_t *q, int rows, int cols, uint8_t *dst) {
    int kp = bn_kpad(cols), nch = kp / 64, rp = tg_groups(rows) * TG_RG;
    for (int r = 0; r < rp; r++) {
        const int8_t *qr = r < rows ? q + (size_t)r * cols : NULL;
        for (int c = 0; c < nch; c++) {
            uint8_t *d = dst + (((size_t)(r / TG_RG) * nch + c) * TG_RG + (size_t)(r % TG_RG)) * 16;
            for (int g = 0; g < 4; g++)
                for (int b = 0; b < 4; b++) {
                    unsigned byte = 0;
                    for (int s = 0; s < 4; s++) {
                        int k = 64 * c + 16 * g + 4 * s + b;
                        unsigned code = qr && k < cols ? (unsigned)(qr[k] + 1) : 1u;
                        byte |= code << (2 * s);
                    }
                    d[4 * g + b] = (uint8_t)byte; /* little-endian word g, byte b */
                }
        }
    }
}

/* ---- ternary GEMM ---- */
struct TGArgs {
    bn_cu_tmm m[3];
    int gend[3];  /* cumulative row-group ends */
};

__device__ __forceinline__ int dot16(unsigned w, int4 x, int acc) {
    acc = __dp4a((int)(w & 0x03030303u), x.x, acc);
    acc = __dp4a((int)((w >> 2) & 0x03030303u), x.y, acc);
    acc = __dp4a((int)((w >> 4) & 0x03030303u), x.z, acc);
    acc = __dp4a((int)((w >> 6) & 0x03030303u), x.w, acc);
    return acc;
}

__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

/* The matrix of row group g (block-uniform selects, so the argument block stays in param space). */
struct TGSel { const uint8_t *w; int rows, g; float scale; float *y; int32_t *yi; float *ax; };
__device__ __forceinline__ TGSel tg_sel(const TGArgs &A, int g) {
    int i = g < A.gend[0] ? 0 : g < A.gend[1] ? 1 : 2;
    TGSel s;
    s.w = i == 0 ? A.m[0].w_d : i == 1 ? A.m[1].w_d : A.m[2].w_d;
    s.rows = i == 0 ? A.m[0].rows : i == 1 ? A.m[1].rows : A.m[2].rows;
    s.g = g - (i == 0 ? 0 : i == 1 ? A.gend[0] : A.gend[1]);
    s.scale = i == 0 ? A.m[0].scale : i == 1 ? A.m[1].scale : A.m[2].scale;
    s.y = i == 0 ? A.m[0].y_d : i == 1 ? A.m[1].y_d : A.m[2].y_d;
    s.yi = i == 0 ? A.m[0].yi_d : i == 1 ? A.m[1].yi_d : A.m[2].yi_d;
    s.ax = i == 0 ? A.m[0].add_d : i == 1 ? A.m[1].add_d : A.m[2].add_d;
    return s;
}
__device__ __forceinline__ void tg_out1(const TGSel &m, int r, int t, int acc, float xs, int xsum) {
    int v = acc - xsum;
    size_t i = (size_t)t * m.rows + r;
    if (m.yi) { m.yi[i] = v; return; }
    float o = (float)v * (m.scale / xs);
    m.y[i] = o;
    if (m.ax) m.ax[i] = m.ax[i] + o;  /* the residual add, k_add's operation */
}
__device__ __forceinline__ void tg_out(const TGSel &m, int r, int t, int acc, const float *xs, const int32_t *xsum) {
    tg_out1(m, r, t, acc, xs[t], xsum[t]);
}

/* ---- RMSNorm of one row by one block (+ a pre-op, + the activation quantizer) ----
 * PRE 0: the row as is; 1: a = x + y; 2: a = act(x) * y (the gated activation, act 0 = relu^2,
 * 1 = silu). Thread i holds a[j], v[j] for element threadIdx.x + j*blockDim.x (j < VPT): a the
 * pre-op values, v the normed ones (= w[i] * (a * *r_o)); with QUANT, q[0..kp) gets the int8 values
 * (zero padded), *s_o the scale and *sum_o their sum (every thread). The float sums depend on blockDim.x only:
 * every kernel that norms a row of d values uses norm_threads(d) threads, so all of them (the
 * norm kernels, the GEMV with the norm inside) produce the same bits. sh/shi: 33 entries each. */
__device__ __forceinline__ float glu1(float g, float u, int act) {
    if (act == 0) { float r = g > 0.f ? g : 0.f; return __fmul_rn(__fmul_rn(r, r), u); }
    return __fmul_rn(g / (1.0f + expf(-g)), u);
}
template <int PRE> __device__ __forceinline__ float norm_pre(const float *x, const float *y, int act, int i) {
    float t = x[i];
    if (PRE == 1) t = t + y[i];
    if (PRE == 2) t = glu1(t, y[i], act);
    return t;
}
template <int VPT, int PRE, int QUANT>
__device__ __forceinline__ void norm_row(const float *x, const float *y, int act, const float *w, int d, float eps, float (&a)[VPT],
                                         float (&v)[VPT], int8_t *q, int kp, float *r_o, float *s_o, int *sum_o, float *sh, int *shi) {
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int i = threadIdx.x + j * blockDim.x;
        a[j] = 0.f;
        if (i < d) { float t = norm_pre<PRE>(x, y, act, i); a[j] = t; ss = __fmaf_rn(t, t, ss); }
    }
    ss = block_reduce(ss, OpAddF(), sh, 0.f);
    float r = 1.0f / sqrtf(ss / (float)d + eps);
    *r_o = r;
    float m = 0.f;
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int i = threadIdx.x + j * blockDim.x;
        v[j] = 0.f;
        if (i < d) { float o = __fmul_rn(w[i], __fmul_rn(a[j], r)); v[j] = o; float t = fabsf(o); if (t > m) m = t; }
    }
    if (!QUANT) return;
    m = block_reduce(m, OpMax(), sh, 0.f);
    if (m < 1e-5f) m = 1e-5f;
    float s = 127.0f / m;
    int sum = 0;
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < d) {
            float f = rintf(__fmul_rn(v[j], s));
            int qv = f > 127.f ? 127 : f < -128.f ? -128 : (int)f;
            q[i] = (int8_t)qv;
            sum += qv;
        }
    }
    for (int k = d + threadIdx.x; k < kp; k += blockDim.x) q[k] = 0;
    *sum_o = block_reduce(sum, OpAddI(), shi, 0);
    *s_o = s;
}
/* Threads of a block that norms a row of d values: those of the one-token GEMV over d columns. */
static int tg_warps1(int nch) { int W = (nch + 3) / 4; return W > 32 ? 32 : W < 1 ? 1 : W; }
static int norm_threads(int d) { return 32 * tg_warps1(bn_kpad(d) / 64); }
static int norm_vpt(int d) { int t = norm_threads(d), v = (d + t - 1) / t; return v <= 4 ? 4 : v <= 8 ? 8 : v <= 16 ? 16 : 32; }

/* The norm inside the one-token GEMV (k_tgemv with NV > 0): the row's pre-op inputs x, y, the
 * norm weight w; the last block to finish its norm writes xo (the pre-op values, when PRE > 0)
 * and out (the normed row), as the norm kernels do. cnt: zero between calls. */
struct TGNorm { const float *x, *y, *w; float *xo, *out; int act, d; float eps; unsigned *cnt; };

/* GEMV, n <= NT tokens: block = one group of 32 rows (lane = row, no shuffles), its warps split
 * the 64-weight chunks (warp w: chunks w, w+W, ...; each lane loads up to TG_CPW 16-byte chunks
 * before using any); the NT int8 activation rows are staged in shared memory once per block and
 * read as broadcasts; per-warp partial sums are added through shared memory. */
#define TG_CPW 8
#define TG_SMEM_MAX (160 * 1024)
template <int NT, int NV, int PRE, int RG>
__global__ void __launch_bounds__(NT <= 2 ? 1024 : 512) k_tgemv(TGArgs A, int nchunk, const int8_t *xq, int kp, const float *xs,
                                                const int32_t *xsum, int n, TGNorm N) {
    extern __shared__ __align__(16) unsigned char tsm[];
    __shared__ float nsh[NV ? 33 : 1];
    __shared__ int nshi[NV ? 33 : 1];
    __shared__ int nlast;
    float s_loc = 0.f, r = 0.f; int sum_loc = 0;
    unsigned old = 0;
    /* RG row groups per block (W % RG == 0): warp w works on group blockIdx.x*RG + w%RG with the
     * other W/RG warps of that group */
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, W = blockDim.x >> 5, WR = W / RG, gw = blockIdx.x * RG + w % RG;
    int nck = gw < A.gend[2] ? nchunk : 0;  /* a block's last groups may not exist */
    TGSel m = tg_sel(A, gw < A.gend[2] ? gw : 0);
    const uint4 *wg = (const uint4 *)m.w + (size_t)m.g * nchunk * TG_RG + lane;
    int acc[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j] = 0;
    uint4 wv[TG_CPW];
    int c0 = w / RG;
#pragma unroll
    for (int u = 0; u < TG_CPW; u++) { int c = c0 + u * WR; if (c < nck) wv[u] = ld_stream(wg + (size_t)c * TG_RG); }
    pdl_entry();  /* the weights are loading while the kernel before this one finishes */
    if (NV) {  /* one token: its norm + quantizer here, into shared memory, while the weights load */
        {
            float av[NV ? NV : 1], nv[NV ? NV : 1];
            norm_row<NV ? NV : 1, PRE, 1>(N.x, N.y, N.act, N.w, N.d, N.eps, av, nv, (int8_t *)tsm, kp, &r, &s_loc, &sum_loc, nsh, nshi);
        }
        /* this block has read x and y (the values went through the reductions): count it; the
         * result is only looked at after the products (the last block writes the row back) */
        if (threadIdx.x == 0) old = atomicInc(N.cnt, gridDim.x - 1);
    } else {   /* activations -> shared, while the first weight loads are in flight */
        const int4 *src = (const int4 *)xq;
        int4 *dst = (int4 *)tsm;
        int per = kp / 16;
        for (int i = threadIdx.x; i < NT * per; i += blockDim.x) {
            int j = i / per, o = i - j * per;
            dst[i] = j < n ? __ldg(src + (size_t)j * per + o) : make_int4(0, 0, 0, 0);
        }
    }
    __syncthreads();
    while (c0 < nck) {
#pragma unroll
        for (int u = 0; u < TG_CPW; u++) {
            int c = c0 + u * WR;
            if (c < nck) {
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    const int4 *xp = (const int4 *)(tsm + (size_t)j * kp + 64 * c);
                    int a = acc[j];
                    a = dot16(wv[u].x, xp[0], a); a = dot16(wv[u].y, xp[1], a); a = dot16(wv[u].z, xp[2], a); a = dot16(wv[u].w, xp[3], a);
                    acc[j] = a;
                }
            }
        }
        c0 += WR * TG_CPW;
#pragma unroll
        for (int u = 0; u < TG_CPW; u++) { int c = c0 + u * WR; if (c < nck) wv[u] = ld_stream(wg + (size_t)c * TG_RG); }
    }
    __syncthreads();
    if (NV && threadIdx.x == 0) nlast = old == gridDim.x - 1;
    int *red = (int *)tsm;  /* [NT][W][32], over the staged activations */
#pragma unroll
    for (int j = 0; j < NT; j++) red[((size_t)j * W + w) * 32 + lane] = acc[j];
    __syncthreads();
    for (int jj = w; jj < NT * RG; jj += W) {  /* token j of group gi */
        int j = jj / RG, gi = jj - j * RG, g = blockIdx.x * RG + gi;
        if (g >= A.gend[2]) continue;
        TGSel mo = tg_sel(A, g);
        int s = 0;
        for (int v = gi; v < W; v += RG) s += red[((size_t)j * W + v) * 32 + lane];
        int row = mo.g * TG_RG + lane;
        if (row < mo.rows && j < n) {
            if (NV) tg_out1(mo, row, j, s, s_loc, sum_loc);
            else tg_out(mo, row, j, s, xs, xsum);
        }
    }
    if (NV && nlast)  /* every block has read x and y: write the row back (recomputed: the same operations) */
        for (int i = threadIdx.x; i < N.d; i += blockDim.x) {
            float a = norm_pre<PRE>(N.x, N.y, N.act, i);
            if (PRE) N.xo[i] = a;
            N.out[i] = __fmul_rn(N.w[i], __fmul_rn(a, r));
        }
}

/* Tensor cores, n > 8 tokens: mma.sync m16n8k32 s8 x s8 -> s32. Warp (h, tg) of a block does rows
 * 16h..16h+15 of the block's 32-row group against NT8 tiles of 8 tokens. Per 64-weight chunk, lane
 * (gid = lane/4, tig = lane%4) takes word tig of rows gid and gid+8 (k = 64c+16tig .. +15) and
 * the 16 activation bytes of the same k for token gid of each tile; the four 2-bit fields s of a
 * word are k = 64c+16tig+4s+{0..3}, so fields (0,1) then (2,3) are the two k-halves of two mma
 * steps (a k permutation applied to both operands; integer sums do not depend on it). A holds the
 * codes 0..2 (value + 1): acc - xsum is the exact product. */
__device__ __forceinline__ void mma_s8(int *c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned fld(unsigned w, int s) { return (w >> (2 * s)) & 0x03030303u; }

template <int NT8>
__global__ void __launch_bounds__(256) k_tmma(TGArgs A, int nchunk, const int8_t *xq, int kp, const float *xs,
                                              const int32_t *xsum, int n) {
    pdl_entry();
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, h = wid & 1, tgi = wid >> 1;
    int gid = lane >> 2, tig = lane & 3;
    TGSel m = tg_sel(A, blockIdx.x);
    int t0 = (blockIdx.y * (blockDim.x >> 6) + tgi) * 8 * NT8;
    if (t0 >= n) return;
    const unsigned *wa = (const unsigned *)((const uint4 *)m.w + (size_t)m.g * nchunk * TG_RG + 16 * h + gid) + tig;
    const int4 *xp[NT8];
#pragma unroll
    for (int i = 0; i < NT8; i++) {
        int t = t0 + 8 * i + gid;
        if (t >= n) t = n - 1;
        xp[i] = (const int4 *)(xq + (size_t)t * kp) + tig;
    }
    int acc[NT8][4];
#pragma unroll
    for (int i = 0; i < NT8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0;
#pragma unroll 4
    for (int c = 0; c < nchunk; c++) {
        unsigned w0 = __ldg(wa + (size_t)c * TG_RG * 4), w1 = __ldg(wa + (size_t)c * TG_RG * 4 + 8 * 4);
        int4 xv[NT8];
#pragma unroll
        for (int i = 0; i < NT8; i++) xv[i] = __ldg(xp[i] + 4 * c);
#pragma unroll
        for (int i = 0; i < NT8; i++) {
            mma_s8(acc[i], fld(w0, 0), fld(w1, 0), fld(w0, 1), fld(w1, 1), (unsigned)xv[i].x, (unsigned)xv[i].y);
            mma_s8(acc[i], fld(w0, 2), fld(w1, 2), fld(w0, 3), fld(w1, 3), (unsigned)xv[i].z, (unsigned)xv[i].w);
        }
    }
#pragma unroll
    for (int i = 0; i < NT8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = m.g * TG_RG + 16 * h + gid + (e >= 2 ? 8 : 0), t = t0 + 8 * i + 2 * tig + (e & 1);
            if (r < m.rows && t < n) tg_out(m, r, t, acc[i][e], xs, xsum);
        }
}

template <typename K> static bitnet_status smem_raise(K kern, size_t smem, int *done) {
    if (smem <= 48 * 1024 || *done) return BITNET_OK;
    *done = 1;
    return cerr(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, TG_SMEM_MAX), "ternary GEMV shared memory");
}

/* The launch arguments of nw (1..3) matrices sharing one input: each matrix and the end of its
 * row groups in the grid. Returns the total number of row groups. */
static int tg_args(const bn_cu_tmm *mm, int nw, TGArgs *a) {
    memset(a, 0, sizeof *a);
    int tot = 0;
    for (int i = 0; i < 3; i++) {
        if (i < nw) { a->m[i] = mm[i]; tot += tg_groups(mm[i].rows); }
        a->gend[i] = tot;
    }
    return tot;
}

extern "C" bitnet_status bn_cu_tgemm(const bn_cu_tmm *mm, int nw, int cols, const int8_t *xq, const float *xs,
                                     const int32_t *xsum, int n, void *s) {
    if (nw < 1 || nw > 3) return bn_err(BITNET_ERR_ARG, "cuda: tgemm of %d matrices (1..3)", nw);
    if (n <= 0) return BITNET_OK;
    TGArgs a;
    int tot = tg_args(mm, nw, &a);
    if (tot == 0) return BITNET_OK;
    int kp = bn_kpad(cols), nch = kp / 64;
    if (n > 8) {
        int nt8 = n >= 32 ? 4 : n >= 16 ? 2 : 1, tpw = 8 * nt8;
        int tgs = (n + tpw - 1) / tpw; if (tgs > 4) tgs = 4;
        dim3 grid(tot, (n + tgs * tpw - 1) / (tgs * tpw));
        if (grid.y > 65535) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: tgemm of %d tokens in one call", n);
        if (nt8 == 4) launch(k_tmma<4>, grid, 64 * tgs, 0, ST(s), a, nch, xq, kp, xs, xsum, n);
        else if (nt8 == 2) launch(k_tmma<2>, grid, 64 * tgs, 0, ST(s), a, nch, xq, kp, xs, xsum, n);
        else launch(k_tmma<1>, grid, 64 * tgs, 0, ST(s), a, nch, xq, kp, xs, xsum, n);
        return launched("ternary GEMM (tensor cores)");
    }
    int nt = n == 1 ? 1 : n == 2 ? 2 : n <= 4 ? 4 : 8;
    /* warps: about 4 chunks each, at most 32 (16 for one token: two blocks of <= 512 threads per
     * SM overlap one block's reduction with the other's loads; 2560x6912 at 27 warps, one block
     * per SM, streamed at 60% of the copy probe, at 16 warps 88-92%) */
    int W = (nch + 3) / 4, wmax = nt == 2 ? 32 : 16; if (W > wmax) W = wmax; if (W < 1) W = 1;
    size_t smem = (size_t)nt * kp, red = (size_t)nt * W * 32 * 4;
    if (red > smem) smem = red;
    if (smem > TG_SMEM_MAX && n > 1) {  /* fewer tokens per launch */
        int h = n / 2;
        bn_cu_tmm m2[3];
        for (int i = 0; i < nw; i++) {
            m2[i] = mm[i];
            if (m2[i].y_d) m2[i].y_d += (size_t)h * mm[i].rows;
            if (m2[i].yi_d) m2[i].yi_d += (size_t)h * mm[i].rows;
            if (m2[i].add_d) m2[i].add_d += (size_t)h * mm[i].rows;
        }
        bitnet_status r = bn_cu_tgemm(mm, nw, cols, xq, xs, xsum, h, s);
        return r ? r : bn_cu_tgemm(m2, nw, cols, xq + (size_t)h * kp, xs + h, xsum + h, n - h, s);
    }
    if (smem > TG_SMEM_MAX) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: ternary GEMV with %d columns x %d tokens needs %zu bytes of shared memory", cols, n, smem);
    static int raised[4];
    bitnet_status r = BITNET_OK;
    TGNorm N; memset(&N, 0, sizeof N);
    switch (nt) {
    case 1: if (!(r = smem_raise(k_tgemv<1, 0, 0, 1>, smem, &raised[0]))) launch(k_tgemv<1, 0, 0, 1>, tot, 32 * W, smem, ST(s), a, nch, xq, kp, xs, xsum, n, N); break;
    case 2: if (!(r = smem_raise(k_tgemv<2, 0, 0, 1>, smem, &raised[1]))) launch(k_tgemv<2, 0, 0, 1>, tot, 32 * W, smem, ST(s), a, nch, xq, kp, xs, xsum, n, N); break;
    case 4: if (!(r = smem_raise(k_tgemv<4, 0, 0, 1>, smem, &raised[2]))) launch(k_tgemv<4, 0, 0, 1>, tot, 32 * W, smem, ST(s), a, nch, xq, kp, xs, xsum, n, N); break;
    default: if (!(r = smem_raise(k_tgemv<8, 0, 0, 1>, smem, &raised[3]))) launch(k_tgemv<8, 0, 0, 1>, tot, 32 * W, smem, ST(s), a, nch, xq, kp, xs, xsum, n, N); break;
    }
    return r ? r : launched("ternary GEMV");
}

template <int NV, int PRE>
static bitnet_status norm_tgemv_go(const TGArgs &a, int tot, int W, size_t smem, int nch, int kp, const TGNorm &N, void *s) {
    static int raised[2];
    bitnet_status r;
    /* two row groups per block when there are more than two waves of one-group blocks (halves the
     * blocks and the norms; each warp then streams 2x the chunks, still all loaded up front) */
    if (tot > 264 && W % 2 == 0 && (nch + W / 2 - 1) / (W / 2) <= TG_CPW) {
        if (!(r = smem_raise(k_tgemv<1, NV, PRE, 2>, smem, &raised[1])))
            launch(k_tgemv<1, NV, PRE, 2>, (tot + 1) / 2, 32 * W, smem, ST(s), a, nch, (const int8_t *)NULL, kp, (const float *)NULL, (const int32_t *)NULL, 1, N);
    } else if (!(r = smem_raise(k_tgemv<1, NV, PRE, 1>, smem, &raised[0])))
        launch(k_tgemv<1, NV, PRE, 1>, tot, 32 * W, smem, ST(s), a, nch, (const int8_t *)NULL, kp, (const float *)NULL, (const int32_t *)NULL, 1, N);
    return r ? r : launched("ternary GEMV with RMSNorm");
}
template <int PRE>
static bitnet_status norm_tgemv_pre(const TGArgs &a, int tot, int W, size_t smem, int nch, int kp, const TGNorm &N, void *s) {
    switch (norm_vpt(N.d)) {
    case 4: return norm_tgemv_go<4, PRE>(a, tot, W, smem, nch, kp, N, s);
    case 8: return norm_tgemv_go<8, PRE>(a, tot, W, smem, nch, kp, N, s);
    case 16: return norm_tgemv_go<16, PRE>(a, tot, W, smem, nch, kp, N, s);
    default: return norm_tgemv_go<32, PRE>(a, tot, W, smem, nch, kp, N, s);
    }
}
extern "C" bitnet_status bn_cu_norm_tgemv(const bn_cu_tmm *mm, int nw, int cols, int pre, int act, float *x, const float *y, const float *w,
                                          float eps, float *out, unsigned *cnt, void *s) {
    if (nw < 1 || nw > 3 || pre < 0 || pre > 2) return bn_err(BITNET_ERR_ARG, "cuda: norm_tgemv of %d matrices, pre-op %d", nw, pre);
    if (cols < 1 || cols > 32 * 1024) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: RMSNorm over %d values (at most 32768)", cols);
    TGArgs a;
    int tot = tg_args(mm, nw, &a);
    if (tot == 0) return BITNET_OK;
    int kp = bn_kpad(cols), nch = kp / 64, W = tg_warps1(nch);
    size_t smem = (size_t)kp, red = (size_t)W * 32 * 4;
    if (red > smem) smem = red;
    TGNorm N = {x, y, w, x, out, act, cols, eps, cnt};
    switch (pre) {
    case 0: return norm_tgemv_pre<0>(a, tot, W, smem, nch, kp, N, s);
    case 1: return norm_tgemv_pre<1>(a, tot, W, smem, nch, kp, N, s);
    default: return norm_tgemv_pre<2>(a, tot, W, smem, nch, kp, N, s);
    }
}

/* ---- RMSNorm (+ a fused pre-op, + the activation quantizer): one block per row ----
 * norm_row (above) with norm_threads(d) threads: the row stays in registers, one read, the
 * normed values written once and quantized from registers. rmsnorm, rmsnorm+quant, the fused
 * pre-ops and the GEMV with the norm inside share it, so their values are identical bit for bit. */
template <int VPT, int PRE, int QUANT>
__global__ void __launch_bounds__(1024) k_norm(float *out, float *x, const float *y, int act, const float *w, int d, float eps,
                                               int8_t *xq, int kp, float *xs, int32_t *xsum) {
    pdl_entry();
    __shared__ float sh[33];
    __shared__ int shi[33];
    size_t row = (size_t)blockIdx.x * d;
    float a[VPT], v[VPT], s = 0.f, r;
    int sum = 0;
    norm_row<VPT, PRE, QUANT>(x + row, y ? y + row : NULL, act, w, d, eps, a, v, QUANT ? xq + (size_t)blockIdx.x * kp : NULL, kp, &r, &s, &sum, sh, shi);
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < d) { if (PRE) x[row + i] = a[j]; out[row + i] = v[j]; }
    }
    if (QUANT && threadIdx.x == 0) { xs[blockIdx.x] = s; xsum[blockIdx.x] = sum; }
}

template <int PRE, int QUANT>
static bitnet_status norm_go(float *out, float *x, const float *y, int act, const float *w, int n, int d, float eps,
                             int8_t *xq, int kp, float *xs, int32_t *xsum, void *s) {
    if (n <= 0) return BITNET_OK;
    if (d > 32 * 1024) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: RMSNorm over %d values (at most 32768)", d);
    int vpt = norm_vpt(d), th = norm_threads(d);
    switch (vpt) {
    case 4: launch(k_norm<4, PRE, QUANT>, n, th, 0, ST(s), out, x, y, act, w, d, eps, xq, kp, xs, xsum); break;
    case 8: launch(k_norm<8, PRE, QUANT>, n, th, 0, ST(s), out, x, y, act, w, d, eps, xq, kp, xs, xsum); break;
    case 16: launch(k_norm<16, PRE, QUANT>, n, th, 0, ST(s), out, x, y, act, w, d, eps, xq, kp, xs, xsum); break;
    default: launch(k_norm<32, PRE, QUANT>, n, th, 0, ST(s), out, x, y, act, w, d, eps, xq, kp, xs, xsum); break;
    }
    return launched(QUANT ? "RMSNorm + quantization" : "RMSNorm");
}
extern "C" bitnet_status bn_cu_rmsnorm_quant(float *out, const float *x, const float *w, int n, int d, float eps,
                                             int8_t *xq, int kp, float *xs, int32_t *xsum, void *s) {
    return norm_go<0, 1>(out, (float *)x, NULL, 0, w, n, d, eps, xq, kp, xs, xsum, s);
}
extern "C" bitnet_status bn_cu_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps, void *s) {
    return norm_go<0, 0>(out, (float *)x, NULL, 0, w, n, d, eps, NULL, 0, NULL, NULL, s);
}
extern "C" bitnet_status bn_cu_add_rmsnorm_quant(float *out, float *x, const float *y, const float *w, int n, int d, float eps,
                                                 int8_t *xq, int kp, float *xs, int32_t *xsum, void *s) {
    return norm_go<1, 1>(out, x, y, 0, w, n, d, eps, xq, kp, xs, xsum, s);
}
extern "C" bitnet_status bn_cu_glu_rmsnorm_quant(float *g, const float *u, int act, const float *w, int n, int d, float eps,
                                                 int8_t *xq, int kp, float *xs, int32_t *xsum, void *s) {
    return norm_go<2, 1>(g, g, u, act, w, n, d, eps, xq, kp, xs, xsum, s);
}

/* ---- RoPE: block per (row, head) ---- */
__global__ void k_rope(float *v, int nheads, int hd, const int32_t *pos, const float *cs, const float *sn) {
    pdl_entry();
    int t = blockIdx.x, h = blockIdx.y, half = hd / 2;
    int p = pos[t];
    float *vh = v + ((size_t)t * nheads + h) * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float c = cs[(size_t)p * half + i], sv = sn[(size_t)p * half + i];
        float x1 = vh[i], x2 = vh[i + half];
        vh[i] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, sv));
        vh[i + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, sv));
    }
}
extern "C" bitnet_status bn_cu_rope(float *v, int n, int nheads, int hd, const int32_t *pos, const float *cs, const float *sn, void *s) {
    if (n <= 0 || nheads <= 0) return BITNET_OK;
    int th = hd / 2 < 32 ? 32 : (hd / 2 + 31) / 32 * 32;
    if (th > 256) th = 256;
    launch(k_rope, dim3(n, nheads), th, 0, ST(s), v, nheads, hd, pos, cs, sn);
    return launched("RoPE");
}

/* ---- KV cache store ---- */
__global__ void k_kv_store(float *kc, float *vc, size_t sstr, const float *k, const float *v, int kvd,
                           const int32_t *seq, const int32_t *pos) {
    pdl_entry();
    int t = blockIdx.x;
    size_t off = (size_t)seq[t] * sstr + (size_t)pos[t] * kvd;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        kc[off + i] = k[(size_t)t * kvd + i];
        vc[off + i] = v[(size_t)t * kvd + i];
    }
}
extern "C" bitnet_status bn_cu_kv_store(float *kc, float *vc, size_t sstr, const float *k, const float *v,
                                        int n, int kvd, const int32_t *seq, const int32_t *pos, void *s) {
    if (n <= 0) return BITNET_OK;
    launch(k_kv_store, n, 256, 0, ST(s), kc, vc, sstr, k, v, kvd, seq, pos);
    return launched("KV cache store");
}

/* RoPE of one head's pair (i, i + hd/2) at table row cs/sn (the k_rope operations). */
__device__ __forceinline__ void rope2(float x1, float x2, float c, float sv, float *o1, float *o2) {
    *o1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, sv));
    *o2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, sv));
}
/* k_kv_store with RoPE of the keys on the way (cs NULL: none); block per token. */
__global__ void k_rope_kv_store(float *kc, float *vc, size_t sstr, const float *k, const float *v, int nkv, int hd,
                                const int32_t *seq, const int32_t *pos, const float *cs, const float *sn) {
    pdl_entry();
    int t = blockIdx.x, kvd = nkv * hd, half = hd / 2, p = pos[t];
    size_t off = (size_t)seq[t] * sstr + (size_t)p * kvd;
    const float *kr = k + (size_t)t * kvd;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        vc[off + i] = v[(size_t)t * kvd + i];
        if (!cs) { kc[off + i] = kr[i]; continue; }
        int h = i / hd, d = i - h * hd;
        if (d >= half) continue;
        float o1, o2;
        rope2(kr[h * hd + d], kr[h * hd + d + half], cs[(size_t)p * half + d], sn[(size_t)p * half + d], &o1, &o2);
        kc[off + h * hd + d] = o1; kc[off + h * hd + d + half] = o2;
    }
}
extern "C" bitnet_status bn_cu_rope_kv_store(float *kc, float *vc, size_t sstr, const float *k, const float *v, int n, int nkv, int hd,
                                             const int32_t *seq, const int32_t *pos, const float *cs, const float *sn, void *s) {
    if (n <= 0) return BITNET_OK;
    launch(k_rope_kv_store, n, 256, 0, ST(s), kc, vc, sstr, k, v, nkv, hd, seq, pos, cs, sn);
    return launched("RoPE + KV cache store");
}

/* ---- attention ----
 * Decode / general (k_att): block (kv head kh and a group of up to AT_G of its query heads,
 * split sp, token t) covers positions [sp*ch, min(sp*ch + ch, pos[t] + 1)), ch the multiple of
 * AT_STEP that spreads pos[t] + 1 positions over the nsplit splits of the grid (so a graph's grid
 * of nsplit <= AT_SPLITS splits serves every position; the splits past pos[t] exit at once). Each of its AT_NW warps
 * takes AT_PB consecutive positions per step with all their key and value rows in registers
 * before the first use (lane: dims lane + 32u), keeps an online softmax per query head, and the
 * warps are merged in shared memory into one partial record (max, sum, unnormalized out[hd]) per
 * head. Splits past pos[t] exit at once; a single split writes out itself, else the last split
 * block of its (token, kv head, head group) to finish (a counter that atomicInc wraps to 0)
 * merges the records. */
#define AT_NW 8
#define AT_PB 4
#define AT_G 4
#define AT_STEP (AT_NW * AT_PB)  /* positions per block step; a block's chunk is a multiple */
#define AT_SPLITS 32             /* splits per (token, kv head) at most */
#define ATT_MAXSPLIT 256
#define ATT_TOKSPLITS 16384      /* workspace: tokens x splits */
static int att_maxsplit(int n) { int m = ATT_TOKSPLITS / (n > 0 ? n : 1); return m < 1 ? 1 : m > ATT_MAXSPLIT ? ATT_MAXSPLIT : m; }

/* How att_split's threads meet: the whole block (kernels of their own), or a group inside a
 * bigger block (the one-kernel decode step: named barrier, grid barrier as the entry). */
struct SyncBlock {
    __device__ int tid() const { return threadIdx.x; }
    __device__ int nt() const { return blockDim.x; }
    __device__ void sync() const { __syncthreads(); }
    __device__ void entry() const { pdl_entry(); }
    __device__ int early() const { return 0; }
    __device__ void mark(int) const {}
    __device__ void markv(int, float) const {}
};

/* Element d of a head row x[hd] after RoPE at table row cs/sn (cs NULL: x[d] as is). */
__device__ __forceinline__ float rope1(const float *x, int d, int hd, const float *cs, const float *sn) {
    if (!cs) return x[d];
    int half = hd / 2, i = d < half ? d : d - half;
    float o1, o2;
    rope2(x[i], x[i + half], cs[i], sn[i], &o1, &o2);
    return d < half ? o1 : o2;
}

/* Key and value rows sb..sb+AT_PB-1 (those < s1 and != skip; else 0) of one kv head (K, V already
 * offset to it, rows kvd apart), lane's dims. L2 only (ld.cg): a block reads each row once, and
 * in L1 the rows would evict what is reused (in the one-kernel step, with most of L1 given to
 * shared memory, its local-memory spills). */
template <int DPL>
__device__ __forceinline__ void att_rows(const float *K, const float *V, int kvd, int hd, int sb, int s1, int skip, int lane,
                                         float (&kr)[AT_PB][DPL], float (&vr)[AT_PB][DPL]) {
    if (hd == 32 * DPL) {  /* every lane's dims exist: a row pointer each, constant offsets; a row not taken
                            * reads row s1 - 1 instead (always in the cache: s1 > s0 >= 0; sb itself may be past
                            * the context when a warp has no rows), its values then dropped */
#pragma unroll
        for (int i = 0; i < AT_PB; i++) {
            int s = sb + i;
            bool ok = s < s1 && s != skip;
            const float *kp = K + (size_t)(ok ? s : s1 - 1) * kvd + lane, *vp = V + (size_t)(ok ? s : s1 - 1) * kvd + lane;
#pragma unroll
            for (int u = 0; u < DPL; u++) {
                float a = __ldcg(kp + 32 * u), c = __ldcg(vp + 32 * u);
                kr[i][u] = ok ? a : 0.f;
                vr[i][u] = ok ? c : 0.f;
            }
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < AT_PB; i++) {
        int s = sb + i;
#pragma unroll
        for (int u = 0; u < DPL; u++) {
            int d = lane + 32 * u;
            bool ok = s < s1 && s != skip && d < hd;
            kr[i][u] = ok ? __ldcg(K + (size_t)s * kvd + d) : 0.f;
            vr[i][u] = ok ? __ldcg(V + (size_t)s * kvd + d) : 0.f;
        }
    }
}

/* att_rows' rows (those < s1 and != skip) of one warp into L2 only: lane i one 128-byte line
 * (hd <= 128: AT_PB key rows, then AT_PB value rows, hd / 32 lines each). */
__device__ __forceinline__ void att_rows_l2(const float *K, const float *V, int kvd, int hd, int sb, int s1, int skip, int lane) {
    int per = (hd + 31) / 32, r = lane / per, ln = lane - r * per, s = sb + r % AT_PB;
    if (r < 2 * AT_PB && s < s1 && s != skip)
        asm volatile("prefetch.global.L2 [%0];" :: "l"((r < AT_PB ? K : V) + (size_t)s * kvd + 32 * ln));
}

/* Every thread of a split block once its records are written: is it the last of the ns splits
 * of its counter to arrive? Thread 0 counts it between two block barriers (atomicInc wrapping to
 * 0) with release (the block's record writes, ordered by the first barrier, go first) and acquire
 * (the last one sees the other splits' records after the second): one fence pair instead of two
 * __threadfence()s by every thread. */
template <class SY>
__device__ __forceinline__ bool att_is_last(unsigned *cnt, int ns, SY sy) {
    __shared__ int last;
    sy.sync();
    if (sy.tid() == 0) {
        unsigned old;
        asm volatile("atom.acq_rel.gpu.global.inc.u32 %0, [%1], %2;" : "=r"(old) : "l"(cnt), "r"((unsigned)ns - 1) : "memory");
        last = old == (unsigned)ns - 1;
    }
    sy.sync();
    return last;
}
/* Called by every block of k_att once its partial records are written: the last block of its
 * (token, kv head, head group) to arrive merges the ns splits of its G query heads into out
 * (out: [G][hd]): one warp per head turns (max, sum) into weights in shared memory wt[G*(ns+1)],
 * then each thread sums output dims over the splits with independent loads (from L2). */
template <class SY = SyncBlock>
__device__ void att_arrive(const float *base, unsigned *cnt, int nsplit, int ns, int G, int hd, float *out, float *wt, SY sy = SY()) {
    if (!att_is_last(cnt, ns, sy)) return;
    size_t rec = (size_t)hd + 2;
    int lane = sy.tid() & 31, w = sy.tid() >> 5, nwp = sy.nt() >> 5;
    for (int j = w; j < G; j += nwp) {
        const float *b = base + (size_t)j * nsplit * rec;
        float M = -INFINITY;
        for (int i = lane; i < ns; i += 32) M = fmaxf(M, __ldcg(b + i * rec));
        M = warp_max_f(M);
        float L = 0.f;
        for (int i = lane; i < ns; i += 32) { float l = __ldcg(b + i * rec + 1), e = l > 0.f ? expf(__ldcg(b + i * rec) - M) : 0.f; wt[j * ns + i] = e; L += l * e; }
        L = warp_sum_f(L);
        if (lane == 0) wt[G * ns + j] = 1.0f / L;
    }
    sy.sync();
    for (int idx = sy.tid(); idx < G * hd; idx += sy.nt()) {
        int j = idx / hd, d = idx - j * hd;
        const float *b = base + (size_t)j * nsplit * rec + 2 + d;
        float a = 0.f;
#pragma unroll 8
        for (int i = 0; i < ns; i++) a += __ldcg(b + i * rec) * wt[j * ns + i];
        out[(size_t)j * hd + d] = a * wt[G * ns + j];
    }
}

/* One reduce-scatter round of att_step's warp sums: values rv[0..N) become rv[0..N/2), a lane
 * with bit N of its index (N = 16, 8, 4, 2: the xor distance equals the count) keeping the upper half. */
template <int N>
__device__ __forceinline__ void att_rs_round(float (&rv)[16], int lane) {
    bool up = (lane & N) != 0;
#pragma unroll
    for (int k = 0; k < N / 2; k++) {
        float keep = up ? rv[k + N / 2] : rv[k], send = up ? rv[k] : rv[k + N / 2];
        rv[k] = keep + __shfl_xor_sync(0xffffffffu, send, N);
    }
}

/* One step of a warp: scores of its AT_PB rows (valid: sb + i < s1) for the G heads, online
 * softmax update of (m, l, acc). The state (m, l) of head jh = (lane >> 1) % AT_G is this lane's
 * (every lane of the head holds the same); acc[G][DPL] is every head's, this lane's dims.
 *
 * The 16 sums over the warp are a reduce-scatter (xor 16, 8, 4, 2: a lane keeps half its values
 * and adds the partner's copy of them) that leaves score k = i * AT_G + j in lanes 2k, 2k + 1,
 * then a last xor 1: 16 shuffles instead of 80, with every addition the plain butterfly's (own +
 * partner's, same pairs, same order), so the sums have its bits. Each lane then takes its own
 * score's softmax terms (one exp for the score, one for its head's rescale: 2 instead of 20), and
 * the 16 weights and 4 rescales are gathered for the products. Every value is the per-head
 * sequential update's: max over positions (exact, NaN scores dropped as fmaxf from -inf does), the
 * exps of the same arguments, the head's sum in position order, l * corr + ls, acc * corr plus the
 * weighted rows in position order. */
template <int DPL>
__device__ __forceinline__ void att_step(const float *qs, int hd, int lane, const float (&kr)[AT_PB][DPL], const float (&vr)[AT_PB][DPL],
                                         int sb, int s1, int G, float scale, float &m, float &l, float (&acc)[AT_G][DPL]) {
    static_assert(AT_PB * AT_G == 16 && AT_G == 4, "16 scores a step, 4 heads");
    /* q (qs[G][hd], roped) read from shared memory each step: live only here (registers for the
     * one-kernel step's 128 a thread) */
    const bool full = hd == 32 * DPL;
    float qv[AT_G][DPL];
    if (full) {  /* constant offsets from one base (qs holds AT_G * 32 * DPL values: heads past G read, then zeroed) */
#pragma unroll
        for (int j = 0; j < AT_G; j++)
#pragma unroll
            for (int u = 0; u < DPL; u++) { float t = qs[lane + j * 32 * DPL + 32 * u]; qv[j][u] = j < G ? t : 0.f; }
    } else {
#pragma unroll
        for (int j = 0; j < AT_G; j++)
#pragma unroll
            for (int u = 0; u < DPL; u++) { int d = lane + 32 * u; qv[j][u] = j < G && d < hd ? qs[j * hd + d] : 0.f; }
    }
    float rv[16];
#pragma unroll
    for (int i = 0; i < AT_PB; i++)
#pragma unroll
        for (int j = 0; j < AT_G; j++) {
            float a = 0.f;
#pragma unroll
            for (int u = 0; u < DPL; u++) a += qv[j][u] * kr[i][u];
            rv[i * AT_G + j] = a;
        }
    att_rs_round<16>(rv, lane); att_rs_round<8>(rv, lane); att_rs_round<4>(rv, lane); att_rs_round<2>(rv, lane);
    rv[0] += __shfl_xor_sync(0xffffffffu, rv[0], 1);
    const int k = (lane >> 1) & 15, i0 = k / AT_G;
    float sv = sb + i0 < s1 ? rv[0] * scale : -INFINITY;
    float mb = fmaxf(-INFINITY, sv);
    mb = fmaxf(mb, __shfl_xor_sync(0xffffffffu, mb, 8));   /* the head's positions: lane bits 3, 4 */
    mb = fmaxf(mb, __shfl_xor_sync(0xffffffffu, mb, 16));
    float mn = fmaxf(m, mb), corr = expf(m - mn), e = expf(sv - mn);
    float ek[16], cj[AT_G];
#pragma unroll
    for (int q = 0; q < 16; q++) ek[q] = __shfl_sync(0xffffffffu, e, 2 * q);
#pragma unroll
    for (int j = 0; j < AT_G; j++) cj[j] = __shfl_sync(0xffffffffu, corr, 2 * j);
    float ls[AT_G];
#pragma unroll
    for (int j = 0; j < AT_G; j++) {
        ls[j] = 0.f;
#pragma unroll
        for (int i = 0; i < AT_PB; i++) ls[j] += ek[i * AT_G + j];
    }
    const int jh = k % AT_G;
    float lso = jh == 0 ? ls[0] : jh == 1 ? ls[1] : jh == 2 ? ls[2] : ls[3];
    l = l * corr + lso;
    m = mn;
#pragma unroll
    for (int j = 0; j < AT_G; j++)
#pragma unroll
        for (int u = 0; u < DPL; u++) {
            float a = acc[j][u] * cj[j];
#pragma unroll
            for (int i = 0; i < AT_PB; i++) a += ek[i * AT_G + j] * vr[i][u];
            acc[j][u] = a;
        }
}

/* A decode attention block's place (k_att, k_att_cl): kv head kh, its first query head j0 and
 * G heads, split sp of token t at position p; chunk ch (a multiple of step: ceil((p + 1) / nsplit)
 * rounded up), positions [s0, s1) (none when s0 > p). */
struct AttBlk { int kh, j0, G, sp, t, p, ch, s0, s1; };
__device__ __forceinline__ AttBlk att_blk(int nh, int nkv, const int32_t *pos, int nsplit, int step, int bx, int by, int bz) {
    AttBlk b;
    int grp = nh / nkv, hgs = (grp + AT_G - 1) / AT_G;
    b.kh = bx / hgs; b.j0 = (bx - b.kh * hgs) * AT_G;
    b.G = min(AT_G, grp - b.j0); b.sp = by; b.t = bz;
    b.p = pos[b.t];  /* positions and sequences: host uploads, not kernel outputs */
    int ch = (b.p + nsplit) / nsplit;
    b.ch = (ch + step - 1) / step * step;
    b.s0 = b.sp * b.ch; b.s1 = min(b.s0 + b.ch, b.p + 1);
    return b;
}

/* The work of one split block with s0 <= p (NW warps; block-uniform): q of its G heads (roped)
 * into qs, this token's k (roped) and v stored by the block holding p (kin set), an online
 * softmax per warp over AT_PB positions per step, the warps' (max, sum) left in wml[NW][AT_G][2]
 * and their unnormalized outputs in sm[NW][AT_G][hd]. Runs pdl_entry(). */
template <int DPL, int NW, class SY = SyncBlock>
__device__ __forceinline__ void att_split(const AttBlk &b, const float *q, float *kc, float *vc, size_t sstr, int nh, int nkv, int hd,
        const int32_t *seq, const float *kin, const float *vin, const float *cs, const float *sn, float *qs, float *sm, float (*wml)[AT_G][2],
        SY sy = SY()) {
    int p = b.p, G = b.G, grp = nh / nkv, kvd = nkv * hd, tid = sy.tid(), nt = sy.nt(), lane = tid & 31, w = tid >> 5, half = hd / 2;
    size_t so = (size_t)seq[b.t] * sstr + (size_t)b.kh * hd;
    float *K = kc + so, *V = vc + so;
    const float *pc = cs ? cs + (size_t)p * half : NULL, *ps = sn ? sn + (size_t)p * half : NULL;
    float kr[AT_PB][DPL], vr[AT_PB][DPL];
    int sb = b.s0 + w * AT_PB, s1 = b.s1;
    /* In-kernel-store path (kin set): no kernel of this forward writes this sequence's rows
     * before p, so the first step's rows are read before waiting for the previous kernel; row p
     * comes from kin/vin (roped here), never from the cache. */
    /* The one-kernel step (sy.early()) only starts them into L2 there and loads them after its
     * grid barrier: the poll of the barrier waited behind the block's 64 KB of loads in flight
     * (H200, 16 warps: its attention 8.7 -> 8.3 us a layer; loading after without the L2 start 8.6). */
    const int em = kin && hd <= 128 ? sy.early() : 0;
    if (kin && !em) att_rows<DPL>(K, V, kvd, hd, sb, s1, p, lane, kr, vr);
    else if (em) att_rows_l2(K, V, kvd, hd, sb, s1, p, lane);
    sy.entry();
    sy.mark(1);
    const float *qg = q + ((size_t)b.t * nh + (size_t)b.kh * grp + b.j0) * hd;
    for (int i = tid; i < G * hd; i += nt) qs[i] = rope1(qg + (i / hd) * hd, i % hd, hd, pc, ps);
    const float *kn = kin ? kin + (size_t)b.t * kvd + (size_t)b.kh * hd : NULL, *vn = kin ? vin + (size_t)b.t * kvd + (size_t)b.kh * hd : NULL;
    if (kin && b.j0 == 0 && p < b.s0 + b.ch)  /* the block holding position p stores this token's k (roped) and v */
        for (int d = tid; d < hd; d += nt) { K[(size_t)p * kvd + d] = rope1(kn, d, hd, pc, ps); V[(size_t)p * kvd + d] = vn[d]; }
    sy.sync();
    sy.mark(2);
    float m = -INFINITY, l = 0.f, acc[AT_G][DPL];  /* (m, l): head (lane >> 1) % AT_G's */
#pragma unroll
    for (int j = 0; j < AT_G; j++)
#pragma unroll
        for (int u = 0; u < DPL; u++) acc[j][u] = 0.f;
    float scale = 1.0f / sqrtf((float)hd);
    int it = 0;  /* (profiling marks only) */
    for (bool first = true; sb < s1; sb += NW * AT_PB, first = false, it++) {
        if (!(kin && first && !em)) att_rows<DPL>(K, V, kvd, hd, sb, s1, kin ? p : -1, lane, kr, vr);
        if (it == 0) sy.markv(7, kr[0][0] + vr[AT_PB - 1][DPL - 1]);  /* the first step's rows are in */
        if (it == 1) sy.markv(9, kr[0][0] + vr[AT_PB - 1][DPL - 1]);
        if (kin && p >= sb && p < sb + AT_PB)
#pragma unroll
            for (int i = 0; i < AT_PB; i++)
                if (sb + i == p)
#pragma unroll
                    for (int u = 0; u < DPL; u++) { int d = lane + 32 * u; if (d < hd) { kr[i][u] = rope1(kn, d, hd, pc, ps); vr[i][u] = vn[d]; } }
        att_step<DPL>(qs, hd, lane, kr, vr, sb, s1, G, scale, m, l, acc);
        if (it == 0) sy.markv(8, acc[0][0]);
        if (it == 1) sy.markv(10, acc[0][0]);
    }
    sy.mark(3);
    if (!(lane & 1) && lane < 2 * AT_G) { wml[w][lane >> 1][0] = m; wml[w][lane >> 1][1] = l; }  /* lane 2j: head j's */
#pragma unroll
    for (int j = 0; j < AT_G; j++)
#pragma unroll
        for (int u = 0; u < DPL; u++) { int d = lane + 32 * u; if (j < G && d < hd) sm[((size_t)w * AT_G + j) * hd + d] = acc[j][u]; }
    sy.sync();
}
/* The merge of att_split's NW warps, per head: warp j (lane v) computes head j's weights
 * ew[j][v] = exp(m_v - M) (0 for a warp without positions) and eml[j] = (M, L = sum of l_v * ew[j][v]
 * in warp order), then the group meets; att_wsum then gives one output element. Each value is
 * computed once, in the order of the per-element formula, so every caller gets the same bits. */
template <int NW, class SY = SyncBlock>
__device__ __forceinline__ void att_wweights(const float (*wml)[AT_G][2], int G, float (*ew)[NW], float (*eml)[2], SY sy = SY()) {
    static_assert(NW <= 32, "one lane per warp");
    int lane = sy.tid() & 31, w = sy.tid() >> 5;
    if (w < G) {  /* (independent shared-memory reads, no shuffle chains) */
        float mv = lane < NW ? wml[lane][w][0] : -INFINITY, lv = lane < NW ? wml[lane][w][1] : 0.f, M = -INFINITY;
#pragma unroll
        for (int v = 0; v < NW; v++) M = fmaxf(M, wml[v][w][0]);
        float e = lane < NW && lv > 0.f ? expf(mv - M) : 0.f, L = 0.f;
        if (lane < NW) ew[w][lane] = e;
        __syncwarp();
#pragma unroll
        for (int v = 0; v < NW; v++) L += wml[v][w][1] * ew[w][v];
        if (lane == 0) { eml[w][0] = M; eml[w][1] = L; }
    }
    sy.sync();
}
/* head j, dim d of the warps' unnormalized outputs sm[NW][AT_G][hd], weighted by att_wweights' ew */
template <int NW>
__device__ __forceinline__ float att_wsum(const float *sm, const float (*ew)[NW], int hd, int j, int d) {
    float a = 0.f;
#pragma unroll
    for (int v = 0; v < NW; v++) a += sm[((size_t)v * AT_G + j) * hd + d] * ew[j][v];
    return a;
}

/* After att_split: its merged (max, sum, unnormalized out) for the G heads, as the output itself
 * (ns == 1: one split holds every position) or as split sp's records base[(j*nsplit + sp)*(hd+2)]. */
template <int NW, class SY = SyncBlock>
__device__ __forceinline__ void att_records(const float *sm, const float (*wml)[AT_G][2], int G, int hd, int ns, int nsplit, int sp,
                                            float *base, float *ob, SY sy = SY()) {
    __shared__ float ew[AT_G][NW], eml[AT_G][2];
    size_t rec = (size_t)hd + 2;
    att_wweights<NW, SY>(wml, G, ew, eml, sy);
    for (int idx = sy.tid(); idx < G * hd; idx += sy.nt()) {
        int j = idx / hd, d = idx - j * hd;
        float a = att_wsum<NW>(sm, ew, hd, j, d);
        if (ns == 1) ob[idx] = a * (1.0f / eml[j][1]);
        else {
            float *r = base + ((size_t)j * nsplit + sp) * rec;
            r[2 + d] = a;
            if (d == 0) { r[0] = eml[j][0]; r[1] = eml[j][1]; }
        }
    }
}

template <int DPL>
__global__ void __launch_bounds__(AT_NW * 32) k_att(const float *q, float *kc, float *vc, size_t sstr, int nh, int nkv, int hd,
        const int32_t *seq, const int32_t *pos, int nsplit, float *ws, const float *kin, const float *vin,
        const float *cs, const float *sn, unsigned *cnt, float *out) {
    extern __shared__ float sm[];  /* [AT_NW][AT_G][hd] warp outputs; then the merge weights */
    __shared__ float qs[AT_G * 32 * DPL];
    __shared__ float wml[AT_NW][AT_G][2];
    AttBlk b = att_blk(nh, nkv, pos, nsplit, AT_STEP, blockIdx.x, blockIdx.y, blockIdx.z);
    if (b.s0 > b.p) return;
    att_split<DPL, AT_NW>(b, q, kc, vc, sstr, nh, nkv, hd, seq, kin, vin, cs, sn, qs, sm, wml);
    int G = b.G, grp = nh / nkv, ns = (b.p + b.ch) / b.ch;  /* splits holding positions 0..p (<= nsplit) */
    size_t rec = (size_t)hd + 2, h0 = (size_t)b.t * nh + (size_t)b.kh * grp + b.j0;
    float *base = ws + h0 * nsplit * rec;  /* head j: + (j*nsplit + sp)*rec */
    float *ob = out + h0 * hd;
    att_records<AT_NW>(sm, wml, G, hd, ns, nsplit, b.sp, base, ob);
    if (ns > 1) att_arrive(base, cnt + h0, nsplit, ns, G, hd, ob, sm);
}

/* Decode attention on sm_90+ (k_att_cl): k_att's splits of one (token, kv head, head group) are
 * one thread-block cluster of nsplit <= AT_CSPLITS blocks of NW warps (hd <= 128). Each block
 * leaves its merged partial (max, sum, unnormalized out[G][hd]) in its own shared memory; after a
 * cluster barrier block sp merges slice sp of the G*hd outputs over the splits' shared memories
 * (distributed shared memory), then a second barrier keeps them alive until all have read: no
 * records, fences or counters in global memory. Splits past p take part in the barriers only. */
#define AT_CSPLITS 16
#define AT_CTOK 4     /* the cluster path for calls of at most this many tokens (batched decode: the plain path) */
#define AT_CLEN 256   /* and grids of at least this many positions (below, the plain path's fewer, smaller blocks) */
template <int DPL, int NW>
__global__ void __launch_bounds__(NW * 32) k_att_cl(const float *q, float *kc, float *vc, size_t sstr, int nh, int nkv, int hd,
        const int32_t *seq, const int32_t *pos, int nsplit, const float *kin, const float *vin,
        const float *cs, const float *sn, float *out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ float sm[];  /* [NW][AT_G][hd] warp outputs, then this split's part[AT_G * hd] */
    __shared__ float qs[AT_G * 32 * DPL];
    __shared__ float wml[NW][AT_G][2];
    __shared__ float pml[AT_G][2];
    cg::cluster_group cl = cg::this_cluster();
    AttBlk b = att_blk(nh, nkv, pos, nsplit, NW * AT_PB, blockIdx.x, blockIdx.y, blockIdx.z);
    float *part = sm + (size_t)NW * AT_G * hd;
    int G = b.G, tot = G * hd;
    if (b.s0 <= b.p) {
        att_split<DPL, NW>(b, q, kc, vc, sstr, nh, nkv, hd, seq, kin, vin, cs, sn, qs, sm, wml);
        __shared__ float ew[AT_G][NW];
        att_wweights<NW>(wml, G, ew, pml);  /* each head's (M, L) straight into pml */
        for (int idx = threadIdx.x; idx < tot; idx += blockDim.x) {
            int j = idx / hd, d = idx - j * hd;
            part[idx] = att_wsum<NW>(sm, ew, hd, j, d);
        }
    } else pdl_entry();
    cl.sync();
    int ns = (b.p + b.ch) / b.ch, per = (tot + nsplit - 1) / nsplit;  /* splits holding positions 0..p */
    float *ob = out + ((size_t)b.t * nh + (size_t)b.kh * (nh / nkv) + b.j0) * hd;
    for (int i = threadIdx.x; i < per; i += blockDim.x) {
        int idx = b.sp * per + i, j = idx / hd;
        if (idx >= tot) break;
        /* (a version that issued all 3 * ns remote loads before the first use, unrolled over
         * AT_CSPLITS, measured 1-4 us slower per launch than these two plain loops) */
        float M = -INFINITY, L = 0.f, a = 0.f;
        for (int r = 0; r < ns; r++) M = fmaxf(M, cl.map_shared_rank(&pml[0][0], r)[2 * j]);
        for (int r = 0; r < ns; r++) {
            const float *pm = cl.map_shared_rank(&pml[0][0], r);
            float lr = pm[2 * j + 1], e = lr > 0.f ? expf(pm[2 * j] - M) : 0.f;
            L = __fmaf_rn(lr, e, L); a = __fmaf_rn(cl.map_shared_rank(part, r)[idx], e, a);
        }
        ob[idx] = a * (1.0f / L);
    }
    cl.sync();
#endif
}

/* Prefill (k_att_tile): block (kv head kh, tile of tq = TA_R / grp consecutive tokens, all of one
 * sequence) does the TA_R query rows r (token t0 + r / grp, query head kh*grp + r % grp) against
 * tiles of TA_K positions staged in shared memory (keys transposed), fp32; thread (ty, tx) of
 * 16 x 16 holds rows 4ty..4ty+3: their scores at positions tx and tx + 16 of a tile and output
 * dims tx + 16k; online softmax per row; a row masks the positions past its own. */
#define TA_R 64
#define TA_K 32
template <int DT>  /* hd = 16 * DT */
__global__ void __launch_bounds__(256) k_att_tile(const float *q, const float *kc, const float *vc, size_t sstr, int n, int nh, int nkv,
        const int32_t *seq, const int32_t *pos, const float *cs, const float *sn, float *out) {
    const int hd = 16 * DT, QS = hd + 1, KS = TA_K + 1;
    extern __shared__ float sm[];
    float *Qs = sm, *Kt = Qs + TA_R * QS, *Vs = Kt + hd * KS, *Ps = Vs + TA_K * hd;  /* [R][QS], [hd][KS], [K][hd], [R][KS] */
    int grp = nh / nkv, tq = TA_R / grp, kh = blockIdx.x, t0 = blockIdx.y * tq, kvd = nkv * hd, half = hd / 2;
    int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    pdl_entry();
    int tn = min(tq, n - t0), pmax = 0;
    for (int i = 0; i < tn; i++) pmax = max(pmax, pos[t0 + i]);
    for (int i = tid; i < TA_R * hd; i += blockDim.x) {
        int r = i / hd, d = i - r * hd, tt = t0 + r / grp;
        float v = 0.f;
        if (r < tq * grp && r / grp < tn) {
            int pp = pos[tt];
            v = rope1(q + ((size_t)tt * nh + (size_t)kh * grp + r % grp) * hd, d, hd, cs ? cs + (size_t)pp * half : NULL, sn ? sn + (size_t)pp * half : NULL);
        }
        Qs[r * QS + d] = v;
    }
    int rp[4];
#pragma unroll
    for (int a = 0; a < 4; a++) { int r = 4 * ty + a; rp[a] = r < tq * grp && r / grp < tn ? pos[t0 + r / grp] : -1; }
    const float *K = kc + (size_t)seq[t0] * sstr + (size_t)kh * hd, *V = vc + (size_t)seq[t0] * sstr + (size_t)kh * hd;
    float m[4], l[4], o[4][DT], scale = 1.0f / sqrtf((float)hd);
#pragma unroll
    for (int a = 0; a < 4; a++) { m[a] = -INFINITY; l[a] = 0.f;
#pragma unroll
        for (int k = 0; k < DT; k++) o[a][k] = 0.f; }
    for (int s0 = 0; s0 <= pmax; s0 += TA_K) {
        __syncthreads();
        for (int i = tid; i < TA_K * hd; i += blockDim.x) {
            int pp = i / hd, d = i - pp * hd, s = s0 + pp;
            Kt[d * KS + pp] = s <= pmax ? K[(size_t)s * kvd + d] : 0.f;
            Vs[pp * hd + d] = s <= pmax ? V[(size_t)s * kvd + d] : 0.f;
        }
        __syncthreads();
        float sc[4][2];
#pragma unroll
        for (int a = 0; a < 4; a++) sc[a][0] = sc[a][1] = 0.f;
#pragma unroll 4
        for (int d = 0; d < hd; d++) {
            float k0 = Kt[d * KS + tx], k1 = Kt[d * KS + tx + 16];
#pragma unroll
            for (int a = 0; a < 4; a++) { float qa = Qs[(4 * ty + a) * QS + d]; sc[a][0] += qa * k0; sc[a][1] += qa * k1; }
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            float s0v = s0 + tx <= rp[a] ? sc[a][0] * scale : -INFINITY, s1v = s0 + tx + 16 <= rp[a] ? sc[a][1] * scale : -INFINITY;
            float mb = fmaxf(s0v, s1v);
#pragma unroll
            for (int off = 8; off; off >>= 1) mb = fmaxf(mb, __shfl_xor_sync(0xffffffffu, mb, off));
            float mn = fmaxf(m[a], mb), corr = 1.f, e0 = 0.f, e1 = 0.f;
            if (mn != -INFINITY) { corr = expf(m[a] - mn); e0 = expf(s0v - mn); e1 = expf(s1v - mn); }
            float ls = e0 + e1;
#pragma unroll
            for (int off = 8; off; off >>= 1) ls += __shfl_xor_sync(0xffffffffu, ls, off);
            l[a] = l[a] * corr + ls; m[a] = mn;
            Ps[(4 * ty + a) * KS + tx] = e0; Ps[(4 * ty + a) * KS + tx + 16] = e1;
#pragma unroll
            for (int k = 0; k < DT; k++) o[a][k] *= corr;
        }
        __syncwarp();
#pragma unroll 4
        for (int pp = 0; pp < TA_K; pp++) {
            float vv[DT];
#pragma unroll
            for (int k = 0; k < DT; k++) vv[k] = Vs[pp * hd + tx + 16 * k];
#pragma unroll
            for (int a = 0; a < 4; a++) { float pa = Ps[(4 * ty + a) * KS + pp];
#pragma unroll
                for (int k = 0; k < DT; k++) o[a][k] += pa * vv[k]; }
        }
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        if (rp[a] < 0) continue;
        int r = 4 * ty + a;
        float *orow = out + ((size_t)(t0 + r / grp) * nh + (size_t)kh * grp + r % grp) * hd;
        float il = 1.0f / l[a];
#pragma unroll
        for (int k = 0; k < DT; k++) orow[tx + 16 * k] = o[a][k] * il;
    }
}

/* partial records [n][nh][splits][hd + 2], then n*nh arrival counters (zero between calls) */
static size_t att_recs(int n, int nh, int hd) { return (size_t)n * nh * att_maxsplit(n) * ((size_t)hd + 2); }
extern "C" size_t bn_cu_attention_ws(int n, int nh, int hd) { return att_recs(n, nh, hd) + (size_t)n * nh; }

/* k_att_cl for hd <= 128 with nsplit = min(the largest cluster (<= cap) the device co-schedules;
 * ceil(len / (NW * AT_PB))) splits. BITNET_ERR_UNSUPPORTED (no error set): no cluster fits, use k_att. */
template <int DPL, int NW> static int att_cl_max(int cap) {
    static int mx[AT_CSPLITS + 1], known[AT_CSPLITS + 1];
    if (known[cap]) return mx[cap];
    known[cap] = 1;
    size_t smem = ((size_t)NW * AT_G * 32 * DPL + AT_G * 32 * DPL) * sizeof(float);
    if (cudaFuncSetAttribute(k_att_cl<DPL, NW>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) cudaGetLastError();
    for (int c = cap; c >= 2 && !mx[cap]; c /= 2) {
        cudaLaunchConfig_t cf;
        memset(&cf, 0, sizeof cf);
        cf.gridDim = dim3(1, c, 1); cf.blockDim = NW * 32; cf.dynamicSmemBytes = smem;
        cudaLaunchAttribute at;
        at.id = cudaLaunchAttributeClusterDimension; at.val.clusterDim.x = 1; at.val.clusterDim.y = c; at.val.clusterDim.z = 1;
        cf.attrs = &at; cf.numAttrs = 1;
        int ncl = 0;
        if (cudaOccupancyMaxActiveClusters(&ncl, k_att_cl<DPL, NW>, &cf) == cudaSuccess && ncl > 0) mx[cap] = c;
        else cudaGetLastError();
    }
    return mx[cap];
}
template <int DPL, int NW> static bitnet_status att_cl_launch(dim3 g, int cap, cudaStream_t st, const float *q, const float *k, const float *v,
        float *kc, float *vc, size_t sstr, int nh, int nkv, int hd, const int32_t *seq, const int32_t *pos, int len,
        const float *cs, const float *sn, float *out) {
    int mx = att_cl_max<DPL, NW>(cap);
    if (!mx) return BITNET_ERR_UNSUPPORTED;
    int nsplit = (len + NW * AT_PB - 1) / (NW * AT_PB);
    if (nsplit > mx) nsplit = mx;
    g.y = nsplit;
    size_t smem = ((size_t)NW * AT_G * hd + (size_t)AT_G * hd) * sizeof(float);
    return cerr(launch_cl(k_att_cl<DPL, NW>, g, NW * 32, smem, st, dim3(1, nsplit, 1), q, kc, vc, sstr, nh, nkv, hd, seq, pos, nsplit,
                          k, v, cs, sn, out), "attention (clusters)");
}
/* g_cl: 1 = blocks of 16 warps in clusters of <= 16, 2 = 8 warps / <= 16, 3 = 16 warps / <= 8, 4 = 8 warps / <= 8 */
template <int NW> static bitnet_status att_cl_nw(dim3 g, int cap, cudaStream_t st, const float *q, const float *k, const float *v,
        float *kc, float *vc, size_t sstr, int nh, int nkv, int hd, const int32_t *seq, const int32_t *pos, int len,
        const float *cs, const float *sn, float *out) {
    int dpl = (hd + 31) / 32;
    if (dpl == 1) return att_cl_launch<1, NW>(g, cap, st, q, k, v, kc, vc, sstr, nh, nkv, hd, seq, pos, len, cs, sn, out);
    if (dpl == 2) return att_cl_launch<2, NW>(g, cap, st, q, k, v, kc, vc, sstr, nh, nkv, hd, seq, pos, len, cs, sn, out);
    return att_cl_launch<4, NW>(g, cap, st, q, k, v, kc, vc, sstr, nh, nkv, hd, seq, pos, len, cs, sn, out);
}
static bitnet_status att_cl_go(const float *q, const float *k, const float *v, float *kc, float *vc, size_t sstr, int n, int nh, int nkv,
                               int hd, const int32_t *seq, const int32_t *pos, int len, const float *cs, const float *sn, float *out,
                               cudaStream_t st) {
    int grp = nh / nkv, hgs = (grp + AT_G - 1) / AT_G, cap = g_cl >= 3 ? 8 : 16;
    dim3 g(nkv * hgs, 1, n);
    if (g_cl % 2) return att_cl_nw<16>(g, cap, st, q, k, v, kc, vc, sstr, nh, nkv, hd, seq, pos, len, cs, sn, out);
    return att_cl_nw<8>(g, cap, st, q, k, v, kc, vc, sstr, nh, nkv, hd, seq, pos, len, cs, sn, out);
}

extern "C" bitnet_status bn_cu_attention(const float *q, const float *kc, const float *vc, size_t sstr, int n, int nh, int nkv,
                                         int hd, const int32_t *seq, const int32_t *pos, int maxpos, float *ws, float *out, void *s) {
    return bn_cu_attention_fused(q, NULL, NULL, (float *)kc, (float *)vc, sstr, n, nh, nkv, hd, seq, pos, maxpos, NULL, NULL, ws, out, s);
}
extern "C" bitnet_status bn_cu_attention_fused(const float *q, const float *k, const float *v, float *kc, float *vc, size_t sstr,
                                               int n, int nh, int nkv, int hd, const int32_t *seq, const int32_t *pos, int maxpos,
                                               const float *cs, const float *sn, float *ws, float *out, void *s) {
    if (n <= 0) return BITNET_OK;
    if (hd > 256 || (hd & 1) || nkv <= 0 || nh % nkv) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: attention with head_dim %d, %d heads, %d kv heads", hd, nh, nkv);
    int len = maxpos + 1, nsplit = (len + AT_STEP - 1) / AT_STEP, ms = att_maxsplit(n);
    if (nsplit > AT_SPLITS) nsplit = AT_SPLITS;
    if (nsplit > ms) nsplit = ms;
    int grp = nh / nkv, hgs = (grp + AT_G - 1) / AT_G;
    if (g_cl && hd <= 128 && n <= AT_CTOK && len >= AT_CLEN) {
        bitnet_status r = att_cl_go(q, k, v, kc, vc, sstr, n, nh, nkv, hd, seq, pos, len, cs, sn, out, ST(s));
        if (r != BITNET_ERR_UNSUPPORTED) return r;  /* else the device takes no such cluster: the path below */
    }
    size_t smem = (size_t)AT_NW * AT_G * hd, cmb = (size_t)AT_G * (nsplit + 1);
    smem = (smem > cmb ? smem : cmb) * sizeof(float);
    dim3 grid(nkv * hgs, nsplit, n);
    unsigned *cnt = (unsigned *)(ws + att_recs(n, nh, hd));
    int dpl = (hd + 31) / 32;
    if (dpl == 1) launch(k_att<1>, grid, AT_NW * 32, smem, ST(s), q, kc, vc, sstr, nh, nkv, hd, seq, pos, nsplit, ws, k, v, cs, sn, cnt, out);
    else if (dpl == 2) launch(k_att<2>, grid, AT_NW * 32, smem, ST(s), q, kc, vc, sstr, nh, nkv, hd, seq, pos, nsplit, ws, k, v, cs, sn, cnt, out);
    else if (dpl <= 4) launch(k_att<4>, grid, AT_NW * 32, smem, ST(s), q, kc, vc, sstr, nh, nkv, hd, seq, pos, nsplit, ws, k, v, cs, sn, cnt, out);
    else launch(k_att<8>, grid, AT_NW * 32, smem, ST(s), q, kc, vc, sstr, nh, nkv, hd, seq, pos, nsplit, ws, k, v, cs, sn, cnt, out);
    return launched("attention");
}

extern "C" int bn_cu_attention_tile(int nh, int nkv, int hd) {
    if (nkv <= 0 || nh % nkv || nh / nkv > TA_R) return 0;
    if (hd != 32 && hd != 64 && hd != 128 && hd != 256) return 0;
    return TA_R / (nh / nkv);
}
template <int DT> static bitnet_status att_tile_go(dim3 g, size_t smem, cudaStream_t st, const float *q, const float *kc, const float *vc,
        size_t sstr, int n, int nh, int nkv, const int32_t *seq, const int32_t *pos, const float *cs, const float *sn, float *out) {
    static int raised = 0;
    if (!raised) {
        bitnet_status r = cerr(cudaFuncSetAttribute(k_att_tile<DT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), "attention shared memory");
        if (r) return r;
        raised = 1;
    }
    launch(k_att_tile<DT>, g, 256, smem, st, q, kc, vc, sstr, n, nh, nkv, seq, pos, cs, sn, out);
    return launched("attention (prefill tiles)");
}
extern "C" bitnet_status bn_cu_attention_prefill(const float *q, const float *kc, const float *vc, size_t sstr, int n, int nh, int nkv, int hd,
                                                 const int32_t *seq, const int32_t *pos, const float *cs, const float *sn, float *out, void *s) {
    if (n <= 0) return BITNET_OK;
    int tq = bn_cu_attention_tile(nh, nkv, hd);
    if (!tq) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: tiled attention with head_dim %d, %d heads, %d kv heads", hd, nh, nkv);
    dim3 g(nkv, (n + tq - 1) / tq);
    if (g.y > 65535) return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: tiled attention of %d tokens in one call", n);
    size_t smem = ((size_t)TA_R * (hd + 1) + (size_t)hd * (TA_K + 1) + (size_t)TA_K * hd + (size_t)TA_R * (TA_K + 1)) * sizeof(float);
    switch (hd) {
    case 32: return att_tile_go<2>(g, smem, ST(s), q, kc, vc, sstr, n, nh, nkv, seq, pos, cs, sn, out);
    case 64: return att_tile_go<4>(g, smem, ST(s), q, kc, vc, sstr, n, nh, nkv, seq, pos, cs, sn, out);
    case 128: return att_tile_go<8>(g, smem, ST(s), q, kc, vc, sstr, n, nh, nkv, seq, pos, cs, sn, out);
    default: return att_tile_go<16>(g, smem, ST(s), q, kc, vc, sstr, n, nh, nkv, seq, pos, cs, sn, out);
    }
}

/* ---- elementwise ---- */
__global__ void k_glu(float *g, const float *u, size_t n, int act) {
    pdl_entry();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = g[i];
        if (act == 0) { float r = x > 0.f ? x : 0.f; g[i] = __fmul_rn(__fmul_rn(r, r), u[i]); }
        else g[i] = __fmul_rn(x / (1.0f + expf(-x)), u[i]);
    }
}
__global__ void k_add(float *x, const float *y, size_t n) {
    pdl_entry();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] += y[i];
}
static int eblocks(size_t n) { size_t b = (n + 255) / 256; return b > 4096 ? 4096 : (int)(b ? b : 1); }
extern "C" bitnet_status bn_cu_glu(float *g, const float *u, size_t n, int act, void *s) {
    if (!n) return BITNET_OK;
    launch(k_glu, eblocks(n), 256, 0, ST(s), g, u, n, act);
    return launched("gated activation");
}
extern "C" bitnet_status bn_cu_add(float *x, const float *y, size_t n, void *s) {
    if (!n) return BITNET_OK;
    launch(k_add, eblocks(n), 256, 0, ST(s), x, y, n);
    return launched("residual add");
}

__device__ __forceinline__ float ldw(const void *w, int dt, size_t i) {
    if (dt == BN_W_F32) return ((const float *)w)[i];
    unsigned short h = ((const unsigned short *)w)[i];
    if (dt == BN_W_F16) return __half2float(__ushort_as_half(h));
    return __uint_as_float((unsigned)h << 16);
}
__global__ void k_embed(const void *tab, int dt, int dim, const int32_t *ids, float *x) {
    pdl_entry();
    int t = blockIdx.x;
    size_t off = (size_t)ids[t] * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) x[(size_t)t * dim + i] = ldw(tab, dt, off + i);
}
extern "C" bitnet_status bn_cu_embed(const void *tab, int dt, int dim, const int32_t *ids, int n, float *x, void *s) {
    if (n <= 0) return BITNET_OK;
    launch(k_embed, n, 256, 0, ST(s), tab, dt, dim, ids, x);
    return launched("embedding");
}

/* ---- LM head: warp per row ---- */
#define HD_WARPS 8
#define HD_NT 4
/* 8 weights of a dense row as floats from one 16-byte load (bf16/f16), or 4 (f32) */
template <int DT>
__device__ __forceinline__ void unpack16(uint4 v, float *f) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
    if (DT == BN_W_F32) { for (int i = 0; i < 4; i++) f[i] = __uint_as_float(u[i]); }
    else if (DT == BN_W_BF16) { for (int i = 0; i < 4; i++) { f[2 * i] = __uint_as_float(u[i] << 16); f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u); } }
    else { for (int i = 0; i < 4; i++) { f[2 * i] = __half2float(__ushort_as_half((unsigned short)(u[i] & 0xffff))); f[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(u[i] >> 16))); } }
}

/* Where a head kernel puts logit (t, r): y[t][r] when y is set; with amax set, also the running
 * argmax of row t as a 64-bit key (order-preserving float bits << 32 | ~r: the larger logit, then
 * the lower r, wins) folded by atomicMax into one of HEAD_SLOTS partial maxima amax[t][slot]
 * (spread so no address sees more than a few thousand atomics); non-finite logits set *bad. */
#define HEAD_SLOTS 64
struct HeadOut { float *y; unsigned long long *amax; int *bad; };
__device__ __forceinline__ void head_put(const HeadOut &o, int rows, int r, int t, float a) {
    if (o.y) o.y[(size_t)t * rows + r] = a;
    if (!o.amax) return;
    if (!isfinite(a)) { *o.bad = 1; return; }
    unsigned u = __float_as_uint(a + 0.0f);  /* -0 -> +0: equal logits tie by index */
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    atomicMax(o.amax + (size_t)t * HEAD_SLOTS + (blockIdx.x % HEAD_SLOTS), ((unsigned long long)u << 32) | (unsigned)~(unsigned)r);
}

template <int DT>
__global__ void __launch_bounds__(HD_WARPS * 32) k_head_dense(const void *w, int rows, int cols, const float *x, int n, HeadOut o, int vec) {
    pdl_entry();
    int r = blockIdx.x * HD_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const int es = DT == BN_W_F32 ? 4 : 2, per = 16 / es;
    for (int t0 = 0; t0 < n; t0 += HD_NT) {
        float acc[HD_NT];
#pragma unroll
        for (int j = 0; j < HD_NT; j++) acc[j] = 0.f;
        if (vec) {
            const uint4 *wr = (const uint4 *)((const char *)w + (size_t)r * cols * es);
            int nc = cols / per;
#pragma unroll 4
            for (int c = lane; c < nc; c += 32) {
                float f[8];
                unpack16<DT>(ld_stream(wr + c), f);
#pragma unroll
                for (int j = 0; j < HD_NT; j++)
                    if (t0 + j < n) {
                        const float4 *xp = (const float4 *)(x + (size_t)(t0 + j) * cols + (size_t)c * per);
                        float4 a = __ldg(xp);
                        float s = acc[j] + f[0] * a.x + f[1] * a.y + f[2] * a.z + f[3] * a.w;
                        if (per == 8) { float4 b = __ldg(xp + 1); s += f[4] * b.x + f[5] * b.y + f[6] * b.z + f[7] * b.w; }
                        acc[j] = s;
                    }
            }
        } else {
            for (int k = lane; k < cols; k += 32) {
                float f = ldw(w, DT, (size_t)r * cols + k);
#pragma unroll
                for (int j = 0; j < HD_NT; j++) if (t0 + j < n) acc[j] += f * x[(size_t)(t0 + j) * cols + k];
            }
        }
#pragma unroll
        for (int j = 0; j < HD_NT; j++) {
            float a = warp_sum_f(acc[j]);
            if (lane == 0 && t0 + j < n) head_put(o, rows, r, t0 + j, a);
        }
    }
}

/* Q8: float scale[rows] then int8 q[rows][cp] at bn_hq8_qoff(rows). Warp per HQ_R rows: a lane
 * takes the same 16-weight chunks c = lane + 32k of each of its rows, issues the HQ_R 16-byte
 * weight loads of a chunk before their first use and reads the 16 activations of the chunk once
 * (4 float4) for all HQ_R rows (x traffic per weight byte / HQ_R: that L1 traffic, not HBM, bound
 * the warp-per-row kernel). Bytes become floats exactly as 2^23 + (b + 128) - (2^23 + 128) (a
 * byte permute and a subtraction, cheaper than int-to-float conversions). Each row's sum is formed
 * in the same order as with a warp per row (same lane chunks, same expression), so the logits do
 * not depend on HQ_R. */
#ifndef HQ_R
#define HQ_R 4  /* rows per warp (-DHQ_R=N for experiments) */
#endif
/* The q8/q4 heads' epilogue: the warp's sum of each of its HQ_R rows' and HD_NT tokens' partials
 * acc, times sc[row] when sc is not NULL, stored by lane 0 (rows past the end dropped). */
__device__ __forceinline__ void head_put_rows(const float (&acc)[HQ_R][HD_NT], int r0, int rows, int t0, int n, int lane,
                                              const float *sc, const HeadOut &o) {
#pragma unroll
    for (int i = 0; i < HQ_R; i++)
#pragma unroll
        for (int j = 0; j < HD_NT; j++)
            if (t0 + j < n) {  /* warp-uniform */
                float a = warp_sum_f(acc[i][j]);
                if (lane == 0 && r0 + i < rows) head_put(o, rows, r0 + i, t0 + j, sc ? sc[r0 + i] * a : a);
            }
}
__device__ __forceinline__ float s8f(unsigned ub, unsigned sel) { return __uint_as_float(__byte_perm(ub, 0x4b000000u, sel)) - 8388736.f; }

/* acc + the dot product of 16 int8 weights v with 16 floats a[0..3] (the accumulation order above) */
__device__ __forceinline__ float q8dot16(uint4 v, const float4 *a, float acc) {
    const unsigned u[4] = {v.x ^ 0x80808080u, v.y ^ 0x80808080u, v.z ^ 0x80808080u, v.w ^ 0x80808080u};
    float s = acc;
#pragma unroll
    for (int i = 0; i < 4; i++)
        s += s8f(u[i], 0x7650) * a[i].x + s8f(u[i], 0x7651) * a[i].y + s8f(u[i], 0x7652) * a[i].z + s8f(u[i], 0x7653) * a[i].w;
    return s;
}
__global__ void __launch_bounds__(HD_WARPS * 32) k_head_q8(const uint8_t *wq, int rows, int cols, int cp, size_t qoff, const float *x, int n, HeadOut o) {
    pdl_entry();
    int r0 = (blockIdx.x * HD_WARPS + (threadIdx.x >> 5)) * HQ_R, lane = threadIdx.x & 31;
    if (r0 >= rows) return;
    const float *sc = (const float *)wq;
    const int8_t *qr[HQ_R];  /* rows past the end read the last row; their sums are dropped */
#pragma unroll
    for (int i = 0; i < HQ_R; i++) qr[i] = (const int8_t *)(wq + qoff) + (size_t)min(r0 + i, rows - 1) * cp;
    int full = (cols & 3) || ((uintptr_t)x & 15) ? 0 : cols / 16;  /* float4-able 16-weight chunks; the rest below */
    for (int t0 = 0; t0 < n; t0 += HD_NT) {
        float acc[HQ_R][HD_NT];
#pragma unroll
        for (int i = 0; i < HQ_R; i++)
#pragma unroll
            for (int j = 0; j < HD_NT; j++) acc[i][j] = 0.f;
#pragma unroll 2
        for (int c = lane; c < full; c += 32) {
            uint4 v[HQ_R];
#pragma unroll
            for (int i = 0; i < HQ_R; i++) v[i] = ld_stream((const uint4 *)qr[i] + c);
#pragma unroll
            for (int j = 0; j < HD_NT; j++)
                if (t0 + j < n) {
                    const float4 *xp = (const float4 *)(x + (size_t)(t0 + j) * cols) + 4 * c;
                    float4 a[4];
#pragma unroll
                    for (int i = 0; i < 4; i++) a[i] = __ldg(xp + i);
#pragma unroll
                    for (int i = 0; i < HQ_R; i++) acc[i][j] = q8dot16(v[i], a, acc[i][j]);
                }
        }
#pragma unroll
        for (int j = 0; j < HD_NT; j++)
            if (t0 + j < n)
                for (int k = full * 16 + lane; k < cols; k += 32) {
                    float xk = x[(size_t)(t0 + j) * cols + k];
#pragma unroll
                    for (int i = 0; i < HQ_R; i++) acc[i][j] += (float)qr[i][k] * xk;
                }
        head_put_rows(acc, r0, rows, t0, n, lane, sc, o);
    }
}

/* Q4: float d[rows][nb] then nibbles [rows][cp/2] at bn_hq4_qoff; block b of a row is 16 bytes
 * (byte i: weight i in the low nibble, weight 16 + i in the high one). Warp per HQ_R rows like
 * k_head_q8: a lane takes blocks b = lane + 32k of each of its rows, loads the HQ_R blocks before
 * their first use and the block's 32 activations once (8 float4); nibbles become floats exactly as
 * 2^23 + nib - (2^23 + 8). Each block's sum runs in weight order (0..31), times d, into the
 * lane's sum, as with a warp per row. Blocks not float4-able (x or cols not 16-byte multiples, a
 * last block past cols) take the scalar loop. */
__device__ __forceinline__ float n4f(unsigned u, int sh) { return __uint_as_float(((u >> sh) & 15u) | 0x4b000000u) - 8388616.f; }
/* the 32 weights of block v times xb[0..31], summed in weight order */
__device__ __forceinline__ float q4dot32(uint4 v, const float *xb) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 16; i++) s += n4f(u[i / 4], 8 * (i % 4)) * xb[i];
#pragma unroll
    for (int i = 0; i < 16; i++) s += n4f(u[i / 4], 8 * (i % 4) + 4) * xb[16 + i];
    return s;
}
__global__ void __launch_bounds__(HD_WARPS * 32) k_head_q4(const uint8_t *wq, int rows, int cols, int cp, size_t qoff, const float *x, int n, HeadOut o) {
    pdl_entry();
    int r0 = (blockIdx.x * HD_WARPS + (threadIdx.x >> 5)) * HQ_R, lane = threadIdx.x & 31;
    if (r0 >= rows) return;
    int nb = cp / 32, nbf = (cols & 3) || ((uintptr_t)x & 15) ? 0 : cols / 32;  /* float4-able blocks */
    const float *d[HQ_R];
    const uint8_t *q[HQ_R];  /* rows past the end read the last row; their sums are dropped */
#pragma unroll
    for (int i = 0; i < HQ_R; i++) {
        int r = min(r0 + i, rows - 1);
        d[i] = (const float *)wq + (size_t)r * nb; q[i] = wq + qoff + (size_t)r * (cp / 2);
    }
    for (int t0 = 0; t0 < n; t0 += HD_NT) {
        float acc[HQ_R][HD_NT];
#pragma unroll
        for (int i = 0; i < HQ_R; i++)
#pragma unroll
            for (int j = 0; j < HD_NT; j++) acc[i][j] = 0.f;
        for (int b = lane; b < nbf; b += 32) {
            uint4 v[HQ_R];
            float db[HQ_R];
#pragma unroll
            for (int i = 0; i < HQ_R; i++) { v[i] = ld_stream((const uint4 *)(q[i] + 16 * b)); db[i] = __ldg(d[i] + b); }
#pragma unroll
            for (int j = 0; j < HD_NT; j++)
                if (t0 + j < n) {
                    const float4 *xp = (const float4 *)(x + (size_t)(t0 + j) * cols + 32 * b);
                    float xb[32];
#pragma unroll
                    for (int k = 0; k < 8; k++) { float4 a = __ldg(xp + k); xb[4 * k] = a.x; xb[4 * k + 1] = a.y; xb[4 * k + 2] = a.z; xb[4 * k + 3] = a.w; }
#pragma unroll
                    for (int i = 0; i < HQ_R; i++) acc[i][j] += db[i] * q4dot32(v[i], xb);
                }
        }
        for (int b = nbf + lane; b < nb && 32 * b < cols; b += 32)
#pragma unroll
            for (int i = 0; i < HQ_R; i++) {
                const uint8_t *qb = q[i] + 16 * b;
#pragma unroll
                for (int j = 0; j < HD_NT; j++)
                    if (t0 + j < n) {
                        const float *xr = x + (size_t)(t0 + j) * cols + 32 * b;
                        float s = 0.f;
                        for (int k = 0; k < 32 && 32 * b + k < cols; k++) s += (float)((int)(k < 16 ? qb[k] & 15 : qb[k - 16] >> 4) - 8) * xr[k];
                        acc[i][j] += d[i][b] * s;
                    }
            }
        head_put_rows(acc, r0, rows, t0, n, lane, NULL, o);
    }
}

static bitnet_status head_go(const void *w, int kind, int rows, int cols, const float *x, int n, HeadOut o, void *s) {
    if (n <= 0 || rows <= 0) return BITNET_OK;
    int nb = (rows + HD_WARPS - 1) / HD_WARPS, th = HD_WARPS * 32;
    int es = kind == BN_W_F32 ? 4 : 2;
    int vec = ((size_t)cols * es) % 16 == 0 && ((uintptr_t)w & 15) == 0;
    switch (kind) {
    case BN_W_F32: launch(k_head_dense<BN_W_F32>, nb, th, 0, ST(s), w, rows, cols, x, n, o, vec); break;
    case BN_W_F16: launch(k_head_dense<BN_W_F16>, nb, th, 0, ST(s), w, rows, cols, x, n, o, vec); break;
    case BN_W_BF16: launch(k_head_dense<BN_W_BF16>, nb, th, 0, ST(s), w, rows, cols, x, n, o, vec); break;
    case BN_CU_HEAD_Q8: launch(k_head_q8, (rows + HD_WARPS * HQ_R - 1) / (HD_WARPS * HQ_R), th, 0, ST(s), (const uint8_t *)w, rows, cols, bn_hq_cpad(cols), bn_hq8_qoff(rows), x, n, o); break;
    case BN_CU_HEAD_Q4: launch(k_head_q4, (rows + HD_WARPS * HQ_R - 1) / (HD_WARPS * HQ_R), th, 0, ST(s), (const uint8_t *)w, rows, cols, bn_hq_cpad(cols), bn_hq4_qoff(rows, cols), x, n, o); break;
    default: return bn_err(BITNET_ERR_UNSUPPORTED, "cuda: LM head kind %d", kind);
    }
    return launched("LM head");
}
extern "C" bitnet_status bn_cu_head(const void *w, int kind, int rows, int cols, const float *x, int n, float *y, void *s) {
    HeadOut o = {y, NULL, NULL};
    return head_go(w, kind, rows, cols, x, n, o, s);
}
extern "C" size_t bn_cu_head_argmax_bytes(int n) { return 8 + (size_t)n * HEAD_SLOTS * 8; }
extern "C" bitnet_status bn_cu_head_argmax(const void *w, int kind, int rows, int cols, const float *x, int n, void *keys_d, void *s) {
    bitnet_status r = bn_cu_memset(keys_d, 0, bn_cu_head_argmax_bytes(n), s);
    HeadOut o = {NULL, (unsigned long long *)keys_d + 1, (int *)keys_d};
    return r ? r : head_go(w, kind, rows, cols, x, n, o, s);
}
extern "C" int bn_cu_head_argmax_read(const void *keys, int n, int32_t *ids) {
    const unsigned long long *k = (const unsigned long long *)keys;
    int fin = *(const int *)keys == 0;
    for (int t = 0; t < n; t++) {
        unsigned long long b = 0;
        for (int i = 0; i < HEAD_SLOTS; i++) if (k[1 + (size_t)t * HEAD_SLOTS + i] > b) b = k[1 + (size_t)t * HEAD_SLOTS + i];
        if (!b) fin = 0;
        ids[t] = (int32_t)~(unsigned)b;
    }
    return fin;
}

/* ---- argmax: one block per row ---- */
__global__ void k_argmax(const float *y, int rows, int32_t *idx, float *val) {
    pdl_entry();
    __shared__ float sv[32];
    __shared__ int si[32];
    const float *yr = y + (size_t)blockIdx.x * rows;
    float bv = -INFINITY; int bi = -1;
    for (int i = threadIdx.x; i < rows; i += blockDim.x) { float v = yr[i]; if (v > bv || (bi < 0 && v == v)) { bv = v; bi = i; } }
    for (int o = 16; o; o >>= 1) {
        float v2 = __shfl_xor_sync(0xffffffffu, bv, o); int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
        if (i2 >= 0 && (bi < 0 || v2 > bv || (v2 == bv && i2 < bi))) { bv = v2; bi = i2; }
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) { sv[w] = bv; si[w] = bi; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int k = 1; k < (int)(blockDim.x >> 5); k++)
            if (si[k] >= 0 && (bi < 0 || sv[k] > bv || (sv[k] == bv && si[k] < bi))) { bv = sv[k]; bi = si[k]; }
        idx[blockIdx.x] = bi < 0 ? 0 : bi;
        val[blockIdx.x] = bv;
    }
}
extern "C" bitnet_status bn_cu_argmax(const float *y, int n, int rows, int32_t *idx, float *val, void *s) {
    if (n <= 0) return BITNET_OK;
    launch(k_argmax, n, 1024, 0, ST(s), y, rows, idx, val);
    return launched("argmax");
}

__global__ void k_nonfinite(const float *x, size_t n, int *bad) {
    pdl_entry();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        if (!isfinite(x[i])) { *bad = 1; return; }
}
extern "C" bitnet_status bn_cu_nonfinite(const float *x, size_t n, int *bad, void *s) {
    if (!n) return BITNET_OK;
    launch(k_nonfinite, eblocks(n), 256, 0, ST(s), x, n, bad);
    return launched("finite check");
}

static int cmp_f(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return (x > y) - (x < y); }

extern "C" bitnet_status bn_cu_copy_probe(size_t bytes, int reps, double *gbps) {
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms[64];
    if (reps > 64) reps = 64;
    if (reps < 1) reps = 1;
    bitnet_status s = bn_cu_malloc(&a, bytes, "the copy probe");
    if (!s) s = bn_cu_malloc(&b, bytes, "the copy probe");
    if (!s) s = cerr(cudaEventCreate(&e0), "cudaEventCreate");
    if (!s) s = cerr(cudaEventCreate(&e1), "cudaEventCreate");
    if (!s) s = cerr(cudaMemset(a, 0x5a, bytes), "cudaMemset");
    for (int i = -2; !s && i < reps; i++) {  /* two warm-ups */
        cudaEventRecord(e0, 0);
        s = cerr(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0), "device copy");
        cudaEventRecord(e1, 0);
        if (!s) s = cerr(cudaEventSynchronize(e1), "device copy");
        if (!s && i >= 0) cudaEventElapsedTime(&ms[i], e0, e1);
    }
    if (!s) { qsort(ms, (size_t)reps, sizeof ms[0], cmp_f); *gbps = 2.0 * (double)bytes / (ms[reps / 2] * 1e-3) / 1e9; }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    bn_cu_free(a); bn_cu_free(b);
    return s;
}

/* ---- the one-kernel decode step (bn_cu_mega; sm_90+) ----
 * A persistent kernel of one block (MG_NT threads) per multiprocessor, launched cooperatively (all
 * blocks resident or no launch), runs a one-token forward's steps in order with a grid-wide
 * barrier between them (a 64-bit arrival counter that only grows: block thread 0 adds 1 with
 * red.release after each step and polls with ld.acquire until every block has arrived; a wait
 * over ~2 s sets *err and the host falls back to the kernels). Step s's descriptor is copied to
 * shared memory (one thread's bulk copy, on an mbarrier) during step s - 1. Each block keeps its row groups of every GEMV in
 * shared memory: a step's weights are copied in (cp.async.bulk, one mbarrier per region) right
 * after the same region's previous step used it, issued once the next GEMV step's row loads are
 * back (ahead of them the refill's DRAM traffic slowed them), so a layer's weights stream in one
 * layer ahead and no step waits for DRAM. A NORMLIN step is bn_cu_norm_tgemv: every block norms + quantizes
 * the whole input row itself with the same float operations and sums as norm_row
 * (norm_threads(d) threads' order, so the bits are those of the kernel path; all loads issued
 * before the arithmetic), then its row groups' products; the normed row (and the pre-op values)
 * are written back spread over the grid during the next step. An ATT step is
 * bn_cu_attention_fused of one token (RoPE, in-kernel store) by ANW warps of the first nvb blocks
 * (ANW: the warps of the kernel path's variant, 16 or 8): att_split as in k_att / k_att_cl and the
 * same merge as the path bn_cu_attention_fused would take (records, last block to arrive), so the
 * bits are those of the kernel path too; the previous step's row is written back by the threads
 * the attention leaves free (past the ANW warps, and every thread of the blocks past nvb). Not
 * here: more than one token, other ops. */
#define MG_NT 512  /* 128 registers a thread: k_mega<4> spills ~300 bytes in the attention (with 384 threads ~20, but the GEMV steps were slower) */
#define MG_VH ((1024 + MG_NT - 1) / MG_NT)  /* virtual norm threads per thread: norm_threads(d) <= 1024 */
#define MG_MAXU 4
#define MG_NREG 8
enum { MG_EMBED = 1, MG_NORMLIN = 2, MG_ATT = 3 };
struct __align__(16) MStep {
    int kind;
    /* NORMLIN */
    TGArgs A;
    int nw, cols, kp, nch, tot, nuq, nur, pre, act, T;  /* nuq, nur: tot / nb, tot % nb (the grid's blocks) */
    float eps;
    float *x;  /* the input row; its pre-op values are written back into it */
    const float *y, *w;
    float *out;
    int reg, regi, par, nxt;  /* region byte offset, index, mbarrier parity; step that refills it next (-1) */
    /* ATT */
    const float *q, *k, *v;
    float *kc, *vc;
    size_t sstr;
    int nh, nkv, hd, nsplit, merge, gx, nvb;  /* merge: 0 k_att's records, 1 k_att_cl's order */
    const float *cs, *sn;
    float *ws, *ao;
    unsigned *cnt;
    /* EMBED */
    const void *tab;
    int dt, dim;
    float *ex;
};
struct MCtx { const MStep *st; int n, nb; const int32_t *ids, *pos, *seq; unsigned long long *bar; int *err; int nfirst, first[MG_NREG]; };
#ifdef BN_MG_STAMPS  /* profiling build only: block 0 thread 0's %globaltimer / clock64 at marks 0..11 of each step */
#define MG_TS_N 512
#define MG_TS_K 12
__device__ unsigned long long g_mts[MG_TS_N][MG_TS_K][2];
/* mark k of step s once v is computed (an input of the timer read: the arithmetic cannot sink past it) */
__device__ __forceinline__ void mg_mark_v(int s, int k, float v) {
    if (blockIdx.x || threadIdx.x || s >= MG_TS_N) return;
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t) : "f"(v));
    g_mts[s][k][0] = t; g_mts[s][k][1] = clock64();
}
__device__ __forceinline__ void mg_mark(int s, int k) { mg_mark_v(s, k, 0.f); }
extern "C" int bn_cu_mega_stamps(unsigned long long *out, int max) {
    int n = max < MG_TS_N ? max : MG_TS_N;
    return cudaMemcpyFromSymbol(out, g_mts, (size_t)n * MG_TS_K * 16) == cudaSuccess ? n : -1;
}
#else
#define mg_mark(s, k) ((void)0)
#define mg_mark_v(s, k, v) ((void)0)
#endif

/* rintf (half to even) clamped to [-128, 127], NaN 0, as one instruction: the quantizers' int8 value */
__device__ __forceinline__ int f2i8_rn(float x) {
    short r;
    asm("cvt.rni.sat.s8.f32 %0, %1;" : "=h"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ unsigned smaddr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
__device__ __forceinline__ unsigned long long ld_acq64(const unsigned long long *p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
/* thread 0: wait until the counter reaches target (bounded: ~2 s, then *err = 1 and every later
 * wait of every block returns at once; the host reports it and stops using this kernel) */
__device__ __noinline__ void mg_wait_slow(const unsigned long long *bar, int *err, unsigned long long target) {
    if (ld_acq64(bar) >= target) return;
    unsigned long long t0;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    for (unsigned it = 1;; it++) {
        if (ld_acq64(bar) >= target) return;
        if ((it & 1023) == 0) {
            unsigned long long t;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
            if (*(volatile int *)err) return;
            if (t - t0 > 2000000000ull) { atomicExch(err, 1); return; }
        }
    }
}
/* the first polls inline (no call: loads in flight stay in flight), then the bounded loop */
__device__ __forceinline__ void mg_wait(const unsigned long long *bar, int *err, unsigned long long target) {
#pragma unroll 1
    for (int i = 0; i < 64; i++) if (ld_acq64(bar) >= target) return;
    mg_wait_slow(bar, err, target);
}
__device__ __forceinline__ void mg_arrive(const MCtx &c) {  /* after a __syncthreads: the block's writes, released */
    asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(c.bar) : "memory");
}
/* the NW * 32 attention threads of a block; entry = the grid barrier (unless already passed) */
template <int NW>
struct SyncMg {
    const unsigned long long *bar; int *err; unsigned long long target; int wait, s;
    __device__ int early() const { return 1; }
    __device__ void mark(int k) const { mg_mark(s, k); }
    __device__ void markv(int k, float v) const { mg_mark_v(s, k, v); }
    __device__ int tid() const { return threadIdx.x; }
    __device__ int nt() const { return NW * 32; }
    __device__ void sync() const { asm volatile("bar.sync 1, %0;" :: "n"(NW * 32) : "memory"); }
    __device__ void entry() const { if (wait && threadIdx.x == 0) mg_wait(bar, err, target); sync(); }
};

/* one thread: start copying step descriptor *src into shared memory *dst (completes on *mb) */
__device__ __forceinline__ void mg_desc(MStep *dst, const MStep *src, unsigned long long *mb) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned bar = smaddr(mb);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"((unsigned)sizeof(MStep)) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :: "r"(smaddr(dst)), "l"(src), "r"((unsigned)sizeof(MStep)), "r"(bar) : "memory");
#endif
}
/* block b's row groups b, b + nb, ... < tot: (tot - 1 - b) / nb + 1, from the host's quotient and remainder (no division) */
__device__ __forceinline__ int mg_units(const MStep &S, int b) { return S.nuq + (b < S.nur); }
/* A refill of block b's row groups of NORMLIN step S into its region: planned (the descriptor
 * read) and issued (one thread: the bulk copies started) apart, so the issue reads nothing. */
struct MgFill { const uint8_t *src[MG_MAXU]; unsigned nu, per, dst, bar; };
__device__ void mg_fill_plan(const MStep &S, int b, int nb, unsigned char *sm, unsigned long long *mbar, MgFill &f) {
    f.per = (unsigned)S.nch * 512u; f.nu = (unsigned)mg_units(S, b); f.bar = smaddr(&mbar[S.regi]); f.dst = smaddr(sm + S.reg);
    for (unsigned u = 0; u < f.nu; u++) { TGSel m = tg_sel(S.A, b + (int)u * nb); f.src[u] = m.w + (size_t)m.g * f.per; }
}
__device__ void mg_fill_issue(const MgFill &f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(f.bar), "r"(f.nu * f.per) : "memory");
#pragma unroll
    for (unsigned u = 0; u < MG_MAXU; u++)
        if (u < f.nu) asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                                   :: "r"(f.dst + u * f.per), "l"(f.src[u]), "r"(f.per), "r"(f.bar) : "memory");
#endif
}
/* thread 0: start copying block b's row groups of NORMLIN step S into its region */
__device__ void mg_fill(const MStep &S, int b, int nb, unsigned char *sm, unsigned long long *mbar) {
    MgFill f;
    mg_fill_plan(S, b, nb, sm, mbar, f);
    mg_fill_issue(f);
}
__device__ __forceinline__ void mg_wait_fill(unsigned long long *mb, int par) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned a = smaddr(mb), done = 0;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done) : "r"(a), "r"(par) : "memory");
    } while (!done);
#endif
}
/* The write-back of NORMLIN step P's row (its pre-op values into P.x, the normed row into P.out,
 * as k_tgemv's last block writes them), spread over the grid during the next step: element i of
 * a thread is read after that step's barrier (mg_wb_get) and stored before its arrival
 * (mg_wb_put); every block computed the same r. */
struct MgWb { int i; float x, y, w; };  /* loads only: the arithmetic waits for them in mg_wb_put */
__device__ __forceinline__ void mg_wb_get(const MStep &P, int i, MgWb &o) {
    bool ok = i < P.cols;
    o.i = ok ? i : -1;
    o.x = ok ? __ldcg(P.x + i) : 0.f;
    o.y = ok && P.pre ? __ldcg(P.y + i) : 0.f;
    o.w = ok ? __ldg(P.w + i) : 0.f;
}
__device__ __forceinline__ void mg_wb_put(const MStep &P, const MgWb &o, float r) {
    if (o.i < 0) return;
    float a = o.x;
    if (P.pre == 1) a = a + o.y;
    else if (P.pre == 2) a = glu1(a, o.y, P.act);
    if (P.pre) P.x[o.i] = a;
    P.out[o.i] = __fmul_rn(o.w, __fmul_rn(a, r));
}

/* A block's products of its NU row groups (region wr: [NU][nch][512] bytes) with the int8 row xq:
 * warp w takes chunks w, w + 16, ...; its partial sums land in red[(w * MG_MAXU + u) * 32 + lane]
 * (integer: any order is exact). */
template <int NU>
__device__ __forceinline__ void mg_prod(const unsigned char *wr, const int8_t *xq, int nch, int w, int lane, int *red) {
    int acc[NU][4] = {};
    for (int ch = w; ch < nch; ch += MG_NT / 32) {
        const int4 *xp = (const int4 *)(xq + 64 * ch);
        int4 x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
#pragma unroll
        for (int u = 0; u < NU; u++) {
            uint4 wq = *(const uint4 *)(wr + ((size_t)u * nch + ch) * 512 + lane * 16);
            acc[u][0] = dot16(wq.x, x0, acc[u][0]); acc[u][1] = dot16(wq.y, x1, acc[u][1]);
            acc[u][2] = dot16(wq.z, x2, acc[u][2]); acc[u][3] = dot16(wq.w, x3, acc[u][3]);
        }
    }
#pragma unroll
    for (int u = 0; u < NU; u++) red[(w * MG_MAXU + u) * 32 + lane] = (acc[u][0] + acc[u][1]) + (acc[u][2] + acc[u][3]);
}

template <int DPL, int ANW>
__global__ void __launch_bounds__(MG_NT, 1) k_mega(MCtx c, int scr, int redo) {
    static_assert(ANW * 32 <= MG_NT && (ANW == 8 || ANW == 16), "attention warps");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) unsigned char msm[];
    __shared__ __align__(8) unsigned long long mbar[MG_NREG];
    __shared__ float shf[32], shm[MG_NT / 32], wbr[2], cwt[AT_G][AT_CSPLITS + 1], cwl[AT_G][AT_CSPLITS];  /* wbr[s & 1]: step s's r */
    __shared__ int shi[MG_NT / 32];
    __shared__ unsigned long long sbase;
    __shared__ float qs[AT_G * 32 * DPL];
    __shared__ float wml[ANW][AT_G][2];
    __shared__ MStep sd[3];  /* step s's descriptor is sd[s % 3], copied (asynchronously) during step s - 1 */
    __shared__ __align__(8) unsigned long long dbar[3];  /* sd[k]'s copies complete on dbar[k] */
    __shared__ MgFill pfl;   /* the refill planned at the last arrival, issued by tid 32 (pfn: one is pending) */
    int pfn = 0;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, b = blockIdx.x, nb = c.nb;
    int8_t *xq = (int8_t *)(msm + scr);
    int *red = (int *)(msm + scr + redo);
    float *asm_ = (float *)(msm + scr);
    if (tid == 0) {
        for (int r = 0; r < MG_NREG; r++) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(smaddr(&mbar[r])) : "memory");
        for (int r = 0; r < 3; r++) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(smaddr(&dbar[r])) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        mg_desc(&sd[0], c.st, &dbar[0]);
        unsigned long long v = ld_acq64(c.bar);
        sbase = v - v % (unsigned long long)nb;  /* every launch adds a multiple of nb; fewer than nb arrivals can precede this read */
#pragma unroll
        for (int i = 0; i < MG_NREG; i++) if (i < c.nfirst) mg_fill(c.st[c.first[i]], b, nb, msm, mbar);  /* constant indices: c stays in registers */
    }
    __syncthreads();
    /* the barrier base, read from shared memory where used (a register copy was spilled, and its
     * reload after a barrier's L1 invalidation was an L2 round trip ahead of each step's wait) */
#define MG_BASE (*(volatile const unsigned long long *)&sbase)
    int pend = -1;  /* NORMLIN step whose row the grid writes back during this step */
    for (int s = 0; s < c.n; s++) {
        const MStep &S = sd[s % 3];
        /* the next step's descriptor, into the slot step s - 2 used (every thread is past it) */
        if (tid == 64 && s + 1 < c.n) mg_desc(&sd[(s + 1) % 3], c.st + s + 1, &dbar[(s + 1) % 3]);
        mg_wait_fill(&dbar[s % 3], (s / 3) & 1);  /* copied during step s - 1: long done */
        const unsigned long long tgt = MG_BASE + (unsigned long long)s * nb;  /* the barrier before step s */
        MgWb wb;
        if (S.kind == MG_ATT) {
            mg_mark(s, 0);
            /* the write-back of the previous step's row: the threads past the attention's ANW warps
             * of the attention blocks (ANW == 8), then every thread of the other blocks */
            constexpr int wbt = MG_NT - ANW * 32, wbn = wbt > 0 ? wbt : 32;  /* (wbn: a valid count where no thread is left) */
            const int wbi = b < S.nvb ? b * wbt + tid - ANW * 32 : S.nvb * wbt + (b - S.nvb) * MG_NT + tid;
            if (b >= S.nvb || tid >= ANW * 32) {
                if (pend >= 0) {
                    const int t0 = b < S.nvb ? ANW * 32 : 0;
                    if (tid == t0 && s) mg_wait(c.bar, c.err, tgt);
                    if (b < S.nvb) asm volatile("bar.sync 2, %0;" :: "n"(wbn) : "memory");
                    else __syncthreads();
                    mg_wb_get(sd[pend % 3], wbi, wb);
                    mg_wb_put(sd[pend % 3], wb, wbr[pend & 1]);
                } else if (s > 0 && tid == 0) mg_wait(c.bar, c.err, tgt);
            } else {
                SyncMg<ANW> sy{c.bar, c.err, tgt, s > 0, s};
                int bx = b % S.gx, by = b / S.gx;
                AttBlk ab = att_blk(S.nh, S.nkv, c.pos, S.nsplit, ANW * AT_PB, bx, by, 0);
                if (ab.s0 > ab.p) sy.entry();
                else {
                    att_split<DPL, ANW, SyncMg<ANW> >(ab, S.q, S.kc, S.vc, S.sstr, S.nh, S.nkv, S.hd, c.seq, S.k, S.v, S.cs, S.sn, qs, asm_, wml, sy);
                    int G = ab.G, hd = S.hd, grp = S.nh / S.nkv, ns = (ab.p + ab.ch) / ab.ch, nsplit = S.nsplit;
                    size_t rec = (size_t)hd + 2, h0 = (size_t)ab.kh * grp + ab.j0;
                    float *rb = S.ws + h0 * nsplit * rec, *ob = S.ao + h0 * hd;
                    att_records<ANW, SyncMg<ANW> >(asm_, wml, G, hd, ns, nsplit, ab.sp, rb, ob, sy);
                    sy.mark(4);
                    if (ns > 1) {
                        if (S.merge == 0) att_arrive<SyncMg<ANW> >(rb, S.cnt + h0, nsplit, ns, G, hd, ob, asm_, sy);
                        else {  /* k_att_cl's merge (same operations, same order), from the records */
                            if (att_is_last(S.cnt + h0, ns, sy)) {
                                /* this thread's output dims (idx = tid + e * ANW * 32 of G * hd) of every split, read first */
                                constexpr int NE = (AT_G * 32 * DPL + ANW * 32 - 1) / (ANW * 32);
                                float v[NE][AT_CSPLITS];
#pragma unroll
                                for (int e = 0; e < NE; e++) {
                                    int idx = tid + e * ANW * 32, j = idx / hd, d = idx - j * hd;
                                    const float *r0 = rb + (size_t)j * nsplit * rec + 2 + d;
#pragma unroll
                                    for (int r = 0; r < AT_CSPLITS; r++) v[e][r] = idx < G * hd && r < ns ? __ldcg(r0 + (size_t)r * rec) : 0.f;
                                }
                                /* warp j: the split weights of head j (lane r: split r's max and sum, read at once) */
                                if (w < G) {
                                    const float *r0 = rb + (size_t)w * nsplit * rec;
                                    float Mr = lane < ns ? __ldcg(r0 + lane * rec) : -INFINITY, lr = lane < ns ? __ldcg(r0 + lane * rec + 1) : 0.f;
                                    float M = warp_max_f(Mr), e = lane < ns && lr > 0.f ? expf(Mr - M) : 0.f, L = 0.f;
                                    if (lane < AT_CSPLITS) { cwt[w][lane] = e; cwl[w][lane] = lr; }
                                    __syncwarp();
                                    for (int r = 0; r < ns; r++) L = __fmaf_rn(cwl[w][r], cwt[w][r], L);
                                    if (lane == 0) cwt[w][AT_CSPLITS] = L;
                                }
                                sy.sync();
#pragma unroll
                                for (int e = 0; e < NE; e++) {
                                    int idx = tid + e * ANW * 32, j = idx / hd;
                                    float a = 0.f;
                                    if (idx >= G * hd) break;
#pragma unroll
                                    for (int r = 0; r < AT_CSPLITS; r++) if (r < ns) a = __fmaf_rn(v[e][r], cwt[j][r], a);
                                    ob[idx] = a * (1.0f / cwt[j][AT_CSPLITS]);
                                }
                            }
                        }
                    }
                }
            }
            mg_mark(s, 5);
            pend = -1;
        } else {
            if (s > 0) { if (tid == 0) mg_wait(c.bar, c.err, tgt); __syncthreads(); }
            mg_mark(s, 0);
            if (S.kind == MG_EMBED) {
                if (pend >= 0) mg_wb_get(sd[pend % 3], b * MG_NT + tid, wb);
                size_t off = (size_t)c.ids[0] * S.dim;
                for (int i = b * MG_NT + tid; i < S.dim; i += nb * MG_NT) S.ex[i] = ldw(S.tab, S.dt, off + i);
            } else {
                /* the norm of the input row (norm_row's operations; virtual thread vt < T of norm_threads):
                 * every value, pre-op operand and gain read first (predicated loads only), then the arithmetic */
                const int T = S.T, d = S.cols, pre = S.pre, act = S.act, nu = mg_units(S, b);
                const float *X = S.x, *Y = S.y;
                float av[MG_VH][8], yv[MG_VH][8], wv[MG_VH][8], ss[MG_VH], axp = 0.f;
                /* (vt < T is warp-uniform, T a multiple of 32: warps without values of a half skip it,
                 * issuing nothing; the norm is issue-bound, every block doing the whole row) */
#pragma unroll
                for (int h = 0; h < MG_VH; h++)
#pragma unroll
                    for (int j = 0; j < 8; j++) { av[h][j] = 0.f; wv[h][j] = 0.f; yv[h][j] = 0.f; }
#pragma unroll
                for (int h = 0; h < MG_VH; h++)
                    if (tid + h * MG_NT < T)
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            int i = tid + h * MG_NT + j * T;
                            bool ok = i < d;
                            av[h][j] = ok ? __ldcg(X + i) : 0.f;
                            wv[h][j] = ok ? __ldg(S.w + i) : 0.f;
                            yv[h][j] = ok && pre ? __ldcg(Y + i) : 0.f;
                        }
                /* then the loads whose values wait longest (the previous row's write-back, this thread's
                 * output row's residual): issued after the row's, so that a spill of them, which waits
                 * for its load, does not hold back the row's loads by a round trip */
                if (pend >= 0) mg_wb_get(sd[pend % 3], b * MG_NT + tid, wb);
                if (tid < nu * 32) {
                    TGSel mo = tg_sel(S.A, b + (tid >> 5) * nb);
                    int row = mo.g * TG_RG + lane;
                    if (mo.ax && row < mo.rows) axp = __ldcg(mo.ax + row);
                }
#pragma unroll
                for (int h = 0; h < MG_VH; h++) {
                    int vt = tid + h * MG_NT;
                    ss[h] = 0.f;
                    float v = 0.f;
                    if (vt < T) {
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            int i = vt + j * T;
                            float t = av[h][j];
                            if (pre == 1) t = t + yv[h][j];
                            else if (pre == 2) t = glu1(t, yv[h][j], act);
                            bool ok = i < d;
                            av[h][j] = ok ? t : 0.f;
                            if (ok) ss[h] = __fmaf_rn(t, t, ss[h]);
                        }
                        v = warp_sum_f(ss[h]);
                    }
                    if (lane == 0 && (vt >> 5) < 32) shf[vt >> 5] = v;  /* virtual warp vt / 32: norm_row's order */
                }
                __syncthreads();
                mg_mark(s, 1);
                if (tid == 32 && pfn) { mg_fill_issue(pfl); pfn = 0; }  /* the row is in: the pending refill may start */
                float tot = warp_sum_f(shf[lane]);
                float r = 1.0f / sqrtf(tot / (float)d + S.eps);
                float m = 0.f;
#pragma unroll
                for (int h = 0; h < MG_VH; h++)
                    if (tid + h * MG_NT < T)
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            int i = tid + h * MG_NT + j * T;
                            if (i < d) { float o = __fmul_rn(wv[h][j], __fmul_rn(av[h][j], r)); av[h][j] = o; float t = fabsf(o); if (t > m) m = t; }
                        }
                mg_mark_v(s, 6, m);  /* the gains are in (thread 0's) */
                m = warp_max_f(m);
                if (lane == 0) shm[w] = m;
                __syncthreads();
                m = lane < MG_NT / 32 ? shm[lane] : 0.f;
                m = warp_max_f(m);
                mg_mark_v(s, 7, m);  /* the block's max */
                if (m < 1e-5f) m = 1e-5f;
                float sc = 127.0f / m;
                int sum = 0;
#pragma unroll
                for (int h = 0; h < MG_VH; h++)
                    if (tid + h * MG_NT < T)
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            int i = tid + h * MG_NT + j * T;
                            if (i < d) {
                                int qv = f2i8_rn(__fmul_rn(av[h][j], sc));
                                xq[i] = (int8_t)qv;
                                sum += qv;
                            }
                        }
                for (int k = d + tid; k < S.kp; k += MG_NT) xq[k] = 0;
                sum = warp_sum_i(sum);
                mg_mark_v(s, 8, (float)sum);  /* the int8 row (thread 0's part) */
                if (lane == 0) shi[w] = sum;
                if (pend >= 0) mg_wb_put(sd[pend % 3], wb, wbr[pend & 1]);
                mg_mark(s, 9);
                if (tid == 0) wbr[s & 1] = r;
                __syncthreads();
                /* the products of this block's row groups, from the region */
                mg_mark(s, 2);
                mg_wait_fill(&mbar[S.regi], S.par);
                mg_mark(s, 3);
                const unsigned char *wr = msm + S.reg;
                switch (nu) {  /* a loop per unit count: no predicated-off units issued */
                case 1: mg_prod<1>(wr, xq, S.nch, w, lane, red); break;
                case 2: mg_prod<2>(wr, xq, S.nch, w, lane, red); break;
                case 3: mg_prod<3>(wr, xq, S.nch, w, lane, red); break;
                case 4: mg_prod<4>(wr, xq, S.nch, w, lane, red); break;
                default: break;
                }
                __syncthreads();
                if (tid < nu * 32) {
                    int u = tid >> 5, acc = 0, xsum = 0;
                    for (int v = 0; v < MG_NT / 32; v++) xsum += shi[v];
                    for (int v = 0; v < MG_NT / 32; v++) acc += red[(v * MG_MAXU + u) * 32 + lane];
                    TGSel mo = tg_sel(S.A, b + u * nb);
                    int row = mo.g * TG_RG + lane;
                    if (row < mo.rows) {
                        float o = (float)(acc - xsum) * (mo.scale / sc);
                        mo.y[row] = o;
                        if (mo.ax) mo.ax[row] = axp + o;
                    }
                }
                pend = s;
                __syncthreads();
                mg_mark(s, 4);
                if (tid == 0) mg_arrive(c);
                mg_mark(s, 5);
                /* the region is free: next layer's weights, issued once the next GEMV step's row is in */
                if (tid == 32 && S.nxt >= 0) { mg_fill_plan(c.st[S.nxt], b, nb, msm, mbar, pfl); pfn = 1; }
                continue;
            }
            if (pend >= 0) { mg_wb_put(sd[pend % 3], wb, wbr[pend & 1]); pend = -1; }
        }
        __syncthreads();
        if (tid == 0) mg_arrive(c);
        mg_mark(s, 6);
    }
    if (pend >= 0) {  /* the last step's write-back, after the grid is done with its row */
        if (tid == 0) mg_wait(c.bar, c.err, MG_BASE + (unsigned long long)c.n * nb);
        __syncthreads();
        MgWb wb;
        mg_wb_get(sd[pend % 3], b * MG_NT + tid, wb);
        mg_wb_put(sd[pend % 3], wb, wbr[pend & 1]);
    }
#endif
}

#undef MG_BASE

struct bn_cu_mega { MCtx c; int dpl, anw; size_t smem; int scr, redo; };  /* c.err: set per launch */
typedef void (*mg_kern_t)(MCtx, int, int);
/* dpl: the attention's dims a lane (head_dim / 32 rounded up); anw: its warps (16: the cluster path's 16-warp variant) */
static mg_kern_t mg_kern(int dpl, int anw) {
    if (anw == 16) return dpl == 1 ? k_mega<1, 16> : dpl == 2 ? k_mega<2, 16> : k_mega<4, 16>;
    return dpl == 1 ? k_mega<1, 8> : dpl == 2 ? k_mega<2, 8> : k_mega<4, 8>;
}

static bool ovl(const void *a, size_t na, const void *b, size_t nb) {  /* byte ranges */
    const char *x = (const char *)a, *y = (const char *)b;
    return x && y && na && nb && x < y + nb && y < x + na;
}
/* Does step S read or write [p, p + bytes)? */
static bool mg_touches(const bn_cu_mstep &S, const void *p, size_t bytes) {
    if (S.kind == BN_CU_MS_EMBED) return ovl(S.x, (size_t)S.dim * 4, p, bytes);
    if (S.kind == BN_CU_MS_NORMLIN) {
        if (ovl(S.nx, (size_t)S.cols * 4, p, bytes) || ovl(S.ny, (size_t)S.cols * 4, p, bytes) || ovl(S.out, (size_t)S.cols * 4, p, bytes)) return true;
        for (int i = 0; i < S.nw; i++)
            if (ovl(S.mm[i].y_d, (size_t)S.mm[i].rows * 4, p, bytes) || ovl(S.mm[i].add_d, (size_t)S.mm[i].rows * 4, p, bytes)) return true;
        return false;
    }
    size_t qb = (size_t)S.nh * S.hd * 4, kb = (size_t)S.nkv * S.hd * 4;
    return ovl(S.q, qb, p, bytes) || ovl(S.k, kb, p, bytes) || ovl(S.v, kb, p, bytes) || ovl(S.ao, qb, p, bytes);
}

#define MG_NO(...) do { fs = bn_err(BITNET_ERR_UNSUPPORTED, __VA_ARGS__); goto fail; } while (0)
extern "C" bitnet_status bn_cu_mega_new(const bn_cu_mstep *steps, int n, const int32_t *ids_d, const int32_t *pos_d, const int32_t *seq_d,
                                        bn_cu_mega **out) {
    *out = NULL;
    bitnet_status fs = BITNET_OK;
    int dev = 0, cc = 0, nsm = 0, optin = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    MStep *h = (MStep *)calloc((size_t)(n > 0 ? n : 1), sizeof *h);
    bn_cu_mega *g = (bn_cu_mega *)calloc(1, sizeof *g);
    int nlin = 0, natt = 0, dpl = 1, anw = AT_NW, maxkp = 16, attf = 0;
    size_t regsz[MG_NREG] = {0};
    int P = 0, uses[MG_NREG] = {0}, lastof[MG_NREG], first[MG_NREG], nfirst = 0;
    MStep *st_d = NULL;
    unsigned long long *bar_d = NULL;
    if (!h || !g) { fs = bn_err(BITNET_ERR_NOMEM, "out of memory"); goto fail; }
    if (cc < 9) MG_NO("cuda: the one-kernel decode step needs sm_90+");
    if (n < 1) MG_NO("cuda: an empty decode program");
    for (int s = 0; s < n; s++) { if (steps[s].kind == BN_CU_MS_NORMLIN) nlin++; if (steps[s].kind == BN_CU_MS_ATT) natt++; }
    P = natt > 0 && nlin % natt == 0 ? nlin / natt : nlin;
    if (P > MG_NREG) MG_NO("cuda: %d GEMV steps per layer (at most %d)", P, MG_NREG);
    for (int r = 0; r < MG_NREG; r++) lastof[r] = -1;
    for (int s = 0, li = 0; s < n; s++) {
        const bn_cu_mstep &S = steps[s];
        MStep &M = h[s];
        if (S.kind == BN_CU_MS_EMBED) {
            M.kind = MG_EMBED; M.tab = S.table; M.dt = S.dt; M.dim = S.dim; M.ex = S.x;
        } else if (S.kind == BN_CU_MS_NORMLIN) {
            M.kind = MG_NORMLIN;
            for (int i = 0; i < S.nw && i < 3; i++) if (S.mm[i].yi_d) MG_NO("cuda: mega: integer outputs");
            if (S.nw < 1 || S.nw > 3 || S.pre < 0 || S.pre > 2) MG_NO("cuda: mega: a GEMV step of %d matrices, pre-op %d", S.nw, S.pre);
            M.tot = tg_args(S.mm, S.nw, &M.A);
            M.nuq = M.tot / nsm; M.nur = M.tot % nsm;
            M.nw = S.nw; M.cols = S.cols; M.kp = bn_kpad(S.cols); M.nch = M.kp / 64; M.pre = S.pre; M.act = S.act; M.eps = S.eps;
            M.T = norm_threads(S.cols);
            if (S.cols > nsm * MG_NT) MG_NO("cuda: mega: a row of %d values to write back", S.cols);
            for (int i = 0; i < S.nw; i++)  /* the residual is read before the output is stored */
                if (ovl(S.mm[i].y_d, (size_t)S.mm[i].rows * 4, S.mm[i].add_d, (size_t)S.mm[i].rows * 4)) MG_NO("cuda: mega: an output that is its residual");
            if (norm_vpt(S.cols) > 8 || M.T > MG_VH * MG_NT) MG_NO("cuda: mega: a norm over %d values", S.cols);
            M.x = S.nx; M.y = S.ny; M.w = S.nwt; M.out = S.out;
            int upb = (M.tot + nsm - 1) / nsm;
            if (upb > MG_MAXU) MG_NO("cuda: mega: %d row groups per block (at most %d)", upb, MG_MAXU);
            int cl = li++ % P;
            size_t need = (size_t)upb * M.nch * 512;
            if (need > regsz[cl]) regsz[cl] = need;
            M.regi = cl; M.par = uses[cl] & 1;
            if (uses[cl]++ == 0) first[nfirst++] = s;  /* the region's first step: filled at launch */
            M.nxt = -1;
            if (lastof[cl] >= 0) h[lastof[cl]].nxt = s;
            lastof[cl] = s;
            if (M.kp > maxkp) maxkp = M.kp;
            /* its normed row is written back during the next step, which must not touch it */
            if (s + 1 < n && (mg_touches(steps[s + 1], S.out, (size_t)S.cols * 4) || (S.pre && mg_touches(steps[s + 1], S.nx, (size_t)S.cols * 4))))
                MG_NO("cuda: mega: step %d touches the row step %d writes back", s + 1, s);
        } else if (S.kind == BN_CU_MS_ATT) {
            M.kind = MG_ATT;
            int hd = S.hd;
            if (!S.cs || !S.sn || !S.k || !S.v || hd > 128 || (hd & 1) || S.nkv <= 0 || S.nh % S.nkv) MG_NO("cuda: mega: attention shape");
            int d1 = (hd + 31) / 32, dd = d1 == 1 ? 1 : d1 == 2 ? 2 : 4;
            if (attf && dd != dpl) MG_NO("cuda: mega: attention head sizes differ");
            int len = S.maxpos + 1, nsplit = (len + AT_STEP - 1) / AT_STEP, merge = 0, nw = AT_NW;
            if (nsplit > AT_SPLITS) nsplit = AT_SPLITS;
            if (nsplit > att_maxsplit(1)) nsplit = att_maxsplit(1);
            if (g_cl && len >= AT_CLEN) {  /* bn_cu_attention_fused would take the cluster path */
                int cap = g_cl >= 3 ? 8 : 16, cw = g_cl % 2 ? 16 : 8;  /* att_cl_go's variant: its warps and cluster cap */
                int mx = cw == 16 ? (dd == 1 ? att_cl_max<1, 16>(cap) : dd == 2 ? att_cl_max<2, 16>(cap) : att_cl_max<4, 16>(cap))
                                  : (dd == 1 ? att_cl_max<1, 8>(cap) : dd == 2 ? att_cl_max<2, 8>(cap) : att_cl_max<4, 8>(cap));
                if (mx) { nw = cw; nsplit = (len + nw * AT_PB - 1) / (nw * AT_PB); if (nsplit > mx) nsplit = mx; if (nsplit > AT_CSPLITS) nsplit = AT_CSPLITS; merge = 1; }
            }
            if (attf && nw != anw) MG_NO("cuda: mega: attention variants differ between layers");
            dpl = dd; anw = nw; attf = 1;
            int grp = S.nh / S.nkv, hgs = (grp + AT_G - 1) / AT_G;
            M.nh = S.nh; M.nkv = S.nkv; M.hd = hd; M.nsplit = nsplit; M.merge = merge; M.gx = S.nkv * hgs; M.nvb = M.gx * nsplit;
            if (M.nvb > nsm) MG_NO("cuda: mega: %d attention blocks (%d multiprocessors)", M.nvb, nsm);
            /* the previous step's row is written back by the threads the attention leaves free */
            if (s > 0 && steps[s - 1].kind == BN_CU_MS_NORMLIN &&
                (size_t)steps[s - 1].cols > (size_t)M.nvb * (MG_NT - nw * 32) + (size_t)(nsm - M.nvb) * MG_NT)
                MG_NO("cuda: mega: a row of %d values to write back beside %d attention blocks", steps[s - 1].cols, M.nvb);
            M.q = S.q; M.k = S.k; M.v = S.v; M.kc = S.kc; M.vc = S.vc; M.sstr = S.sstr; M.cs = S.cs; M.sn = S.sn;
            M.ws = S.ws; M.ao = S.ao; M.cnt = (unsigned *)(S.ws + att_recs(1, S.nh, hd));
        } else MG_NO("cuda: mega: step kind %d", S.kind);
    }
    {
        size_t off = 0;
        for (int s = 0; s < n; s++) if (h[s].kind == MG_NORMLIN) {
            size_t o = 0;
            for (int r = 0; r < h[s].regi; r++) o += regsz[r];
            h[s].reg = (int)o;
        }
        for (int r = 0; r < MG_NREG; r++) off += regsz[r];
        size_t kp16 = ((size_t)maxkp + 15) / 16 * 16, red = (size_t)MG_NT / 32 * MG_MAXU * 32 * 4;
        size_t att = attf ? (size_t)anw * AT_G * 32 * dpl * 4 : 0, attc = attf ? (size_t)AT_G * (AT_SPLITS + 1) * 4 : 0;
        if (attc > att) att = attc;
        size_t scr = kp16 + red > att ? kp16 + red : att;
        g->scr = (int)off; g->redo = (int)kp16; g->smem = off + scr;
        cudaFuncAttributes fa;
        mg_kern_t k = mg_kern(dpl, anw);
        if (cudaFuncGetAttributes(&fa, k) != cudaSuccess) { cudaGetLastError(); MG_NO("cuda: mega: no sm_90 kernel in this build"); }
        if (g->smem + fa.sharedSizeBytes > (size_t)optin) MG_NO("cuda: mega: %zu bytes of shared memory per block (%d available)", g->smem + fa.sharedSizeBytes, optin);
        if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)g->smem) != cudaSuccess) { cudaGetLastError(); MG_NO("cuda: mega: shared memory"); }
        int occ = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, MG_NT, g->smem) != cudaSuccess || occ < 1) { cudaGetLastError(); MG_NO("cuda: mega: does not fit a multiprocessor"); }
    }
    g->dpl = dpl; g->anw = anw;
    {
        bitnet_status s = bn_cu_malloc((void **)&st_d, (size_t)n * sizeof *h, "the decode program");
        if (!s) s = bn_cu_malloc((void **)&bar_d, 64, "a barrier counter");
        if (!s) s = cerr(cudaMemcpy(st_d, h, (size_t)n * sizeof *h, cudaMemcpyHostToDevice), "uploading the decode program");
        if (!s) s = cerr(cudaMemset(bar_d, 0, 64), "cudaMemset");
        if (s) { fs = s; goto fail; }
    }
    g->c = MCtx{st_d, n, nsm, ids_d, pos_d, seq_d, bar_d, NULL, nfirst, {0}};
    for (int i = 0; i < nfirst; i++) g->c.first[i] = first[i];
    free(h);
    *out = g;
    g_mega_built++;
    return BITNET_OK;
fail:
    free(h);
    bn_cu_free(st_d); bn_cu_free(bar_d); free(g);
    return fs;
}
extern "C" bitnet_status bn_cu_mega_launch(bn_cu_mega *g, int *err_d, void *s) {
    MCtx c = g->c;
    c.err = err_d;
    mg_kern_t k = mg_kern(g->dpl, g->anw);
    /* cooperative: every block resident at once, or the launch fails (no barrier can hang) */
    cudaLaunchConfig_t lc = {};
    cudaLaunchAttribute at[1];
    lc.gridDim = dim3(c.nb); lc.blockDim = dim3(MG_NT); lc.dynamicSmemBytes = g->smem; lc.stream = ST(s);
    at[0].id = cudaLaunchAttributeCooperative; at[0].val.cooperative = 1;
    lc.attrs = at; lc.numAttrs = 1;
    return cerr(cudaLaunchKernelEx(&lc, k, c, g->scr, g->redo), "launching the one-kernel decode step");
}
extern "C" bitnet_status bn_cu_mega_reset(bn_cu_mega *g, void *s) { return cerr(cudaMemsetAsync(g->c.bar, 0, 64, ST(s)), "cudaMemset"); }
extern "C" void bn_cu_mega_free(bn_cu_mega *g) {
    if (!g) return;
    bn_cu_free((void *)g->c.st); bn_cu_free(g->c.bar); free(g);
}
