/* train_attn.cu — fused causal flash attention (forward and backward) for the CUDA trainer
 * (train_cuda.cu's attn ops), on bf16 tensor cores (mma.sync m16n8k16, fp32 accumulate).
 *
 * What it is: the backend.h attention contract (causal GQA, softmax(q k^T / sqrt(hd)) v over
 * token-major q [B*T][H*hd], k, v [B*T][KH*hd]; query head h reads kv head h / (H/KH)) without
 * the [B,H,T,T] probability matrix: the forward keeps one fp32 log-sum-exp per row (log2
 * domain), the backward recomputes P from it tile by tile (FlashAttention-2's scheme).
 *   - forward: one block of 4 warps per 64 query rows of one (b, h); key tiles of 64 stream
 *     through shared memory; online softmax in fp32 (exp2f).
 *   - backward: D = rowsum(dO * O) (k_fa_dot), then dK/dV (one block per 64 keys of one
 *     (b, kv head), summing the heads of the group and every query tile at or after the
 *     diagonal) and dQ (one block per 64 query rows) as two kernels, so every sum has a fixed
 *     order (no atomics: the same bits every run).
 *   - precision: SP = 1 splits every fp32 operand x into bf16 hi = bf16(x), lo = bf16(x - hi)
 *     and adds hi*hi + hi*lo + lo*hi (16 mantissa bits of each operand, about 2^-16 relative,
 *     near fp32; 3 MMAs); SP = 0 is one bf16 MMA (2^-8). The softmax statistics, the scaling
 *     and all sums are fp32 either way.
 * Head dims 32, 64 and 128 (bn_fa_supported); any T >= 1 (partial tiles are masked).
 * What it is not: a general attention (no dropout, no padding masks, no sliding window), a
 * Hopper wgmma/TMA kernel (mma.sync runs on sm_80 and sm_90), or bit-identical to the
 * materialized fp32 path (float sums in another order). */
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <math.h>
#include "backend/cuda/train_attn.h"

typedef __nv_bfloat16 bf16;

/* ---------------------------------------------------------------- fragments */
/* D += A B: A 16x16 (row), B 16x8 (col), bf16 in, fp32 accumulate. Lane l: g = l/4, t = l%4;
 * a0 = A[g][2t..], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..];
 * b0 = B[2t..][g], b1 = B[2t+8..][g]; c0,c1 = C[g][2t..], c2,c3 = C[g+8][2t..]. */
__device__ __forceinline__ void mma(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ uint32_t pack(bf16 x, bf16 y) {
    return (uint32_t)__bfloat16_as_ushort(x) | ((uint32_t)__bfloat16_as_ushort(y) << 16);
}
/* (x, y) -> hi word and (SP) lo word of the remainders. */
__device__ __forceinline__ void split2(float x, float y, uint32_t &hi, uint32_t &lo) {
    bf16 hx = __float2bfloat16(x), hy = __float2bfloat16(y);
    hi = pack(hx, hy);
    lo = pack(__float2bfloat16(x - __bfloat162float(hx)), __float2bfloat16(y - __bfloat162float(hy)));
}
/* A fragment of rows r0.., cols k0.. of a row-major bf16 tile s[][ld]. */
__device__ __forceinline__ void ld_a(const bf16 *s, int ld, int r0, int k0, uint32_t a[4]) {
    int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    const bf16 *p = s + (size_t)(r0 + g) * ld + k0 + 2 * t;
    a[0] = *(const uint32_t *)p; a[1] = *(const uint32_t *)(p + 8 * ld);
    a[2] = *(const uint32_t *)(p + 8); a[3] = *(const uint32_t *)(p + 8 * ld + 8);
}
/* B fragment (k0.., n0..) of B[k][n] = X[n][k], X a row-major bf16 tile x[][ld]. */
__device__ __forceinline__ void ld_b(const bf16 *x, int ld, int n0, int k0, uint32_t b[2]) {
    int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    const bf16 *p = x + (size_t)(n0 + g) * ld + k0 + 2 * t;
    b[0] = *(const uint32_t *)p; b[1] = *(const uint32_t *)(p + 8);
}
/* c += A B with A, B each given as hi (and lo when SP) fragments. */
template <bool SP>
__device__ __forceinline__ void mma3(float c[4], const uint32_t ah[4], const uint32_t al[4], const uint32_t bh[2], const uint32_t bl[2]) {
    mma(c, ah, bh);
    if (SP) { mma(c, ah, bl); mma(c, al, bh); }
}
/* A fragments (hi, lo) of a 16x16 block built from two accumulator n-tiles c0 (cols 0..7),
 * c1 (cols 8..15): the accumulator layout is the A layout (FlashAttention-2's register reuse). */
template <bool SP>
__device__ __forceinline__ void acc_to_a(const float c0[4], const float c1[4], uint32_t ah[4], uint32_t al[4]) {
    split2(c0[0], c0[1], ah[0], al[0]); split2(c0[2], c0[3], ah[1], al[1]);
    split2(c1[0], c1[1], ah[2], al[2]); split2(c1[2], c1[3], ah[3], al[3]);
}

/* ---------------------------------------------------------------- tile loads */
/* dst[r][c] (ld) = bf16 of g[r * gs + c] for r < R, c < HD; rows >= valid are 0; lo (SP) the
 * remainders. All 128 threads of the block; the trip count is fixed, so the loads unroll and
 * many are in flight at once. */
template <int HD, bool SP, int R>
__device__ __forceinline__ void load_rows(const float *g, size_t gs, int valid, bf16 *hi, bf16 *lo, int ld) {
#pragma unroll 8
    for (int it = 0; it < R * HD / 128; it++) {
        int i = it * 128 + threadIdx.x, r = i / HD, c = i % HD;
        float x = r < valid ? g[(size_t)r * gs + c] : 0.f;
        bf16 h = __float2bfloat16(x);
        hi[r * ld + c] = h;
        if (SP) lo[r * ld + c] = __float2bfloat16(x - __bfloat162float(h));
    }
}
/* Transposed: dst[c][r] (ld) for r < R (R % 8 == 0), c < HD; two rows per 32-bit store, lanes
 * laid out 8 columns x 4 row pairs (coalesced 32-byte reads, conflict-free stores). */
template <int HD, bool SP, int R>
__device__ __forceinline__ void load_cols(const float *g, size_t gs, int valid, bf16 *hi, bf16 *lo, int ld) {
#pragma unroll 8
    for (int it = 0; it < (R / 2) * HD / 128; it++) {
        int i = it * 128 + threadIdx.x;
        int blk = i >> 5, l = i & 31, cb = blk % (HD / 8), rb = blk / (HD / 8);
        int c = cb * 8 + (l & 7), r = 2 * (rb * 4 + (l >> 3));
        float x = r < valid ? g[(size_t)r * gs + c] : 0.f, y = r + 1 < valid ? g[(size_t)(r + 1) * gs + c] : 0.f;
        uint32_t h, lw;
        split2(x, y, h, lw);
        *(uint32_t *)(hi + c * ld + r) = h;
        if (SP) *(uint32_t *)(lo + c * ld + r) = lw;
    }
}

/* ---------------------------------------------------------------- forward */
/* Block (qb, b*H + h), 128 threads: out rows [64 qb, 64 qb + 64) of head h, lse[(b H + h) T + t]
 * = log2 sum_j 2^(s_j sl2) over j <= t (sl2 = log2(e) / sqrt(hd)). */
template <int HD, bool SP>
__global__ void __launch_bounds__(128) k_fa_fwd(const float *q, const float *k, const float *v, float *o, float *lse,
                                                int T, int H, int KH, float sl2) {
    constexpr int BK = 64, LK = HD + 8, LV = BK + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Kh = (bf16 *)smem, *Kl = Kh + BK * LK, *Vh = Kl + (SP ? BK * LK : 0), *Vl = Vh + HD * LV;
    int qb = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, kh = h / (H / KH);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    const float *qp = q + (size_t)b * T * QS + (size_t)h * HD, *kp = k + (size_t)b * T * KS + (size_t)kh * HD, *vp = v + (size_t)b * T * KS + (size_t)kh * HD;
    int r0 = qb * 64 + w * 16;
    uint32_t qh[HD / 16][4], ql[HD / 16][4];
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int row = r0 + g + (i & 1) * 8, col = kc * 16 + 2 * t + (i >> 1) * 8;
            float x = row < T ? qp[(size_t)row * QS + col] : 0.f, y = row < T ? qp[(size_t)row * QS + col + 1] : 0.f;
            split2(x, y, qh[kc][i], ql[kc][i]);
        }
    float oc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.f;
    float mr[2] = {-INFINITY, -INFINITY}, lr[2] = {0.f, 0.f};
    int kend = min(T, (qb + 1) * 64);
    for (int k0 = 0; k0 < kend; k0 += BK) {
        __syncthreads();
        load_rows<HD, SP, BK>(kp + (size_t)k0 * KS, KS, min(BK, T - k0), Kh, Kl, LK);
        load_cols<HD, SP, BK>(vp + (size_t)k0 * KS, KS, min(BK, T - k0), Vh, Vl, LV);
        __syncthreads();
        if (k0 > r0 + 15) continue;   /* every key of the tile is after every row of this warp */
        float s[BK / 8][4];
#pragma unroll
        for (int n = 0; n < BK / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++)
#pragma unroll
            for (int n = 0; n < BK / 8; n++) {
                uint32_t bh_[2], bl_[2];
                ld_b(Kh, LK, n * 8, kc * 16, bh_);
                if (SP) ld_b(Kl, LK, n * 8, kc * 16, bl_);
                mma3<SP>(s[n], qh[kc], ql[kc], bh_, bl_);
            }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = k0 + n * 8 + 2 * t + (i & 1), row = r0 + g + (i >> 1) * 8;
                float x = (key > row || key >= T) ? -INFINITY : s[n][i] * sl2;
                s[n][i] = x; mx[i >> 1] = fmaxf(mx[i >> 1], x);
            }
        float al[2];
#pragma unroll
        for (int j = 0; j < 2; j++) {
            mx[j] = fmaxf(mx[j], __shfl_xor_sync(0xffffffffu, mx[j], 1));
            mx[j] = fmaxf(mx[j], __shfl_xor_sync(0xffffffffu, mx[j], 2));
            float mn = fmaxf(mr[j], mx[j]);
            al[j] = exp2f(mr[j] - mn);   /* 0 on the first tile (mr = -inf, mn finite: key k0 <= row) */
            mr[j] = mn; lr[j] *= al[j];
        }
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) { float p = exp2f(s[n][i] - mr[i >> 1]); s[n][i] = p; lr[i >> 1] += p; }
#pragma unroll
        for (int n = 0; n < HD / 8; n++) { oc[n][0] *= al[0]; oc[n][1] *= al[0]; oc[n][2] *= al[1]; oc[n][3] *= al[1]; }
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t ah[4], alo[4];
            acc_to_a<SP>(s[2 * kc], s[2 * kc + 1], ah, alo);
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                uint32_t bh_[2], bl_[2];
                ld_b(Vh, LV, n * 8, kc * 16, bh_);
                if (SP) ld_b(Vl, LV, n * 8, kc * 16, bl_);
                mma3<SP>(oc[n], ah, alo, bh_, bl_);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        lr[j] += __shfl_xor_sync(0xffffffffu, lr[j], 1);
        lr[j] += __shfl_xor_sync(0xffffffffu, lr[j], 2);
    }
    float *op = o + (size_t)b * T * QS + (size_t)h * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        if (row >= T) continue;
        float inv = 1.0f / lr[j];
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            op[(size_t)row * QS + n * 8 + 2 * t] = oc[n][2 * j] * inv;
            op[(size_t)row * QS + n * 8 + 2 * t + 1] = oc[n][2 * j + 1] * inv;
        }
        if (t == 0) lse[(size_t)bh * T + row] = mr[j] + log2f(lr[j]);
    }
}

/* ---------------------------------------------------------------- backward */
/* D[(b H + h) T + t] = sum_d dO[b t, h d] O[b t, h d]: one warp per (row, head). */
__global__ void k_fa_dot(const float *o, const float *dout, float *D, int B, int T, int H, int hd) {
    size_t wi = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, n = (size_t)B * T * H;
    if (wi >= n) return;
    int l = threadIdx.x & 31, h = (int)(wi % H);
    size_t r = wi / H, b = r / T, t = r % T;
    const float *a = o + r * H * hd + (size_t)h * hd, *d = dout + r * H * hd + (size_t)h * hd;
    float s = 0;
    for (int i = l; i < hd; i += 32) s += a[i] * d[i];
    for (int x = 16; x; x >>= 1) s += __shfl_xor_sync(0xffffffffu, s, x);
    if (l == 0) D[(b * H + h) * T + t] = s;
}

/* Block (kb, b*KH + kh): dK, dV rows [64 kb, 64 kb + 64) of kv head kh (written), summed over the
 * heads of its group and the query tiles from the diagonal on. Warp w owns 16 keys. */
template <int HD, bool SP>
__global__ void __launch_bounds__(128) k_fa_bwd_kv(const float *q, const float *k, const float *v, const float *dout,
                                                   const float *lse, const float *Dd, float *dk, float *dv,
                                                   int T, int H, int KH, float sl2, float scale) {
    constexpr int BK = 64, BQ = HD == 128 ? 32 : 64, LK = HD + 8, LQ = BQ + 8, NS = SP ? 2 : 1;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Kh = (bf16 *)smem, *Kl = Kh + BK * LK, *Vh = Kh + NS * BK * LK, *Vl = Vh + BK * LK;
    bf16 *Qh = Vh + NS * BK * LK, *Ql = Qh + BQ * LK, *Oh = Qh + NS * BQ * LK, *Ol = Oh + BQ * LK;
    bf16 *Qth = Oh + NS * BQ * LK, *Qtl = Qth + HD * LQ, *Oth = Qth + NS * HD * LQ, *Otl = Oth + HD * LQ;
    float *ls = (float *)(Oth + NS * HD * LQ), *ds_ = ls + BQ;
    int kb = blockIdx.x, b = blockIdx.y / KH, kh = blockIdx.y % KH, grp = H / KH;
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    int kbase = kb * BK, k0 = kbase + w * 16, kval = min(BK, T - kbase);
    const float *kp = k + ((size_t)b * T + kbase) * KS + (size_t)kh * HD, *vp = v + ((size_t)b * T + kbase) * KS + (size_t)kh * HD;
    load_rows<HD, SP, BK>(kp, KS, kval, Kh, Kl, LK);
    load_rows<HD, SP, BK>(vp, KS, kval, Vh, Vl, LK);
    float dkc[HD / 8][4], dvc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dkc[n][i] = dvc[n][i] = 0.f;
    for (int gi = 0; gi < grp; gi++) {
        int h = kh * grp + gi;
        const float *qp = q + (size_t)b * T * QS + (size_t)h * HD, *dp = dout + (size_t)b * T * QS + (size_t)h * HD;
        const float *lp = lse + ((size_t)b * H + h) * T, *Dp = Dd + ((size_t)b * H + h) * T;
        for (int qs = kbase; qs < T; qs += BQ) {
            int qv = min(BQ, T - qs);
            __syncthreads();
            load_rows<HD, SP, BQ>(qp + (size_t)qs * QS, QS, qv, Qh, Ql, LK);
            load_rows<HD, SP, BQ>(dp + (size_t)qs * QS, QS, qv, Oh, Ol, LK);
            load_cols<HD, SP, BQ>(qp + (size_t)qs * QS, QS, qv, Qth, Qtl, LQ);
            load_cols<HD, SP, BQ>(dp + (size_t)qs * QS, QS, qv, Oth, Otl, LQ);
            for (int i = threadIdx.x; i < BQ; i += blockDim.x) { ls[i] = i < qv ? lp[qs + i] : 0.f; ds_[i] = i < qv ? Dp[qs + i] : 0.f; }
            __syncthreads();
            if (qs + BQ - 1 < k0 || k0 >= T) continue;   /* every query of the tile is before every key of this warp */
            float st[BQ / 8][4], dpt[BQ / 8][4];
#pragma unroll
            for (int n = 0; n < BQ / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) st[n][i] = dpt[n][i] = 0.f;
#pragma unroll
            for (int kc = 0; kc < HD / 16; kc++) {
                uint32_t ah[4], alo[4], vh[4], vl[4];
                ld_a(Kh, LK, w * 16, kc * 16, ah); ld_a(Vh, LK, w * 16, kc * 16, vh);
                if (SP) { ld_a(Kl, LK, w * 16, kc * 16, alo); ld_a(Vl, LK, w * 16, kc * 16, vl); }
#pragma unroll
                for (int n = 0; n < BQ / 8; n++) {
                    uint32_t bh_[2], bl_[2];
                    ld_b(Qh, LK, n * 8, kc * 16, bh_);
                    if (SP) ld_b(Ql, LK, n * 8, kc * 16, bl_);
                    mma3<SP>(st[n], ah, alo, bh_, bl_);
                    ld_b(Oh, LK, n * 8, kc * 16, bh_);
                    if (SP) ld_b(Ol, LK, n * 8, kc * 16, bl_);
                    mma3<SP>(dpt[n], vh, vl, bh_, bl_);
                }
            }
#pragma unroll
            for (int n = 0; n < BQ / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int key = k0 + g + (i >> 1) * 8, qi = n * 8 + 2 * t + (i & 1), qq = qs + qi;
                    float p = (qq >= key && qq < T && key < T) ? exp2f(st[n][i] * sl2 - ls[qi]) : 0.f;
                    st[n][i] = p; dpt[n][i] = p * (dpt[n][i] - ds_[qi]);
                }
#pragma unroll
            for (int kc = 0; kc < BQ / 16; kc++) {
                uint32_t ph[4], pl[4], sh[4], sl[4];
                acc_to_a<SP>(st[2 * kc], st[2 * kc + 1], ph, pl);
                acc_to_a<SP>(dpt[2 * kc], dpt[2 * kc + 1], sh, sl);
#pragma unroll
                for (int n = 0; n < HD / 8; n++) {
                    uint32_t bh_[2], bl_[2];
                    ld_b(Oth, LQ, n * 8, kc * 16, bh_);
                    if (SP) ld_b(Otl, LQ, n * 8, kc * 16, bl_);
                    mma3<SP>(dvc[n], ph, pl, bh_, bl_);
                    ld_b(Qth, LQ, n * 8, kc * 16, bh_);
                    if (SP) ld_b(Qtl, LQ, n * 8, kc * 16, bl_);
                    mma3<SP>(dkc[n], sh, sl, bh_, bl_);
                }
            }
        }
    }
    float *dkp = dk + (size_t)b * T * KS + (size_t)kh * HD, *dvp = dv + (size_t)b * T * KS + (size_t)kh * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = k0 + g + j * 8;
        if (row >= T) continue;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            size_t o = (size_t)row * KS + n * 8 + 2 * t;
            dkp[o] = dkc[n][2 * j] * scale; dkp[o + 1] = dkc[n][2 * j + 1] * scale;
            dvp[o] = dvc[n][2 * j]; dvp[o + 1] = dvc[n][2 * j + 1];
        }
    }
}

/* Block (qb, b*H + h): dQ rows [64 qb, 64 qb + 64) of head h (written). Warp w owns 16 rows. */
template <int HD, bool SP>
__global__ void __launch_bounds__(128) k_fa_bwd_q(const float *q, const float *k, const float *v, const float *dout,
                                                  const float *lse, const float *Dd, float *dq,
                                                  int T, int H, int KH, float sl2, float scale) {
    constexpr int BQ = 64, BK = HD == 128 ? 32 : 64, LK = HD + 8, LB = BK + 8, NS = SP ? 2 : 1;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qh = (bf16 *)smem, *Ql = Qh + BQ * LK, *Oh = Qh + NS * BQ * LK, *Ol = Oh + BQ * LK;
    bf16 *Kh = Oh + NS * BQ * LK, *Kl = Kh + BK * LK, *Vh = Kh + NS * BK * LK, *Vl = Vh + BK * LK;
    bf16 *Kth = Vh + NS * BK * LK, *Ktl = Kth + HD * LB;
    int qb = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, kh = h / (H / KH);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    int qbase = qb * BQ, r0 = qbase + w * 16, qv = min(BQ, T - qbase);
    const float *kp = k + (size_t)b * T * KS + (size_t)kh * HD, *vp = v + (size_t)b * T * KS + (size_t)kh * HD;
    load_rows<HD, SP, BQ>(q + ((size_t)b * T + qbase) * QS + (size_t)h * HD, QS, qv, Qh, Ql, LK);
    load_rows<HD, SP, BQ>(dout + ((size_t)b * T + qbase) * QS + (size_t)h * HD, QS, qv, Oh, Ol, LK);
    float lr[2], dr[2];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        lr[j] = row < T ? lse[(size_t)bh * T + row] : 0.f; dr[j] = row < T ? Dd[(size_t)bh * T + row] : 0.f;
    }
    float dqc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) dqc[n][0] = dqc[n][1] = dqc[n][2] = dqc[n][3] = 0.f;
    int kend = min(T, qbase + BQ);
    for (int ks = 0; ks < kend; ks += BK) {
        int kv = min(BK, T - ks);
        __syncthreads();
        load_rows<HD, SP, BK>(kp + (size_t)ks * KS, KS, kv, Kh, Kl, LK);
        load_rows<HD, SP, BK>(vp + (size_t)ks * KS, KS, kv, Vh, Vl, LK);
        load_cols<HD, SP, BK>(kp + (size_t)ks * KS, KS, kv, Kth, Ktl, LB);
        __syncthreads();
        if (ks > r0 + 15) continue;
        float s[BK / 8][4], dp[BK / 8][4];
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) s[n][i] = dp[n][i] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++) {
            uint32_t ah[4], alo[4], oh[4], ol[4];
            ld_a(Qh, LK, w * 16, kc * 16, ah); ld_a(Oh, LK, w * 16, kc * 16, oh);
            if (SP) { ld_a(Ql, LK, w * 16, kc * 16, alo); ld_a(Ol, LK, w * 16, kc * 16, ol); }
#pragma unroll
            for (int n = 0; n < BK / 8; n++) {
                uint32_t bh_[2], bl_[2];
                ld_b(Kh, LK, n * 8, kc * 16, bh_);
                if (SP) ld_b(Kl, LK, n * 8, kc * 16, bl_);
                mma3<SP>(s[n], ah, alo, bh_, bl_);
                ld_b(Vh, LK, n * 8, kc * 16, bh_);
                if (SP) ld_b(Vl, LK, n * 8, kc * 16, bl_);
                mma3<SP>(dp[n], oh, ol, bh_, bl_);
            }
        }
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = ks + n * 8 + 2 * t + (i & 1), row = r0 + g + (i >> 1) * 8;
                float p = (key <= row && key < T) ? exp2f(s[n][i] * sl2 - lr[i >> 1]) : 0.f;
                dp[n][i] = p * (dp[n][i] - dr[i >> 1]);
            }
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t ah[4], alo[4];
            acc_to_a<SP>(dp[2 * kc], dp[2 * kc + 1], ah, alo);
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                uint32_t bh_[2], bl_[2];
                ld_b(Kth, LB, n * 8, kc * 16, bh_);
                if (SP) ld_b(Ktl, LB, n * 8, kc * 16, bl_);
                mma3<SP>(dqc[n], ah, alo, bh_, bl_);
            }
        }
    }
    float *dqp = dq + (size_t)b * T * QS + (size_t)h * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        if (row >= T) continue;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            dqp[(size_t)row * QS + n * 8 + 2 * t] = dqc[n][2 * j] * scale;
            dqp[(size_t)row * QS + n * 8 + 2 * t + 1] = dqc[n][2 * j + 1] * scale;
        }
    }
}

/* ---------------------------------------------------------------- launchers */
template <int HD, bool SP> static size_t fwd_smem() { return (size_t)(SP ? 2 : 1) * (64 * (HD + 8) + HD * 72) * sizeof(bf16); }
template <int HD, bool SP> static size_t kv_smem() {
    constexpr int BQ = HD == 128 ? 32 : 64;
    return (size_t)(SP ? 2 : 1) * (2 * 64 * (HD + 8) + 2 * BQ * (HD + 8) + 2 * HD * (BQ + 8)) * sizeof(bf16) + 2 * BQ * sizeof(float);
}
template <int HD, bool SP> static size_t q_smem() {
    constexpr int BK = HD == 128 ? 32 : 64;
    return (size_t)(SP ? 2 : 1) * (2 * 64 * (HD + 8) + 2 * BK * (HD + 8) + HD * (BK + 8)) * sizeof(bf16);
}

template <int HD, bool SP>
static cudaError_t fwd_t(const bn_fa_args *a, cudaStream_t st) {
    size_t sm = fwd_smem<HD, SP>();
    cudaError_t e = cudaFuncSetAttribute(k_fa_fwd<HD, SP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm);
    if (e != cudaSuccess) return e;
    float sl2 = 1.4426950408889634f / sqrtf((float)HD);
    k_fa_fwd<HD, SP><<<dim3((a->T + 63) / 64, a->B * a->H), 128, sm, st>>>(a->q, a->k, a->v, a->o, a->lse, a->T, a->H, a->KH, sl2);
    return cudaGetLastError();
}
template <int HD, bool SP>
static cudaError_t bwd_t(const bn_fa_args *a, cudaStream_t st) {
    size_t s1 = kv_smem<HD, SP>(), s2 = q_smem<HD, SP>();
    cudaError_t e = cudaFuncSetAttribute(k_fa_bwd_kv<HD, SP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s1);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(k_fa_bwd_q<HD, SP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s2);
    if (e != cudaSuccess) return e;
    float scale = 1.0f / sqrtf((float)HD), sl2 = 1.4426950408889634f * scale;
    size_t nw = (size_t)a->B * a->T * a->H;
    k_fa_dot<<<(unsigned)((nw * 32 + 255) / 256), 256, 0, st>>>(a->o, a->dout, a->D, a->B, a->T, a->H, HD);
    k_fa_bwd_kv<HD, SP><<<dim3((a->T + 63) / 64, a->B * a->KH), 128, s1, st>>>(a->q, a->k, a->v, a->dout, a->lse, a->D, a->dk, a->dv,
                                                                               a->T, a->H, a->KH, sl2, scale);
    k_fa_bwd_q<HD, SP><<<dim3((a->T + 63) / 64, a->B * a->H), 128, s2, st>>>(a->q, a->k, a->v, a->dout, a->lse, a->D, a->dq,
                                                                            a->T, a->H, a->KH, sl2, scale);
    return cudaGetLastError();
}

int bn_fa_supported(int hd) { return hd == 32 || hd == 64 || hd == 128; }

#define FA_DISPATCH(fn, a, st, split)                                                              \
    switch ((a)->hd) {                                                                             \
    case 32: return (split) ? fn<32, true>(a, st) : fn<32, false>(a, st);                          \
    case 64: return (split) ? fn<64, true>(a, st) : fn<64, false>(a, st);                          \
    case 128: return (split) ? fn<128, true>(a, st) : fn<128, false>(a, st);                       \
    default: return cudaErrorInvalidValue;                                                         \
    }
cudaError_t bn_fa_forward(const bn_fa_args *a, int split, cudaStream_t st) { FA_DISPATCH(fwd_t, a, st, split) }
cudaError_t bn_fa_backward(const bn_fa_args *a, int split, cudaStream_t st) { FA_DISPATCH(bwd_t, a, st, split) }

/* ================================================================ bf16-input flash attention
 * The fast path (bn_fb_*; train_attn.h): the same tiling and fixed-order sums as the kernels
 * above with SP = 0 (one bf16 term, fp32 accumulate), but the operands arrive converted to bf16
 * once per op (bn_fb_convert, and k_fb_dot for dO), tiles move as 16-byte vectors, and the
 * transposed operands (V in P V, dO and Q in the dV / dK products, K in dS K) are read from
 * the row-major tiles with ldmatrix.trans instead of being stored twice. bn_fb_args.opt picks
 * each kernel's O variant: the longest blocks launched first (no tail of long causal blocks),
 * the streamed tiles double-buffered through cp.async, every fragment loaded by ldmatrix; the
 * same values reach the same mma sequence, so the same bits (test_cuda_attn). */

/* B fragment (k0.., n0..) and (k0.., n0 + 8..) of B[k][n] = X[k][n], X a row-major bf16 tile
 * x[][ld] (ld * 2 bytes a multiple of 16): ldmatrix.x4.trans, lanes 0-15 address rows k0..k0+15
 * at column n0, lanes 16-31 the same rows at n0 + 8. */
__device__ __forceinline__ void ld_bt2(const bf16 *x, int ld, int k0, int n0, uint32_t b0[2], uint32_t b1[2]) {
    int l = threadIdx.x & 31;
    const bf16 *p = x + (size_t)(k0 + (l & 15)) * ld + n0 + (l >> 4) * 8;
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b0[0]), "=r"(b0[1]), "=r"(b1[0]), "=r"(b1[1]) : "r"(a));
}
/* ---- the opt kernels' loads (knob fao, bn_fb_args.opt): the same values into the same
 * registers / shared memory as ld_a, ld_b and fb_rows<.., false>, so the same mma sequence and bits. */
/* ld_a's fragment by ldmatrix.x4 (ld * 2 bytes a multiple of 16): lanes 0-15 address rows
 * r0..r0+15 at column k0, lanes 16-31 the same rows at k0 + 8 (matrices a0..a3 in order). */
__device__ __forceinline__ void ldm_a(const bf16 *s, int ld, int r0, int k0, uint32_t a[4]) {
    int l = threadIdx.x & 31;
    uint32_t ad = (uint32_t)__cvta_generic_to_shared(s + (size_t)(r0 + (l & 15)) * ld + k0 + (l >> 4) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(ad));
}
/* ld_b's fragments at (k0.., n0..) -> b0 and (k0.., n0 + 8..) -> b1 by ldmatrix.x4: matrices
 * X rows n0.. at column k0, n0.. at k0 + 8, n0 + 8.. at k0, n0 + 8.. at k0 + 8. */
__device__ __forceinline__ void ldm_b2(const bf16 *x, int ld, int n0, int k0, uint32_t b0[2], uint32_t b1[2]) {
    int l = threadIdx.x & 31;
    uint32_t ad = (uint32_t)__cvta_generic_to_shared(x + (size_t)(n0 + (l & 7) + ((l >> 4) << 3)) * ld + k0 + ((l >> 3) & 1) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b0[0]), "=r"(b0[1]), "=r"(b1[0]), "=r"(b1[1]) : "r"(ad));
}
template <bool O> __device__ __forceinline__ void fb_lda(const bf16 *s, int ld, int r0, int k0, uint32_t a[4]) {
    if (O) ldm_a(s, ld, r0, k0, a); else ld_a(s, ld, r0, k0, a);
}
template <bool O> __device__ __forceinline__ void fb_ldb2(const bf16 *x, int ld, int n0, int k0, uint32_t b0[2], uint32_t b1[2]) {
    if (O) ldm_b2(x, ld, n0, k0, b0, b1); else { ld_b(x, ld, n0, k0, b0); ld_b(x, ld, n0 + 8, k0, b1); }
}
/* cp.async of `bytes` (<= n; the rest of the n zero-filled) from global src to shared dst. */
__device__ __forceinline__ void cp16(void *dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"((uint32_t)__cvta_generic_to_shared(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp4(void *dst, const void *src, int bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"((uint32_t)__cvta_generic_to_shared(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/* This thread's copies of every commit group but the newest are done. */
__device__ __forceinline__ void cp_wait1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
/* dst[r][c] (ld) = g[r * gs + c] for r < R, c < HD (bf16, 8 per 16-byte move), 0 for r >= valid:
 * synchronous, or (O, valid >= 1) by cp.async, done at a cp_wait past its group. */
template <int HD, int R, bool O>
__device__ __forceinline__ void fb_rows(const bf16 *g, size_t gs, int valid, bf16 *dst, int ld) {
    constexpr int V = HD / 8;
#pragma unroll
    for (int it = 0; it < R * V / 128; it++) {
        int i = it * 128 + threadIdx.x, r = i / V, c = (i % V) * 8;
        if (O) cp16(dst + r * ld + c, g + (size_t)(r < valid ? r : 0) * gs + c, r < valid ? 16 : 0);
        else {
            uint4 x = make_uint4(0, 0, 0, 0);
            if (r < valid) x = *(const uint4 *)(g + (size_t)r * gs + c);
            *(uint4 *)(dst + r * ld + c) = x;
        }
    }
}
/* The key / value tile it of nt (keys it * BK..) in shared memory for the loop of k_fb_fwd and
 * k_fb_bwd_q: K at the returned pointer, V BK * LK after it. Synchronous (A) into Kb, or (O)
 * double-buffered, Kb holding two stages of K then V: tile it + 1 is issued before tile it is
 * waited for (tile 0 by fb_kv_first before the loop). Every thread calls it (two barriers). */
template <int HD, int BK, bool O>
__device__ __forceinline__ void fb_kv_first(const bf16 *kp, const bf16 *vp, size_t KS, int T, bf16 *Kb, int LK) {
    if (!O) return;
    fb_rows<HD, BK, O>(kp, KS, min(BK, T), Kb, LK);
    fb_rows<HD, BK, O>(vp, KS, min(BK, T), Kb + BK * LK, LK);
    cp_commit();
}
template <int HD, int BK, bool O>
__device__ __forceinline__ bf16 *fb_kv_tile(const bf16 *kp, const bf16 *vp, size_t KS, int T, bf16 *Kb, int LK, int it, int nt) {
    int k0 = it * BK;
    bf16 *Ks = Kb + (O ? (it & 1) * 2 * BK * LK : 0), *Vs = Ks + BK * LK;
    __syncthreads();   /* every warp is done with the stage the next loads overwrite */
    if (O) {
        if (it + 1 < nt) {
            bf16 *Kn = Kb + ((it + 1) & 1) * 2 * BK * LK;
            fb_rows<HD, BK, O>(kp + (size_t)(k0 + BK) * KS, KS, min(BK, T - k0 - BK), Kn, LK);
            fb_rows<HD, BK, O>(vp + (size_t)(k0 + BK) * KS, KS, min(BK, T - k0 - BK), Kn + BK * LK, LK);
        }
        cp_commit(); cp_wait1();
    } else {
        fb_rows<HD, BK, O>(kp + (size_t)k0 * KS, KS, min(BK, T - k0), Ks, LK);
        fb_rows<HD, BK, O>(vp + (size_t)k0 * KS, KS, min(BK, T - k0), Vs, LK);
    }
    __syncthreads();
    return Ks;
}
/* out[i] = bf16(in[i]), n4 groups of 4. */
__global__ void k_fb_conv(const float4 *in, uint2 *out, size_t n4) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = in[i];
        out[i] = make_uint2(pack(__float2bfloat16(v.x), __float2bfloat16(v.y)), pack(__float2bfloat16(v.z), __float2bfloat16(v.w)));
    }
}
cudaError_t bn_fb_convert(const float *in, bf16 *out, size_t n, cudaStream_t st) {
    size_t n4 = n / 4, nb = (n4 + 255) / 256;
    if (n % 4) return cudaErrorInvalidValue;
    k_fb_conv<<<(unsigned)(nb > 8192 ? 8192 : nb ? nb : 1), 256, 0, st>>>((const float4 *)in, (uint2 *)out, n4);
    return cudaGetLastError();
}

/* out = bf16(rope(in)) as bn_fb_convert_rope: item i = (row r, head h, group of 4 columns j
 * of the first half); x1 = in[j..j+3], x2 = in[j+h2..], the rotation as k_rope (inv = 0). */
__global__ void k_fb_conv_rope(const float *in, bf16 *out, const float *cs, const float *sn, size_t n, int nh, int hd, int T) {
    int h2 = hd / 2, g4 = h2 / 4;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / ((size_t)nh * g4); int rem = (int)(i % ((size_t)nh * g4)), h = rem / g4, j = (rem % g4) * 4;
        size_t base = (r * nh + h) * hd + j; int tj = (int)(r % T) * h2 + j;
        float4 a = *(const float4 *)(in + base), b = *(const float4 *)(in + base + h2);
        float4 c = *(const float4 *)(cs + tj), s = *(const float4 *)(sn + tj);
        float x1[4] = {a.x, a.y, a.z, a.w}, x2[4] = {b.x, b.y, b.z, b.w}, co[4] = {c.x, c.y, c.z, c.w}, si[4] = {s.x, s.y, s.z, s.w};
        bf16 y1[4], y2[4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            y1[e] = __float2bfloat16(__fsub_rn(__fmul_rn(x1[e], co[e]), __fmul_rn(x2[e], si[e])));
            y2[e] = __float2bfloat16(__fadd_rn(__fmul_rn(x2[e], co[e]), __fmul_rn(x1[e], si[e])));
        }
        *(uint2 *)(out + base) = make_uint2(pack(y1[0], y1[1]), pack(y1[2], y1[3]));
        *(uint2 *)(out + base + h2) = make_uint2(pack(y2[0], y2[1]), pack(y2[2], y2[3]));
    }
}
cudaError_t bn_fb_convert_rope(const float *in, bf16 *out, size_t rows, int nh, int hd, int T, const float *cs, const float *sn, cudaStream_t st) {
    if (hd % 8 || T < 1) return cudaErrorInvalidValue;
    size_t n = rows * nh * (hd / 8), nb = (n + 255) / 256;
    k_fb_conv_rope<<<(unsigned)(nb > 8192 ? 8192 : nb ? nb : 1), 256, 0, st>>>(in, out, cs, sn, n, nh, hd, T);
    return cudaGetLastError();
}
/* Row `pos` of a gradient accumulator c[HD/8][4] (this thread's columns n*8 + 2t, +1; half j of
 * its two rows) times scale, stored at p; with cs (RoPE tables [T][HD/2]) through the inverse
 * RoPE at position pos first, with k_rope's inv = 1 expressions: the same bits as storing and
 * then running the rope op (column c pairs with c + HD/2: tile n with n + HD/16, same thread). */
template <int HD>
__device__ __forceinline__ void store_grad_row(float *p, const float (*c)[4], int j, int t, float scale, const float *cs, const float *sn, int pos) {
    if (!cs) {
#pragma unroll
        for (int n = 0; n < HD / 8; n++) *(float2 *)(p + n * 8 + 2 * t) = make_float2(c[n][2 * j] * scale, c[n][2 * j + 1] * scale);
        return;
    }
    constexpr int H2 = HD / 2;
#pragma unroll
    for (int n = 0; n < HD / 16; n++) {
        int col = n * 8 + 2 * t;
        float y1[2], y2[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float x1 = __fmul_rn(c[n][2 * j + e], scale), x2 = __fmul_rn(c[n + HD / 16][2 * j + e], scale);
            float co = cs[pos * H2 + col + e], si = -sn[pos * H2 + col + e];
            y1[e] = __fsub_rn(__fmul_rn(x1, co), __fmul_rn(x2, si));
            y2[e] = __fadd_rn(__fmul_rn(x2, co), __fmul_rn(x1, si));
        }
        *(float2 *)(p + col) = make_float2(y1[0], y1[1]);
        *(float2 *)(p + col + H2) = make_float2(y2[0], y2[1]);
    }
}

/* The forward of k_fa_fwd<HD, false> on bf16 q, k, v. O (knob fao): blocks (b*H + h, nqb - 1 -
 * qb), the longest (last) query blocks first; K / V tiles double-buffered by cp.async (tile i + 1
 * loads while tile i computes); fragments by ldmatrix. The same mma sequence either way. */
template <int HD, bool O>
__global__ void __launch_bounds__(128) k_fb_fwd(const bf16 *q, const bf16 *k, const bf16 *v, float *o, float *lse,
                                                int T, int H, int KH, float sl2) {
    constexpr int BK = 64, LK = HD + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Kb = (bf16 *)smem;   /* stage s (O: 2 stages): K tile at Kb + 2 s BK LK, V tile after it */
    int qb = O ? (int)(gridDim.y - 1 - blockIdx.y) : blockIdx.x, bh = O ? blockIdx.x : blockIdx.y, b = bh / H, h = bh % H, kh = h / (H / KH);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    const bf16 *qp = q + (size_t)b * T * QS + (size_t)h * HD, *kp = k + (size_t)b * T * KS + (size_t)kh * HD, *vp = v + (size_t)b * T * KS + (size_t)kh * HD;
    int r0 = qb * 64 + w * 16;
    uint32_t qf[HD / 16][4];
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int row = r0 + g + (i & 1) * 8, col = kc * 16 + 2 * t + (i >> 1) * 8;
            qf[kc][i] = row < T ? *(const uint32_t *)(qp + (size_t)row * QS + col) : 0u;
        }
    float oc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.f;
    float mr[2] = {-INFINITY, -INFINITY}, lr[2] = {0.f, 0.f};
    int kend = min(T, (qb + 1) * 64), nt = (kend + BK - 1) / BK;
    fb_kv_first<HD, BK, O>(kp, vp, KS, T, Kb, LK);
    for (int it = 0; it < nt; it++) {
        int k0 = it * BK;
        bf16 *Ks = fb_kv_tile<HD, BK, O>(kp, vp, KS, T, Kb, LK, it, nt), *Vs = Ks + BK * LK;
        if (k0 > r0 + 15) continue;
        float s[BK / 8][4];
#pragma unroll
        for (int n = 0; n < BK / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++)
#pragma unroll
            for (int n = 0; n < BK / 8; n += 2) {
                uint32_t b0[2], b1[2];
                fb_ldb2<O>(Ks, LK, n * 8, kc * 16, b0, b1);
                mma(s[n], qf[kc], b0); mma(s[n + 1], qf[kc], b1);
            }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = k0 + n * 8 + 2 * t + (i & 1), row = r0 + g + (i >> 1) * 8;
                float x = (key > row || key >= T) ? -INFINITY : s[n][i] * sl2;
                s[n][i] = x; mx[i >> 1] = fmaxf(mx[i >> 1], x);
            }
        float al[2];
#pragma unroll
        for (int j = 0; j < 2; j++) {
            mx[j] = fmaxf(mx[j], __shfl_xor_sync(0xffffffffu, mx[j], 1));
            mx[j] = fmaxf(mx[j], __shfl_xor_sync(0xffffffffu, mx[j], 2));
            float mn = fmaxf(mr[j], mx[j]);
            al[j] = exp2f(mr[j] - mn);
            mr[j] = mn; lr[j] *= al[j];
        }
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) { float p = exp2f(s[n][i] - mr[i >> 1]); s[n][i] = p; lr[i >> 1] += p; }
#pragma unroll
        for (int n = 0; n < HD / 8; n++) { oc[n][0] *= al[0]; oc[n][1] *= al[0]; oc[n][2] *= al[1]; oc[n][3] *= al[1]; }
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t ah[4], alo[4];
            acc_to_a<false>(s[2 * kc], s[2 * kc + 1], ah, alo);
#pragma unroll
            for (int n = 0; n < HD / 8; n += 2) {
                uint32_t b0[2], b1[2];
                ld_bt2(Vs, LK, kc * 16, n * 8, b0, b1);
                mma(oc[n], ah, b0); mma(oc[n + 1], ah, b1);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        lr[j] += __shfl_xor_sync(0xffffffffu, lr[j], 1);
        lr[j] += __shfl_xor_sync(0xffffffffu, lr[j], 2);
    }
    float *op = o + (size_t)b * T * QS + (size_t)h * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        if (row >= T) continue;
        float inv = 1.0f / lr[j];
#pragma unroll
        for (int n = 0; n < HD / 8; n++)
            *(float2 *)(op + (size_t)row * QS + n * 8 + 2 * t) = make_float2(oc[n][2 * j] * inv, oc[n][2 * j + 1] * inv);
        if (t == 0) lse[(size_t)bh * T + row] = mr[j] + log2f(lr[j]);
    }
}

/* D as k_fa_dot, and dob = bf16(dout) on the way. */
__global__ void k_fb_dot(const float *o, const float *dout, float *D, bf16 *dob, int B, int T, int H, int hd) {
    size_t wi = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, n = (size_t)B * T * H;
    if (wi >= n) return;
    int l = threadIdx.x & 31, h = (int)(wi % H);
    size_t r = wi / H, b = r / T, t = r % T, base = r * H * hd + (size_t)h * hd;
    float s = 0;
    for (int i = 2 * l; i < hd; i += 64) {
        float2 a = *(const float2 *)(o + base + i), d = *(const float2 *)(dout + base + i);
        s += a.x * d.x + a.y * d.y;
        *(uint32_t *)(dob + base + i) = pack(__float2bfloat16(d.x), __float2bfloat16(d.y));
    }
    for (int x = 16; x; x >>= 1) s += __shfl_xor_sync(0xffffffffu, s, x);
    if (l == 0) D[(b * H + h) * T + t] = s;
}

/* k_fa_bwd_kv<HD, false> on bf16 q, k, v, dO. O (knob fao): blocks (b*KH + kh, kb), the
 * longest (first) key blocks first; the (head, query tile) sequence's Q / dO / lse / D tiles
 * double-buffered by cp.async; fragments by ldmatrix. The same mma sequence either way. */
template <int HD, bool O>
__global__ void __launch_bounds__(128) k_fb_bwd_kv(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dout,
                                                   const float *lse, const float *Dd, float *dk, float *dv,
                                                   int T, int H, int KH, float sl2, float scale, const float *cs, const float *sn) {
    constexpr int BK = 64, BQ = HD == 128 ? 32 : 64, LK = HD + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int NS = O ? 2 : 1;   /* stages */
    bf16 *Ks = (bf16 *)smem, *Vs = Ks + BK * LK, *Qb = Vs + BK * LK;   /* stage s: Q tile at Qb + 2 s BQ LK, dO after it */
    float *Fb = (float *)(Qb + NS * 2 * BQ * LK);                     /* stage s: lse at Fb + 2 s BQ, D after it */
    int kb = O ? blockIdx.y : blockIdx.x, bk = O ? blockIdx.x : blockIdx.y, b = bk / KH, kh = bk % KH, grp = H / KH;
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    int kbase = kb * BK, k0 = kbase + w * 16, kval = min(BK, T - kbase);
    fb_rows<HD, BK, false>(k + ((size_t)b * T + kbase) * KS + (size_t)kh * HD, KS, kval, Ks, LK);
    fb_rows<HD, BK, false>(v + ((size_t)b * T + kbase) * KS + (size_t)kh * HD, KS, kval, Vs, LK);
    float dkc[HD / 8][4], dvc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dkc[n][i] = dvc[n][i] = 0.f;
    int nq = (T - kbase + BQ - 1) / BQ, ntile = grp * nq;   /* tile j: head kh grp + j / nq, queries from kbase + (j % nq) BQ */
    auto load = [&](int j, int sg) {
        int h = kh * grp + j / nq, qs = kbase + (j % nq) * BQ, qv = min(BQ, T - qs);
        const bf16 *qp = q + ((size_t)b * T + qs) * QS + (size_t)h * HD, *dp = dout + ((size_t)b * T + qs) * QS + (size_t)h * HD;
        const float *lp = lse + ((size_t)b * H + h) * T + qs, *Dp = Dd + ((size_t)b * H + h) * T + qs;
        bf16 *Qs = Qb + sg * 2 * BQ * LK;
        float *ls = Fb + sg * 2 * BQ;
        fb_rows<HD, BQ, O>(qp, QS, qv, Qs, LK);
        fb_rows<HD, BQ, O>(dp, QS, qv, Qs + BQ * LK, LK);
        for (int i = threadIdx.x; i < BQ; i += blockDim.x) {
            if (O) { cp4(ls + i, lp + (i < qv ? i : 0), i < qv ? 4 : 0); cp4(ls + BQ + i, Dp + (i < qv ? i : 0), i < qv ? 4 : 0); }
            else { ls[i] = i < qv ? lp[i] : 0.f; ls[BQ + i] = i < qv ? Dp[i] : 0.f; }
        }
    };
    if (O) { load(0, 0); cp_commit(); }
    for (int j = 0; j < ntile; j++) {
        int qs = kbase + (j % nq) * BQ, sg = O ? (j & 1) : 0;
        __syncthreads();   /* every warp is done with the stage the next loads overwrite */
        if (O) {
            if (j + 1 < ntile) load(j + 1, (j + 1) & 1);
            cp_commit(); cp_wait1();
        } else load(j, 0);
        __syncthreads();
        {
            const bf16 *Qs = Qb + sg * 2 * BQ * LK, *Os = Qs + BQ * LK;
            const float *ls = Fb + sg * 2 * BQ, *ds_ = ls + BQ;
            if (qs + BQ - 1 < k0 || k0 >= T) continue;
            float st[BQ / 8][4], dpt[BQ / 8][4];
#pragma unroll
            for (int n = 0; n < BQ / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) st[n][i] = dpt[n][i] = 0.f;
#pragma unroll
            for (int kc = 0; kc < HD / 16; kc++) {
                uint32_t ka[4], va[4];
                fb_lda<O>(Ks, LK, w * 16, kc * 16, ka); fb_lda<O>(Vs, LK, w * 16, kc * 16, va);
#pragma unroll
                for (int n = 0; n < BQ / 8; n += 2) {
                    uint32_t b0[2], b1[2];
                    fb_ldb2<O>(Qs, LK, n * 8, kc * 16, b0, b1);
                    mma(st[n], ka, b0); mma(st[n + 1], ka, b1);
                    fb_ldb2<O>(Os, LK, n * 8, kc * 16, b0, b1);
                    mma(dpt[n], va, b0); mma(dpt[n + 1], va, b1);
                }
            }
#pragma unroll
            for (int n = 0; n < BQ / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int key = k0 + g + (i >> 1) * 8, qi = n * 8 + 2 * t + (i & 1), qq = qs + qi;
                    float p = (qq >= key && qq < T && key < T) ? exp2f(st[n][i] * sl2 - ls[qi]) : 0.f;
                    st[n][i] = p; dpt[n][i] = p * (dpt[n][i] - ds_[qi]);
                }
#pragma unroll
            for (int kc = 0; kc < BQ / 16; kc++) {
                uint32_t ph[4], sh[4], unused[4];
                acc_to_a<false>(st[2 * kc], st[2 * kc + 1], ph, unused);
                acc_to_a<false>(dpt[2 * kc], dpt[2 * kc + 1], sh, unused);
#pragma unroll
                for (int n = 0; n < HD / 8; n += 2) {
                    uint32_t b0[2], b1[2];
                    ld_bt2(Os, LK, kc * 16, n * 8, b0, b1);
                    mma(dvc[n], ph, b0); mma(dvc[n + 1], ph, b1);
                    ld_bt2(Qs, LK, kc * 16, n * 8, b0, b1);
                    mma(dkc[n], sh, b0); mma(dkc[n + 1], sh, b1);
                }
            }
        }
    }
    float *dkp = dk + (size_t)b * T * KS + (size_t)kh * HD, *dvp = dv + (size_t)b * T * KS + (size_t)kh * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = k0 + g + j * 8;
        if (row >= T) continue;
        store_grad_row<HD>(dkp + (size_t)row * KS, dkc, j, t, scale, cs, sn, row);
#pragma unroll
        for (int n = 0; n < HD / 8; n++)
            *(float2 *)(dvp + (size_t)row * KS + n * 8 + 2 * t) = make_float2(dvc[n][2 * j], dvc[n][2 * j + 1]);
    }
}

/* k_fa_bwd_q<HD, false> on bf16 q, k, v, dO. O (knob fao): blocks (b*H + h, nqb - 1 - qb), the
 * longest (last) query blocks first; K / V tiles double-buffered by cp.async; fragments by
 * ldmatrix. The same mma sequence either way. */
template <int HD, bool O>
__global__ void __launch_bounds__(128, O ? 3 : 0) k_fb_bwd_q(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dout,
                                                  const float *lse, const float *Dd, float *dq,
                                                  int T, int H, int KH, float sl2, float scale, const float *cs, const float *sn) {
    constexpr int BQ = 64, BK = HD == 128 ? 32 : 64, LK = HD + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *Os = Qs + BQ * LK, *Kb = Os + BQ * LK;   /* stage s (O: 2): K tile at Kb + 2 s BK LK, V after it */
    int qb = O ? (int)(gridDim.y - 1 - blockIdx.y) : blockIdx.x, bh = O ? blockIdx.x : blockIdx.y, b = bh / H, h = bh % H, kh = h / (H / KH);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    size_t QS = (size_t)H * HD, KS = (size_t)KH * HD;
    int qbase = qb * BQ, r0 = qbase + w * 16, qv = min(BQ, T - qbase);
    const bf16 *kp = k + (size_t)b * T * KS + (size_t)kh * HD, *vp = v + (size_t)b * T * KS + (size_t)kh * HD;
    fb_rows<HD, BQ, false>(q + ((size_t)b * T + qbase) * QS + (size_t)h * HD, QS, qv, Qs, LK);
    fb_rows<HD, BQ, false>(dout + ((size_t)b * T + qbase) * QS + (size_t)h * HD, QS, qv, Os, LK);
    float lr[2], dr[2];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        lr[j] = row < T ? lse[(size_t)bh * T + row] : 0.f; dr[j] = row < T ? Dd[(size_t)bh * T + row] : 0.f;
    }
    float dqc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) dqc[n][0] = dqc[n][1] = dqc[n][2] = dqc[n][3] = 0.f;
    int kend = min(T, qbase + BQ), nt = (kend + BK - 1) / BK;
    fb_kv_first<HD, BK, O>(kp, vp, KS, T, Kb, LK);
    for (int it = 0; it < nt; it++) {
        int ks = it * BK;
        bf16 *Ks = fb_kv_tile<HD, BK, O>(kp, vp, KS, T, Kb, LK, it, nt), *Vs = Ks + BK * LK;
        if (ks > r0 + 15) continue;
        float s[BK / 8][4], dp[BK / 8][4];
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) s[n][i] = dp[n][i] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++) {
            uint32_t qa[4], oa[4];
            fb_lda<O>(Qs, LK, w * 16, kc * 16, qa); fb_lda<O>(Os, LK, w * 16, kc * 16, oa);
#pragma unroll
            for (int n = 0; n < BK / 8; n += 2) {
                uint32_t b0[2], b1[2];
                fb_ldb2<O>(Ks, LK, n * 8, kc * 16, b0, b1);
                mma(s[n], qa, b0); mma(s[n + 1], qa, b1);
                fb_ldb2<O>(Vs, LK, n * 8, kc * 16, b0, b1);
                mma(dp[n], oa, b0); mma(dp[n + 1], oa, b1);
            }
        }
#pragma unroll
        for (int n = 0; n < BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = ks + n * 8 + 2 * t + (i & 1), row = r0 + g + (i >> 1) * 8;
                float p = (key <= row && key < T) ? exp2f(s[n][i] * sl2 - lr[i >> 1]) : 0.f;
                dp[n][i] = p * (dp[n][i] - dr[i >> 1]);
            }
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t ah[4], unused[4];
            acc_to_a<false>(dp[2 * kc], dp[2 * kc + 1], ah, unused);
#pragma unroll
            for (int n = 0; n < HD / 8; n += 2) {
                uint32_t b0[2], b1[2];
                ld_bt2(Ks, LK, kc * 16, n * 8, b0, b1);
                mma(dqc[n], ah, b0); mma(dqc[n + 1], ah, b1);
            }
        }
    }
    float *dqp = dq + (size_t)b * T * QS + (size_t)h * HD;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        int row = r0 + g + j * 8;
        if (row >= T) continue;
        store_grad_row<HD>(dqp + (size_t)row * QS, dqc, j, t, scale, cs, sn, row);
    }
}

template <int HD, bool O>
static cudaError_t fb_fwd_t(const bn_fb_args *a, cudaStream_t st) {
    size_t sm = (size_t)(O ? 2 : 1) * 2 * 64 * (HD + 8) * sizeof(bf16);
    cudaError_t e = cudaFuncSetAttribute(k_fb_fwd<HD, O>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm);
    if (e != cudaSuccess) return e;
    float sl2 = 1.4426950408889634f / sqrtf((float)HD);
    unsigned nqb = (unsigned)((a->T + 63) / 64), nbh = (unsigned)(a->B * a->H);
    k_fb_fwd<HD, O><<<O ? dim3(nbh, nqb) : dim3(nqb, nbh), 128, sm, st>>>(a->qb, a->kb, a->vb, a->o, a->lse, a->T, a->H, a->KH, sl2);
    return cudaGetLastError();
}
template <int HD, bool O>
static cudaError_t fb_bwd_t(const bn_fb_args *a, cudaStream_t st) {
    constexpr int BS = HD == 128 ? 32 : 64, NS = O ? 2 : 1;
    size_t s1 = (size_t)(2 * 64 + NS * 2 * BS) * (HD + 8) * sizeof(bf16) + NS * 2 * BS * sizeof(float), s2 = (size_t)(2 * 64 + NS * 2 * BS) * (HD + 8) * sizeof(bf16);
    cudaError_t e = cudaFuncSetAttribute(k_fb_bwd_kv<HD, O>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s1);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(k_fb_bwd_q<HD, O>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s2);
    if (e != cudaSuccess) return e;
    float scale = 1.0f / sqrtf((float)HD), sl2 = 1.4426950408889634f * scale;
    size_t nw = (size_t)a->B * a->T * a->H;
    unsigned nb = (unsigned)((a->T + 63) / 64), nbk = (unsigned)(a->B * a->KH), nbh = (unsigned)(a->B * a->H);
    k_fb_dot<<<(unsigned)((nw * 32 + 255) / 256), 256, 0, st>>>(a->o, a->dout, a->D, a->dob, a->B, a->T, a->H, HD);
    k_fb_bwd_kv<HD, O><<<O ? dim3(nbk, nb) : dim3(nb, nbk), 128, s1, st>>>(a->qb, a->kb, a->vb, a->dob, a->lse, a->D, a->dk, a->dv,
                                                                          a->T, a->H, a->KH, sl2, scale, a->rcos, a->rsin);
    k_fb_bwd_q<HD, O><<<O ? dim3(nbh, nb) : dim3(nb, nbh), 128, s2, st>>>(a->qb, a->kb, a->vb, a->dob, a->lse, a->D, a->dq,
                                                                         a->T, a->H, a->KH, sl2, scale, a->rcos, a->rsin);
    return cudaGetLastError();
}
template <int HD> static cudaError_t fb_fwd_o(const bn_fb_args *a, cudaStream_t st) { return a->opt ? fb_fwd_t<HD, true>(a, st) : fb_fwd_t<HD, false>(a, st); }
template <int HD> static cudaError_t fb_bwd_o(const bn_fb_args *a, cudaStream_t st) { return a->opt ? fb_bwd_t<HD, true>(a, st) : fb_bwd_t<HD, false>(a, st); }
#define FB_DISPATCH(fn, a, st)                                                                     \
    switch ((a)->hd) {                                                                             \
    case 32: return fn<32>(a, st);                                                                 \
    case 64: return fn<64>(a, st);                                                                 \
    case 128: return fn<128>(a, st);                                                               \
    default: return cudaErrorInvalidValue;                                                         \
    }
cudaError_t bn_fb_forward(const bn_fb_args *a, cudaStream_t st) { FB_DISPATCH(fb_fwd_o, a, st) }
cudaError_t bn_fb_backward(const bn_fb_args *a, cudaStream_t st) { FB_DISPATCH(fb_bwd_o, a, st) }
