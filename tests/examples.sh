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
