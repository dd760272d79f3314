#!/usr/bin/env bash
# Writes models/bitnet-tinystories/README.md (the model card) from a default-model run's logs,
# so every number on the card comes from the recipe (scripts/default-model.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-build/default-model}
OUT=${OUT:-models/bitnet-tinystories}
B=build/bitnet
# Quality by `bitnet perplexity` / `bitnet eval` (docs/EVALUATION.md) on the validation split
# ($WORK/val.txt): llama-perplexity's method at the training length (256) and at the model's
# context (512), and the q8/q4 heads' KL against the exact head. `model-card.sh --quality` prints
# this section alone (it needs only $WORK/val.txt and the model).
quality() {
    local p256 p512 h out
    p256=$("$B" perplexity -m "$OUT" -f "$WORK/val.txt" -c 256 -t 2 2>/dev/null | sed -n 's/^Final estimate: PPL = //p')
    p512=$("$B" perplexity -m "$OUT" -f "$WORK/val.txt" -c 512 -t 2 --kl-base "$WORK/val512.kl" --force 2>/dev/null | sed -n 's/^Final estimate: PPL = //p')
    local ntok=$("$B" perplexity -m "$OUT" --kl "$WORK/val512.kl" 2>/dev/null | sed -n 's/^KL divergence against .* (\([0-9]*\) tokens.*/\1/p')
    echo "## Quality (\`bitnet perplexity\`, \`bitnet eval\`)"
    echo
    echo "Validation split (the held-out lines above), llama-perplexity's method (chunks of CTX tokens"
    echo "from BOS, the second half of each chunk scored; \`bitnet perplexity -m models/bitnet-tinystories -f val.txt -c CTX\`):"
    echo
    echo "| context | perplexity |"
    echo "| --- | --- |"
    echo "| 256 (the training length) | $p256 |"
    echo "| 512 (the model's maximum; positions past 256 were never trained) | $p512 |"
    echo
    echo "LM heads against the exact head (\`--kl-base\` with the exact head, then \`--kl --head q8|q4\`;"
    echo "context 512, $ntok scored tokens, KL over the base's top 64 tokens plus the rest as one bucket):"
    echo
    echo "| head | perplexity | ΔPPL | mean KL | 99% KL | max KL | same top-1 |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for h in q8 q4; do
        out=$("$B" perplexity -m "$OUT" --kl "$WORK/val512.kl" --head $h -t 2 2>/dev/null)
        f() { echo "$out" | sed -n "s/^$1 *: *\([-0-9.]*\).*/\1/p"; }
        echo "| $h | $(f 'Mean PPL(Q)') | $(f 'Delta PPL (Q - base)') | $(f 'Mean    KLD') | $(f '99.0%   KLD') | $(f 'Maximum KLD') | $(f 'Same top p') % |"
    done
    out=$("$B" eval -m "$OUT" --task tests/data/tinystories_mc.jsonl 2>/dev/null)
    echo
    echo "Multiple choice (\`bitnet eval\`, lm-eval-harness loglikelihoods) on the 20 hand-written TinyStories"
    echo "questions of tests/data/tinystories_mc.jsonl: $(echo "$out" | grep '^acc ' | tr -s ' '), $(echo "$out" | grep '^acc_norm' | tr -s ' ')."
}
if [ "${1:-}" = --quality ]; then quality; exit 0; fi
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

$(quality)

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
