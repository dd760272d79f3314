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

/* ---- the transposed product dx = dy @ W (kernels.h tgemm_t), over the same tiles ---- */

/* One 64-byte group of the i16 layout is a 16x16 tile: src byte 4j + t, bits 2s = code of
 * (row j, column 4s + t). dst gets the tile of W^T in the same layout: byte 4kk + t2, bits 2s2
 * = code of (row 4s2 + t2, column kk). */
static void transpose16(const uint8_t *src, uint8_t *dst) {
    uint8_t c[16][16];   /* c[j][kk] */
    for (int j = 0; j < 16; j++)
        for (int t = 0; t < 4; t++) {
            unsigned b = src[4 * j + t];
            for (int s = 0; s < 4; s++) c[j][4 * s + t] = (uint8_t)((b >> (2 * s)) & 3);
        }
    for (int kk = 0; kk < 16; kk++)
        for (int t2 = 0; t2 < 4; t2++)
            dst[4 * kk + t2] = (uint8_t)(c[t2][kk] | c[4 + t2][kk] << 2 | c[8 + t2][kk] << 4 | c[12 + t2][kk] << 6);
}

/* Columns are taken 16 at a time (the k-group G of W = one 16-row block of W^T), rows in
 * chunks of BN_TT_RCHUNK (a multiple of 128, so the tile's k loop and sum_i8 see whole
 * blocks; rows past the last block of W are zero codes); partial sums of the chunks are added
 * in increasing row order (exact integers, so the order does not matter for the result). */
void bn_tgemm_t_i16(const bn_i16_tiler *t, const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    if (c0 >= c1 || n <= 0) return;
    int kp = bn_kpad(cols), kpr = bn_kpad(rows), nblk = (rows + BN_IBLK - 1) / BN_IBLK;
    size_t bsz = (size_t)BN_IBLK * (kp / 4);
    _Alignas(64) uint8_t buf[BN_IBLK * BN_TT_RCHUNK / 4];
    int32_t sx[BN_TCHUNK], tmp[BN_TCHUNK * BN_IBLK];
    for (int a0 = 0; a0 < n; a0 += BN_TCHUNK) {
        int cn = n - a0 < BN_TCHUNK ? n - a0 : BN_TCHUNK;
        for (int R0 = 0; R0 < kpr; R0 += BN_TT_RCHUNK) {
            int rc = kpr - R0 < BN_TT_RCHUNK ? kpr - R0 : BN_TT_RCHUNK, ng = rc / 16;
            for (int i = 0; i < cn; i++) sx[i] = t->sum_i8(dy + (size_t)(a0 + i) * lddy + R0, rc);
            for (int G = c0 / BN_IBLK; G * BN_IBLK < c1; G++) {
                for (int g2 = 0; g2 < ng; g2++) {
                    int b = R0 / BN_IBLK + g2;
                    if (b < nblk) transpose16(w + (size_t)b * bsz + (size_t)64 * G, buf + 64 * g2);
                    else memset(buf + 64 * g2, 0x55, 64);   /* rows past W: code 1 = zero */
                }
                int lo = G * BN_IBLK, j0 = c0 > lo ? c0 - lo : 0, j1 = c1 - lo < BN_IBLK ? c1 - lo : BN_IBLK;
                for (int i0 = 0; i0 < cn; i0 += t->nbmax) {
                    int nb = cn - i0 < t->nbmax ? cn - i0 : t->nbmax;
                    t->tile(buf, ng, dy + (size_t)(a0 + i0) * lddy + R0, lddy, nb, sx + i0, tmp, BN_IBLK, j0, j1);
                    for (int i = 0; i < nb; i++) {
                        int32_t *o = dx + (size_t)(a0 + i0 + i) * lddx + lo;
                        const int32_t *p = tmp + (size_t)i * BN_IBLK;
                        if (R0 == 0) for (int j = j0; j < j1; j++) o[j] = p[j];
                        else for (int j = j0; j < j1; j++) o[j] += p[j];
                    }
                }
            }
        }
    }
}
