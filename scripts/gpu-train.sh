#!/usr/bin/env bash
# gpu-train.sh — the bundled model's recipe (scripts/default-model.sh) on a GPU, for comparing
# validation losses and measuring the GPU trainer on real text (docs/PERFORMANCE.md, "CUDA
# training: a real run"). Two phases, so the GPU machine needs neither ../shared/data nor a
# tokenizer run:
#   scripts/gpu-train.sh prep WORK   (here, CPU build): the same split as default-model.sh (the
#       last 5% of tinystories-sample's lines held out), tokenized with the bundled model's
#       tokenizer (trained by that recipe on the same training split, so the ids are the
#       recipe's); WORK/mix.u32 = the training split + austen.txt + tinyshakespeare.txt;
#       WORK/config.json (the bundled config) and WORK/config-wide.json (hidden 512, 8 layers).
#   scripts/gpu-train.sh train WORK OUT   (GPU machine, build-cuda): the recipe (8 x 256 tokens,
#       1200 steps, peak LR 2e-3, 50 warm-up steps, two-stage, wd 0.1, clip 1, eval every 100
#       on 16 batches, seed 1) as the runs below, each log in OUT, then a summary table.
# Not: a replacement of the bundled model (the lead decides; `make default-model` makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:-}; WORK=${2:-}
[ -n "$phase" ] && [ -n "$WORK" ] || { echo "usage: $0 prep WORK | train WORK OUT" >&2; exit 2; }
if [ "$phase" = prep ]; then
    DATA=${DATA:-../shared/data}; [ -d "$DATA" ] || DATA=/work/shared/data; B=${BIN:-build/bitnet}; TOK=models/bitnet-tinystories/tokenizer.json
    mkdir -p "$WORK"
    lines=$(wc -l < "$DATA/tinystories-sample.txt"); nval=$((lines / 20))
    head -n $((lines - nval)) "$DATA/tinystories-sample.txt" > "$WORK/train.txt"
    tail -n "$nval" "$DATA/tinystories-sample.txt" > "$WORK/val.txt"
    cat "$WORK/train.txt" "$DATA/austen.txt" "$DATA/tinyshakespeare.txt" > "$WORK/mix.txt"
    for f in train val mix; do "$B" tokenize-file -m "$TOK" "$WORK/$f.txt" "$WORK/$f.u32"; rm "$WORK/$f.txt"; done
    cp "$TOK" models/bitnet-tinystories/tokenizer_config.json "$WORK/"
    BOS=$(printf '<|begin_of_text|>' | "$B" tokenize -m "$TOK"); EOT=$(printf '<|eot_id|>' | "$B" tokenize -m "$TOK")
    cfg() {   # default-model.sh's config.json, hidden $1, ffn $2, layers $3
        printf '{"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": %d, "hidden_size": %d, "intermediate_size": %d,
 "num_hidden_layers": %d, "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 512, "rope_theta": 10000.0,
 "rms_norm_eps": 1e-05, "hidden_act": "relu2", "tie_word_embeddings": true, "bos_token_id": %d, "eos_token_id": %d,
 "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}}\n' $((EOT + 1)) "$1" "$2" "$3" "$BOS" "$EOT"; }
    cfg 256 688 6 > "$WORK/config.json"
    cfg 512 1376 8 > "$WORK/config-wide.json"
    ls -l "$WORK"
    exit 0
fi
[ "$phase" = train ] || { echo "usage: $0 prep WORK | train WORK OUT" >&2; exit 2; }
OUT=${3:?OUT}; B=${BIN:-build-cuda/bitnet}; DEV=${DEVICE:-cuda}
mkdir -p "$OUT"
R=(--val "$WORK/val.u32" --batch 8 --seq 256 --steps 1200 --lr 2e-3 --warmup 50 --wd 0.1 --clip 1.0
   --eval-every 100 --eval-batches 16 --save-every 0 --seed 1 --force --device "$DEV")
run() { local name=$1; shift; local t0=$(date +%s.%N)
        "$B" train "$@" -o "$OUT/$name" > "$OUT/$name.log" 2>&1 || { echo "$name failed:"; tail -5 "$OUT/$name.log"; return 0; }
        printf "%-12s wall %6.1f s  " "$name" "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" | tee -a "$OUT/summary.txt"
        { grep -o 'val_loss [0-9.]*' "$OUT/$name.log" | tail -1 | tr '\n' ' '; grep -o '[0-9]* tokens/s average' "$OUT/$name.log"; } | tr '\n' ' ' | tee -a "$OUT/summary.txt"
        echo | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
run ternary      --config "$WORK/config.json" --data "$WORK/train.u32" "${R[@]}" --lr-schedule two-stage
run fp           --config "$WORK/config.json" --data "$WORK/train.u32" "${R[@]}" --lr-schedule cosine --no-quant
run ternary-mix  --config "$WORK/config.json" --data "$WORK/mix.u32" "${R[@]}" --lr-schedule two-stage --nproc 1
run wide         --config "$WORK/config-wide.json" --data "$WORK/train.u32" "${R[@]}" --lr-schedule two-stage
"$B" export --packed --force "$OUT/ternary" "$OUT/ternary-packed" > /dev/null 2>&1 && cp "$WORK/tokenizer.json" "$WORK/tokenizer_config.json" "$OUT/ternary-packed/" || true
cat "$OUT/summary.txt"
