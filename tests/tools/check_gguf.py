#!/usr/bin/env python3
"""check_gguf.py — optional reverse check of `bitnet convert` output (not run by `make test`):
reads OUT.gguf with llama.cpp's gguf-py (GGUFReader), dequantizes every BitLinear weight with
gguf.quants and compares it with the golden model's ternary weights x scale (packed: the 2B-4T
codes x weight_scale; master / 1bitLLM: the loader's absmean ternarization).

usage: python3 tests/tools/check_gguf.py OUT.gguf GOLDEN_DIR     (needs numpy and gguf)
Exit status 1 on any difference. I2_S (type 36) is unknown to gguf-py: use tq1_0 / tq2_0 files.
"""
import os
import sys

import numpy as np
import gguf
from gguf import quants

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_gguf as mg  # noqa: E402


def main():
    path, gold = sys.argv[1], sys.argv[2]
    r = gguf.GGUFReader(path)
    t = {x.name: x for x in r.tensors}
    cfg = __import__("json").load(open(os.path.join(gold, "config.json")))
    st = mg.read_st(os.path.join(gold, "model.safetensors"))
    bad = n = 0
    for base, (q, s) in mg.model_linears(gold, st, cfg).items():
        w = t[base + ".weight"]
        x = quants.dequantize(w.data, w.tensor_type).astype(np.float32).reshape(q.shape)
        if base + ".scale" in t:
            x = x * np.float32(t[base + ".scale"].data.reshape(-1)[0])
        want = q.astype(np.float32) * np.float32(s)
        n += 1
        if not np.array_equal(x, want):
            bad += 1
            print(f"{base}: {w.tensor_type.name} differs (max |d| {np.abs(x - want).max():g})")
    print(f"{path}: {n - bad} of {n} BitLinear weights equal ternary x scale (gguf-py dequantize)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
