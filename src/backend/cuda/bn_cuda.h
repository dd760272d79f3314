/* bn_cuda.h — CUDA kernels for BitNet inference (src/backend/cuda/kernels.cu), callable from C.
 * Built only by `make CUDA=1`; nothing in the CPU-only build includes this file.
 *
 * What it is: device management with clear errors, the GPU ternary layout, and one function per
 * kernel. Every pointer named *_d (and every float/int array argument unless it says "host") is
 * device memory. Kernels are asynchronous on `stream` (a cudaStream_t passed as void *; NULL is
 * the legacy default stream); a function returns BITNET_OK when the launch was accepted, else a
 * status with bn_err() set ("cuda: ...: reason"). Nothing prints, nothing exits.
 *
 * The contracts are those of the CPU reference (src/kernels/ref.c and src/backend/cpu/cpu.c):
 *   - bn_cu_quant: exactly kernels.h quant_act (bit-identical int8 values and scale);
 *   - bn_cu_tgemm: exact int32 sums, then y = (float)acc * (scale / s_act), bit-identical to the
 *     CPU backend's BitLinear outputs;
 *   - rmsnorm, attention, softmax, silu and the head: within float rounding (the order of float
 *     sums differs); rope, relu2 gating and add: the CPU's float operations, unfused.
 *
 * GPU ternary layout ("cu2", row-interleaved): kp = bn_kpad(cols), nch = kp/64 chunks of 64
 * weights (16 bytes) per row; rows are padded to groups of 32, and group G stores chunk c of its
 * 32 rows contiguously: row r, chunk c is the 16 bytes at ((r/32 * nch + c) * 32 + r%32) * 16,
 * so a warp's 32 lanes read 512 contiguous bytes, one row each. Within a chunk, little-endian
 * 32-bit word g holds k = 64c+16g .. 64c+16g+15: byte b, bits 2s..2s+1 hold the code of
 * k = 64c + 16g + 4s + b (code = value + 1; padding code 1). So (word >> 2s) & 0x03030303 is the
 * 4 codes of k = 64c+16g+4s .. +3, one dp4a (or one mma k-quarter) against 4 int8 activations;
 * sum(code*x) - sum(x) is the exact ternary product. 2 bits per weight,
 * ceil(rows/32)*32*kp/4 bytes.
 * bn_cu_tgemm: n <= 8 tokens: dp4a GEMV (lane = row, warps split K, activations in shared
 * memory); n > 8: int8 tensor cores (mma.sync m16n8k32 s8, sm_80+), same exact int32 sums.
 * bn_cu_norm_tgemv: the one-token GEMV with the RMSNorm + quantizer of its input row inside.
 * What it is not: a scheduler or an allocator of model state. */
#ifndef BITNET_BN_CUDA_H
#define BITNET_BN_CUDA_H
#include <stddef.h>
#include <stdint.h>
#include "bitnet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device ---- */
/* GPUs the driver reports; 0 when there is no driver, no GPU or the runtime fails (why: *why,
 * a static string, when why is non-NULL). Never fails loudly. */
int bn_cu_device_count(const char **why);
/* Make device dev current and describe it (name[nlen], total memory, multiprocessors,
 * compute capability major*10+minor). Errors: no such device, driver too old, ... */
bitnet_status bn_cu_device_open(int dev, char *name, size_t nlen, size_t *mem_total, int *sms, int *cc);
bitnet_status bn_cu_malloc(void **p, size_t bytes, const char *what);  /* "out of GPU memory" names what */
void bn_cu_free(void *p);
bitnet_status bn_cu_stream_new(void **stream);
void bn_cu_stream_free(void *stream);
/* Pinned host memory (for async copies); NULL on failure. */
void *bn_cu_host_alloc(size_t bytes);
void bn_cu_host_free(void *p);
bitnet_status bn_cu_h2d(void *dst_d, const void *src, size_t bytes, void *stream);   /* async */
bitnet_status bn_cu_d2h(void *dst, const void *src_d, size_t bytes, void *stream);   /* waits */
bitnet_status bn_cu_memset(void *dst_d, int byte, size_t bytes, void *stream);
bitnet_status bn_cu_sync(void *stream);

/* ---- ternary weights in the cu2 layout ---- */
size_t bn_cu_tern_bytes(int rows, int cols);
/* Host: q int8[rows][cols] in {-1,0,1} -> dst[bn_cu_tern_bytes(rows, cols)] (cu2 layout). */
void bn_cu_tern_pack(const int8_t *q, int rows, int cols, uint8_t *dst);

/* One matrix of a fused BitLinear launch: w_d in cu2 layout, output y_d[n][rows] (floats), or
 * when yi_d is non-NULL the raw exact sums yi_d[n][rows] (int32; y_d unused). add_d (float
 * outputs; NULL: none): add_d[t][r] += y[t][r] as well (bn_cu_add's operation: the residual add
 * done by the GEMV). */
typedef struct bn_cu_tmm {
    const uint8_t *w_d;
    int rows;
    float scale;
    float *y_d;
    int32_t *yi_d;
    float *add_d;
} bn_cu_tmm;

/* Per-row int8 activation quantization (kernels.h quant_act): row t of x_d[n][ldx] (cols used)
 * -> xq_d[t*kp ..] (zero padded to kp), xs_d[t] = s, xsum_d[t] = sum of the int8 values. */
bitnet_status bn_cu_quant(const float *x_d, int n, int cols, int ldx, int8_t *xq_d, int kp,
                          float *xs_d, int32_t *xsum_d, void *stream);
/* Ternary GEMM of nw <= 3 matrices sharing cols (one launch): for each matrix i, token t < n,
 * row r: acc = sum_k W_i[r][k] * xq[t][k] (exact), y_i[t][r] = (float)acc * (scale_i / xs[t]). */
bitnet_status bn_cu_tgemm(const bn_cu_tmm *mm, int nw, int cols, const int8_t *xq_d, const float *xs_d,
                          const int32_t *xsum_d, int n, void *stream);

/* bn_cu_tgemm of one token (n = 1) whose int8 activations are those of bn_cu_rmsnorm_quant (pre 0:
 * the row x[cols]), bn_cu_add_rmsnorm_quant (pre 1: x += y first) or bn_cu_glu_rmsnorm_quant
 * (pre 2: x = act(x) * y first, out must be x), computed inside the GEMV from the float row (every
 * block norms it: the same bits as those kernels) instead of being read from memory; x (pre 1, 2)
 * and out (the normed row) are written as those kernels write them. xq/xs/xsum are not written.
 * cnt_d: one unsigned of device memory, zero before the first call (every call leaves it zero). */
bitnet_status bn_cu_norm_tgemv(const bn_cu_tmm *mm, int nw, int cols, int pre, int act, float *x_d, const float *y_d,
                               const float *w_d, float eps, float *out_d, unsigned *cnt_d, void *stream);
/* out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w, t < n; out may be x. */
bitnet_status bn_cu_rmsnorm(float *out_d, const float *x_d, const float *w_d, int n, int d, float eps, void *stream);
/* bn_cu_rmsnorm, then bn_cu_quant of the normed rows (one launch; the same bits). */
bitnet_status bn_cu_rmsnorm_quant(float *out_d, const float *x_d, const float *w_d, int n, int d, float eps,
                                  int8_t *xq_d, int kp, float *xs_d, int32_t *xsum_d, void *stream);
/* x += y, then bn_cu_rmsnorm_quant of x into out (one launch; x written back). */
bitnet_status bn_cu_add_rmsnorm_quant(float *out_d, float *x_d, const float *y_d, const float *w_d, int n, int d, float eps,
                                      int8_t *xq_d, int kp, float *xs_d, int32_t *xsum_d, void *stream);
/* g = act(g) * u (bn_cu_glu's operations), then bn_cu_rmsnorm_quant of g in place (one launch). */
bitnet_status bn_cu_glu_rmsnorm_quant(float *g_d, const float *u_d, int act, const float *w_d, int n, int d, float eps,
                                      int8_t *xq_d, int kp, float *xs_d, int32_t *xsum_d, void *stream);
/* Rotate-half RoPE in place on v[n][nheads*hd], row t at position pos_d[t]; cos/sin tables
 * [n_ctx][hd/2] as the CPU backend makes them. */
bitnet_status bn_cu_rope(float *v_d, int n, int nheads, int hd, const int32_t *pos_d,
                         const float *cos_d, const float *sin_d, void *stream);
/* Cache of one layer: K of sequence s, position p at kc_d + s*seq_stride + p*kvd (same for V).
 * Store k[t], v[t] ([n][kvd]) at (seq_d[t], pos_d[t]). */
bitnet_status bn_cu_kv_store(float *kc_d, float *vc_d, size_t seq_stride, const float *k_d, const float *v_d,
                             int n, int kvd, const int32_t *seq_d, const int32_t *pos_d, void *stream);
/* bn_cu_kv_store of k[t] roped at pos[t] (bn_cu_rope's operations on the stored copy; k_d itself
 * is not changed); cos_d NULL: no RoPE. */
bitnet_status bn_cu_rope_kv_store(float *kc_d, float *vc_d, size_t seq_stride, const float *k_d, const float *v_d, int n,
                                  int nkv, int hd, const int32_t *seq_d, const int32_t *pos_d,
                                  const float *cos_d, const float *sin_d, void *stream);
/* Workspace floats that bn_cu_attention needs for up to n tokens of heads nh, dim hd. */
size_t bn_cu_attention_ws(int n, int nh, int hd);
/* out[t] = softmax(q[t] K^T / sqrt(hd)) V over positions 0..pos[t] of sequence seq[t] (GQA:
 * query head h reads kv head h / (nh/nkv)); one launch: blocks over chunks of the sequence, the
 * last block of each (token, kv head) to finish combines them. maxpos: host upper bound of
 * pos_d[]; ws_d: bn_cu_attention_ws(n, nh, hd) floats, zeroed once after allocation (it ends
 * with arrival counters that every call leaves at zero). */
bitnet_status bn_cu_attention(const float *q_d, const float *kc_d, const float *vc_d, size_t seq_stride,
                              int n, int nh, int nkv, int hd, const int32_t *seq_d, const int32_t *pos_d,
                              int maxpos, float *ws_d, float *out_d, void *stream);
/* bn_cu_attention with RoPE of q applied as q is read (cos_d/sin_d non-NULL; q_d not changed) and,
 * when k_d/v_d are non-NULL, the store of k[t] (roped when cos_d is given) and v[t] at
 * (seq[t], pos[t]) done inside (by the block that covers that position, before it reads). The
 * in-kernel store needs every token of the call in a different sequence (no token may read
 * another's new row); else store with bn_cu_rope_kv_store first and pass k_d = v_d = NULL. */
bitnet_status bn_cu_attention_fused(const float *q_d, const float *k_d, const float *v_d, float *kc_d, float *vc_d,
                                    size_t seq_stride, int n, int nh, int nkv, int hd, const int32_t *seq_d,
                                    const int32_t *pos_d, int maxpos, const float *cos_d, const float *sin_d,
                                    float *ws_d, float *out_d, void *stream);
/* Prefill attention (tiled, causal): out[t] as bn_cu_attention for every token t < n, with RoPE of q
 * applied as q is read (cs_d/sn_d non-NULL). The keys and values of every position up to each
 * token's own are in the cache already (bn_cu_rope_kv_store first), and each tile of
 * bn_cu_attention_tile(nh, nkv, hd) consecutive tokens (t0 = 0, tq, 2tq, ...) lies in one sequence
 * (the caller checks; positions within a tile are free). bn_cu_attention_tile returns 0 for
 * shapes the tiled kernel does not take (then use bn_cu_attention_fused). No workspace. */
int bn_cu_attention_tile(int nh, int nkv, int hd);
bitnet_status bn_cu_attention_prefill(const float *q_d, const float *kc_d, const float *vc_d, size_t seq_stride, int n, int nh, int nkv,
                                      int hd, const int32_t *seq_d, const int32_t *pos_d, const float *cos_d, const float *sin_d,
                                      float *out_d, void *stream);
/* g[i] = act(g[i]) * u[i]; act 0 = relu^2, 1 = silu. */
bitnet_status bn_cu_glu(float *g_d, const float *u_d, size_t n, int act, void *stream);
/* x[i] += y[i]. */
bitnet_status bn_cu_add(float *x_d, const float *y_d, size_t n, void *stream);
/* x[t] = float(table[ids[t]]), table [vocab][dim] of dtype dt (BN_W_F32/F16/BF16). */
bitnet_status bn_cu_embed(const void *table_d, int dt, int dim, const int32_t *ids_d, int n, float *x_d, void *stream);

/* LM head kinds: the dense dtypes of kernels.h (BN_W_F32/F16/BF16), or the quantized layouts. */
enum { BN_CU_HEAD_Q8 = 16, BN_CU_HEAD_Q4 = 17 };
/* y[t][r] = head row r . x[t], t < n, r < rows; x [n][cols] floats. w_d: [rows][cols] of the
 * dense dtype, or the kernels.h Q8/Q4 layout. */
bitnet_status bn_cu_head(const void *w_d, int kind, int rows, int cols, const float *x_d, int n, float *y_d, void *stream);
/* Greedy head without the logits: bn_cu_head's logits of the n rows of x folded on the fly into
 * keys_d (bn_cu_head_argmax_bytes(n) bytes of device memory: a non-finite flag, then per row a few
 * partial maxima; zeroed here, then filled). Copy them to the host and call bn_cu_head_argmax_read:
 * ids[t] = the first index of the largest logit of row t; returns 0 if a logit was not finite. */
size_t bn_cu_head_argmax_bytes(int n);
bitnet_status bn_cu_head_argmax(const void *w_d, int kind, int rows, int cols, const float *x_d, int n, void *keys_d, void *stream);
int bn_cu_head_argmax_read(const void *keys, int n, int32_t *ids);
/* idx_d[t] = the first index of the largest of y[t][0..rows) (NaN never wins), val_d[t] its value. */
bitnet_status bn_cu_argmax(const float *y_d, int n, int rows, int32_t *idx_d, float *val_d, void *stream);
/* *bad_d = 1 if any of x[0..n) is NaN or inf (else left as it was: clear it first). */
bitnet_status bn_cu_nonfinite(const float *x_d, size_t n, int *bad_d, void *stream);

/* Device-to-device copy rate over `bytes` (read + written bytes over time, GB/s; median of reps). */
bitnet_status bn_cu_copy_probe(size_t bytes, int reps, double *gbps);
/* Launch kernels with programmatic dependent launch (1) or plainly (0). bn_cu_device_open turns
 * it on for sm_90+ unless env BITNET_CUDA_PDL=0; for A/B measurements. */
void bn_cu_set_pdl(int on);
int bn_cu_get_pdl(void);
/* Use the thread-block cluster path (1..4) or not (0) for the decode attention: its splits merged
 * through distributed shared memory (hd <= 128, <= 4 tokens, >= 256-position grids; else, or when
 * the device co-schedules no such cluster, the record + counter merge). Variants, for measurements:
 * 1 = blocks of 16 warps in clusters of <= 16 splits, 2 = 8 warps / <= 16, 3 = 16 warps / <= 8,
 * 4 = 8 warps / <= 8. bn_cu_device_open sets 1 for sm_90+ (env BITNET_CUDA_CLUSTER=0..4 picks);
 * never turn it on for older GPUs. Results differ from the plain path and between the variants
 * within float rounding (other split boundaries). */
void bn_cu_set_cluster(int on);
int bn_cu_get_cluster(void);

/* ---- the one-kernel decode step (sm_90+) ----
 * A one-token forward as one persistent kernel: steps run in order with a grid-wide barrier
 * between them, each block's weights of every GEMV copied into its shared memory one layer
 * ahead. Each step computes what its kernel-path function computes, bit for bit:
 *   EMBED:   bn_cu_embed of ids_d[0] (table, dt, dim) into x;
 *   NORMLIN: bn_cu_norm_tgemv(mm, nw, cols, pre, act, nx, ny, nwt, eps, out) (the normed row and
 *            the pre-op values written back during the next step, which must not touch them);
 *   ATT:     bn_cu_attention_fused of one token (q, k, v, kc, vc, sstr, nh, nkv, hd, seq_d,
 *            pos_d, maxpos, cs, sn, ws, ao) with RoPE and the in-kernel store (cs, sn, k, v set).
 * bn_cu_mega_new checks and plans the program (BITNET_ERR_UNSUPPORTED with the reason when the
 * device or the program does not fit: the caller runs the ops as kernels). ids/pos/seq: device
 * arrays the host fills before each launch. bn_cu_mega_launch: asynchronous on stream (capturable
 * in a graph), a cooperative launch (one block per multiprocessor, all resident, or the launch
 * fails); *err_d (device int, clear it first) becomes 1 if a barrier still waited longer than
 * ~2 s: the results are then garbage; call bn_cu_mega_reset and use the kernel path. */
enum { BN_CU_MS_EMBED = 1, BN_CU_MS_NORMLIN = 2, BN_CU_MS_ATT = 3 };
typedef struct bn_cu_mstep {
    int kind;
    const void *table; int dt, dim; float *x;                               /* EMBED */
    bn_cu_tmm mm[3]; int nw, cols, pre, act; float eps;                      /* NORMLIN */
    float *nx; const float *ny, *nwt; float *out;
    const float *q, *k, *v; float *kc, *vc; size_t sstr;                     /* ATT */
    int nh, nkv, hd, maxpos; const float *cs, *sn; float *ws, *ao;
} bn_cu_mstep;
typedef struct bn_cu_mega bn_cu_mega;
bitnet_status bn_cu_mega_new(const bn_cu_mstep *steps, int n, const int32_t *ids_d, const int32_t *pos_d, const int32_t *seq_d,
                             bn_cu_mega **out);
bitnet_status bn_cu_mega_launch(bn_cu_mega *g, int *err_d, void *stream);
bitnet_status bn_cu_mega_reset(bn_cu_mega *g, void *stream);
void bn_cu_mega_free(bn_cu_mega *g);
/* Build decode programs (1, the default on sm_90+; env BITNET_CUDA_MEGA=0 turns it off at device open) or not (0). */
void bn_cu_set_mega(int on);
int bn_cu_get_mega(void);
/* Decode programs built so far in this process (for tests: did a forward take this path?). */
int bn_cu_mega_built(void);

#ifdef __cplusplus
}
#endif
#endif
