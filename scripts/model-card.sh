#!/usr/bin/env bash
# Writes models/bitnet-tinystories/README.md (the model card) from a default-model run's logs,
# so every number on the card comes from the recipe (scripts/default-model.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-build/default-model}
OUT=${OUT:-models/bitnet-tinystories}
B=build/bitnet
val() { grep "val_loss" "$1" | tail -n 1 | sed 's/.*val_loss \([0-9.]*\).*/\1/'; }
vt=$(val "$WORK/ternary.log"); vf=$(val "$WORK/fp.log")
tt=$(grep "^step" "$WORK/ternary.log" | tail -n 1 | sed 's/.*loss \([0-9.]*\).*/\1/')
steps=$(grep "^step" "$WORK/ternary.log" | tail -n 1 | sed 's/^step \([0-9]*\).*/\1/')
tps=$(grep "^done" "$WORK/ternary.log" | sed 's/.* \([0-9]*\) tokens\/s.*/\1/')
ppl() { awk -v l="$1" 'BEGIN { printf "%.2f", exp(l) }'; }
gap=$(awk -v a="$vt" -v b="$vf" 'BEGIN { printf "%+.3f", a - b }')
info=$("$B" info -m "$OUT")
params=$(echo "$info" | sed -n 's/^parameters: *\([0-9]*\).*/\1/p')
mem=$(echo "$info" | sed -n 's/^weights in memory: *\(.*\)/\1/p')
disk=$(du -b "$OUT/model.safetensors" | cut -f1)
ntrain=$(( $(stat -c %s "$WORK/train.u32") / 4 )); nval=$(( $(stat -c %s "$WORK/val.u32") / 4 ))
cfg=$(tr -d '\n' < "$WORK/config.json" | sed 's/  */ /g')
sample=$("$B" run -m "$OUT" -p "Once upon a time" -n 120 --temp 0.7 --seed 1 2>/dev/null)
cp "$WORK/ternary/loss.svg" "$OUT/loss.svg"
cat > "$OUT/README.md" <<CARD
# bitnet-tinystories

The default model of bitnet.c: a BitNet b1.58 model (ternary {-1, 0, +1} weights with one
absmean scale per matrix, int8 activations) with the microsoft/bitnet-b1.58-2B-4T architecture
scaled down — relu² gated FFN, SubLN norms (attn_sub_norm, ffn_sub_norm), grouped-query
attention (8 heads, 2 KV heads), RoPE, tied embeddings — trained from scratch with
\`bitnet train\` (quantization-aware, straight-through estimator) and stored in the 2B-4T packed
layout (uint8 ternary + bf16 weight_scale), so it is also a regular Hugging Face checkpoint
(\`BitNetForCausalLM\`, \`quantization_config.linear_class: autobitlinear\`).

| | |
| --- | --- |
| parameters | $params (hidden 256, 6 layers, FFN 688, vocab 2048, context 512) |
| file | model.safetensors, $disk bytes |
| in memory | $mem |
| tokenizer | byte-level BPE, 2048 tokens (256 bytes + merges + 5 specials), Llama 3 pre-tokenizer regex, trained with \`bitnet tokenizer-train\` on the training split |
| data | TinyStories sample (\`tinystories-sample.txt\`, 944 KB, the first stories of the TinyStories training split): $ntrain training tokens; the last 5% of the lines held out for validation ($nval tokens) |
| training | $steps steps of 8 x 256 tokens, AdamW (betas 0.9/0.95, wd 0.1 on matrices), peak LR 2e-3, 50 warm-up steps, BitNet two-stage schedule, clip 1.0, one thread ($tps tokens/s average) |

## Validation (held-out TinyStories lines)

| model (same data, steps, batch, peak LR) | validation loss | perplexity |
| --- | --- | --- |
| ternary (this model, QAT) | $vt | $(ppl "$vt") |
| full-precision baseline (\`--no-quant\`, cosine schedule) | $vf | $(ppl "$vf") |
| gap (ternary - full precision) | $gap | |

Final training loss (ternary, last batch): $tt. Training and validation curves of this run:
\`loss.svg\` in this folder (\`metrics.csv\` is under build/default-model/ternary after
\`make default-model\`).

## Sample

\`bitnet run -m models/bitnet-tinystories -p "Once upon a time" -n 120 --temp 0.7 --seed 1\`:

> $(echo "$sample" | tr '\n' ' ')

## Reproduce

\`make default-model\` (scripts/default-model.sh) retrains the tokenizer and both models from
../shared/data/tinystories-sample.txt and rewrites this folder and card. Config:

\`\`\`json
$cfg
\`\`\`

## License

Trained on TinyStories (Eldan & Li, 2023), CDLA-Sharing-1.0; the weights are shared under the
same terms. The code that made them is bitnet.c's.
CARD
echo "model-card: wrote $OUT/README.md" >&2
