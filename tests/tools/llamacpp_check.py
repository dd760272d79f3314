#!/usr/bin/env python3
"""llamacpp_check.py — optional differential check of `bitnet convert` output against llama.cpp
(through the llama-cpp-python package; not installed by default, never needed by `make test`):
loads OUT.gguf in llama.cpp, runs the golden prompt, and compares
  - the greedy continuation with golden.json's greedy_ids (must be identical), and
  - the prompt logits with golden_prompt_logits.f32 (reported: llama.cpp quantizes activations
    per 256-value block (Q8_K), not per token as BitNet does, so its logits are close, not equal;
    the bound is the goldens' "a real bug is off by more than 1 x std": mean|d| <= 0.25 std).
usage: llamacpp_check.py OUT.gguf GOLDEN_DIR    exit 0 ok, 1 mismatch, 77 llama_cpp missing.
Upstream llama.cpp knows the architecture "bitnet" (silu FFN, the 1bitLLM models): use it on
files made from bitnet-1bitllm; "bitnet-b1.58" (relu2, bitnet.cpp's name) is not upstream's."""
import json
import os
import sys

try:
    import numpy as np
    import llama_cpp
except ImportError as e:
    print(f"skip: {e.name} is not installed (pip install numpy llama-cpp-python)")
    sys.exit(77)


def main():
    path, gold = sys.argv[1], sys.argv[2]
    g = json.load(open(os.path.join(gold, "golden.json")))
    prompt, greedy, V = g["prompt_ids"], g["greedy_ids"], g["vocab_size"]
    llm = llama_cpp.Llama(model_path=path, n_ctx=len(prompt) + len(greedy) + 8, logits_all=True,
                          n_threads=2, verbose=False)
    llm.eval(prompt)
    got = np.array(llm.scores[: len(prompt), :V], dtype=np.float32)
    ref = np.fromfile(os.path.join(gold, "golden_prompt_logits.f32"), dtype=np.float32).reshape(len(prompt), V)
    sd = ref.std()
    mad, mx = np.abs(got - ref).mean() / sd, np.abs(got - ref).max() / sd
    ids = []
    nxt = int(np.argmax(got[-1]))
    for _ in range(len(greedy)):
        ids.append(nxt)
        llm.eval([nxt])
        nxt = int(np.argmax(np.array(llm.scores[llm.n_tokens - 1, :V])))
    same = ids == greedy
    print(f"{os.path.basename(path)}: llama.cpp prompt logits vs golden mean|d|/std {mad:.2e} max {mx:.2e}; "
          f"greedy ids {'identical' if same else 'differ: ' + str(ids) + ' vs ' + str(greedy)}")
    sys.exit(0 if same and mad <= 0.25 else 1)


if __name__ == "__main__":
    main()
