#!/bin/bash
# tests/cuda/device_run.sh [--hf] [--ncu] [--stamps] [--no-kbench] [--no-cli] — one full batch on a GPU machine: build the CUDA
# build, run the kernel and model tests, the kernel bandwidth bench and the end-to-end bench
# (2B-4T shapes: pp512, tg128 after 512 with the exact and q8 heads, batched decode 8/32/64,
# GPU memory at a 4k context), and with --hf transformers' BitNetForCausalLM on a
# make_2b4t_shaped.py checkpoint (same prompt), so both are measured in the same call; with
# --ncu a per-kernel time breakdown of one decode step (ncu, kernels serialized, no overlap);
# --stamps a profiling build (nvcc -DBN_MG_STAMPS, build-ts/, sm_90a only) whose --bench prints the one-kernel
# step's per-step marks; --no-kbench skips the kernel bandwidth bench (bench_cuda), --no-cli the CLI checks, to save device time.
# Logs: one file per step, packed into $OUT/logs.tgz (default OUT ./device-out); a summary is
# printed at the end.
# Extra make arguments come from $MAKEARGS (e.g. the PKG_CFLAGS/PKG_LIBS of a machine without
# cJSON/PCRE2 installed). Not: a CI step (CI only compiles the CUDA build).
set -u
OUT=${OUT:-device-out}
FINAL=$OUT; OUT=$OUT/logs; mkdir -p "$OUT"   # packed into $FINAL/logs.tgz at the end (one file)
HF=0; NCU=0; KB=1; CLI=1; TS=0
for a in "$@"; do case $a in --hf) HF=1;; --ncu) NCU=1;; --no-kbench) KB=0;; --no-cli) CLI=0;; --stamps) TS=1;; *) echo "usage: $0 [--hf] [--ncu] [--stamps] [--no-kbench] [--no-cli]" >&2; exit 2;; esac; done
B=build-cuda
step() { local name=$1; shift; local t0=$(date +%s.%N); "$@" >"$OUT/$name.log" 2>&1; local rc=$?
         printf "%-16s rc=%d %6.1fs\n" "$name" $rc "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" | tee -a "$OUT/summary.log"; return $rc; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv > "$OUT/gpu.log" 2>&1
step build make CUDA=1 -j"$(nproc)" ${MAKEARGS:-} $B/libbitnet.a $B/bitnet $B/tests/cuda/test_cuda $B/tests/cuda/test_cuda_model $B/tests/cuda/bench_cuda || { tail -30 "$OUT/build.log"; exit 1; }
step test_cuda $B/tests/cuda/test_cuda
[ $KB = 1 ] && step bench_cuda $B/tests/cuda/bench_cuda
step test_cuda_model $B/tests/cuda/test_cuda_model
step bench_model $B/tests/cuda/test_cuda_model --bench
[ $CLI = 1 ] && step cli bash -c "$B/bitnet info --devices; $B/bitnet bench --device cuda --synthetic 2b-4t -t 1 -r 2 -p 512 -n 128 -B 8 2>&1 | tail -20; $B/bitnet run -m tests/golden/bitnet-b158-packed --ids 1,2,3 -n 8 --temp 0 --print-ids --device cuda; BUILD=$B bash tests/device_cli.sh"
if [ $TS = 1 ]; then
    A='-gencode arch=compute_90a,code=sm_90a'
    step build_ts make CUDA=1 NCCL=0 -j"$(nproc)" ${MAKEARGS:-} BUILD=build-ts "CU_ARCH=$A" \
        "NVFLAGS=-O3 -std=c++17 $A -Xcompiler -fPIC,-fvisibility=hidden -Drestrict=__restrict__ -Iinclude -Isrc -DBN_MG_STAMPS" \
        build-ts/tests/cuda/test_cuda_model && step stamps build-ts/tests/cuda/test_cuda_model --bench
fi
if [ $NCU = 1 ]; then
    step ncu ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --print-units base \
        $B/tests/cuda/test_cuda_model --profile
    python3 - "$OUT/ncu.log" > "$OUT/ncu_sum.log" 2>&1 <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
h = rows[0]; k = h.index("Kernel Name"); v = h.index("Metric Value")
t = collections.defaultdict(lambda: [0, 0.0])
for r in rows[1:]:
    name = r[k].split("(")[0]; t[name][0] += 1; t[name][1] += float(r[v].replace(",", ""))
tot = sum(x[1] for x in t.values())
print(f"one decode step: {sum(x[0] for x in t.values())} kernels, {tot/1e3:.1f} us of kernel time (serialized)")
for name, (n, ns) in sorted(t.items(), key=lambda x: -x[1][1]):
    print(f"{ns/1e3:9.1f} us {n:4d} x {ns/n/1e3:7.2f} us  {name}")
PY
fi
if [ $HF = 1 ]; then
    D=${TMPDIR:-/tmp}/bitnet-2b4t-shaped
    step make_ckpt python3 tests/tools/make_2b4t_shaped.py "$D"
    step bench_ckpt $B/tests/cuda/test_cuda_model --bench "$D"
    PYTHONUNBUFFERED=1 step hf_bench python3 tests/cuda/hf_bench.py "$D"
fi
echo "== summary"; cat "$OUT/summary.log"
grep -h -E "^(FAIL|#.*passed|.*passed, .*failed)" "$OUT"/test_cuda*.log | tail -20
grep -h -E "passed|failed" "$OUT"/test_cuda.log "$OUT"/test_cuda_model.log | tail -4
[ $KB = 1 ] && cat "$OUT/bench_cuda.log"
cat "$OUT/bench_model.log"
[ -f "$OUT/cli.log" ] && tail -12 "$OUT/cli.log"
[ $NCU = 1 ] && cat "$OUT/ncu_sum.log"
[ -f "$OUT/stamps.log" ] && grep -A7 "^stamps" "$OUT/stamps.log"
[ $HF = 1 ] && cat "$OUT/bench_ckpt.log" "$OUT/hf_bench.log"
tar czf "$FINAL/logs.tgz" -C "$FINAL" logs && rm -rf "$OUT"
exit 0
