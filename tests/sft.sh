#!/usr/bin/env bash
# sft.sh — chat supervised fine-tuning through the CLI on the bundled model: a style data set made
# by tests/tools/make_style_chat.sh (200 Q/A pairs whose answers open with "Yo ho!", 40 held out),
# `bitnet train --init models/bitnet-tinystories --data train.jsonl --val val.jsonl --lora-rank 8`
# lowers the held-out loss (assistant turns only) and makes the greedy replies to held-out
# questions take the trained style, which the base never shows; the adapter loads back the same
# way in `bitnet chat --lora` and `bitnet run --lora` (one greedy reply), and two half-scale copies
# at once give the same reply, and `bitnet serve --lora` replies in the style; tokenize-file --eos-between-lines / --doc-sep put EOS after each
# document. Not: the merged model (the bundled model ships packed, with no master weights to
# merge into: tests/lora.sh merges on the golden master). Writes only under a temp dir.
set -u
BUILD=${BUILD:-build}
BN=$BUILD/bitnet
M=models/bitnet-tinystories
D=$(mktemp -d /tmp/bn_sft_sh.XXXXXX)
trap 'rm -rf "$D"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
bash tests/tools/make_style_chat.sh "$D/data"
[ "$(wc -l < "$D/data/train.jsonl")" -eq 200 ] && [ "$(wc -l < "$D/data/val.jsonl")" -eq 40 ] && ok "sft: style data set made (200 + 40)" \
    || fail "sft: style data set made" "$(wc -l "$D"/data/*)"
if $BN train --init $M --data "$D/data/train.jsonl" --val "$D/data/val.jsonl" --lora-rank 8 --batch 4 --seq 64 --steps 30 \
    --lr 1e-2 --eval-first --eval-batches 4 -t 2 -o "$D/a" > "$D/a.log" 2>&1; then ok "sft: train on chat JSONL runs"; else fail "sft: train on chat JSONL runs" "$(tail -3 "$D/a.log")"; fi
grep -q "chat data: .*train.jsonl: 200 conversations, .* trained (assistant turns), template bitnet" "$D/a.log" \
    && ok "sft: 200 conversations rendered with the bitnet template" || fail "sft: conversations rendered" "$(grep 'chat data' "$D/a.log")"
v0=$(grep -o 'eval step 0 | val_loss [0-9.]*' "$D/a.log" | awk '{print $NF}'); v1=$(grep -o 'eval step 30 | val_loss [0-9.]*' "$D/a.log" | awk '{print $NF}')
awk -v a="$v0" -v b="$v1" 'BEGIN{exit !(a != "" && b != "" && b < a - 1)}' && ok "sft: held-out loss falls ($v0 -> $v1)" || fail "sft: held-out loss falls" "'$v0' -> '$v1'"
n_style=0; n_base=0
for q in "Where did Tom see the lion?" "What did Emma do with the frog?" "Where did Jack see the cow?"; do
    base=$(printf '%s\n' "$q" | $BN chat -m $M --temp 0 -t 2 -n 12 2>/dev/null)
    tuned=$(printf '%s\n' "$q" | $BN chat -m $M --temp 0 -t 2 -n 12 --lora "$D/a" 2>/dev/null)
    [[ "$base" == *"Yo ho"* ]] && n_base=$((n_base + 1))
    [[ "$tuned" == "Yo ho!"* ]] && n_style=$((n_style + 1))
    echo "# '$q': base '$base' / tuned '$tuned'"
done
[ $n_base -eq 0 ] && [ $n_style -eq 3 ] && ok "sft: greedy replies take the trained style (3 of 3; base 0)" || fail "sft: greedy replies take the trained style" "tuned $n_style of 3, base $n_base"
# the same adapter through run (the rendered prompt) and chat: one greedy reply
p="User: Where did Tom see the lion?<|eot_id|>Assistant: "
r1=$($BN run -m $M -p "$p" --temp 0 -t 2 -n 12 --no-display-prompt --print-ids --lora "$D/a" 2>/dev/null)
r2=$($BN run -m $M -p "$p" --temp 0 -t 2 -n 12 --no-display-prompt --print-ids --lora "$D/a" --lora-scale 0.5 --lora "$D/a" --lora-scale 0.5 2>/dev/null)
txt=$($BN run -m $M -p "$p" --temp 0 -t 2 -n 12 --no-display-prompt --lora "$D/a" 2>/dev/null)
ch=$(printf 'Where did Tom see the lion?\n' | $BN chat -m $M --temp 0 -t 2 -n 12 --lora "$D/a" 2>/dev/null)
[ -n "$r1" ] && [ "$txt" = "$ch" ] && ok "sft: the adapter loads back: run --lora and chat --lora give one reply" || fail "sft: run --lora = chat --lora" "run '$txt' chat '$ch'"
[ -n "$r1" ] && [ "$r1" = "$r2" ] && ok "sft: two adapters at half scale = one at full scale (greedy)" || fail "sft: two half adapters" "'$r1' vs '$r2'"
# serve --lora: the adapter on every request of the server
if ! "$BN" serve -h 2>&1 | grep -q -- "--lora DIR"; then echo "skip sft serve --lora: built without libmicrohttpd"
elif ! command -v curl > /dev/null; then echo "skip sft serve --lora: curl is not installed"
else
    "$BN" serve -m $M --port 0 -t 2 --lora "$D/a" 2> "$D/serve.log" & SP=$!
    URL=""
    for _ in $(seq 100); do URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$D/serve.log" | head -1); [ -n "$URL" ] && break; kill -0 $SP 2>/dev/null || break; sleep 0.1; done
    body='{"messages": [{"role": "user", "content": "Where did Tom see the lion?"}], "max_tokens": 12, "temperature": 0}'
    resp=$(curl -s -H 'Content-Type: application/json' --data-binary "$body" "$URL/v1/chat/completions")
    kill $SP 2>/dev/null; wait $SP 2>/dev/null
    [[ "$resp" == *'"content":"Yo ho!'* || "$resp" == *'"content": "Yo ho!'* ]] && ok "sft: serve --lora replies in the trained style" || fail "sft: serve --lora" "$resp $(tail -2 "$D/serve.log")"
    out=$("$BN" serve -m $M --port 0 --lora "$D/nope" 2>&1); rc=$?
    [ $rc -ne 0 ] && [[ "$out" == *"nope/adapter_config.json"* ]] && ok "sft: serve --lora with a missing adapter names the file" || fail "sft: serve --lora missing" "rc=$rc $out"
fi
# a chat-data run resumes bit-exactly (the JSONL is rendered again from the stored --data)
R="--init $M --data $D/data/train.jsonl --lora-rank 4 --batch 2 --seq 32 --steps 6 -t 2"
$BN train $R -o "$D/r1" > /dev/null 2>&1; $BN train $R -o "$D/r2" --stop-after 3 > /dev/null 2>&1
$BN train --resume -o "$D/r2" > "$D/r2.log" 2>&1
[ -f "$D/r1/adapter_model.safetensors" ] && cmp -s "$D/r1/adapter_model.safetensors" "$D/r2/adapter_model.safetensors" \
    && ok "sft: a chat-data run resumes bit-exactly" || fail "sft: chat-data resume" "$(tail -2 "$D/r2.log")"
# errors
printf '{"messages": [{"role": "user"}]}\n' > "$D/bad.jsonl"
out=$($BN train --init $M --data "$D/bad.jsonl" --lora-rank 8 -o "$D/b" 2>&1); rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"bad.jsonl line 1: message 0 needs"* ]] && ok "sft: a bad JSONL line is named" || fail "sft: a bad JSONL line is named" "$out"
out=$($BN train --init $M --data "$D/data/train.jsonl" --val /dev/null --lora-rank 8 -o "$D/b" 2>&1); rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"--val must be too"* ]] && ok "sft: JSONL --data with a token --val is refused" || fail "sft: mixed --val refused" "$out"
# tokenize-file document separators
printf 'Tom ran.\n\nSue sat.\n' > "$D/d.txt"
eos=$($BN tokenize -m $M --decode <<< "2047")
$BN tokenize-file -m $M --eos-between-lines "$D/d.txt" "$D/l.u32" 2>/dev/null
$BN tokenize-file -m $M --bos --doc-sep "." "$D/d.txt" "$D/s.u32" 2>/dev/null
ids() { od -An -v -tu4 "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }
one=$(printf 'Tom ran.' | $BN tokenize -m $M); two=$(printf 'Sue sat.' | $BN tokenize -m $M)
[ "$(ids "$D/l.u32")" = "$one 2047 $two 2047" ] && [ "$eos" = "<|eot_id|>" ] && ok "tokenize-file --eos-between-lines: each line, then EOS" \
    || fail "tokenize-file --eos-between-lines" "'$(ids "$D/l.u32")' vs '$one 2047 $two 2047'"
s1=$(printf 'Tom ran' | $BN tokenize -m $M --bos); s2=$(printf '\n\nSue sat' | $BN tokenize -m $M --bos); s3=$(printf '\n' | $BN tokenize -m $M --bos)
[ "$(ids "$D/s.u32")" = "$s1 2047 $s2 2047 $s3 2047" ] && ok "tokenize-file --doc-sep: documents split at the separator, BOS/EOS around each" \
    || fail "tokenize-file --doc-sep" "'$(ids "$D/s.u32")' vs '$s1 2047 $s2 2047 $s3 2047'"
out=$($BN tokenize-file -m $M --eos-between-lines --doc-sep x "$D/d.txt" "$D/x.u32" 2>&1); rc=$?
[ $rc -eq 2 ] && [[ "$out" == *"not both"* ]] && ok "tokenize-file: both separators refused" || fail "tokenize-file: both separators refused" "rc=$rc $out"
