#!/usr/bin/env bash
# The public API is the boundary (issue 18): tools/ include only include/ and tools/ headers,
# libbitnet.so exports only bitnet_ symbols (their count is printed), the internal symbols of
# libbitnet.a are counted for the record, src/ reads the environment in one place only, and
# the clock and the splitmix64 generator are each written once.
# Not: an ABI check (no symbol list is pinned), or a test of what the functions do.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."

# 1. every quoted include in tools/ names a header in include/ or tools/
bad=""
while IFS=: read -r file line text; do
    h=$(sed -n 's/.*#include "\([^"]*\)".*/\1/p' <<<"$text")
    [ -f "include/$h" ] || [ -f "tools/$h" ] || bad+="$file:$line: $h"$'\n'
done < <(grep -n '#include "' tools/*.c tools/*.h)
[ -z "$bad" ] && echo "ok tools include only include/ and tools/ headers" || echo "FAIL tools include internal headers: $bad"

# 2. the shared library's dynamic symbols are the bitnet_ API alone
so="$BUILD/libbitnet.so"
if ! command -v nm >/dev/null; then echo "skip api symbols: nm not installed"
elif [ ! -f "$so" ]; then echo "FAIL api symbols: $so was not built"
else
    syms=$(nm -D --defined-only "$so" | awk '{print $NF}')
    n=$(grep -c . <<<"$syms")
    other=$(grep -v '^bitnet_' <<<"$syms")
    echo "libbitnet.so exports $n symbols"
    [ "$n" -gt 0 ] && [ -z "$other" ] && echo "ok libbitnet.so exports only bitnet_ symbols ($n)" ||
        echo "FAIL libbitnet.so exports non-bitnet_ symbols: $(tr '\n' ' ' <<<"$other")"
    a="$BUILD/libbitnet.a"
    [ -f "$a" ] && echo "libbitnet.a: $(nm --defined-only -g "$a" 2>/dev/null | awk 'NF == 3 && $3 !~ /^bitnet_/' | sort -u | grep -c .) internal global symbols (hidden from libbitnet.so)"
fi

# 3. getenv in src/ only in the kernel dispatch (BITNET_ISA, read once)
g=$(grep -rlE '\bgetenv *\(' src --include='*.c' --include='*.h' | grep -v '^src/backend/cpu/kernels/dispatch.c$')
[ -z "$g" ] && echo "ok getenv in src/ only in src/backend/cpu/kernels/dispatch.c" || echo "FAIL getenv in src/ outside dispatch.c: $g"

# 4. one monotonic clock in the library (bn_time) and one in the tools (cli_time); one splitmix64
n=$(grep -rn 'CLOCK_MONOTONIC' src | wc -l); m=$(grep -rn 'CLOCK_MONOTONIC' tools | wc -l)
[ "$n" -eq 1 ] && [ "$m" -eq 1 ] && echo "ok one monotonic clock read in src/ and one in tools/" ||
    echo "FAIL monotonic clock reads: $n in src/, $m in tools/ (want 1 each: bn_time, cli_time)"
n=$(grep -rliE '\+= *0x9e3779b97f4a7c15' src | wc -l)
[ "$n" -eq 1 ] && echo "ok one splitmix64 in src/ (core/rng.h)" || echo "FAIL splitmix64 copies in src/: $(grep -rliE '\+= *0x9e3779b97f4a7c15' src | tr '\n' ' ')"
