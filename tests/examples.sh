#!/usr/bin/env bash
# examples.sh — builds examples/*.c against the public headers (include/) and the static library
# alone, and runs finetune_lora on the golden master: it trains, saves a PEFT adapter, and with
# the adapter predicts the data's next token. Writes only under a temp dir.
set -u
BUILD=${BUILD:-build}
G=${BITNET_GOLDEN:-tests/golden}/bitnet-b158-master
D=$(mktemp -d /tmp/bn_examples_sh.XXXXXX)
trap 'rm -rf "$D"' EXIT
CC=${CC:-cc}
for src in examples/*.c; do
    n=$(basename "$src" .c)
    if $CC -std=c11 -O2 -Wall -Werror -Iinclude "$src" -o "$D/$n" "$BUILD/libbitnet.a" -lcjson -lpcre2-8 -lm -lpthread 2> "$D/$n.err"; then
        echo "ok examples: $n builds from the public headers"
    else echo "FAIL examples: $n builds from the public headers: $(head -3 "$D/$n.err")"; fi
done
pat() { for i in $(seq 0 $(($1 - 1))); do v=$(( (i % 13) * 77 % 1024 )); printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $((v >> 8)))\\x00\\x00"; done; }
pat 3000 > "$D/pat.u32"
if [ -x "$D/finetune_lora" ]; then
    out=$("$D/finetune_lora" "$G" "$D/pat.u32" "$D/ad" 80 2>&1)
    [ -f "$D/ad/adapter_model.safetensors" ] && echo "$out" | grep -q "with the adapter: next token 154 (data: 154)" \
        && echo "ok examples: finetune_lora trains and the adapter predicts the data" \
        || echo "FAIL examples: finetune_lora trains and the adapter predicts the data: $(echo "$out" | tail -3 | tr '\n' '|')"
fi
