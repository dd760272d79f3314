#!/usr/bin/env python3
"""llamacpp_compare.py — compares the logits that tests/tools/llama_logits.c wrote (llama.cpp on
a GGUF file from `bitnet convert`) with reference logits: a golden's golden_full_logits.f32 or
`bitnet logits` of the same model over the same ids. Optional test tool (numpy); not a test by
itself — tests/llamacpp.sh calls it.

usage: llamacpp_compare.py GOT.f32 REF.f32 VOCAB N_PROMPT GOT_IDS REF_IDS [MEAN_BOUND MAX_BOUND]
  GOT.f32, REF.f32: float32 [rows, VOCAB]; the first N_PROMPT + len(GOT_IDS) rows are compared
  (REF may hold more). GOT_IDS: llama.cpp's greedy ids (comma-separated); REF_IDS: the
  reference's greedy ids, or "argmax" to take them from REF's rows N_PROMPT-1 .. (the argmax of
  each row, as a greedy decoder over those rows would pick).
  Pass: over all compared rows mean|d| <= MEAN_BOUND x std(REF) and max|d| <= MAX_BOUND x
  std(REF) (default 1e-2 and 0.25: the goldens' bounds, tests/golden/README.md "How close is
  close"), and the greedy ids identical — except, with "argmax" (REF computed over llama.cpp's
  own ids, so every row stays comparable), a near tie: where the ids differ, REF's logit of
  llama.cpp's pick is within MAX_BOUND x std of REF's top (a rounding flip, allowed by the same
  bound, can swap two near-equal logits). Prints one line; exit 0 pass, 1 fail."""
import sys
import numpy as np


def main():
    got_p, ref_p, V, npr, got_ids, ref_ids = sys.argv[1:7]
    mean_b = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-2
    max_b = float(sys.argv[8]) if len(sys.argv) > 8 else 0.25
    V, npr = int(V), int(npr)
    gids = [int(x) for x in got_ids.split(",") if x]
    got = np.fromfile(got_p, dtype=np.float32).reshape(-1, V)
    ref = np.fromfile(ref_p, dtype=np.float32).reshape(-1, V)
    n = npr + len(gids)
    if got.shape[0] < n or ref.shape[0] < n:
        print(f"too few rows: llama.cpp {got.shape[0]}, reference {ref.shape[0]}, need {n}")
        sys.exit(1)
    got, ref = got[:n], ref[:n]
    if ref_ids == "argmax":
        rids = [int(x) for x in ref[npr - 1:n - 1].argmax(axis=1)]
    else:
        rids = [int(x) for x in ref_ids.split(",") if x][:len(gids)]
    d = np.abs(got - ref)
    sd = float(ref.std())
    mad, mx = float(d.mean()) / sd, float(d.max()) / sd
    close = float((d.max(axis=1) <= 1e-3 * sd).mean()) * 100
    same = gids == rids
    ties = 0
    if not same and ref_ids == "argmax":   # each differing pick must be a near tie under REF
        rows = ref[npr - 1:n - 1]
        gap = [float(rows[i].max() - rows[i][g]) / sd for i, g in enumerate(gids) if g != rids[i]]
        ties = len(gap) if max(gap) <= max_b else -1
    ok = (same or ties > 0) and mad <= mean_b and mx <= max_b
    print(f"{n} rows: mean|d|/std {mad:.2e} (bound {mean_b:g}), max|d|/std {mx:.2e} (bound {max_b:g}), "
          f"rows within 1e-3 std {close:.0f}%; greedy ids "
          + ("identical" if same else f"{ties} of {len(gids)} differ, each a near tie (within {max_b:g} std of the top)"
             if ties > 0 else f"differ: llama.cpp {gids} vs {rids}"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
