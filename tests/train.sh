#!/usr/bin/env bash
# train.sh — drives `bitnet train` / `bitnet export`: bit-exact resume (N steps straight vs
# N/2 + resume + N/2, also across thread counts), --dump-grads vs the golden gradients' names,
# CLI errors (vocab mismatch, too-short data, NaN loss keeping the last checkpoint), outputs
# (metrics.csv, loss.svg, a checkpoint the trainer can re-init from); issue 9: option range checks,
# no overwrite without --resume/--force, stored options on --resume, --no-quant labelling (run and
# export refuse), SIGINT checkpoint, tokenizer carried through tokenizer-train -> train -> export
# -> run, text-as-data hints, loss.svg content. Writes only under a temp dir.
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
# --precision picks the GPU's rounding; the CPU trainer ignores it (same losses), a bad value is refused
$BN train $A --steps 10 -o "$D/pf" --precision fast 2>/dev/null | losses > "$D/pf.txt"
if cmp -s "$D/a.txt" "$D/pf.txt"; then ok "train: --precision fast on the CPU gives the default's losses"; else fail "train: --precision fast on the CPU" "$(diff "$D/a.txt" "$D/pf.txt" | head -4)"; fi
out=$($BN train $A --steps 10 -o "$D/pb" --precision half 2>&1); rc=$?
[ $rc -eq 2 ] && [[ "$out" == *"--precision must be one of default|fast|parity"* ]] && ok "train: a bad --precision is refused" || fail "train: bad --precision" "rc=$rc $out"
# thread-count independence with several attention row blocks (T=100 > 64) and an odd split
B2="--config $D/tiny.json --data $D/pat.u32 --batch 2 --seq 100 --steps 3 --lr 3e-3 --clip 0.5"
$BN train $B2 -t 1 -o "$D/t1" 2>/dev/null | grep '^step' | cut -d'|' -f1-4 > "$D/t1.txt"
$BN train $B2 -t 3 -o "$D/t3" 2>/dev/null | grep '^step' | cut -d'|' -f1-4 > "$D/t3.txt"
if [ -s "$D/t1.txt" ] && cmp -s "$D/t1.txt" "$D/t3.txt" && cmp -s "$D/t1/model.safetensors" "$D/t3/model.safetensors"; then ok "train: 1 and 3 threads give bit-identical losses, grad norms and weights (T=100)"; else fail "train: thread-count independence" "$(diff "$D/t1.txt" "$D/t3.txt" | head -4)"; fi
check "train: metrics.csv has a header and 10 rows" test "$(grep -c '^[0-9]' "$D/b/metrics.csv")" -eq 10
check "train: metrics.csv has validation losses" grep -q '^8,[0-9.]*,[0-9.]' "$D/b/metrics.csv"
check "train: loss.svg is an SVG with train and validation curves" grep -q 'polyline id="val"' "$D/b/loss.svg"
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
# (its weights already carry the 1e30 update, so the resumed step diverges again: only the load is checked)
$BN train --steps 31 -o "$D/n" --resume > /dev/null 2> "$D/n2.err"
check "train: last good checkpoint resumes" grep -q "resuming $D/n at step [1-9]" "$D/n2.err"
# export of a trained checkpoint loads in the inference engine
check "export: --packed of a trained checkpoint" $BN export --packed "$D/a" "$D/p"
check "export: packed config is offline" grep -q '"offline"' "$D/p/config.json"
$BN export --packed "$D/nonexistent" "$D/p2" 2> "$D/x.err"; rc=$?
check "export: missing input is an error" test $rc -ne 0 -a -s "$D/x.err"
# ---- issue 9 items ----
# 6: every numeric option is range-checked with one clear error, before anything is written
for bad in "--lr -1e-2" "--lr 0" "--lr nan" "--wd -5" "--beta1 2" "--beta2 1" "--clip -1" "--eps 0" "--eps inf" \
           "--batch 0" "--seq -3" "--steps -1" "--accum 0" "--warmup -1" "--eval-every -2" "--save-every -1" "--seed -5"; do
  $BN train --config "$D/tiny.json" --data "$D/pat.u32" $bad -o "$D/r6" > /dev/null 2> "$D/r6.err"; rc=$?
  opt=${bad%% *}
  check "train: $bad is refused naming the option" test $rc -eq 2 -a "$(grep -c -- "$opt" "$D/r6.err")" -ge 1 -a ! -e "$D/r6"
done
# 5: -o over an existing run refuses without --resume or --force, and leaves the run alone
cp "$D/a/model.safetensors" "$D/a_model.bak"
$BN train $A --steps 2 -o "$D/a" > /dev/null 2> "$D/r5.err"; rc=$?
check "train: -o over an existing run is refused" test $rc -ne 0 -a -n "$(grep 'already holds a run' "$D/r5.err" | grep -- --force)"
check "train: the refused run's checkpoint is untouched" cmp -s "$D/a/model.safetensors" "$D/a_model.bak"
mkdir -p "$D/f"; cp -r "$D/a/." "$D/f/"
check "train: --force starts over" $BN train $A --steps 2 --force -o "$D/f"
check "train: --force run has its own 2 metrics rows" test "$(grep -c '^[0-9]' "$D/f/metrics.csv")" -eq 2
# 3: --resume of a finished run says so (not a silent exit 0) and how to extend it
$BN train --resume -o "$D/a" > /dev/null 2> "$D/r3.err"; rc=$?
check "train: --resume of a finished run fails saying 'already at step 10 of 10'" test $rc -ne 0 -a -n "$(grep 'already at step 10 of 10' "$D/r3.err" | grep -- '--steps M')"
# 4: options are stored: a bare --resume continues bit-exactly with the stored options
$BN train $A --steps 10 -o "$D/s" --stop-after 5 2>/dev/null | losses > "$D/s.txt"
$BN train --resume -o "$D/s" 2> "$D/s.err" | losses >> "$D/s.txt"
if cmp -s "$D/a.txt" "$D/s.txt"; then ok "train: bare --resume (no options retyped) is bit-exact"; else fail "train: bare --resume is bit-exact" "$(diff "$D/a.txt" "$D/s.txt" | head -4)"; fi
check "train: bare --resume prints no option notes" test -z "$(grep '^note' "$D/s.err")"
$BN train --resume -o "$D/s" --steps 12 --lr 1e-3 2> "$D/s2.err" | losses > "$D/s2.txt"
check "train: --resume --steps 12 extends a finished run by 2 steps" test "$(wc -l < "$D/s2.txt")" -eq 2
check "train: a changed option on resume is applied with a note" grep -q 'note: --lr 0.001 replaces the run.s 0.003' "$D/s2.err"
check "train: the extended run's metrics keep the history (12 rows)" test "$(grep -c '^[0-9]' "$D/s/metrics.csv")" -eq 12
$BN train --resume -o "$D/s" --steps 14 --batch 4 > /dev/null 2> "$D/s3.err"; rc=$?
check "train: --batch change on resume is refused" test $rc -eq 2 -a -n "$(grep -- '--batch 4 differs from the run.s 2' "$D/s3.err")"
$BN train --resume -o "$D/s" --steps 14 --no-quant > /dev/null 2> "$D/s3.err"; rc=$?
check "train: --no-quant change on resume is refused" test $rc -eq 2 -a -n "$(grep -- '--no-quant 1 differs' "$D/s3.err")"
NQ="--config $D/tiny.json --data $D/pat.u32 --batch 2 --seq 16 --steps 4 --no-quant"
$BN train $NQ --stop-after 2 -o "$D/nq" > /dev/null 2>&1
$BN train --resume -o "$D/nq" > /dev/null 2> "$D/nq.err"
check "train: a --no-quant run resumed without the flag stays full precision" grep -q 'full precision' "$D/nq.err"
# 7: --no-quant checkpoints are labelled as such; run and export --packed refuse them
check "train: --no-quant config.json says full_precision" grep -q '"full_precision":[[:space:]]*true' "$D/nq/config.json"
check "train: --no-quant config.json has no quantization_config" test -z "$(grep quantization_config "$D/nq/config.json")"
check "train: master config.json says torch_dtype float32" grep -q '"torch_dtype":[[:space:]]*"float32"' "$D/nq/config.json"
check "train: QAT config.json keeps quantization_config" grep -q quantization_config "$D/a/config.json"
$BN run -m "$D/nq" --ids 1,2 -n 2 > /dev/null 2> "$D/nq_run.err"; rc=$?
check "run: a full-precision checkpoint is refused clearly" test $rc -ne 0 -a -n "$(grep 'full-precision checkpoint' "$D/nq_run.err" | grep 'ternary')"
$BN export --packed "$D/nq" "$D/nqp" 2> "$D/nq_x.err"; rc=$?
check "export: --packed refuses a full-precision checkpoint" test $rc -ne 0 -a -n "$(grep 'full-precision' "$D/nq_x.err" | grep -- --force)" -a ! -e "$D/nqp/model.safetensors"
check "export: --packed --force ternarizes it" $BN export --packed --force "$D/nq" "$D/nqp"
check "export: the forced export runs" $BN run -m "$D/nqp" --ids 1,2 -n 2
$BN export --packed "$D/a" "$D/nqp" 2> "$D/x2.err"; rc=$?
check "export: an existing OUT_DIR model is not overwritten without --force" test $rc -ne 0 -a -n "$(grep 'already holds a model' "$D/x2.err")"
# 11: SIGINT saves a checkpoint and exits; --resume without a checkpoint says so
# The signal is sent once the first step has printed (the handler is installed before the step
# loop; a fixed delay raced with slow starts under the sanitizers). The trainer's own sigaction
# replaces the SIG_IGN a background job inherits.
$BN train --config "$D/tiny.json" --data "$D/pat.u32" --batch 2 --seq 16 --steps 1000000 -o "$D/int" > "$D/int.out" 2> "$D/int.err" &
tpid=$!
for _ in $(seq 600); do grep -q '^step ' "$D/int.out" 2>/dev/null && break; kill -0 $tpid 2>/dev/null || break; sleep 0.1; done
kill -INT $tpid 2>/dev/null
for _ in $(seq 600); do kill -0 $tpid 2>/dev/null || break; sleep 0.1; done
kill -0 $tpid 2>/dev/null && kill -KILL $tpid
wait $tpid; rc=$?
k=$(grep -o 'checkpoint at step [0-9]*' "$D/int.err" | grep -o '[0-9]*$')
check "train: SIGINT exits 130 after saving a checkpoint" test $rc -eq 130 -a -n "$k" -a -s "$D/int/train_state.safetensors"
$BN train --resume -o "$D/int" --steps $((${k:-0} + 2)) 2>/dev/null | losses > "$D/int2.txt"
check "train: the interrupted run resumes from its step" test "$(wc -l < "$D/int2.txt")" -eq 2
mkdir -p "$D/empty"
$BN train --resume -o "$D/empty" > /dev/null 2> "$D/empty.err"; rc=$?
check "train: --resume without a checkpoint says 'no checkpoint in DIR'" test $rc -ne 0 -a -n "$(grep "no checkpoint in $D/empty" "$D/empty.err")"
# 19: a text file given as --data gets a tokenize-file hint
printf 'Once upon a time there was a little dog.\nIt liked to run in the park.\n' > "$D/story.txt"
printf 'abcd%.0s' $(seq 200) > "$D/story4.txt"
for f in story.txt story4.txt; do
  $BN train --config "$D/tiny.json" --data "$D/$f" --batch 2 --seq 16 -o "$D/tx" > /dev/null 2> "$D/tx.err"; rc=$?
  check "train: text --data ($f) suggests bitnet tokenize-file" test $rc -ne 0 -a -n "$(grep "$f" "$D/tx.err" | grep 'tokenize-file')"
done
# 19: tokenizer-train checks its output folder before training
$BN tokenizer-train --vocab 300 "$D/story.txt" -o "$D/nodir/tokenizer.json" > "$D/tt.out" 2> "$D/tt.err"; rc=$?
check "tokenizer-train: a missing output folder fails before training" test $rc -ne 0 -a -n "$(grep 'does not exist' "$D/tt.err")" -a -z "$(grep merges "$D/tt.err")"
# 12: tokenizer-train writes a starter config.json; train and export carry the tokenizer; the export runs
mkdir -p "$D/tok"
for i in $(seq 40); do cat "$D/story.txt"; done > "$D/corpus.txt"
$BN tokenizer-train --vocab 300 "$D/corpus.txt" -o "$D/tok/tokenizer.json" > /dev/null 2>&1
check "tokenizer-train: writes a starter config.json with the vocabulary size" grep -q '"vocab_size":[[:space:]]*300' "$D/tok/config.json"
$BN tokenize-file -m "$D/tok/tokenizer.json" "$D/corpus.txt" "$D/corpus.u32" > /dev/null 2>&1
check "train: --config from tokenizer-train's folder runs" $BN train --config "$D/tok/config.json" --data "$D/corpus.u32" --batch 1 --seq 16 --steps 2 -o "$D/e2e"
check "train: the tokenizer is copied into OUTDIR" cmp -s "$D/tok/tokenizer.json" "$D/e2e/tokenizer.json"
check "train: tokenizer_config.json too" test -s "$D/e2e/tokenizer_config.json"
sed 's/"vocab_size":40/"vocab_size":300/' "$D/tiny.json" > "$D/tiny300.json"
$BN train --config "$D/tiny300.json" --data "$D/corpus.u32" --tokenizer "$D/tok" --batch 1 --seq 16 --steps 1 -o "$D/e3" > /dev/null 2>&1
check "train: --tokenizer DIR copies it" cmp -s "$D/tok/tokenizer.json" "$D/e3/tokenizer.json"
$BN train --config "$D/tiny.json" --data "$D/pat.u32" --tokenizer "$D/tok" --batch 1 --seq 16 --steps 1 -o "$D/e4" > /dev/null 2> "$D/e4.err"; rc=$?
check "train: a tokenizer larger than the model's vocab_size is refused" test $rc -ne 0 -a -n "$(grep '300 tokens but the model.s vocab_size is 40' "$D/e4.err")"
$BN export --packed "$D/e2e" "$D/e2p" 2>/dev/null
check "export: carries the tokenizer" cmp -s "$D/tok/tokenizer.json" "$D/e2p/tokenizer.json"
check "run: the exported training output runs from text" $BN run -m "$D/e2p" -p "Once upon" -n 3
# 20: loss.svg: round x ticks (5-9), smoothed train loss, validation, lr curve
nt=$(grep -c 'class="xtick"' "$D/b/loss.svg")
check "train: loss.svg has 5-9 x ticks ($nt)" test "$nt" -ge 5 -a "$nt" -le 9
check "train: loss.svg has an EMA train curve" grep -q 'polyline id="train-ema"' "$D/b/loss.svg"
check "train: loss.svg has an lr curve" grep -q 'polyline id="lr"' "$D/b/loss.svg"
yl=$(grep -o 'class="ylabel"[^>]*>[^<]*' "$D/b/loss.svg" | sed 's/.*>//')
check "train: loss.svg loss labels are round ($(echo $yl))" test -n "$yl" -a -z "$(echo "$yl" | grep -v '^[0-9]*\(\.[0-9][05]\?\)\?$')"
exit 0
