/* x86_avx2.c — avx2 kernel set (not yet written: returns NULL, so dispatch uses another set). */
#include "kernels.h"
#include <stddef.h>
const bn_kernels *bn_kernels_avx2(void) { return NULL; }
