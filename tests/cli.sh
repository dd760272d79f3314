#!/usr/bin/env bash
# cli.sh — the `bitnet` CLI end to end on the golden models: greedy `run --ids` reproduces
# golden.json, `logits` writes [n, vocab] float32 (prefill and --decode), `info` reports memory,
# and bad input gives a clear message and a non-zero exit.
set -u
B=${BUILD:-build}/bitnet
G=tests/golden
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
ids_of() { tr -d ' \n' < "$1" | sed -n "s/.*\"$2\":\[\([0-9,]*\)\].*/\1/p"; }

for m in bitnet-b158-packed bitnet-b158-packed-bitlinear bitnet-b158-master bitnet-1bitllm; do
    p=$(ids_of $G/$m/golden.json prompt_ids); want=$(ids_of $G/$m/golden.json greedy_ids | tr ',' ' ')
    n=$(echo "$want" | wc -w)
    for t in 1 2; do
        got=$("$B" run -m $G/$m --ids "$p" -n "$n" --temp 0 --print-ids --ignore-eos -t $t 2>"$T/err")
        [ "$got" = "$want" ] && ok "run --ids greedy $m t$t" || fail "run --ids greedy $m t$t" "got '$got' want '$want' ($(cat "$T/err"))"
    done
    grep -q "tok/s" "$T/err" && ok "run reports tok/s ($m)" || fail "run reports tok/s ($m)" "$(cat "$T/err")"
    vocab=$(tr -d ' \n' < $G/$m/config.json | sed -n 's/.*"vocab_size":\([0-9]*\).*/\1/p')
    np=$(echo "$p" | tr ',' ' ' | wc -w)
    "$B" logits -m $G/$m --ids "$p" -o "$T/a.f32" && "$B" logits -m $G/$m --ids "$p" -o "$T/b.f32" --decode
    sa=$(stat -c %s "$T/a.f32" 2>/dev/null || echo 0); sb=$(stat -c %s "$T/b.f32" 2>/dev/null || echo 0)
    [ "$sa" -eq $((np * vocab * 4)) ] && [ "$sb" -eq "$sa" ] && ok "logits file size $m" || fail "logits file size $m" "$sa $sb, want $((np * vocab * 4))"
done

# logits' KV cache: f32 by default (reference logits), --kv f16 rounds K/V (other bytes)
p1=1,5,9,200,31,7
"$B" logits -m $G/bitnet-1bitllm --ids "$p1" -o "$T/k0.f32" && "$B" logits -m $G/bitnet-1bitllm --ids "$p1" -o "$T/k32.f32" --kv f32 &&
    "$B" logits -m $G/bitnet-1bitllm --ids "$p1" -o "$T/k16.f32" --kv f16
cmp -s "$T/k0.f32" "$T/k32.f32" && ! cmp -s "$T/k0.f32" "$T/k16.f32" && ok "logits: f32 KV cache by default, --kv f16 differs" ||
    fail "logits --kv" "default vs f32 $(cmp "$T/k0.f32" "$T/k32.f32" 2>&1), f16 vs default $(cmp "$T/k0.f32" "$T/k16.f32" 2>&1)"

out=$("$B" info -m $G/bitnet-b158-packed)
echo "$out" | grep -q "weights in memory" && echo "$out" | grep -q "parameters:  *3087616" && ok "info" || fail "info" "$out"

# bad input: clear message naming the problem, non-zero exit
"$B" run -m $G/bitnet-b158-packed --ids 1,2,99999 -n 2 > /dev/null 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "99999.*out of the vocabulary" "$T/err" && ok "id out of vocab" || fail "id out of vocab" "rc=$rc $(cat "$T/err")"
"$B" run -m "$T/none" --ids 1 > /dev/null 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "$T/none" "$T/err" && ok "missing model dir" || fail "missing model dir" "rc=$rc $(cat "$T/err")"
"$B" logits -m $G/bitnet-b158-packed --ids 1,x,3 -o "$T/c.f32" > /dev/null 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "ids" "$T/err" && ok "malformed --ids" || fail "malformed --ids" "rc=$rc $(cat "$T/err")"
"$B" frobnicate > /dev/null 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "unknown command" "$T/err" && ok "unknown command" || fail "unknown command" "rc=$rc"

# text in, text out: run -p and chat are deterministic with a fixed seed and stop at EOS/EOT.
# The random golden model's logits spread ~5 with the top near 25-30: --temp 5 gives varied text,
# and a +40 bias on <|eot_id|> (1028) makes the end of turn the likely pick.
M=$G/bitnet-b158-packed
HOT="--temp 5 --top-k 0 --top-p 1 --min-p 0"
"$B" run -m $M -p "Once upon a time" -n 40 $HOT --seed 3 > "$T/r1" 2> "$T/e1"
"$B" run -m $M -p "Once upon a time" -n 40 $HOT --seed 3 > "$T/r2" 2> "$T/e2"
"$B" run -m $M -p "Once upon a time" -n 40 $HOT --seed 4 > "$T/r3" 2>/dev/null
cmp -s "$T/r1" "$T/r2" && [ -s "$T/r1" ] && ok "run -p deterministic with --seed" || fail "run -p deterministic with --seed" "$(head -c 300 "$T/e1")"
head -c 16 "$T/r1" | grep -q "^Once upon a time" && ok "run -p echoes the prompt" || fail "run -p echoes the prompt" "$(head -c 100 "$T/r1")"
cmp -s "$T/r1" "$T/r3" && fail "another seed gives other text" "same output" || ok "another seed gives other text"
grep -q "generation: 40 tokens" "$T/e1" && ok "run -p generates -n tokens" || fail "run -p generates -n tokens" "$(cat "$T/e1")"
"$B" run -m $M -p "Once upon a time" -n 5000 $HOT --logit-bias 1028=40 --seed 3 > "$T/r4" 2> "$T/e4"
ngen=$(sed -n 's/.*generation: \([0-9]*\) tokens.*/\1/p' "$T/e4")
[ -n "$ngen" ] && [ "$ngen" -lt 5000 ] && ok "run -p stops at EOT ($ngen tokens)" || fail "run -p stops at EOT" "ngen=$ngen $(cat "$T/e4")"
printf 'Hello there\nTell me a story\n' | "$B" chat -m $M $HOT --seed 5 -n 30 > "$T/c1" 2> "$T/ce1"
printf 'Hello there\nTell me a story\n' | "$B" chat -m $M $HOT --seed 5 -n 30 > "$T/c2" 2> "$T/ce2"
turns=$(grep -c "generation: [0-9]* tokens" "$T/ce1")
cmp -s "$T/c1" "$T/c2" && [ -s "$T/c1" ] && ok "chat from a pipe is deterministic" || fail "chat from a pipe is deterministic" "$(head -c 300 "$T/ce1")"
[ "$turns" -eq 2 ] && ok "chat answers both turns" || fail "chat answers both turns" "turns=$turns $(head -c 300 "$T/ce1")"
printf 'Hello there\nTell me a story\n' | "$B" chat -m $M $HOT --logit-bias 1028=40 --seed 5 -n 5000 > "$T/c3" 2> "$T/ce3"
short=$(sed -n 's/.*generation: \([0-9]*\) tokens.*/\1/p' "$T/ce3" | awk '$1 < 5000' | wc -l)
[ "$short" -eq 2 ] && ok "chat replies stop at the end-of-turn token" || fail "chat replies stop at the end-of-turn token" "$(cat "$T/ce3")"
exit 0
