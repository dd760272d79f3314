#!/usr/bin/env bash
# peers.sh — bitnet.c side by side with llama.cpp (TQ2_0) and bitnet.cpp (microsoft/BitNet, I2_S)
# on one 2B-4T-shaped model: pp512 and tg128 at 1 and 2 threads, every engine and thread count
# interleaved in each of ROUNDS rounds, medians printed as one table, plus the peak RSS of a
# tg-only run of each engine (/usr/bin/time -v; context = TG tokens, as llama-bench's) and the read bandwidth bitnet's bench probe
# measured in the same rounds.
#
# What it is not: a downloader. The peers' sources must already be on this machine (clones or
# mirrors of ggml-org/llama.cpp and microsoft/BitNet with its 3rdparty/llama.cpp); they are built
# here, in WORK (outside this repository), with cmake. An engine whose source is not given (or
# does not build) is left out of the table with the reason printed. Nothing is written into the
# repository.
#
# usage: scripts/peers.sh WORK [--llama SRC] [--bitnet-cpp SRC] [--model DIR] [--head exact|q4]
#   WORK         a scratch folder outside the repository (builds, GGUF files, logs)
#   --llama SRC  a llama.cpp source tree: built into WORK/llama.cpp-build, runs TQ2_0
#   --bitnet-cpp SRC  a microsoft/BitNet source tree (with 3rdparty/llama.cpp filled in): built into
#                WORK/bitnet.cpp-build with its x86 I2_S kernels, runs I2_S
#   --model DIR  the 2B-4T-shaped checkpoint (default WORK/model, made by
#                tests/tools/make_2b4t_shaped.py when missing)
#   --head q4    also quantize the peers' output/embedding tensor to Q4_0 and run bitnet with --head q4
# env: ROUNDS (3), PP (512), TG (128), THREADS ("1 2"), BITNET (build/bitnet),
#      BITNET_ISAS ("native": bitnet.c's best kernel set; e.g. "avx2 native" also times the avx2
#      set forced with `bench --isa avx2`), PEER_CMAKE_ARGS (extra cmake arguments for both
#      peers' builds, e.g. "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF" for AVX2 builds)
# GGUF files: each peer's own converter when it takes the checkpoint (llama.cpp's
# convert_hf_to_gguf.py --outtype tq2_0; bitnet.cpp's utils/convert-hf-to-gguf-bitnet.py --outtype
# i2_s), else `bitnet convert --type tq2_0|i2_s --head f16` (F16 head, as the peers' converters
# write it; the table says which was used). A peer whose source does not know the architecture
# `bitnet-b1.58` (the 2B-4T family) gets the same file renamed to `bitnet` by
# scripts/gguf_set_arch.py: same tensors and work per token, silu instead of relu2, so its output
# is not the model's; the table says so. The 1-minute load average is sampled before every
# measurement and printed with the table (the machine may be shared).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "peers: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: scripts/peers.sh WORK [--llama SRC] [--bitnet-cpp SRC] [--model DIR] [--head exact|q4]"
WORK=$1; shift
LLAMA_SRC= ; BCPP_SRC= ; MODEL= ; HEAD=exact
while [ $# -gt 0 ]; do
    case $1 in
        --llama) LLAMA_SRC=${2:?}; shift 2 ;;
        --bitnet-cpp) BCPP_SRC=${2:?}; shift 2 ;;
        --model) MODEL=${2:?}; shift 2 ;;
        --head) HEAD=${2:?}; shift 2 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
case $HEAD in exact|q4) ;; *) die "--head must be exact or q4" ;; esac
mkdir -p "$WORK" || die "cannot create $WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$ROOT"/*) die "WORK ($WORK) must be outside the repository ($ROOT)" ;; esac
ROUNDS=${ROUNDS:-3}; PP=${PP:-512}; TG=${TG:-128}; THREADS=${THREADS:-1 2}; BITNET_ISAS=${BITNET_ISAS:-native}
read -r -a PEER_CMAKE <<< "${PEER_CMAKE_ARGS:-}"
BITNET=${BITNET:-$ROOT/build/bitnet}
[ -x "$BITNET" ] || die "$BITNET not built (make)"
LOG=$WORK/log; mkdir -p "$LOG"
JOBS=$(nproc 2>/dev/null || echo 2)

# ---- the model ----
MODEL=${MODEL:-$WORK/model}
if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "peers: making the 2B-4T-shaped model in $MODEL" >&2
    python3 "$ROOT/tests/tools/make_2b4t_shaped.py" "$MODEL" --tokenizer-from "$ROOT/tests/golden/tokenizer-bpe-32k" > "$LOG/make_model.txt" 2>&1 || die "make_2b4t_shaped.py failed (see $LOG/make_model.txt)"
fi
if [ ! -f "$MODEL/tokenizer.json" ] && [ ! -f "$MODEL/tokenizer.model" ]; then   # llama.cpp needs a vocabulary in the GGUF
    python3 "$ROOT/tests/tools/make_2b4t_shaped.py" "$MODEL" --tokenizer-from "$ROOT/tests/golden/tokenizer-bpe-32k" --tokenizer-only > "$LOG/make_tok.txt" 2>&1 ||
        die "no tokenizer in $MODEL and make_2b4t_shaped.py --tokenizer-only failed (see $LOG/make_tok.txt)"
fi
ENGINES=
for i in $BITNET_ISAS; do ENGINES="$ENGINES $([ "$i" = native ] && echo bitnet || echo "bitnet@$i")"; done
declare -A GGUF CONV BENCH

# ---- builds (each only when its source is given) ----
build_peer() {   # NAME SRC BUILD_DIR CMAKE_ARGS...
    local name=$1 src=$2 dir=$3; shift 3
    [ -f "$src/CMakeLists.txt" ] || { echo "peers: $name: no CMakeLists.txt in $src: left out" >&2; return 1; }
    if [ ! -x "$dir/bin/llama-bench" ]; then
        echo "peers: building $name from $src into $dir (log $LOG/$name-build.txt)" >&2
        { cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF "${PEER_CMAKE[@]}" "$@" &&
          cmake --build "$dir" -j "$JOBS" --target llama-bench llama-quantize; } > "$LOG/$name-build.txt" 2>&1 ||
            { echo "peers: $name: build failed (see $LOG/$name-build.txt): left out" >&2; return 1; }
    fi
    [ -x "$dir/bin/llama-bench" ] || { echo "peers: $name: no llama-bench after the build: left out" >&2; return 1; }
}

convert() {   # NAME SRC OUT TYPE PEER_CONVERTER...  (SRC: the peer's source tree)
    local name=$1 src=$2 out=$3 type=$4; shift 4
    if [ $# -gt 0 ] && [ -f "$1" ] && python3 "$@" > "$LOG/$name-convert.txt" 2>&1 && [ -s "$out" ]; then
        CONV[$name]="its converter"; return 0
    fi
    CONV[$name]="bitnet convert --type $type --head f16"
    [ -s "$out" ] || "$BITNET" convert "$MODEL" "$out" --type "$type" --head f16 --force > "$LOG/$name-convert.txt" 2>&1 || return 1
    if ! grep -rqs '"bitnet-b1.58"' "$src/src" "$src/3rdparty/llama.cpp/src" && python3 - "$out" <<'PY'
import sys
b = open(sys.argv[1], "rb").read(1 << 16)
sys.exit(0 if b"bitnet-b1.58" in b else 1)
PY
    then
        python3 "$ROOT/scripts/gguf_set_arch.py" "$out" "${out%.gguf}-bitnet.gguf" bitnet >> "$LOG/$name-convert.txt" 2>&1 || return 1
        GGUF[$name]=${out%.gguf}-bitnet.gguf
        CONV[$name]="${CONV[$name]}, arch renamed bitnet-b1.58 -> bitnet (its llama.cpp lacks it; silu instead of relu2: timing only)"
    fi
}

if [ -n "$LLAMA_SRC" ] && build_peer llama.cpp "$LLAMA_SRC" "$WORK/llama.cpp-build"; then
    g=$WORK/$(basename "$MODEL")-llama-tq2_0.gguf; GGUF[llama.cpp]=$g
    if convert llama.cpp "$LLAMA_SRC" "$g" tq2_0 "$LLAMA_SRC/convert_hf_to_gguf.py" "$MODEL" --outtype tq2_0 --outfile "$g"; then
        ENGINES="$ENGINES llama.cpp"; BENCH[llama.cpp]=$WORK/llama.cpp-build/bin/llama-bench
    else echo "peers: llama.cpp: no TQ2_0 GGUF (see $LOG/llama.cpp-convert.txt): left out" >&2; fi
fi
if [ -n "$BCPP_SRC" ]; then
    [ -f "$BCPP_SRC/3rdparty/llama.cpp/CMakeLists.txt" ] || echo "peers: bitnet.cpp: $BCPP_SRC/3rdparty/llama.cpp is empty (its submodule): the build will fail" >&2
    if [ ! -f "$BCPP_SRC/include/bitnet-lut-kernels.h" ] && [ -f "$BCPP_SRC/preset_kernels/bitnet_b1_58-large/bitnet-lut-kernels-tl2.h" ]; then
        # its ggml build lists this generated header even for I2_S (whose build #if's its TL2 code
        # out); setup_env.py copies a preset the same way
        echo "peers: bitnet.cpp: copying preset_kernels/bitnet_b1_58-large/bitnet-lut-kernels-tl2.h to include/bitnet-lut-kernels.h in $BCPP_SRC" >&2
        cp "$BCPP_SRC/preset_kernels/bitnet_b1_58-large/bitnet-lut-kernels-tl2.h" "$BCPP_SRC/include/bitnet-lut-kernels.h"
    fi
    if build_peer bitnet.cpp "$BCPP_SRC" "$WORK/bitnet.cpp-build" -DBITNET_X86_TL2=OFF; then
        g=$WORK/$(basename "$MODEL")-bitnet-i2_s.gguf; GGUF[bitnet.cpp]=$g
        if convert bitnet.cpp "$BCPP_SRC" "$g" i2_s "$BCPP_SRC/utils/convert-hf-to-gguf-bitnet.py" "$MODEL" --outtype i2_s --outfile "$g"; then
            ENGINES="$ENGINES bitnet.cpp"; BENCH[bitnet.cpp]=$WORK/bitnet.cpp-build/bin/llama-bench
        else echo "peers: bitnet.cpp: no I2_S GGUF (see $LOG/bitnet.cpp-convert.txt): left out" >&2; fi
    fi
fi
if [ "$HEAD" = q4 ]; then   # the peers' token embedding / output in Q4_0 (tied: one tensor)
    for e in $ENGINES; do
        case $e in bitnet*) continue ;; esac
        q=${GGUF[$e]%.gguf}-q4head.gguf
        [ -s "$q" ] || "$(dirname "${BENCH[$e]}")/llama-quantize" --allow-requantize --token-embedding-type q4_0 --output-tensor-type q4_0 \
            "${GGUF[$e]}" "$q" "$([ "$e" = llama.cpp ] && echo TQ2_0 || echo I2_S)" 1 > "$LOG/$e-q4.txt" 2>&1 ||
            { echo "peers: $e: Q4_0 head quantize failed (see $LOG/$e-q4.txt)" >&2; continue; }
        GGUF[$e]=$q
    done
fi

# ---- one measurement: prints "tok/s" of TEST (pp|tg) for ENGINE at T threads ----
measure() {   # ENGINE TEST T -> tok/s on stdout ("" on failure)
    local e=$1 test=$2 t=$3 p=0 n=0
    [ "$test" = pp ] && p=$PP || n=$TG
    if [ "${e%@*}" = bitnet ]; then
        local isa=(); [ "$e" != bitnet ] && isa=(--isa "${e#bitnet@}")
        "$BITNET" bench -m "$MODEL" -t "$t" -p "$p" -n "$n" -r 1 --head "$HEAD" "${isa[@]}" --json 2> "$LOG/last.err" |
            python3 -c 'import sys,json
rows=[json.loads(l) for l in sys.stdin if l.startswith("{")]
r=[x for x in rows if x.get("test","").startswith(sys.argv[1])]
print("%.3f %.3f" % (r[0]["tokens_per_s"], r[0]["mem_gb_per_s"]) if r else "")' "$test"
    else
        "${BENCH[$e]}" -m "${GGUF[$e]}" -t "$t" -p "$p" -n "$n" -r 1 -o json 2> "$LOG/last.err" |
            python3 -c 'import sys,json
try: rows=json.load(sys.stdin)
except Exception: rows=[]
print("%.3f -" % rows[0]["avg_ts"] if rows else "")'
    fi
}

RES=$WORK/results.txt; : > "$RES"; : > "$WORK/load.txt"
for r in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
        for test in pp tg; do
            for e in $ENGINES; do
                read -r la _ < /proc/loadavg; echo "$la" >> "$WORK/load.txt"
                v=$(measure "$e" "$test" "$t")
                [ -n "$v" ] || { echo "peers: $e $test t=$t failed: $(tail -1 "$LOG/last.err")" >&2; continue; }
                echo "$e $test $t $r $v" >> "$RES"
                echo "peers: round $r  $e  $test  t=$t  $v" >&2
            done
        done
    done
done

# ---- peak RSS of a tg-only run ----
for e in $ENGINES; do
    case $e in bitnet@*) continue ;; esac   # the same memory as the native set
    # bitnet run (not bench: its 1 GiB read probe would count) with the context llama-bench uses (n_prompt + n_gen)
    if [ "$e" = bitnet ]; then cmd=("$BITNET" run -m "$MODEL" --ids 1 -n "$TG" -c "$((TG + 1))" --ignore-eos --print-ids -t 1)   # run has no --head: exact
    else cmd=("${BENCH[$e]}" -m "${GGUF[$e]}" -t 1 -p 0 -n "$TG" -r 1); fi
    /usr/bin/time -v "${cmd[@]}" > /dev/null 2> "$LOG/$e-rss.txt"
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$LOG/$e-rss.txt")
    echo "$e rss 0 0 ${kb:-0} -" >> "$RES"
done

# ---- the table ----
python3 - "$RES" "$PP" "$TG" "$HEAD" "$ENGINES" "${CONV[llama.cpp]:-}" "${CONV[bitnet.cpp]:-}" "$WORK/load.txt" <<'EOF'
import sys, statistics as st
res, pp, tg, head, engines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()
load = [float(x) for x in open(sys.argv[8]).read().split()]
conv = {"llama.cpp": sys.argv[6], "bitnet.cpp": sys.argv[7]}
v, mem, rss = {}, {}, {}
for line in open(res):
    e, test, t, r, a, b = line.split()
    if test == "rss": rss[e] = float(a) / 1024; continue
    v.setdefault((e, test, t), []).append(float(a))
    if b != "-": mem.setdefault(t, []).append(float(b))
ths = sorted({k[2] for k in v}, key=int)
med = lambda k: st.median(v[k]) if k in v else None
fmt = lambda x: "-" if x is None else "%.1f" % x
names = {"bitnet": "bitnet.c", "llama.cpp": "llama.cpp TQ2_0", "bitnet.cpp": "bitnet.cpp I2_S"}
names.update({e: "bitnet.c --isa " + e.split("@")[1] for e in engines if "@" in e})
print("| 2B-4T shape, head %s, medians of %d interleaved rounds | %s |" % (head, max(len(x) for x in v.values()) if v else 0, " | ".join(names[e] for e in engines)))
print("| --- |" + " --- |" * len(engines))
for test, n in (("pp", pp), ("tg", tg)):
    print("| %s%s, %s threads, tok/s | %s |" % (test, n, " / ".join(ths), " | ".join(" / ".join(fmt(med((e, test, t))) for t in ths) for e in engines)))
print("| peak RSS of a tg%s run, MiB (bitnet.c: exact head) | %s |" % (tg, " | ".join("%.0f" % rss[e] if rss.get(e) else "-" for e in engines)))
for t in ths:
    if t in mem: print("read bandwidth (bitnet bench probe) at %s thread(s): median %.1f GB/s" % (t, st.median(mem[t])))
for e in engines:
    if e in conv: print("%s GGUF made by: %s" % (e, conv.get(e) or "?"))
if load: print("1-min load average before each measurement: min %.1f, median %.1f, max %.1f (%d samples)" % (min(load), st.median(load), max(load), len(load)))
EOF
