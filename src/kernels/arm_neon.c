/* arm_neon.c — neon kernel set (not yet written: returns NULL, so dispatch uses another set). */
#include "kernels.h"
#include <stddef.h>
const bn_kernels *bn_kernels_neon(void) { return NULL; }
