#!/usr/bin/env bash
# llamacpp.sh — optional: llama.cpp (llama-cpp-python) loads our TQ2_0 / TQ1_0 conversion of the
# 1bitLLM golden (architecture "bitnet", the one upstream llama.cpp has) and gives the golden's
# greedy ids, logits within the goldens' bug bound (tests/tools/llamacpp_check.py). Skipped, with
# the reason, when python3, numpy or llama_cpp is missing (the default: building llama.cpp from
# source is not part of the suite).
set -u
B=${BUILD:-build}/bitnet
G=tests/golden/bitnet-1bitllm
if ! python3 -c "import numpy, llama_cpp" 2> /dev/null; then
    echo "skip llamacpp: the python package llama_cpp (pip install llama-cpp-python) is not installed"; exit 0
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for ty in tq2_0 tq1_0; do
    "$B" convert $G "$T/m-$ty.gguf" --type $ty 2> "$T/e" || { echo "FAIL llama.cpp $ty: convert: $(cat "$T/e")"; continue; }
    out=$(python3 tests/tools/llamacpp_check.py "$T/m-$ty.gguf" $G 2>&1); rc=$?
    [ $rc -eq 0 ] && echo "ok llama.cpp runs our $ty file: $out" || echo "FAIL llama.cpp $ty: $out"
done
