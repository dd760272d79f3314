#!/usr/bin/env bash
# train.sh — drives `bitnet train` / `bitnet export`: bit-exact resume (N steps straight vs
# N/2 + resume + N/2, also across thread counts), --dump-grads vs the golden gradients' names,
# CLI errors (vocab mismatch, too-short data, NaN loss keeping the last checkpoint), outputs
# (metrics.csv, loss.svg, a checkpoint the trainer can re-init from). Writes only under a temp dir.
set -u
BUILD=${BUILD:-build}
BN=$BUILD/bitnet
D=$(mktemp -d /tmp/bn_train_sh.XXXXXX)
trap 'rm -rf "$D"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else fail "$name" "command failed: $*"; fi; }

cat > "$D/tiny.json" <<'J'
{"model_type":"bitnet","vocab_size":40,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
 "num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"rope_theta":10000.0,
 "rms_norm_eps":1e-5,"hidden_act":"relu2","tie_word_embeddings":true}
J
# token files: a repeating pattern (ids < 40), written with printf as uint32 LE
python3 - "$D" <<'P' 2>/dev/null || { for i in $(seq 0 2999); do v=$(( (i % 23) * 3 % 40 )); printf "\\x$(printf %02x $v)\\x00\\x00\\x00"; done > "$D/pat.u32"; cp "$D/pat.u32" "$D/val.u32"; printf '\x63\x00\x00\x00' >> "$D/bad.u32"; }
import struct, sys
d = sys.argv[1]
open(d + "/pat.u32", "wb").write(struct.pack("<3000I", *[(i % 23) * 3 % 40 for i in range(3000)]))
open(d + "/val.u32", "wb").write(struct.pack("<500I", *[(i % 23) * 3 % 40 for i in range(7, 507)]))
open(d + "/bad.u32", "wb").write(struct.pack("<300I", *([5] * 250 + [99] + [5] * 49)))
P
[ -f "$D/val.u32" ] || cp "$D/pat.u32" "$D/val.u32"
A="--config $D/tiny.json --data $D/pat.u32 --val $D/val.u32 --batch 2 --seq 16 --lr 3e-3 --lr-schedule two-stage --warmup 2 --clip 0.5 --wd 0.1 --accum 2 --eval-every 4"
losses() { grep -o 'step [0-9]*/[0-9]* | loss [0-9.]*'; }

$BN train $A --steps 10 -o "$D/a" 2>"$D/a.err" | losses > "$D/a.txt"
check "train: runs 10 steps" test "$(wc -l < "$D/a.txt")" -eq 10
$BN train $A --steps 10 -o "$D/b" --stop-after 5 2>/dev/null | losses > "$D/b.txt"
$BN train $A --steps 10 -o "$D/b" --resume -t 2 2>/dev/null | losses >> "$D/b.txt"
if cmp -s "$D/a.txt" "$D/b.txt"; then ok "train: 5 + resume + 5 steps give bit-identical losses to 10 straight"; else fail "train: resume is bit-exact" "$(diff "$D/a.txt" "$D/b.txt" | head -4)"; fi
# thread-count independence with several attention row blocks (T=100 > 64) and an odd split
B2="--config $D/tiny.json --data $D/pat.u32 --batch 2 --seq 100 --steps 3 --lr 3e-3 --clip 0.5"
$BN train $B2 -t 1 -o "$D/t1" 2>/dev/null | grep '^step' | cut -d'|' -f1-4 > "$D/t1.txt"
$BN train $B2 -t 3 -o "$D/t3" 2>/dev/null | grep '^step' | cut -d'|' -f1-4 > "$D/t3.txt"
if [ -s "$D/t1.txt" ] && cmp -s "$D/t1.txt" "$D/t3.txt" && cmp -s "$D/t1/model.safetensors" "$D/t3/model.safetensors"; then ok "train: 1 and 3 threads give bit-identical losses, grad norms and weights (T=100)"; else fail "train: thread-count independence" "$(diff "$D/t1.txt" "$D/t3.txt" | head -4)"; fi
check "train: metrics.csv has a header and 10 rows" test "$(grep -c '^[0-9]' "$D/b/metrics.csv")" -eq 10
check "train: metrics.csv has validation losses" grep -q '^8,[0-9.]*,[0-9.]' "$D/b/metrics.csv"
check "train: loss.svg is an SVG with two curves" test "$(grep -c '<polyline' "$D/b/loss.svg")" -eq 2
first=$(head -1 "$D/a.txt" | awk '{print $5}'); last=$(tail -1 "$D/a.txt" | awk '{print $5}')
check "train: loss falls ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}'
# the checkpoint is an HF master folder: train can start from it
check "train: --init from a checkpoint" $BN train --init "$D/a" --data "$D/pat.u32" --batch 2 --seq 16 --steps 1 -o "$D/c"
# --dump-grads on the golden model writes every parameter's gradient
G=${BITNET_GOLDEN:-tests/golden}/bitnet-b158-master
$BN train --init "$G" --data "$G/golden_train_tokens.u32" --batch 2 --seq 32 --steps 1 --lr 1e-3 --wd 0 --clip 0 --dump-grads "$D/grads.safetensors" -o "$D/g" > "$D/g.txt" 2>&1
check "train: --dump-grads writes a safetensors file" test -s "$D/grads.safetensors"
check "train: golden step-0 loss printed (6.9508)" grep -q 'loss 6.9508' "$D/g.txt"
check "train: dumped gradients name model.norm.weight" grep -q 'model.norm.weight' "$D/grads.safetensors"
# errors
$BN train --config "$D/tiny.json" --data "$D/bad.u32" --batch 2 --seq 16 --steps 1 -o "$D/e" > /dev/null 2> "$D/e.err"; rc=$?
check "train: vocab mismatch fails naming the file" test $rc -ne 0 -a -n "$(grep 'bad.u32' "$D/e.err" | grep vocabulary)"
$BN train --config "$D/tiny.json" --data "$D/val.u32" --batch 8 --seq 64 --steps 1 -o "$D/e" > /dev/null 2> "$D/e.err"; rc=$?
check "train: too-short data fails clearly" test $rc -ne 0 -a -n "$(grep 'too short' "$D/e.err")"
$BN train --config "$D/tiny.json" --data "$D/pat.u32" --batch 2 --seq 16 --steps 30 --lr 1e30 --clip 0 --wd 0 --save-every 1 -o "$D/n" > "$D/n.txt" 2> "$D/n.err"; rc=$?
check "train: NaN/inf loss stops with a clear error" test $rc -ne 0 -a -n "$(grep 'not finite' "$D/n.err")"
check "train: NaN stop names the last good checkpoint" grep -q 'last good checkpoint' "$D/n.err"
check "train: last good checkpoint resumes" $BN train --config "$D/tiny.json" --data "$D/pat.u32" --batch 2 --seq 16 --steps 1 -o "$D/n" --resume
# export of a trained checkpoint loads in the inference engine
check "export: --packed of a trained checkpoint" $BN export --packed "$D/a" "$D/p"
check "export: packed config is offline" grep -q '"offline"' "$D/p/config.json"
$BN export --packed "$D/nonexistent" "$D/p2" 2> "$D/x.err"; rc=$?
check "export: missing input is an error" test $rc -ne 0 -a -s "$D/x.err"
exit 0
