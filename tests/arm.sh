#!/usr/bin/env bash
# arm.sh — cross-builds the kernel test (tests/test_kernels.c with src/backend/cpu/kernels/*.c, src/core/util.c,
# src/core/threads.c) for AArch64 with aarch64-linux-gnu-gcc and runs it under qemu-aarch64, once on
# a CPU with the dot-product extension (sets neon + dotprod) and once on a Cortex-A72 (neon
# only). Prints the test's ok/FAIL lines prefixed with the CPU. Without the cross tools it prints
# a skip line with the reason and exits 0 (nothing counted as passed).
# Debian packages: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
set -u
CC=${ARM_CC:-aarch64-linux-gnu-gcc}
QEMU=${ARM_QEMU:-qemu-aarch64}
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "skip arm: $CC or $QEMU not installed (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    exit 0
fi
BUILD=${BUILD:-build}
OUT="$BUILD/arm"
mkdir -p "$OUT"
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -Iinclude -Isrc"
objs=()
for f in src/backend/cpu/kernels/*.c src/core/util.c src/core/threads.c; do
    o="$OUT/$(basename "${f%.c}").o"
    extra=""
    case "$f" in
        */arm_neon.c) extra="-march=armv8-a" ;;
        */arm_dotprod.c) extra="-march=armv8.2-a+dotprod" ;;
    esac
    if ! $CC $CFLAGS $extra -c "$f" -o "$o" 2>"$OUT/cc.log"; then
        echo "FAIL arm: cross-compiling $f"; cat "$OUT/cc.log"; exit 1
    fi
    objs+=("$o")
done
if ! $CC $CFLAGS -Itests tests/test_kernels.c "${objs[@]}" -o "$OUT/test_kernels" -static -lm -lpthread 2>"$OUT/cc.log"; then
    echo "FAIL arm: linking test_kernels"; cat "$OUT/cc.log"; exit 1
fi
rc=0
for cpu in max cortex-a72; do
    out=$("$QEMU" -cpu "$cpu" -L /usr/aarch64-linux-gnu "$OUT/test_kernels" 2>&1); r=$?
    echo "$out" | sed -e "s/^ok /ok arm[$cpu] /" -e "s/^FAIL /FAIL arm[$cpu] /" -e "s/^# /# arm[$cpu] /"
    if [ $r -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then echo "FAIL arm[$cpu]: test_kernels exited with status $r"; fi
    [ $r -ne 0 ] && rc=1
done
exit $rc
