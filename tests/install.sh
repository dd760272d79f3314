#!/usr/bin/env bash
# install.sh — `make install PREFIX=TMP` lays out the headers, libbitnet.a/.so, bitnet.pc and the
# CMake package config; examples/*.c build against the installed tree alone with
# `cc $(pkg-config --cflags --libs bitnet)` and run; a tiny CMake consumer (find_package(bitnet),
# shared and static targets) builds and runs; `nm -D` of the installed shared library shows only
# bitnet_ symbols; `make uninstall` removes what install wrote. Writes only under a temp dir.
set -u
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/bn_install_sh.XXXXXX)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
P=$T/prefix
if make -s --no-print-directory install BUILD="$BUILD" PREFIX="$P" > "$T/make.log" 2>&1; then ok "install: make install PREFIX=tmp"; else fail "install: make install" "$(tail -5 "$T/make.log")"; fi
miss=""
for f in include/bitnet.h include/bitnet_train.h lib/libbitnet.a lib/libbitnet.so lib/pkgconfig/bitnet.pc \
         lib/cmake/bitnet/bitnetConfig.cmake lib/cmake/bitnet/bitnetConfigVersion.cmake bin/bitnet; do
    [ -f "$P/$f" ] || miss+=" $f"
done
[ -z "$miss" ] && ok "install: headers, libraries, bitnet.pc, CMake config, CLI" || fail "install: files" "missing$miss"
# a sanitizer build's library needs the sanitizer runtime in the program too
SANF=""
nm -D "$P/lib/libbitnet.so" 2>/dev/null | grep -q ' U __asan_init' && SANF="-fsanitize=address,undefined"
bad=$(nm -D --defined-only "$P/lib/libbitnet.so" | awk 'NF >= 3 {print $3}' | grep -v '^bitnet_' | head -5)
n_exp=$(nm -D --defined-only "$P/lib/libbitnet.so" | awk 'NF >= 3' | grep -c ' bitnet_')
[ -z "$bad" ] && [ "$n_exp" -gt 50 ] && ok "install: nm -D shows only bitnet_ symbols ($n_exp)" || fail "install: exported symbols" "non-bitnet: $bad (bitnet_: $n_exp)"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
v=$(pkg-config --modversion bitnet 2>&1)
want=$(sed -n 's/^#define BITNET_VERSION "\(.*\)"/\1/p' include/bitnet.h)
[ "$v" = "$want" ] && ok "install: pkg-config finds bitnet $v" || fail "install: pkg-config --modversion" "'$v' vs '$want'"
flags=$(pkg-config --cflags --libs bitnet)
nb=0
for src in examples/*.c; do
    exe="$T/$(basename "$src" .c)"
    # the examples' own folder and the installed tree only: no -Iinclude, no -Isrc
    if cc -std=c11 -O1 $SANF "$src" $flags -Wl,-rpath,"$P/lib" -o "$exe" > "$T/cc.log" 2>&1; then nb=$((nb + 1)); else fail "install: cc $src \$(pkg-config --cflags --libs bitnet)" "$(head -5 "$T/cc.log")"; fi
done
[ "$nb" -gt 0 ] && [ "$nb" -eq "$(ls examples/*.c | wc -l)" ] && ok "install: every example builds with pkg-config ($nb)"
ldd "$T/train_and_generate" 2>/dev/null | grep -q "$P/lib/libbitnet.so" && ok "install: the example links the installed libbitnet.so" \
    || fail "install: the example links the installed library" "$(ldd "$T/train_and_generate" 2>&1 | grep bitnet)"
out=$("$T/train_and_generate" models/bitnet-tinystories "$T/tg" 2 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q '^generated: ' <<<"$out" && ok "install: train_and_generate (installed) trains and generates" || fail "install: train_and_generate" "rc=$rc $(tail -3 <<<"$out")"
pat() { for i in $(seq 0 $(($1 - 1))); do v=$(( (i % 13) * 77 % 1024 )); printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $((v >> 8)))\\x00\\x00"; done; }
pat 400 > "$T/pat.u32"
out=$("$T/finetune_lora" "${BITNET_GOLDEN:-tests/golden}/bitnet-b158-master" "$T/pat.u32" "$T/ad" 4 2>&1); rc=$?
[ $rc -eq 0 ] && [ -f "$T/ad/adapter_model.safetensors" ] && ok "install: finetune_lora (installed) writes an adapter" || fail "install: finetune_lora" "rc=$rc $(tail -3 <<<"$out")"
# CMake consumer
if command -v cmake > /dev/null; then
    mkdir -p "$T/cm"
    cat > "$T/cm/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.10)
project(bitnet_consumer C)
find_package(bitnet 0.1 REQUIRED)
add_executable(use_shared main.c)
target_link_libraries(use_shared PRIVATE bitnet::bitnet)
add_executable(use_static main.c)
target_link_libraries(use_static PRIVATE bitnet::bitnet_static)
EOF
    cat > "$T/cm/main.c" <<'EOF'
#include "bitnet.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(void) {
    bitnet_tokenizer *t = NULL;
    if (bitnet_tokenizer_load("models/bitnet-tinystories", &t)) { printf("error %s\n", bitnet_last_error()); return 1; }
    int32_t *ids = NULL; int n = 0;
    int ok = !bitnet_tokenizer_encode(t, "Once upon a time", 16, 1, &ids, &n) && n > 1;
    printf("%s %s %d\n", bitnet_version(), strcmp(bitnet_version(), BITNET_VERSION) ? "mismatch" : "same", ok ? n : -1);
    free(ids); bitnet_tokenizer_free(t);
    return !ok;
}
EOF
    if cmake -S "$T/cm" -B "$T/cm/b" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$SANF" -DCMAKE_EXE_LINKER_FLAGS="$SANF" > "$T/cm.log" 2>&1 \
        && cmake --build "$T/cm/b" >> "$T/cm.log" 2>&1; then ok "install: a CMake consumer (find_package(bitnet)) builds"; else fail "install: CMake consumer" "$(tail -8 "$T/cm.log")"; fi
    for e in use_shared use_static; do
        out=$("$T/cm/b/$e" 2>&1); rc=$?
        [ $rc -eq 0 ] && [[ "$out" == "$want same "* ]] && ok "install: CMake $e runs ($out)" || fail "install: CMake $e" "rc=$rc $out"
    done
    sed -i 's/bitnet 0.1/bitnet 99.0/' "$T/cm/CMakeLists.txt"
    out=$(cmake -S "$T/cm" -B "$T/cm/b3" -DCMAKE_PREFIX_PATH="$P" 2>&1); rc=$?
    [ $rc -ne 0 ] && ok "install: find_package(bitnet 99.0) is refused (version file)" || fail "install: version check" "$out"
else
    echo "skip install: cmake: not installed"
fi
if make -s --no-print-directory uninstall BUILD="$BUILD" PREFIX="$P" > "$T/un.log" 2>&1 && [ -z "$(find "$P" -type f)" ]; then ok "install: make uninstall removes the files"
else fail "install: make uninstall" "$(find "$P" -type f | head -5) $(tail -3 "$T/un.log")"; fi
