#!/usr/bin/env bash
# bundled_model.sh — the bundled default model (models/bitnet-tinystories): its config is the
# documented one, it loads as a 2B-4T packed checkpoint, its tokenizer round-trips the README's
# prompt, and its greedy continuation of that prompt matches the snapshot recorded when the
# model was committed (any change to the engine's numerics or the file shows up here).
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
cfg=$(tr -d ' \n\t' < $M/config.json)
for kv in '"model_type":"bitnet"' '"hidden_act":"relu2"' '"tie_word_embeddings":true' '"hidden_size":256' \
          '"num_hidden_layers":6' '"num_attention_heads":8' '"num_key_value_heads":2' '"linear_class":"autobitlinear"' \
          '"quantization_mode":"offline"'; do
    case "$cfg" in *"$kv"*) ok "config has $kv" ;; *) fail "config has $kv" "$cfg" ;; esac
done
info=$("$B" info -m $M 2>&1)
echo "$info" | grep -q "weights on disk: *packed-u8" && ok "loads as a packed 2B-4T checkpoint" || fail "loads as a packed 2B-4T checkpoint" "$info"
size=$(du -b $M/model.safetensors | cut -f1)
[ "$size" -lt 8000000 ] && ok "checkpoint is small ($size bytes)" || fail "checkpoint is small" "$size bytes"
prompt="Once upon a time"
ids=$(printf '%s' "$prompt" | "$B" tokenize -m $M)
back=$(echo "$ids" | "$B" tokenize -m $M --decode)
[ -n "$ids" ] && [ "$back" = "$prompt" ] && ok "tokenizer round-trips the README prompt ($ids)" || fail "tokenizer round-trips the README prompt" "ids '$ids' back '$back'"
got=$("$B" run -m $M -p "$prompt" -n 24 --temp 0 --print-ids 2>/dev/null | tr -d '\n' | sed "s/^$prompt//")
want=$(cat tests/bundled_model.snapshot 2>/dev/null)
[ -n "$want" ] && [ "$got" = "$want" ] && ok "greedy continuation matches the snapshot" || fail "greedy continuation matches the snapshot" "got '$got' want '$want'"
text=$("$B" run -m $M -p "$prompt" -n 40 --temp 0 2>/dev/null)
case "$text" in "$prompt"*) ok "run -p streams text after the prompt" ;; *) fail "run -p streams text after the prompt" "$text" ;; esac
exit 0
