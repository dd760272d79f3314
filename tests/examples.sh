#!/usr/bin/env bash
# The example programs (examples/*.c, built against include/ only and linked to
# libbitnet.so) run end to end: train a few steps, export, load and generate.
set -u
BUILD=${BUILD:-build}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
ex="$BUILD/examples/train_and_generate"
if [ ! -x "$ex" ]; then echo "FAIL examples: $ex was not built"; exit 1; fi
out=$("$ex" models/bitnet-tinystories "$W" 8 2>&1); rc=$?
[ $rc -eq 0 ] && echo "ok example train_and_generate exits 0" || echo "FAIL example train_and_generate: rc $rc: $out"
n=$(grep -c '^step [0-9]* loss' <<<"$out")
[ "$n" -eq 8 ] && echo "ok example trains 8 steps" || echo "FAIL example steps: $n"
read -r l0 l1 < <(sed -n 's/^loss \([0-9.]*\) -> \([0-9.]*\)$/\1 \2/p' <<<"$out")
awk -v a="${l0:-0}" -v b="${l1:-0}" 'BEGIN{exit !(b < a)}' && echo "ok example loss falls ($l0 -> $l1)" || echo "FAIL example loss did not fall: $l0 -> $l1"
grep -q '^generated: Once upon a time.' <<<"$out" && echo "ok example generates text" || echo "FAIL example generation: $out"
[ -f "$W/packed/model.safetensors" ] && [ -f "$W/packed/tokenizer.json" ] && echo "ok example export holds model and tokenizer" || echo "FAIL example export files"
# the example uses only the public headers: no include of a src/ header
bad=$(grep -h '#include "' examples/*.c | grep -v '"bitnet.h"\|"bitnet_train.h"')
[ -z "$bad" ] && echo "ok examples include only public headers" || echo "FAIL examples include: $bad"
# finetune_lora: LoRA adapters on the frozen golden master through the public API, saved in PEFT's
# format, applied at inference: with the adapter the greedy next token is the data's
G=${BITNET_GOLDEN:-tests/golden}/bitnet-b158-master
lx="$BUILD/examples/finetune_lora"
pat() { for i in $(seq 0 $(($1 - 1))); do v=$(( (i % 13) * 77 % 1024 )); printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $((v >> 8)))\\x00\\x00"; done; }
if [ -x "$lx" ]; then
    pat 3000 > "$W/pat.u32"
    out=$("$lx" "$G" "$W/pat.u32" "$W/ad" 80 2>&1)
    [ -f "$W/ad/adapter_model.safetensors" ] && grep -q "with the adapter: next token 154 (data: 154)" <<<"$out" \
        && echo "ok example finetune_lora trains and the adapter predicts the data" \
        || echo "FAIL example finetune_lora: $(tail -3 <<<"$out" | tr '\n' '|')"
else echo "FAIL examples: $lx was not built"; fi
