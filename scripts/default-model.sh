#!/usr/bin/env bash
# Reproduces the bundled default model from ../shared/data (a developer machine's copy of the
# training text; users never need it): trains the tokenizer, tokenizes a train/validation split,
# trains the ternary model and a full-precision baseline with the same budget, exports the
# packed 2B-4T-layout checkpoint to models/bitnet-tinystories, and prints the numbers that go
# into its model card.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/tinystories-sample.txt}   # the stories: train split + validation
# Other texts (EXTRA="file ...") are appended to the training split only. The loader reads the
# token file in order, so appended books come after the stories; the default uses none.
EXTRA=${EXTRA:-}
OUT=${OUT:-models/bitnet-tinystories}
WORK=${WORK:-build/default-model}
VOCAB=${VOCAB:-2048}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-2}
B=build/bitnet
mkdir -p "$WORK" "$OUT"
[ -f "$DATA" ] || { echo "default-model: $DATA not found (set DATA=...)" >&2; exit 1; }

# 1. split: the last 5% of the story lines are held out for validation; the other texts only train
lines=$(wc -l < "$DATA"); nval=$((lines / 20))
head -n $((lines - nval)) "$DATA" > "$WORK/train.txt"
tail -n "$nval" "$DATA" > "$WORK/val.txt"
for f in $EXTRA; do [ -f "$f" ] && cat "$f" >> "$WORK/train.txt"; done

# 2. tokenizer: byte-level BPE, Llama 3 pre-tokenizer, trained on the training split only
"$B" tokenizer-train --vocab "$VOCAB" "$WORK/train.txt" -o "$WORK/tokenizer.json"
"$B" tokenize-file -m "$WORK/tokenizer.json" "$WORK/train.txt" "$WORK/train.u32"
"$B" tokenize-file -m "$WORK/tokenizer.json" "$WORK/val.txt" "$WORK/val.u32"
BOS=$(printf '<|begin_of_text|>' | "$B" tokenize -m "$WORK/tokenizer.json")
EOT=$(printf '<|eot_id|>' | "$B" tokenize -m "$WORK/tokenizer.json")
NV=$((EOT + 1))

# 3. model config: the 2B-4T architecture (relu2 FFN, SubLN, GQA 4:1, tied embeddings), scaled down
cat > "$WORK/config.json" <<JSON
{
  "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
  "vocab_size": $NV, "hidden_size": ${DIM:-256}, "intermediate_size": ${FFN:-688},
  "num_hidden_layers": ${LAYERS:-6}, "num_attention_heads": 8, "num_key_value_heads": 2,
  "max_position_embeddings": 512, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
  "hidden_act": "relu2", "tie_word_embeddings": true,
  "bos_token_id": $BOS, "eos_token_id": $EOT,
  "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}
}
JSON
# 4. the ternary (QAT) model and the full-precision baseline, same data, steps, batch and peak LR;
#    run side by side on one thread each
COMMON=(--config "$WORK/config.json" --data "$WORK/train.u32" --val "$WORK/val.u32" --batch "${BATCH:-8}" --seq 256
        --steps "$STEPS" --lr "${LR:-2e-3}" --warmup 50 --wd 0.1 --clip 1.0
        --eval-every 100 --eval-batches 16 --save-every 200 --seed 1 -t 1 --force)  # --force: WORK is reused
"$B" train "${COMMON[@]}" --lr-schedule two-stage -o "$WORK/ternary" > "$WORK/ternary.log" 2>&1 &
P1=$!
"$B" train "${COMMON[@]}" --lr-schedule cosine --no-quant -o "$WORK/fp" > "$WORK/fp.log" 2>&1 &
P2=$!
while kill -0 $P1 2>/dev/null || kill -0 $P2 2>/dev/null; do sleep 30; tail -n 1 "$WORK/ternary.log" >&2; done
wait $P1; wait $P2

# 5. packed inference checkpoint (2B-4T layout) + tokenizer files
"$B" export --packed --force "$WORK/ternary" "$OUT"
cp "$WORK/tokenizer.json" "$WORK/tokenizer_config.json" "$OUT/"
echo "default-model: wrote $OUT; last evaluations (ternary, then full precision):" >&2
grep -i "val" "$WORK/ternary.log" | tail -n 1 >&2
grep -i "val" "$WORK/fp.log" | tail -n 1 >&2

bash scripts/model-card.sh
