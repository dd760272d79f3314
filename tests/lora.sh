#!/usr/bin/env bash
# lora.sh — drives LoRA through the CLI: `bitnet train --init MASTER --lora-rank R` writes a PEFT
# adapter (adapter_model.safetensors + adapter_config.json) and no model weights, resumes
# bit-exactly (N steps straight vs N/2 + --resume + N/2), lowers the validation loss, and
# `bitnet run --lora DIR` changes the greedy continuation towards the trained pattern (with
# --lora-scale 0 it equals the base); bad --lora / --lora-targets / --lora-dropout are clear
# errors. Base: tests/golden/bitnet-b158-master (master weights). Writes only under a temp dir.
set -u
BUILD=${BUILD:-build}
BN=$BUILD/bitnet
G=${BITNET_GOLDEN:-tests/golden}/bitnet-b158-master
D=$(mktemp -d /tmp/bn_lora_sh.XXXXXX)
trap 'rm -rf "$D"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
# a repeating pattern of ids < 1029, as uint32 LE (no python needed)
pat() { local n=$1 off=$2; for i in $(seq $off $((off + n - 1))); do v=$(( (i % 13) * 77 % 1024 )); printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $((v >> 8)))\\x00\\x00"; done; }
pat 3000 0 > "$D/pat.u32"; pat 600 5 > "$D/val.u32"
T="--init $G --data $D/pat.u32 --val $D/val.u32 --lora-rank 8 --lora-targets all --batch 4 --seq 32 --lr 1e-2 --steps 80 --eval-batches 2"
if $BN train $T -o "$D/a" > "$D/a.log" 2>&1; then ok "lora: train runs"; else fail "lora: train runs" "$(tail -3 "$D/a.log")"; fi
[ -f "$D/a/adapter_model.safetensors" ] && [ -f "$D/a/adapter_config.json" ] && [ ! -f "$D/a/model.safetensors" ] \
    && grep -q '"peft_type":[[:space:]]*"LORA"' "$D/a/adapter_config.json" && grep -q '"down_proj"' "$D/a/adapter_config.json" \
    && ok "lora: OUTDIR holds a PEFT adapter and no model weights" || fail "lora: OUTDIR holds a PEFT adapter and no model weights" "$(ls "$D/a")"
$BN train $T -o "$D/b" --stop-after 40 > /dev/null 2>&1
$BN train --resume -o "$D/b" > "$D/b.log" 2>&1
cmp -s "$D/a/adapter_model.safetensors" "$D/b/adapter_model.safetensors" && ok "lora: --resume is bit-exact" || fail "lora: --resume is bit-exact" "$(tail -2 "$D/b.log")"
l1=$(grep -o 'loss [0-9.]*' "$D/a.log" | head -1 | cut -d' ' -f2); l2=$(grep -o 'loss [0-9.]*' "$D/a.log" | tail -1 | cut -d' ' -f2)
awk -v a="$l1" -v b="$l2" 'BEGIN{exit !(b < a - 1)}' && ok "lora: loss falls ($l1 -> $l2)" || fail "lora: loss falls" "$l1 -> $l2"
ids=$(for i in 0 1 2 3 4 5 6 7 8 9; do printf "%d," $(( (i % 13) * 77 % 1024 )); done); ids=${ids%,}
want=$(for i in 10 11 12 13 14 15; do printf "%d " $(( (i % 13) * 77 % 1024 )); done)
base=$($BN run -m "$G" --ids "$ids" -n 6 --temp 0 --print-ids 2>/dev/null)
withl=$($BN run -m "$G" --ids "$ids" -n 6 --temp 0 --print-ids --lora "$D/a" 2>/dev/null)
zero=$($BN run -m "$G" --ids "$ids" -n 6 --temp 0 --print-ids --lora "$D/a" --lora-scale 0 2>/dev/null)
[ "$(echo $withl)" = "$(echo $want)" ] && [ "$(echo $base)" != "$(echo $want)" ] && ok "lora: run --lora continues the trained pattern" \
    || fail "lora: run --lora continues the trained pattern" "base '$base', with adapter '$withl', want '$want'"
[ -n "$base" ] && [ "$zero" = "$base" ] && ok "lora: --lora-scale 0 is the base model" || fail "lora: --lora-scale 0 is the base model" "'$zero' vs '$base'"
out=$($BN run -m "$G" --ids 1 -n 1 --lora "$D/nope" 2>&1); [[ "$out" == *"nope/adapter_config.json"* ]] && ok "lora: missing adapter names the file" || fail "lora: missing adapter names the file" "$out"
out=$($BN train $T -o "$D/c" --lora-targets q,x 2>&1); [[ "$out" == *"'x'"* ]] && ok "lora: bad --lora-targets" || fail "lora: bad --lora-targets" "$out"
out=$($BN train $T -o "$D/c" --lora-dropout 1 2>&1); [[ "$out" == *"[0, 1)"* ]] && ok "lora: --lora-dropout 1 refused" || fail "lora: --lora-dropout 1 refused" "$out"
# --grad-checkpoint changes no bit of the result; --lora-dropout trains and is recorded in adapter_config.json
$BN train $T -o "$D/g" --grad-checkpoint > "$D/g.log" 2>&1
cmp -s "$D/a/adapter_model.safetensors" "$D/g/adapter_model.safetensors" && ok "lora: --grad-checkpoint gives the same adapter" || fail "lora: --grad-checkpoint gives the same adapter" "$(tail -2 "$D/g.log")"
$BN train $T -o "$D/p" --lora-dropout 0.1 > "$D/p.log" 2>&1 && grep -q '"lora_dropout":[[:space:]]*0.1' "$D/p/adapter_config.json" \
    && ! cmp -s "$D/a/adapter_model.safetensors" "$D/p/adapter_model.safetensors" && ok "lora: --lora-dropout 0.1 trains (recorded, adapter differs)" || fail "lora: --lora-dropout 0.1 trains" "$(tail -2 "$D/p.log")"
$BN export --merge-lora "$D/a" "$G" "$D/m" > /dev/null 2>&1 && [ -f "$D/m/model.safetensors" ] && [ -f "$D/m/tokenizer.json" ] \
    && ok "lora: export --merge-lora writes a merged master" || fail "lora: export --merge-lora writes a merged master" "$(ls "$D/m" 2>&1)"
$BN export --packed --merge-lora "$D/a" "$G" "$D/mp" > /dev/null 2>&1 && [ -n "$($BN run -m "$D/mp" --ids "$ids" -n 2 --temp 0 --print-ids 2>/dev/null)" ] \
    && [ -z "$(ls -d "$D"/mp.merge.* 2>/dev/null)" ] && ok "lora: export --packed --merge-lora runs, leaves no temp folder" || fail "lora: export --packed --merge-lora" "$(ls "$D")"
