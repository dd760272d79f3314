/* tgemm_i16.c — the ternary GEMM driver of every SIMD set (layouts "i16" and "b3", kernels.h), written
 * once: activation rows in chunks of BN_TCHUNK (their int8 sums computed once per chunk), the
 * 16-row weight blocks covering [r0, r1), each block times up to t->nbmax activation rows per
 * tile call, and the weight-stream prefetch of a GEMV. The ISA files supply only the tile (the
 * loop over k and the store of one block's results) and the int8 row sum.
 * Not: an ISA kernel (no intrinsics here; compiled without ISA flags). */
#include "backend/cpu/kernels/kernels.h"

/* b3 GEMM with more activation rows than one tile call takes: each 16-row block is expanded
 * once into the i16 layout (t->expand, into a 64-KiB stack buffer) and multiplied by the set's
 * i16 tile (t->tile16), so the base-3 decode is paid once per block, not once per tile call. */
#define BN_XBUF 65536
static void b3_blocks_expanded(const bn_i16_tiler *t, const uint8_t *w, size_t bsz, int nq, int kp, int r0, int r1,
                               const int8_t *x, int ldx, int cn, const int32_t *sx, int32_t *y, int ldy) {
    uint8_t buf[BN_XBUF] __attribute__((aligned(64)));
    for (int b = r0 / BN_IBLK; b * BN_IBLK < r1; b++) {
        int lo = b * BN_IBLK, j0 = r0 > lo ? r0 - lo : 0, j1 = r1 - lo < BN_IBLK ? r1 - lo : BN_IBLK;
        t->expand(w + (size_t)b * bsz, nq, kp / 16, buf);
        for (int i0 = 0; i0 < cn; i0 += t->nbmax) {
            int nb = cn - i0 < t->nbmax ? cn - i0 : t->nbmax;
            t->tile16(buf, kp / 16, x + (size_t)i0 * ldx, ldx, nb, sx + i0, y + (size_t)i0 * ldy + lo, ldy, j0, j1);
        }
    }
}

void bn_tgemm_i16(const bn_i16_tiler *t, const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    if (r0 >= r1 || n <= 0) return;
    int kp = bn_kpad(cols), ng = kp / 16;
    size_t bsz = (size_t)BN_IBLK * (kp / 4);
    if (t->b3) { /* kernels.h: ng = the quads to read, blocks of 64*G bytes */
        int g3 = bn_b3_groups(cols);
        bsz = (size_t)64 * g3;
        ng = 5 * g3 < kp / 4 ? 5 * g3 : kp / 4;
    }
    int32_t sx[BN_TCHUNK];
    if (n <= 2 && t->pf_burst > 0) { /* a new matrix must not wait for the hardware prefetcher */
        const char *p = (const char *)(w + (size_t)(r0 / BN_IBLK) * bsz);
        size_t len = (size_t)((r1 - 1) / BN_IBLK - r0 / BN_IBLK + 1) * bsz;
        if (len > (size_t)t->pf_burst) len = (size_t)t->pf_burst;
        for (size_t o = 0; o < len; o += 64) __builtin_prefetch(p + o, 0, 3);
    }
    for (int c0 = 0; c0 < n; c0 += BN_TCHUNK) {
        int cn = n - c0 < BN_TCHUNK ? n - c0 : BN_TCHUNK;
        for (int i = 0; i < cn; i++) sx[i] = t->sum_i8(x + (size_t)(c0 + i) * ldx, kp);
        if (t->b3 && t->expand && cn > t->nbmax && (size_t)4 * kp <= BN_XBUF) {
            b3_blocks_expanded(t, w, bsz, ng, kp, r0, r1, x + (size_t)c0 * ldx, ldx, cn, sx, y + (size_t)c0 * ldy, ldy);
            continue;
        }
        for (int b = r0 / BN_IBLK; b * BN_IBLK < r1; b++) {
            const uint8_t *wb = w + (size_t)b * bsz;
            int lo = b * BN_IBLK, j0 = r0 > lo ? r0 - lo : 0, j1 = r1 - lo < BN_IBLK ? r1 - lo : BN_IBLK;
            if (t->pf_next && b * BN_IBLK + 2 * BN_IBLK <= r1) __builtin_prefetch(wb + bsz, 0, 3);
            for (int i0 = 0; i0 < cn; i0 += t->nbmax) {
                int nb = cn - i0 < t->nbmax ? cn - i0 : t->nbmax;
                t->tile(wb, ng, x + (size_t)(c0 + i0) * ldx, ldx, nb, sx + i0, y + (size_t)(c0 + i0) * ldy + lo, ldy, j0, j1);
            }
        }
    }
}
