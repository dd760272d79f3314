#!/usr/bin/env bash
# device_cli.sh — `--device` on the CLI in the normal (CPU-only or CUDA) build, no GPU needed:
# `bitnet info --devices` lists the CPU first; run/logits/bench/info with --device cpu give the
# same results as without it; --device cuda in a build without CUDA (or on a machine without a
# GPU) and a malformed device name fail with one clear message and a non-zero exit, no crash.
set -u
B=${BUILD:-build}/bitnet
G=tests/golden/bitnet-b158-packed
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
ids_of() { tr -d ' \n' < "$1" | sed -n "s/.*\"$2\":\[\([0-9,]*\)\].*/\1/p"; }

out=$("$B" info --devices 2>&1); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | head -1 | cut -c1-3)" = cpu ] && ok "info --devices lists the cpu first" || fail "info --devices" "rc $rc: $out"
cuda_build=0; "$B" info --devices | grep -q '^cuda' && cuda_build=1
if [ $cuda_build = 0 ]; then
    [ "$(echo "$out" | wc -l)" -eq 1 ] && ok "info --devices: cpu only without CUDA" || fail "info --devices: cpu only" "$out"
fi
out=$("$B" info -m $G --device cpu 2>&1)
echo "$out" | grep -q "^device: *cpu" && ok "info --device cpu" || fail "info --device cpu" "$out"

p=$(ids_of $G/golden.json prompt_ids); want=$(ids_of $G/golden.json greedy_ids | tr ',' ' ')
n=$(echo "$want" | wc -w)
got=$("$B" run -m $G --ids "$p" -n "$n" --temp 0 --print-ids --ignore-eos -t 1 --device cpu 2>"$T/err")
[ "$got" = "$want" ] && ok "run --device cpu greedy" || fail "run --device cpu greedy" "got '$got' want '$want' ($(cat "$T/err"))"
"$B" logits -m $G --ids "$p" -o "$T/a.f32" && "$B" logits -m $G --ids "$p" -o "$T/b.f32" --device cpu
cmp -s "$T/a.f32" "$T/b.f32" && ok "logits --device cpu identical" || fail "logits --device cpu" "files differ"
out=$("$B" bench -m $G -t 1 -p 8 -n 4 -r 1 --device cpu 2>&1)
echo "$out" | grep -q "tg4" && ok "bench --device cpu" || fail "bench --device cpu" "$out"

# errors: one line naming the device, exit 1, for every command
has_gpu=0; "$B" info --devices | grep -q '^cuda:0 ' && has_gpu=1
for cmd in "run -m $G --ids 1,2 -n 1" "logits -m $G --ids 1,2 -o $T/c.f32" "bench -m $G -t 1 -p 4 -n 2 -r 0" "info -m $G" "chat -m $G"; do
    c1=${cmd%% *}
    "$B" $cmd --device gpu9 </dev/null >"$T/o" 2>"$T/e"; rc=$?
    [ $rc -eq 1 ] && grep -q "unknown device 'gpu9'" "$T/e" && ok "$c1 --device gpu9: clear error" || fail "$c1 --device gpu9" "rc $rc: $(cat "$T/e")"
    if [ $has_gpu = 0 ]; then
        "$B" $cmd --device cuda </dev/null >"$T/o" 2>"$T/e"; rc=$?
        if [ $cuda_build = 0 ]; then want_msg="this build has no CUDA support"; else want_msg="device 'cuda'"; fi
        [ $rc -eq 1 ] && grep -q "$want_msg" "$T/e" && [ "$(wc -l < "$T/e")" -le 2 ] && ok "$c1 --device cuda without a GPU: clear error" \
            || fail "$c1 --device cuda without a GPU" "rc $rc: $(cat "$T/e")"
    fi
done
"$B" run -m $G --ids 1,2 -n 1 --device cuda:x >"$T/o" 2>"$T/e"; rc=$?
[ $rc -eq 1 ] && grep -q "cuda:N" "$T/e" && ok "--device cuda:x: clear error" || fail "--device cuda:x" "rc $rc: $(cat "$T/e")"
