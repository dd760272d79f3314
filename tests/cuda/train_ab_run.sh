#!/bin/bash
# tests/cuda/train_ab_run.sh — one device call for issue 12's h41 A/B: build the trainer's GPU
# tests and bench, run test_cuda_attn and test_cuda_train, then bench_cuda_train 1b in the fast
# precision with the knobs $KA (the old paths) and $KB (the new ones, default "": the defaults)
# interleaved A B A B, and one BENCH_PROFILE=1 run of each. Logs under $OUT; a summary last.
# Extra make arguments from $MAKEARGS; NOBUILD=1: built already. TESTS=0 / PROF=0 skip those, PROFK=B
# profiles only B, HF=1 adds transformers' eager 1b reference (hf_train_bench.py). Not: a CI step.
set -u
OUT=${OUT:-train-out}; mkdir -p "$OUT"
B=build-cuda
KA=${KA:-rf=0,gf=0,vec=0,rmw=0,cf=0,ws=0}; KB=${KB:-}
step() { local name=$1; shift; local t0=$(date +%s.%N); "$@" >"$OUT/$name.log" 2>&1; local rc=$?
         printf "%-16s rc=%d %6.1fs\n" "$name" $rc "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" | tee -a "$OUT/summary.log"; return $rc; }
[ "${NOBUILD:-0}" = 1 ] || step build make CUDA=1 -j"$(nproc)" ${MAKEARGS:-} $B/libbitnet.a $B/tests/cuda/test_cuda_attn $B/tests/cuda/test_cuda_train $B/tests/cuda/bench_cuda_train || { tail -30 "$OUT/build.log"; exit 1; }
[ "${TESTS:-1}" = 1 ] && { step test_attn $B/tests/cuda/test_cuda_attn; step test_train $B/tests/cuda/test_cuda_train; }
for r in 1 2; do
    BENCH_STEPS=${BENCH_STEPS:-4} BENCH_PREC=fast BENCH_KNOBS=$KA step ab_A$r $B/tests/cuda/bench_cuda_train 1b
    BENCH_STEPS=${BENCH_STEPS:-4} BENCH_PREC=fast BENCH_KNOBS=$KB step ab_B$r $B/tests/cuda/bench_cuda_train 1b
done
[ "${PROF:-1}" = 1 ] && for k in ${PROFK:-A B}; do eval kn=\$K$k; BENCH_STEPS=2 BENCH_PREC=fast BENCH_PROFILE=1 BENCH_KNOBS=$kn step prof_$k $B/tests/cuda/bench_cuda_train 1b; done
[ "${HF:-0}" = 1 ] && PYTHONUNBUFFERED=1 step hf_eager_1b timeout 100 python3 tests/cuda/hf_train_bench.py 1b 0 4
echo "== summary"; cat "$OUT/summary.log"
grep -h "^FAIL\|passed,\|# real 20\|# golden\[fast\]\|# fa=2\|# gpu\[" "$OUT"/test_*.log 2>/dev/null | head -30
for f in "$OUT"/ab_*.log; do echo "-- $(basename $f .log): $(grep -h "^bench peak\|tokens/s" $f | tr '\n' ' ' | cut -c1-300)"; done
for k in ${PROFK:-A B}; do echo "-- prof_$k"; grep -h "^profile" "$OUT/prof_$k.log" 2>/dev/null | head -40; done
grep -h "transformers\|gradient check" "$OUT"/hf_*.log 2>/dev/null | cut -c1-300
