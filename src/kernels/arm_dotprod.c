/* arm_dotprod.c — dotprod kernel set (not yet written: returns NULL, so dispatch uses another set). */
#include "kernels.h"
#include <stddef.h>
const bn_kernels *bn_kernels_dotprod(void) { return NULL; }
