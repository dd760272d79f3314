#!/usr/bin/env bash
# train_dist.sh — `bitnet train` data parallel (--nproc N / RANK + WORLD_SIZE) and GPU <-> CPU
# checkpoints, through the CLI. Everywhere: the option errors (no GPU device, a batch that the
# ranks cannot split, half a RANK/WORLD_SIZE pair, --nproc with RANK set) are one clear message.
# With a GPU (BUILD=build-cuda on a CUDA machine): NCCL world size 1 (--nproc 1, and RANK=0
# WORLD_SIZE=1) gives bit-identical losses, weights and AdamW state to the GPU path without
# NCCL; 2 ranks on one GPU (NCCL refuses duplicate GPUs: a clear error, no hang, or it runs and
# matches); a GPU checkpoint resumes on the CPU and a CPU one on the GPU (and a non-NCCL one
# with --nproc 1, bit-exactly), and the GPU run exports to the packed layout that `bitnet run`
# runs on both devices. Writes only under a temp dir. Not: several GPUs (one H200 here).
set -u
BUILD=${BUILD:-build}
BN=$BUILD/bitnet
D=$(mktemp -d /tmp/bn_train_dist.XXXXXX)
trap 'rm -rf "$D"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "skip $1: $2"; }

cat > "$D/tiny.json" <<'J'
{"model_type":"bitnet","vocab_size":40,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
 "num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"rope_theta":10000.0,
 "rms_norm_eps":1e-5,"hidden_act":"relu2","tie_word_embeddings":true}
J
python3 - "$D" <<'P'
import struct, sys
d, x, ids = sys.argv[1], 7, []
for i in range(6000):
    x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
    ids.append((i % 23) * 3 % 40 if (x >> 60) < 12 else (x >> 33) % 40)
open(d + "/tok.u32", "wb").write(struct.pack("<6000I", *ids))
open(d + "/val.u32", "wb").write(struct.pack("<1000I", *ids[5000:]))
P
A="--config $D/tiny.json --data $D/tok.u32 --val $D/val.u32 --batch 4 --seq 32 --steps 20 --accum 2 --lr 3e-3 --warmup 2 --lr-schedule cosine --clip 0.5 --eval-every 10 --eval-batches 2 --seed 3 --force"
losses() { grep -o 'step [0-9]*/[0-9]* | loss [0-9.]*' "$1"; }
evals() { grep -o 'eval step [0-9]* | val_loss [0-9.]*' "$1"; }
err1() { # NAME WANT CMD...: exits non-zero with WANT in one short message
    local name=$1 want=$2; shift 2
    "$@" >"$D/o" 2>"$D/e"; local rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "$want" "$D/e" && [ "$(wc -l < "$D/e")" -le 3 ]; then ok "$name"; else fail "$name" "rc $rc: $(head -3 "$D/e")"; fi
}

err1 "dist: --nproc without a GPU device is refused" "runs on GPUs: pass --device cuda" $BN train $A --nproc 2 -o "$D/x"
err1 "dist: --batch not a multiple of --nproc is refused" "multiple of the 3 ranks" $BN train $A --nproc 3 --device cuda -o "$D/x"
err1 "dist: RANK without WORLD_SIZE is refused" "both RANK and WORLD_SIZE" env RANK=0 $BN train $A --device cuda -o "$D/x"
err1 "dist: --nproc with RANK set is refused" "--nproc starts the ranks itself" env RANK=0 WORLD_SIZE=1 $BN train $A --nproc 1 --device cuda -o "$D/x"
err1 "dist: a malformed WORLD_SIZE is refused" "WORLD_SIZE=two" env RANK=0 WORLD_SIZE=two $BN train $A --device cuda -o "$D/x"

if ! $BN info --devices 2>/dev/null | grep -q '^cuda:0 '; then
    skip "dist: GPU checks" "no CUDA device in this build or machine ($BN info --devices)"
    exit 0
fi
export NCCL_NVLS_ENABLE=0
# world size 1: NCCL in the loop gives the same bits as without it. The GPU trainer sums the
# embedding gradient with atomicAdd (train_cuda.cu), so two runs are bit-identical only when no
# token id repeats within a micro-batch: data 0..511 repeating, one window of 32 per micro-batch.
U="--config $D/u.json --data $D/seq.u32 --val $D/seq.u32 --batch 1 --seq 32 --steps 12 --accum 2 --lr 3e-3 --warmup 2 --lr-schedule cosine --clip 0.5 --eval-every 6 --eval-batches 2 --seed 3 --force --device cuda"
sed 's/"vocab_size":40/"vocab_size":512/' "$D/tiny.json" > "$D/u.json"
python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<8192I', *[i % 512 for i in range(8192)]))" "$D/seq.u32"
same() { [ "$(losses "$1.log" | wc -l)" -ge 10 ] && cmp -s <(losses "$1.log"; evals "$1.log") <(losses "$2.log"; evals "$2.log") &&
         cmp -s "$1/model.safetensors" "$2/model.safetensors" && cmp -s "$1/train_state.safetensors" "$2/train_state.safetensors"; }
for r in p1 p2; do $BN train $U -o "$D/$r" > "$D/$r.log" 2>&1 || fail "dist: GPU run $r" "$(tail -3 "$D/$r.log")"; done
$BN train $U --nproc 1 -o "$D/n1" > "$D/n1.log" 2>&1 || fail "dist: --nproc 1 run" "$(tail -3 "$D/n1.log")"
env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 BITNET_NCCL_ID_FILE="$D/id" $BN train $U -o "$D/e1" > "$D/e1.log" 2>&1 || fail "dist: RANK=0 WORLD_SIZE=1 run" "$(tail -3 "$D/e1.log")"
$BN train $U --stop-after 6 -o "$D/r1" > "$D/r1.log" 2>&1 && $BN train --resume -o "$D/r1" --device cuda --nproc 1 >> "$D/r1.log" 2>&1
grep -q "data parallel: 1 rank(s) over NCCL" "$D/n1.log" && ok "dist: --nproc 1 runs through NCCL" || fail "dist: --nproc 1 uses NCCL" "$(grep -i nccl "$D/n1.log" | head -2)"
if ! same "$D/p1" "$D/p2"; then
    skip "dist: NCCL world size 1 bit-identical" "two GPU runs without NCCL differ already ($(diff <(losses "$D/p1.log") <(losses "$D/p2.log") | head -2 | tr '\n' ' '))"
else
    for r in n1 e1; do
        same "$D/p1" "$D/$r" && ok "dist: NCCL world size 1 ($r) = the GPU path without NCCL (losses, weights, AdamW state bit-identical)" \
            || fail "dist: NCCL world size 1 ($r) bit-identical" "$(diff <(losses "$D/p1.log") <(losses "$D/$r.log") | head -4)"
    done
    cmp -s <(losses "$D/p1.log") <(losses "$D/r1.log") && cmp -s "$D/p1/model.safetensors" "$D/r1/model.safetensors" \
        && ok "dist: a GPU checkpoint resumes with --nproc 1 bit-exactly" || fail "dist: resume with --nproc 1" "$(diff <(losses "$D/p1.log") <(losses "$D/r1.log") | head -4)"
fi
# the same on ordinary data (repeated ids): the GPU path is not bit-reproducible there (the
# embedding gradient's atomicAdd), and QAT trajectories are chaotic (tests/golden/README.md): two
# plain GPU runs drift 1-2e-3 apart over these 20 steps and the drift grows with every rounding
# flip, so a bound on the whole run measures chaos, not NCCL. The bit-identical checks above are
# the proof for world size 1; here the first two steps are held to 1e-4 and the 20-step drifts
# are printed. relw A B [FROM TO]: worst relative loss difference over steps FROM..TO (default all).
relw() { paste <(losses "$1" | awk '{print $NF}') <(losses "$2" | awk '{print $NF}') |
         awk -v a="${3:-1}" -v b="${4:-20}" '{if(NR<a||NR>b)next; d=($1-$2)/$1; d=d<0?-d:d; if(d>m)m=d} END{print (NR==20)?m+0:1}'; }
$BN train $A --device cuda -o "$D/g" > "$D/g.log" 2>&1 || fail "dist: GPU run" "$(tail -3 "$D/g.log")"
$BN train $A --device cuda -o "$D/g2" > "$D/g2.log" 2>&1
$BN train $A --device cuda --nproc 1 -o "$D/gn" > "$D/gn.log" 2>&1
w=$(relw "$D/g.log" "$D/gn.log" 1 2)
awk "BEGIN{exit !($w < 1e-4)}" && ok "dist: --nproc 1 on ordinary data: steps 1-2 within 1e-4 of the GPU run (worst rel $w)" || fail "dist: --nproc 1 on ordinary data, steps 1-2" "worst rel $w"
echo "# ordinary data, 20 steps: --nproc 1 vs GPU worst rel $(relw "$D/g.log" "$D/gn.log"), GPU vs GPU $(relw "$D/g.log" "$D/g2.log") (chaos, not checked)"
# --precision fast (bf16 attention where the head size allows, bf16 LM head): step 1 (the same
# weights, one forward) within 1e-2 of the default run, and the run trains
$BN train $A --device cuda --precision fast -o "$D/gf" > "$D/gf.log" 2>&1 || fail "dist: GPU --precision fast run" "$(tail -3 "$D/gf.log")"
w=$(relw "$D/g.log" "$D/gf.log" 1 1); l1=$(losses "$D/gf.log" | head -1 | awk '{print $NF}'); l20=$(losses "$D/gf.log" | tail -1 | awk '{print $NF}')
awk "BEGIN{exit !($w < 1e-2 && $l20 < $l1)}" && ok "dist: --precision fast on the GPU: step 1 within 1e-2 of the default (rel $w), loss $l1 -> $l20" || fail "dist: --precision fast on the GPU" "step 1 rel $w, loss $l1 -> $l20"
# two ranks on one GPU
timeout 120 $BN train $A --device cuda:0 --nproc 2 -o "$D/n2" > "$D/n2.log" 2>&1; rc=$?
if [ $rc -eq 124 ]; then fail "dist: 2 ranks on one GPU" "hung (killed after 120 s)"
elif [ $rc -ne 0 ]; then
    msg=$(grep -i -m1 "nccl" "$D/n2.log")
    [ -n "$msg" ] && ok "dist: 2 ranks on one GPU: NCCL refuses, one clear error, no hang" || fail "dist: 2 ranks on one GPU" "rc $rc: $(tail -3 "$D/n2.log")"
    echo "# 2 ranks on one GPU: $msg"
else
    w=$(paste <(losses "$D/g.log" | awk '{print $NF}') <(losses "$D/n2.log" | awk '{print $NF}') | awk '{d=($1-$2)/$1; d=d<0?-d:d; if(d>m)m=d} END{print m+0}')
    awk "BEGIN{exit !($w < 1e-4)}" && ok "dist: 2 ranks on one GPU: losses = 1 rank of the doubled batch (worst rel $w)" || fail "dist: 2 ranks on one GPU" "worst rel $w"
fi
# GPU -> CPU and CPU -> GPU resume: the two steps after the resume (11-12: the loaded weights'
# forward, then one AdamW update from the loaded moments) within 2e-3 of the straight run on the
# device that wrote the checkpoint; the whole run's drift (chaotic, see above) is printed.
$BN train $A -t 2 -o "$D/c" > "$D/c.log" 2>&1
$BN train $A --device cuda --stop-after 10 -o "$D/gc" > "$D/gc.log" 2>&1 && $BN train --resume -o "$D/gc" -t 2 >> "$D/gc.log" 2>&1
$BN train $A -t 2 --stop-after 10 -o "$D/cg" > "$D/cg.log" 2>&1 && $BN train --resume -o "$D/cg" --device cuda >> "$D/cg.log" 2>&1
w=$(relw "$D/g.log" "$D/gc.log" 11 12); awk "BEGIN{exit !($w < 2e-3)}" && ok "dist: a GPU checkpoint resumes on the CPU (steps 11-12 worst rel $w vs the GPU run; 20 steps $(relw "$D/g.log" "$D/gc.log"))" || fail "dist: GPU -> CPU resume" "steps 11-12 worst rel $w: $(tail -2 "$D/gc.log")"
w=$(relw "$D/c.log" "$D/cg.log" 11 12); awk "BEGIN{exit !($w < 2e-3)}" && ok "dist: a CPU checkpoint resumes on the GPU (steps 11-12 worst rel $w vs the CPU run; 20 steps $(relw "$D/c.log" "$D/cg.log"))" || fail "dist: CPU -> GPU resume" "steps 11-12 worst rel $w: $(tail -2 "$D/cg.log")"
echo "# GPU vs CPU straight runs: worst rel $(relw "$D/g.log" "$D/c.log") over 20 steps"
# export the GPU run to the packed layout; bitnet run on both devices
if $BN export --packed --force "$D/g" "$D/gp" > "$D/x.log" 2>&1; then
    a=$($BN run -m "$D/gp" --ids 1,2,3 -n 8 --temp 0 --print-ids --ignore-eos -t 1 2>>"$D/x.log")
    b=$($BN run -m "$D/gp" --ids 1,2,3 -n 8 --temp 0 --print-ids --ignore-eos --device cuda 2>>"$D/x.log")
    [ "$(echo $a | wc -w)" -eq 8 ] && [ "$(echo $b | wc -w)" -eq 8 ] && ok "dist: the GPU-trained checkpoint exports packed and runs on the CPU and the GPU" \
        || fail "dist: export + run" "cpu '$a' gpu '$b': $(tail -3 "$D/x.log")"
    echo "# greedy ids cpu: $a | gpu: $b"
else fail "dist: export --packed of the GPU run" "$(tail -3 "$D/x.log")"; fi
