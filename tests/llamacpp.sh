#!/usr/bin/env bash
# llamacpp.sh — optional: llama.cpp loads the GGUF files `bitnet convert` writes and computes the
# same model. Two ways to reach a llama.cpp, each skipped with the reason when absent (the
# default: building llama.cpp is not part of the suite; docs/GGUF.md "llama.cpp" says how):
#  1. the python package llama_cpp (llama-cpp-python): the 1bitLLM golden as TQ2_0 / TQ1_0
#     through tests/tools/llamacpp_check.py (greedy ids identical, mean|d| <= 0.25 std).
#  2. a llama.cpp build: LLAMA_CPP_DIR = its cmake build folder (or a source tree with build/ in
#     it), else a llama-cli / llama-simple on PATH installed with include/ and lib/ beside bin/.
#     tests/tools/llama_logits.c is compiled against its llama.h / libllama.so and run on:
#     - the 1bitLLM golden (arch `bitnet`, untied head) as TQ2_0 / TQ1_0: against the golden's
#       greedy ids and full logits, mean|d| <= 0.25 std, max <= 1.5 std (its 192-wide matrices
#       are stored F16 {-1,0,1}, which llama.cpp multiplies without quantizing activations);
#     - k256 (made here by tests/tools/make_random_bitnet.py: silu, tied, hidden = ffn = 256, so
#       every matrix is TQ and llama.cpp's Q8_K activation blocks (256 values) are exactly
#       BitNet's per-token int8 rows) as TQ2_0 / TQ1_0 / I2_S with an f32 head: against
#       `bitnet logits` of the same file, greedy ids identical and the goldens' bounds
#       (mean|d| <= 1e-2 std, max <= 0.25 std);
#     - the same model with relu2 (arch `bitnet-b1.58`, the 2B-4T family), and LLAMACPP_2B4T=DIR
#       (a 2B-4T-shaped folder, tests/tools/make_2b4t_shaped.py) as TQ2_0: the same comparison.
#     A build that refuses a file for a reason of its own (an architecture or tensor type it
#     does not have, a bitnet arch without a separate output tensor) gives a skip line quoting
#     llama.cpp; any other failure is a FAIL.
set -u
B=${BUILD:-build}/bitnet
G=tests/golden/bitnet-1bitllm
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# ---- 1. llama-cpp-python ----
if ! python3 -c "import numpy, llama_cpp" 2> /dev/null; then
    echo "skip llamacpp-python: the python package llama_cpp (pip install llama-cpp-python) is not installed"
else
    for ty in tq2_0 tq1_0; do
        "$B" convert $G "$T/m-$ty.gguf" --type $ty 2> "$T/e" || { echo "FAIL llama.cpp $ty: convert: $(cat "$T/e")"; continue; }
        out=$(python3 tests/tools/llamacpp_check.py "$T/m-$ty.gguf" $G 2>&1); rc=$?
        [ $rc -eq 0 ] && echo "ok llama.cpp runs our $ty file: $out" || echo "FAIL llama.cpp $ty: $out"
    done
fi

# ---- 2. a llama.cpp build ----
find_llama() {   # sets INC (include flags), LIBDIR, WHAT; returns 1 with WHY set
    local d=${LLAMA_CPP_DIR:-} src= b lib
    if [ -n "$d" ]; then
        [ -f "$d/CMakeCache.txt" ] || { [ -f "$d/build/CMakeCache.txt" ] && d=$d/build; }
        [ -f "$d/CMakeCache.txt" ] || { WHY="LLAMA_CPP_DIR=$d holds no CMakeCache.txt (give a llama.cpp cmake build folder)"; return 1; }
        src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$d/CMakeCache.txt")
        [ -f "$src/include/llama.h" ] || src=$(sed -n 's/^llama.cpp_SOURCE_DIR:STATIC=//p' "$d/CMakeCache.txt")
        local h=$(find "$src" -name llama.h -path '*include*' 2> /dev/null | head -n 1)
        lib=$(find "$d" -name 'libllama.so*' 2> /dev/null | head -n 1)
        [ -n "$h" ] && [ -n "$lib" ] || { WHY="no include/llama.h under $src or no libllama.so under $d (build with BUILD_SHARED_LIBS=ON)"; return 1; }
        INC="-I$(dirname "$h") -I$(dirname "$h")/../ggml/include"; LIBDIR=$(dirname "$lib"); WHAT="$d"
        return 0
    fi
    b=$(command -v llama-cli || command -v llama-simple) || { WHY="no LLAMA_CPP_DIR and no llama-cli / llama-simple on PATH"; return 1; }
    d=$(cd "$(dirname "$b")/.." && pwd)
    [ -f "$d/include/llama.h" ] && ls "$d"/lib*/libllama.so* > /dev/null 2>&1 ||
        { WHY="$b has no include/llama.h and lib/libllama.so beside it (set LLAMA_CPP_DIR to its build folder)"; return 1; }
    INC="-I$d/include"; LIBDIR=$(dirname "$(ls "$d"/lib*/libllama.so* | head -n 1)"); WHAT="$d"
}

# run_case NAME GGUF VOCAB NGEN PROMPT_IDS REF(golden dir | "ours") MEAN MAX
run_case() {
    local name=$1 f=$2 V=$3 ng=$4 ids=$5 ref=$6 mb=$7 xb=$8 got rc why rids reff
    got=$(LLAMA_LOGITS_VERBOSE=1 "$T/llama_logits" "$f" "$T/got.f32" "$V" "$ng" 2 ${ids//,/ } 2> "$T/le"); rc=$?
    if [ $rc -ne 0 ]; then
        why=$(grep -m1 -o -E "unknown model architecture: '[^']*'|wrong number of tensors[^\"]*|tensor '[^']*' (has invalid ggml type|of type) [0-9]+.*|invalid ggml type [0-9]+" "$T/le")
        if [ -n "$why" ]; then echo "skip llama.cpp $name: this llama.cpp does not load it: $why"
        else echo "FAIL llama.cpp $name: $(grep -v '^$' "$T/le" | tail -n 3 | tr '\n' ' ')"; fi
        return
    fi
    if [ "$ref" = ours ]; then
        local kv=f32; grep -q "f16 KV cache" "$T/le" && kv=f16
        "$B" logits -m "$f" --ids "$ids,$got" -o "$T/ref.f32" --kv $kv > /dev/null 2> "$T/be" ||
            { echo "FAIL llama.cpp $name: bitnet logits: $(cat "$T/be")"; return; }
        rids=argmax; reff=$T/ref.f32
    else
        rids=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["greedy_ids"])))' "$ref/golden.json")
        reff=$ref/golden_full_logits.f32
    fi
    local n=$(( $(tr -cd , <<< "$ids" | wc -c) + 1 ))
    out=$(python3 tests/tools/llamacpp_compare.py "$T/got.f32" "$reff" "$V" "$n" "$got" "$rids" "$mb" "$xb" 2>&1) &&
        echo "ok llama.cpp runs our $name file, logits vs ${ref##*/}$(grep -q "f16 KV cache" "$T/le" && echo " (f16 KV cache in both)"): $out" ||
        echo "FAIL llama.cpp $name: $out"
}

if ! python3 -c "import numpy" 2> /dev/null; then
    echo "skip llamacpp-build: numpy is not installed (the logits comparison needs it)"; exit 0
fi
if ! find_llama; then echo "skip llamacpp-build: $WHY"; exit 0; fi
cc -std=c11 -O1 -Wall -Wno-deprecated-declarations $INC tests/tools/llama_logits.c -o "$T/llama_logits" \
    -L"$LIBDIR" -lllama -Wl,-rpath,"$LIBDIR" 2> "$T/cc" ||
    { echo "FAIL llama.cpp: tests/tools/llama_logits.c does not build against $WHAT: $(head -n 5 "$T/cc")"; exit 0; }
echo "# llama.cpp build: $WHAT"

GP=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); print(",".join(map(str, g["prompt_ids"])), g["vocab_size"], len(g["greedy_ids"]))' $G/golden.json)
read -r gids gV gN <<< "$GP"
for ty in tq2_0 tq1_0; do
    "$B" convert $G "$T/g-$ty.gguf" --type $ty 2> "$T/e" || { echo "FAIL llama.cpp 1bitLLM $ty: convert: $(cat "$T/e")"; continue; }
    run_case "1bitLLM-golden-$ty (arch bitnet, untied)" "$T/g-$ty.gguf" "$gV" "$gN" "$gids" "$G" 0.25 1.5
done

P=2043,17,300,911,5,1400,77,1024,3,640
for act in silu relu2; do
    python3 tests/tools/make_random_bitnet.py "$T/k256-$act" --hidden 256 --ffn 256 --layers 2 --heads 4 \
        --kv-heads 2 --act $act > /dev/null 2> "$T/e" || { echo "FAIL llama.cpp: make_random_bitnet.py: $(tail -n 2 "$T/e")"; continue; }
    for ty in tq2_0 tq1_0 i2_s; do
        f=$T/k256-$act-$ty.gguf
        "$B" convert "$T/k256-$act" "$f" --type $ty --head f32 2> "$T/e" || { echo "FAIL llama.cpp k256 $act $ty: convert: $(cat "$T/e")"; continue; }
        run_case "k256-$act-$ty (arch $([ $act = silu ] && echo bitnet || echo bitnet-b1.58))" "$f" 2048 8 "$P" ours 1e-2 0.25
    done
    rm -rf "$T/k256-$act"
done
if [ -n "${LLAMACPP_2B4T:-}" ]; then
    "$B" convert "$LLAMACPP_2B4T" "$T/2b4t.gguf" --type tq2_0 --head f16 2> "$T/e" &&
        run_case "2B-4T-shaped-tq2_0 (arch bitnet-b1.58)" "$T/2b4t.gguf" 128256 4 128000,1000,2000,3000 ours 1e-2 0.25 ||
        echo "FAIL llama.cpp 2B-4T-shaped: convert: $(cat "$T/e")"
fi
