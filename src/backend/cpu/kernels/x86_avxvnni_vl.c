/* x86_avxvnni_vl.c — the set "avxvnni-vl": x86_avxvnni.c compiled again with its vpdpbusd in
 * the AVX-512 VL (EVEX) encoding, which AVX512-VNNI CPUs run, so the AVX-VNNI code path is
 * tested on machines without the AVX-VNNI cpuid bit. Not: separate code (see x86_avxvnni.c). */
#define BN_VNNI_VL 1
#include "x86_avxvnni.c"
