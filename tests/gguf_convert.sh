#!/usr/bin/env bash
# gguf_convert.sh — `bitnet convert` from the command line on the bundled tinystories model:
# folder -> GGUF -> HF folder -> GGUF gives the same GGUF bytes and the folder runs like the
# source; --progress prints a final "N/N tensors ... ETA" line (no timing is checked) and nothing
# is printed without it when stderr is not a terminal; existing outputs are refused without
# --force; --head on a folder output is a usage error; and the KL divergence of each --head from
# the exact head, measured with `bitnet perplexity --kl-base` / `--kl`: bf16 (the source's own
# values) exactly 0 with 100% same top token, q8_0 / q6_k / q4_0 above 0 and below bounds from
# their step sizes (KL ~ var(logit error) / 2; logit error ~ 0.6% / 2% / 8% of the logit spread
# for steps max/127, max/31, max/8: bounds 1e-3, 5e-3, 5e-2 nats, an order above the estimate).
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
TXT=tests/data/tinystories_val_excerpt.txt
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
field() { sed -n "s/^$1 *: *\([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }

"$B" convert $M "$T/a.gguf" --type tq2_0 --progress 2> "$T/e1"; rc=$?
[ $rc -eq 0 ] && grep -q "^convert: [0-9]*/[0-9]* tensors (100%), .* tensors/s, ETA 0 s$" "$T/e1" && ok "convert --progress prints the final progress line" || fail "convert --progress" "rc=$rc $(cat "$T/e1")"
"$B" convert "$T/a.gguf" "$T/hf" 2> "$T/e2"; rc=$?
[ $rc -eq 0 ] && ! grep -q "tensors/s" "$T/e2" && [ -f "$T/hf/config.json" ] && [ -f "$T/hf/model.safetensors" ] && [ -f "$T/hf/tokenizer.json" ] && [ -f "$T/hf/tokenizer_config.json" ] \
    && ok "convert X.gguf DIR writes the HF folder (no progress off a terminal)" || fail "convert to a folder" "rc=$rc $(cat "$T/e2"; ls "$T/hf")"
"$B" convert "$T/hf" "$T/b.gguf" --type tq2_0 2> /dev/null && cmp -s "$T/a.gguf" "$T/b.gguf" && ok "folder -> GGUF -> folder -> GGUF: same bytes" || fail "GGUF round trip" "differ"
"$B" run -m $M -p "Once upon a time" -n 12 --temp 0 > "$T/r0" 2> /dev/null
"$B" run -m "$T/hf" -p "Once upon a time" -n 12 --temp 0 > "$T/r1" 2> /dev/null
"$B" run -m "$T/a.gguf" -p "Once upon a time" -n 12 --temp 0 > "$T/r2" 2> /dev/null
[ -s "$T/r0" ] && cmp -s "$T/r0" "$T/r1" && cmp -s "$T/r0" "$T/r2" && ok "run from the HF folder and the GGUF prints what the source prints" || fail "run" "$(cat "$T/r0" "$T/r1" "$T/r2")"

echo -n "hello world" | "$B" tokenize -m tests/gguf/tokenizer-bpe-nopre.gguf > "$T/ids" 2> "$T/note"
[ "$(grep -c "no tokenizer.ggml.pre.*Llama-3" "$T/note")" = 1 ] && [ -s "$T/ids" ] && ok "a GGUF without tokenizer.ggml.pre: the Llama-3 fallback is said once" || fail "pre fallback notice" "$(cat "$T/note")"

expect_err() { # name, pattern, command...
    local name=$1 pat=$2; shift 2
    "$@" > /dev/null 2> "$T/err"; local rc=$?
    [ $rc -ne 0 ] && grep -q -- "$pat" "$T/err" && ok "$name" || fail "$name" "rc=$rc $(cat "$T/err")"
}
expect_err "an existing .gguf is refused" "pass --force" "$B" convert $M "$T/a.gguf"
expect_err "an existing HF folder is refused" "already holds config.json (pass --force" "$B" convert "$T/a.gguf" "$T/hf"
"$B" convert "$T/a.gguf" "$T/hf" --force 2> /dev/null && ok "--force overwrites the folder" || fail "--force" "refused"
expect_err "--head with a folder output" "applies to a .gguf output" "$B" convert "$T/a.gguf" "$T/hf2" --head q8_0
expect_err "unknown --head" "q5_k" "$B" convert $M "$T/x.gguf" --head q5_k
expect_err "a folder output from a folder" "needs a .gguf input" "$B" convert $M "$T/hf3"
printf 'GGUF\3\0\0\0' > "$T/bad.gguf"
expect_err "a truncated GGUF names the file" "bad.gguf" "$B" convert "$T/bad.gguf" "$T/hf4"

# KL divergence of the converted heads from the exact head
"$B" perplexity -m $M -f $TXT -c 128 --kl-base "$T/base.kl" > /dev/null 2> "$T/e0" || fail "kl-base" "$(cat "$T/e0")"
declare -A bound=([q8_0]=1e-3 [q6_k]=5e-3 [q4_0]=5e-2)
for h in bf16 q8_0 q6_k q4_0; do
    "$B" convert $M "$T/m-$h.gguf" --head $h 2> /dev/null || { fail "convert --head $h" "failed"; continue; }
    "$B" perplexity -m "$T/m-$h.gguf" --kl "$T/base.kl" > "$T/p$h" 2> "$T/e$h"
    kl=$(field "Mean    KLD" "$T/p$h"); top=$(sed -n 's/^Same top p *: *\([0-9.]*\).*/\1/p' "$T/p$h"); d=$(field "Delta PPL (Q - base)" "$T/p$h")
    if [ $h = bf16 ]; then
        [ "$kl" = "0.00000000" ] && [ "$top" = "100.000" ] && ok "--head bf16 (the source's values): KL 0, 100% same top" || fail "--head bf16 KL" "kl=$kl top=$top $(cat "$T/e$h")"
    else
        awk -v k="$kl" -v b="${bound[$h]}" 'BEGIN { exit !(k > 0 && k < b) }' && ok "--head $h: mean KL $kl nats (0 < KL < ${bound[$h]}), same top $top%, dPPL $d" || fail "--head $h KL" "kl=$kl top=$top $(cat "$T/p$h" "$T/e$h")"
    fi
    echo "# --head $h vs the exact head (tinystories excerpt, ctx 128): $(grep -E 'Mean    KLD|99.0%   KLD|Same top|Delta PPL' "$T/p$h" | tr -s ' ' | tr '\n' ';')"
done
