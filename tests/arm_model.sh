#!/usr/bin/env bash
# arm_model.sh — the whole library cross-built for AArch64 (make CC=aarch64-linux-gnu-gcc
# BUILD=build-arm) and the model tests (golden logits and greedy ids with every kernel set the
# emulated CPU has: ref, neon, dotprod), the batched multi-sequence decode, the quantizer and the tokenizer tests run under
# qemu-aarch64: once on a CPU with dotprod, once on a Cortex-A72 (neon only); and the transposed
# ternary kernel (test_kernels_t, every set) and the LoRA training steps on the packed base with
# checkpointing and dropout (test_lora_ckpt) on both CPUs.
# Needs: gcc-aarch64-linux-gnu qemu-user and the arm64 libraries libcjson-dev:arm64
# libpcre2-dev:arm64 (dpkg --add-architecture arm64). Programs run against the multiarch arm64
# libc (qemu -L /): qemu 7.2 hangs creating threads with the cross libc. Without those tools it
# prints a skip line with the reason and exits 0 (nothing counted as passed).
set -u
CC=${ARM_CC:-aarch64-linux-gnu-gcc}
QEMU=${ARM_QEMU:-qemu-aarch64}
PCDIR=/usr/lib/aarch64-linux-gnu/pkgconfig
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -e /lib/ld-linux-aarch64.so.1 ] ||
   ! PKG_CONFIG_LIBDIR=$PCDIR pkg-config --exists libcjson libpcre2-8; then
    echo "skip arm_model: $CC, $QEMU, the arm64 loader or arm64 libcjson/libpcre2 not installed; AArch64 model tests not run"
    exit 0
fi
B=build-arm
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PKG_CONFIG_LIBDIR=$PCDIR make -s -j2 CC="$CC" BUILD=$B SAN=0 $B/tests/test_model $B/tests/test_batch $B/tests/test_quant $B/tests/test_tokenizer $B/tests/test_kernels_t $B/tests/test_lora_ckpt > /tmp/bitnet-arm-make.$$.log 2>&1; then
    echo "FAIL arm: cross-building the library and tests"; tail -20 /tmp/bitnet-arm-make.$$.log; exit 1
fi
rc=0
for run in "max test_model" "max test_batch" "max test_quant" "max test_tokenizer" "cortex-a72 test_model" "cortex-a72 test_batch" \
           "max test_kernels_t" "cortex-a72 test_kernels_t" "max test_lora_ckpt" "cortex-a72 test_lora_ckpt"; do
    set -- $run
    out=$("$QEMU" -L / -cpu "$1" "$B/tests/$2" 2>&1); r=$?
    echo "$out" | grep -v '^# ' | sed -e "s/^ok /ok arm[$1] /" -e "s/^FAIL /FAIL arm[$1] /"
    if [ $r -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then echo "FAIL arm[$1]: $2 exited with status $r"; fi
    [ $r -ne 0 ] && rc=1
done
exit $rc
