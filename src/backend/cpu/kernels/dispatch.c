/* dispatch.c — the one place that chooses CPU code: completes each kernel set's table once and
 * picks the default set.
 * Each ISA file provides bn_kernels_<isa>(), a partial table (its inner kernels, its layout)
 * or NULL when compiled for another architecture or when the running CPU/OS lacks the ISA.
 * Here, once (pthread_once), every available set gets the slots that are layout properties
 * (packed_size/pack/unpack from its layout; the shared head formats hq8/hq4), and the default is
 * chosen: env BITNET_ISA=ref|avx2|avxvnni|avxvnni-vl|avx512|avx512-novnni|neon|dotprod (or a -b3 set) names it when that set is
 * available, else the best one. This is the only getenv of the core library (documented in README.md;
 * the CUDA backend reads its own BITNET_CUDA_* measuring switches).
 * Not: per-call dispatch; the tables never change after the first call. */
#include "backend/cpu/kernels/kernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Defined in every build by ref.c, x86_avx2.c, x86_avx512.c, x86_avxvnni(_vl).c, arm_neon.c, arm_dotprod.c. */
const bn_kernels *bn_kernels_part_ref(void);
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx512(void);
const bn_kernels *bn_kernels_avx512_novnni(void);
const bn_kernels *bn_kernels_neon(void);
const bn_kernels *bn_kernels_dotprod(void);
const bn_kernels *bn_kernels_part_ref_b3(void);
const bn_kernels *bn_kernels_avxvnni(void);
const bn_kernels *bn_kernels_avxvnni_vl(void);
const bn_kernels *bn_kernels_avx2_b3(void);
const bn_kernels *bn_kernels_avx512_b3(void);

typedef const bn_kernels *(*getter)(void);
static const getter SETS[] = { /* best first */
    bn_kernels_avx512, bn_kernels_avx512_novnni, bn_kernels_avxvnni, bn_kernels_avxvnni_vl, bn_kernels_avx2,
    bn_kernels_dotprod, bn_kernels_neon, bn_kernels_part_ref,
    /* the 1.6-bit (b3) layout: only by name, never the best or the default unless named */
    bn_kernels_avx512_b3, bn_kernels_avx2_b3, bn_kernels_part_ref_b3,
};
#define NSETS (int)(sizeof SETS / sizeof SETS[0])

static bn_kernels g_set[NSETS];
static const char *g_names[NSETS + 1];
static int g_n, g_ref, g_default;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init(void) {
    for (int i = 0; i < NSETS; i++) {
        const bn_kernels *p = SETS[i]();
        if (!p) continue;
        bn_kernels *k = &g_set[g_n];
        *k = *p;
        if (k->layout == BN_LAYOUT_I16) { k->packed_size = bn_i16_packed_size; k->pack = bn_pack_i16; k->unpack = bn_unpack_i16; }
        else if (k->layout == BN_LAYOUT_B3) {   /* transposed product: the scalar b3 one (no SIMD version yet) */
            k->packed_size = bn_b3_packed_size; k->pack = bn_pack_b3; k->unpack = bn_unpack_b3;
            if (!k->tgemm_t) k->tgemm_t = bn_b3_tgemm_t;
        }
        else { k->packed_size = bn_ref_packed_size; k->pack = bn_ref_pack; k->unpack = bn_ref_unpack; }
        k->hq8_size = bn_hq8_size; k->hq8_quant = bn_hq8_quant;
        k->hq4_size = bn_hq4_size; k->hq4_quant = bn_hq4_quant;
        if (!strcmp(k->name, "ref")) g_ref = g_n;
        g_names[g_n++] = k->name;
    }
    g_names[g_n] = NULL;
    g_default = 0;
    const char *e = getenv("BITNET_ISA");
    for (int i = 0; e && *e && i < g_n; i++) if (!strcmp(g_names[i], e)) g_default = i;
}

const bn_kernels *bn_kernels_by_name(const char *name) {
    pthread_once(&g_once, init);
    for (int i = 0; name && i < g_n; i++) if (!strcmp(g_names[i], name)) return &g_set[i];
    return NULL;
}
const bn_kernels *bn_kernels_best(void) { pthread_once(&g_once, init); return &g_set[0]; }
const bn_kernels *bn_kernels_default(void) { pthread_once(&g_once, init); return &g_set[g_default]; }
const bn_kernels *bn_kernels_ref(void) { pthread_once(&g_once, init); return &g_set[g_ref]; }
const char *const *bn_kernels_available(void) { pthread_once(&g_once, init); return g_names; }
