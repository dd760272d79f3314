#!/bin/bash
# tests/cuda/train_device_run.sh [--no-hf] [--no-tests] — one device call for the CUDA trainer
# (issue 12): build, the trainer tests (test_cuda_attn, test_cuda_train), the attention bench,
# bench_cuda_train at 125m and 1b in the default and fast precision with a per-op profile of
# the fast mode, and transformers' QAT reference eager and torch.compile at both
# shapes, so all speeds and the peak come from the same call. Logs: one file per step under
# $OUT (default ./train-out); a summary table is printed last. Extra make arguments from
# $MAKEARGS (e.g. PKG_CFLAGS/PKG_LIBS, CU_ARCH). Not: a CI step.
set -u
OUT=${OUT:-train-out}; mkdir -p "$OUT"
HF=1; TESTS=1
for a in "$@"; do case $a in --no-hf) HF=0;; --no-tests) TESTS=0;; *) echo "usage: $0 [--no-hf] [--no-tests]" >&2; exit 2;; esac; done
B=build-cuda
step() { local name=$1; shift; local t0=$(date +%s.%N); "$@" >"$OUT/$name.log" 2>&1; local rc=$?
         printf "%-22s rc=%d %6.1fs\n" "$name" $rc "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" | tee -a "$OUT/summary.log"; return $rc; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv > "$OUT/gpu.log" 2>&1
step build make CUDA=1 -j"$(nproc)" ${MAKEARGS:-} $B/libbitnet.a $B/tests/cuda/test_cuda_attn $B/tests/cuda/test_cuda_train $B/tests/cuda/bench_cuda_train || { tail -30 "$OUT/build.log"; exit 1; }
[ $TESTS = 1 ] && step test_cuda_attn $B/tests/cuda/test_cuda_attn
step bench_attn $B/tests/cuda/test_cuda_attn --bench
BENCH_STEPS=${BENCH_STEPS:-4} step bench_default $B/tests/cuda/bench_cuda_train 125m 1b
BENCH_STEPS=${BENCH_STEPS:-4} BENCH_PREC=fast BENCH_PROFILE=1 step bench_fast $B/tests/cuda/bench_cuda_train 125m 1b
[ $TESTS = 1 ] && step test_cuda_train $B/tests/cuda/test_cuda_train
if [ $HF = 1 ]; then
    for s in 125m 1b; do PYTHONUNBUFFERED=1 step hf_eager_$s timeout 90 python3 tests/cuda/hf_train_bench.py $s 0 4; done
    PYTHONUNBUFFERED=1 step hf_compile_125m timeout 100 python3 tests/cuda/hf_train_bench.py 125m 0 4 compile
    PYTHONUNBUFFERED=1 step hf_compile_1b timeout 130 python3 tests/cuda/hf_train_bench.py 1b 0 4 compile
fi
echo "== summary"; cat "$OUT/summary.log"
grep -h "FAIL\|passed,\|# real 20\|# golden\[fast\]\|# gpu\[" "$OUT"/test_cuda_*.log 2>/dev/null | head -40
grep -h "^bench attention" "$OUT/bench_attn.log"
for f in bench_default bench_fast; do echo "-- $f"; grep -h "^bench peak\|tokens/s\|phases" "$OUT/$f.log"; done
grep -h "^profile" "$OUT/bench_fast.log" | head -16
grep -h "transformers\|gradient check" "$OUT"/hf_*.log 2>/dev/null | cut -c1-400
