#!/usr/bin/env python3
"""tests/cuda/hf_grad_precision.py [DIR] [cuda|cpu] — how far transformers' own QAT reference (the
one hf_train_bench.py times: BitNetForCausalLM with online AutoBitLinear, bf16 autocast) is from
the float32 training golden: step-0 logits and every parameter's gradient, relative L2 against
DIR's golden_logits_step0.f32 / golden_grads_step0.safetensors (DIR defaults to
tests/golden/bitnet-b158-master), once in float32 (should reproduce the golden, ~1e-6) and once
under bf16 autocast. The numbers put the GPU trainer's precision modes (test_cuda_train's golden
lines) next to the reference they are timed against. Not: a test (nothing is bounded here)."""
import json, os, sys
import numpy as np, torch
from safetensors.numpy import load_file
from transformers import BitNetForCausalLM

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "golden", "bitnet-b158-master")
dev = sys.argv[2] if len(sys.argv) > 2 else ("cuda" if torch.cuda.is_available() else "cpu")
j = json.load(open(os.path.join(d, "golden_train.json")))
B, T = j["B"], j["T"]
tok = torch.from_numpy(np.fromfile(os.path.join(d, "golden_train_tokens.u32"), dtype=np.uint32).astype(np.int64))
ids, tg = tok[:-1].view(B, T).to(dev), tok[1:].reshape(B, T).to(dev)
gl = np.fromfile(os.path.join(d, "golden_logits_step0.f32"), dtype=np.float32)
gg = load_file(os.path.join(d, "golden_grads_step0.safetensors"))
def rel(a, b): return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-30))
for mode in ("float32", "bf16 autocast"):
    torch.manual_seed(0)
    m = BitNetForCausalLM.from_pretrained(d, torch_dtype=torch.float32).to(dev).train()
    with torch.autocast(dev, dtype=torch.bfloat16, enabled=mode != "float32"):
        out = m(input_ids=ids)
        loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(B * T, -1), tg.reshape(-1))
    loss.backward()
    el = rel(out.logits.detach().float().cpu().numpy().reshape(-1), gl)
    errs = {n: rel(p.grad.detach().float().cpu().numpy().reshape(-1), gg[n].reshape(-1)) for n, p in m.named_parameters() if n in gg}
    w = max(errs, key=errs.get)
    print(f"transformers {mode} on {dev}: loss {loss.item():.6f} (golden {j['losses'][0]:.6f}), step-0 logits rel L2 {el:.3g}, "
          f"gradients of {len(errs)} of {len(gg)} golden tensors: worst rel L2 {errs[w]:.3g} ({w}), median {float(np.median(list(errs.values()))):.3g}", flush=True)
