/* x86_avx512.c — avx512 kernel set (not yet written: returns NULL, so dispatch uses another set). */
#include "kernels.h"
#include <stddef.h>
const bn_kernels *bn_kernels_avx512(void) { return NULL; }
