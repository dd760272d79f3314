/* dispatch.c — picks a kernel set at run time from what the CPU and OS support.
 * BITNET_ISA=ref|avx2|avx512|neon|dotprod forces one (tests and benchmarks).
 * Each ISA file provides bn_kernels_<isa>(), returning NULL when the CPU lacks it. */
#include "kernels.h"
#include <stdlib.h>
#include <string.h>

/* Defined in every build by x86_avx2.c, x86_avx512.c, arm_neon.c, arm_dotprod.c; each returns
 * NULL when compiled for another architecture or when the running CPU/OS lacks the ISA. */
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx512(void);
const bn_kernels *bn_kernels_neon(void);
const bn_kernels *bn_kernels_dotprod(void);

typedef const bn_kernels *(*getter)(void);
static const struct { const char *name; getter get; } SETS[] = {
    /* best first */
    {"avx512", bn_kernels_avx512}, {"avx2", bn_kernels_avx2},
    {"dotprod", bn_kernels_dotprod}, {"neon", bn_kernels_neon}, {"ref", bn_kernels_ref},
};
#define NSETS (int)(sizeof SETS / sizeof SETS[0])

const bn_kernels *bn_kernels_by_name(const char *name) {
    for (int i = 0; i < NSETS; i++) if (!strcmp(SETS[i].name, name)) return SETS[i].get();
    return NULL;
}

const bn_kernels *bn_kernels_best(void) {
    const char *e = getenv("BITNET_ISA");
    if (e && *e) { const bn_kernels *k = bn_kernels_by_name(e); if (k) return k; }
    for (int i = 0; i < NSETS; i++) { const bn_kernels *k = SETS[i].get(); if (k) return k; }
    return bn_kernels_ref();
}

const char *const *bn_kernels_available(void) {
    static const char *names[8];
    int n = 0;
    for (int i = 0; i < NSETS; i++) if (SETS[i].get()) names[n++] = SETS[i].name;
    names[n] = NULL;
    return names;
}
