#!/usr/bin/env bash
# perplexity.sh — `bitnet perplexity` KL mode and error handling, and scripts/convert_tasks.py:
# exact head vs its own base gives KL 0 and 100% top-1; q8/q4 heads give KL > 0 and a PPL
# difference; wrong, truncated or mismatched base files and bad options give one clear error;
# the converter turns tiny samples of each public task format into eval's JSONL.
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
TXT=tests/data/tinystories_val_excerpt.txt
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
field() { sed -n "s/^$1 *: *\([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }

"$B" perplexity -m $M -f $TXT -c 128 --kl-base "$T/base.kl" > "$T/p0" 2> "$T/e0"
[ -s "$T/base.kl" ] && grep -q "^Final estimate: PPL = " "$T/p0" && ok "kl-base written" || fail "kl-base written" "$(cat "$T/e0")"
"$B" perplexity -m $M --kl "$T/base.kl" > "$T/p1" 2> "$T/e1"
kl=$(field "Mean    KLD" "$T/p1"); top=$(sed -n 's/^Same top p *: *\([0-9.]*\).*/\1/p' "$T/p1"); d=$(field "Delta PPL (Q - base)" "$T/p1")
[ "$kl" = "0.00000000" ] && [ "$top" = "100.000" ] && [ "$d" = "0.000000" ] && ok "KL exact vs exact = 0, 100% top-1" || fail "KL exact vs exact" "kl=$kl top=$top d=$d $(cat "$T/p1" "$T/e1")"
cmp -s <(grep Final "$T/p0") <(grep Final "$T/p1") && ok "KL run reproduces the base PPL" || fail "KL run reproduces the base PPL" "$(grep Final "$T/p0" "$T/p1")"
"$B" perplexity -m $M -f $TXT -c 128 --kl-divergence-base "$T/base.kl" --kl-divergence > "$T/p2" 2> "$T/e2"
kl=$(field "Mean    KLD" "$T/p2")
[ "$kl" = "0.00000000" ] && ok "llama.cpp spelling --kl-divergence-base F --kl-divergence" || fail "llama.cpp spelling" "$(cat "$T/p2" "$T/e2")"
for h in q8 q4; do
    "$B" perplexity -m $M --kl "$T/base.kl" --head $h -f $TXT > "$T/p$h" 2> "$T/e$h"
    kl=$(field "Mean    KLD" "$T/p$h"); p99=$(field "99.0%   KLD" "$T/p$h"); d=$(field "Delta PPL (Q - base)" "$T/p$h")
    awk -v k="$kl" -v p="$p99" 'BEGIN { exit !(k > 0 && p >= k) }' && [ -n "$d" ] && ok "KL $h head > 0 (mean $kl, p99 $p99, dPPL $d)" || fail "KL $h head" "$(cat "$T/p$h" "$T/e$h")"
    echo "# $h head vs exact on the excerpt: $(grep -E 'Mean    KLD|Same top|Delta PPL' "$T/p$h" | tr -s ' ' | tr '\n' ';')"
done

# batching (-b N >= CTX: N/CTX chunks or windows per bitnet_ctx_decode call) gives the PPL of one chunk per call
ppl() { sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$1"; }
for mode in "" "--stride 64"; do
    "$B" perplexity -m $M -f $TXT -c 128 -b 128 $mode > "$T/b1" 2> "$T/eb1"
    "$B" perplexity -m $M -f $TXT -c 128 -b 512 $mode > "$T/b4" 2> "$T/eb4"
    a=$(ppl "$T/b1"); b=$(ppl "$T/b4")
    grep -q "(4 per call)" "$T/eb4" && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * a) }' \
        && ok "perplexity ${mode:-chunked}: 4 chunks per call = 1 per call ($a, $b)" || fail "perplexity ${mode:-chunked} batched" "$a vs $b $(cat "$T/eb4")"
done

# bad input: one clear message, non-zero exit
expect_err() { # name, pattern, command...
    local name=$1 pat=$2; shift 2
    "$@" > /dev/null 2> "$T/err"; local rc=$?
    [ $rc -ne 0 ] && grep -q -- "$pat" "$T/err" && ok "$name" || fail "$name" "rc=$rc $(cat "$T/err")"
}
expect_err "kl-base refuses to overwrite" "pass --force" "$B" perplexity -m $M -f $TXT -c 128 --kl-base "$T/base.kl"
head -c 1000 "$T/base.kl" > "$T/trunc.kl"
expect_err "truncated KL base" "truncated" "$B" perplexity -m $M --kl "$T/trunc.kl"
expect_err "not a KL base" "not a KL base file" "$B" perplexity -m $M --kl $TXT
expect_err "KL base of another vocabulary" "vocabulary of 2048" "$B" perplexity -m tests/golden/bitnet-b158-packed --kl "$T/base.kl"
head -c 2000 $TXT > "$T/other.txt"; echo " Something else entirely." >> "$T/other.txt"; cat $TXT >> "$T/other.txt"
expect_err "KL base of other text" "other tokens" "$B" perplexity -m $M --kl "$T/base.kl" -f "$T/other.txt"
expect_err "KL base with another -c" "made with -c 128" "$B" perplexity -m $M --kl "$T/base.kl" -c 64
head -c 1500 $TXT > "$T/short.txt"
expect_err "too short a text" "at least 1024 tokens" "$B" perplexity -m $M -f "$T/short.txt" -c 512
expect_err "missing text file" "$T/none.txt" "$B" perplexity -m $M -f "$T/none.txt"
expect_err "bad --head" "exact|q8|q4" "$B" perplexity -m $M -f $TXT --head q3
printf '\1\2\3' > "$T/odd.u32"
expect_err "odd token file" "not a uint32 token file" "$B" perplexity -m $M --tokens "$T/odd.u32"
expect_err "ctx above the model's" "exceeds the model's context" "$B" perplexity -m $M -f $TXT -c 1024

# eval: errors name the file and line
printf '{"context": "a", "choices": [" b", " c"], "label": 0}\n{"context": "a", "choices": [" b"], "label": 3}\n' > "$T/t.jsonl"
expect_err "eval label out of range" "t.jsonl:2: \"label\" must be an integer in \[0, 1)" "$B" eval -m $M --task "$T/t.jsonl"
printf 'not json\n' > "$T/t2.jsonl"
expect_err "eval malformed line" "t2.jsonl:1: not a JSON object" "$B" eval -m $M --task "$T/t2.jsonl"
printf '{"context_ids": [1], "choices_ids": [[99999]], "label": 0}\n' > "$T/t3.jsonl"
expect_err "eval id out of vocabulary" "below 2048" "$B" eval -m $M --task "$T/t3.jsonl"

# converter: tiny hand-written samples of each public format -> eval JSONL that eval accepts
if command -v python3 > /dev/null; then
    python3 scripts/convert_tasks.py --self-test > "$T/conv" 2>&1 && ok "convert_tasks.py self-test" || fail "convert_tasks.py self-test" "$(cat "$T/conv")"
    for f in tests/data/tasks/*.jsonl; do
        fmt=$(basename "$f" .jsonl)
        python3 scripts/convert_tasks.py "$fmt" "$f" -o "$T/$fmt.jsonl" 2> "$T/cerr" && "$B" eval -m $M --task "$T/$fmt.jsonl" > "$T/ev" 2>&1 \
            && grep -q "acc_norm = " "$T/ev" && cmp -s "$T/$fmt.jsonl" "tests/data/tasks/$fmt.expected" \
            && ok "convert $fmt and eval it" || fail "convert $fmt and eval it" "$(cat "$T/cerr" "$T/ev"; diff "$T/$fmt.jsonl" "tests/data/tasks/$fmt.expected" | head -5)"
    done
else
    echo "skip convert_tasks.py: python3 is not installed, the converter checks did not run"
fi
