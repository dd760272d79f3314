#!/usr/bin/env python3
"""tests/cuda/hf_bench.py MODEL_DIR — the reference a user would try first: transformers'
BitNetForCausalLM in bf16 on the GPU, greedy decode of 128 tokens after a 512-token prompt
(the same prompt ids as test_cuda_model --bench), timed with CUDA syncs. Tries a static cache
first, then the default dynamic cache. Prints one line per mode. Not: a correctness check."""
import sys, time, torch, transformers
d = sys.argv[1]
m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).cuda().eval()
V = m.config.vocab_size
ids = torch.tensor([[(i * 7919 + 13) % V for i in range(512)]], device="cuda")
for mode in ["static", "dynamic"]:
    try:
        kw = dict(max_new_tokens=128, min_new_tokens=128, do_sample=False)
        if mode == "static": kw["cache_implementation"] = "static"
        m.generate(ids[:, :16], max_new_tokens=8, min_new_tokens=8, do_sample=False)  # warm-up
        torch.cuda.synchronize(); t0 = time.time()
        m.generate(ids[:, :1], max_new_tokens=1, min_new_tokens=1, do_sample=False)
        torch.cuda.synchronize(); t_one = time.time() - t0
        torch.cuda.synchronize(); t0 = time.time()
        out = m.generate(ids, **kw)
        torch.cuda.synchronize(); t = time.time() - t0
        t0 = time.time(); m(ids); torch.cuda.synchronize(); tpp = time.time() - t0
        n = out.shape[1] - 512
        print(f"transformers {transformers.__version__} BitNetForCausalLM bf16 {mode} cache: pp512 {512/tpp:.0f} tok/s, "
              f"generate 512+{n}: {t:.2f} s, decode ~{n/(t - tpp):.1f} tok/s", flush=True)
    except Exception as e:
        print(f"transformers {mode} cache failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
