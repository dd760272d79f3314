#!/usr/bin/env bash
# serve_gpu.sh — one GPU-machine batch for `bitnet serve --device cuda`: builds the CUDA build
# with the HTTP server (libmicrohttpd, cJSON and PCRE2 from DEPS when the machine lacks them),
# makes two random models (the 2B-4T shapes with the 128256-token head, and the 90M one) while it
# builds, then runs scripts/serve_speed.sh (1 stream vs 8 streams in the same run) on each, greedy
# (ignore_eos: the server's bitnet_ctx_decode_greedy path) and with the default sampler
# (temperature 0.8 over the full vocabulary, EOS banned by logit_bias), and last tests/serve.sh
# on the GPU (greedy over the API identical to `bitnet run --temp 0 --device cuda`).
# Logs: one file per step, packed into $OUT/logs.tgz; a summary is printed. Not: a CI step (CI has no GPU).
#
# usage: scripts/serve_gpu.sh [--quick]     (--quick: 1 round, fewer tokens: a dry run)
#   env DEPS: a folder with include/ and lib/ (microhttpd.h, cjson/, pcre2.h, the .so files),
#   default .deps; OUT default serve-gpu-out; DEVICE default cuda (cpu: a dry run on this machine).
set -u
FINAL=${OUT:-serve-gpu-out}; OUT=$FINAL/logs; mkdir -p "$OUT"   # packed into $FINAL/logs.tgz at the end
DEPS=${DEPS:-.deps}; DEVICE=${DEVICE:-cuda}
ROUNDS=3; TOK2B=64; TOK90=128
[ "${1:-}" = --quick ] && { ROUNDS=1; TOK2B=8; TOK90=16; }
B=build-cuda; MK=(CUDA=1)
[ "$DEVICE" = cpu ] && { B=build; MK=(); }
D=$(cd "$DEPS" 2>/dev/null && pwd)
if [ -n "$D" ]; then
    MK+=("PKG_CFLAGS=-I$D/include" "PKG_LIBS=-L$D/lib -lcjson -l:libpcre2-8.a -Wl,-rpath,$D/lib"
         HTTP_OK=1 "HTTP_CFLAGS=-I$D/include" "HTTP_LIBS=-L$D/lib -l:libmicrohttpd.so.12 -Wl,-rpath-link,$D/lib -Wl,--disable-new-dtags -Wl,-rpath,$D/lib")
fi
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv 2>&1; nproc; grep -m1 'model name' /proc/cpuinfo; } > "$OUT/machine.log"
t0=$(date +%s)
( python3 tests/tools/make_2b4t_shaped.py /tmp/m2b4t --tokenizer-from tests/golden/tokenizer-bpe-32k &&
  python3 tests/tools/make_random_bitnet.py /tmp/m90 --ffn 2816 ) > "$OUT/models.log" 2>&1 &
MPID=$!
make "${MK[@]}" -j"$(nproc)" $B/bitnet > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
wait $MPID || { tail "$OUT/models.log"; exit 1; }
echo "models: $(( $(date +%s) - t0 )) s"
"$B/bitnet" serve -h 2>&1 | grep -q "without HTTP support" && { echo "no HTTP in $B/bitnet"; exit 1; }
speed() {  # NAME MODEL SERVE_SPEED_ARGS...
    local name=$1 m=$2; shift 2
    BITNET=$B/bitnet timeout 120 scripts/serve_speed.sh "$m" -t 8 --rounds $ROUNDS "$@" > "$OUT/$name.log" 2>&1
    echo "$name (rc $?, $(( $(date +%s) - t0 )) s): $(grep -E '^(ok|FAIL) serve_speed' "$OUT/$name.log")"
}
speed 2b_greedy /tmp/m2b4t --tokens $TOK2B --temp 0 --ignore-eos -- --device "$DEVICE" -c 512
speed 2b_sampled /tmp/m2b4t --tokens $TOK2B -- --device "$DEVICE" -c 512
speed 90m_greedy /tmp/m90 --tokens $TOK90 --temp 0 --ignore-eos -- --device "$DEVICE" -c 512
speed 90m_sampled /tmp/m90 --tokens $TOK90 -- --device "$DEVICE" -c 512
BUILD=$B SERVE_DEVICE=$DEVICE timeout 150 bash tests/serve.sh > "$OUT/serve_test.log" 2>&1
echo "tests/serve.sh on $DEVICE (rc $?, $(( $(date +%s) - t0 )) s): $(grep -c '^ok' "$OUT/serve_test.log") ok, $(grep -c '^FAIL' "$OUT/serve_test.log") FAIL"
grep '^FAIL' "$OUT/serve_test.log" | head -5
grep -h -E "machine:|gpu:|listening|engine, |serve_speed" "$OUT"/2b_*.log "$OUT"/90m_*.log | cut -c1-230 > "$OUT/summary.log"
cat "$OUT/summary.log"
tar czf "$FINAL/logs.tgz" -C "$FINAL" logs && rm -rf "$OUT"
