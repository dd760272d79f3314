#!/usr/bin/env python3
"""tests/cuda/hf_train_bench.py SHAPE [B] [STEPS] [compile] — the QAT reference a user would try:
transformers' BitNetForCausalLM with every decoder nn.Linear replaced by its AutoBitLinear in
online mode (absmean ternary weights, absmax int8 activations, STE), float32 master weights,
bf16 autocast, torch.optim.AdamW (fused), grad clipping 1.0, random tokens. SHAPE is 125m or
1b, the shapes of bench_cuda_train.c. 'compile' wraps the model in torch.compile. Prints one
line: tokens/s and the 6N model TFLOP/s, then how many parameters got no gradient in one more
backward (0 expected). Not: a correctness check."""
import sys, time, torch, transformers
from transformers import BitNetConfig, BitNetForCausalLM
from transformers.integrations.bitnet import AutoBitLinear

shape = sys.argv[1]
B = int(sys.argv[2]) if len(sys.argv) > 2 and int(sys.argv[2]) > 0 else (16 if shape == "125m" else 8)
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
comp = len(sys.argv) > 4 and sys.argv[4] == "compile"
C, L, H, I = (768, 12, 12, 2048) if shape == "125m" else (2048, 18, 16, 5632)
T, V = 1024, 32000
cfg = BitNetConfig(vocab_size=V, hidden_size=C, intermediate_size=I, num_hidden_layers=L, num_attention_heads=H,
                   num_key_value_heads=H, max_position_embeddings=T, bos_token_id=None, eos_token_id=None, pad_token_id=None, hidden_act="relu2", tie_word_embeddings=True,
                   rms_norm_eps=1e-5, rope_theta=10000.0)
torch.manual_seed(0)
m = BitNetForCausalLM(cfg)
def swap(mod):
    for n, ch in mod.named_children():
        if isinstance(ch, torch.nn.Linear):
            q = AutoBitLinear(ch.in_features, ch.out_features, bias=False, online_quant=True)
            q.weight = ch.weight
            setattr(mod, n, q)
        else:
            swap(ch)
swap(m.model.layers)
m = m.cuda().train()
nmat = sum(p.numel() for n, p in m.named_parameters() if p.dim() == 2)   # tied: the embedding once = the head
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
fwd = torch.compile(m) if comp else m
ids = torch.randint(0, V, (B, T + 1), device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = fwd(input_ids=ids[:, :-1], labels=ids[:, 1:].contiguous()).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
    return loss
try:
    for _ in range(2): step()
    torch.cuda.synchronize(); t0 = time.time()
    for _ in range(steps): l = step()
    torch.cuda.synchronize(); dt = time.time() - t0
    tps = B * T * steps / dt
    print(f"transformers {transformers.__version__} torch {torch.__version__} BitNetForCausalLM QAT (AutoBitLinear online, bf16 autocast"
          f"{', torch.compile' if comp else ''}) {shape}: B {B} x T {T}: {dt/steps:.3f} s/step, {tps:.0f} tokens/s, "
          f"{6*nmat*tps/1e12:.1f} TFLOP/s model (6N, N={nmat/1e6:.1f}M), loss {l.item():.3f}, "
          f"max memory {torch.cuda.max_memory_allocated()/2**30:.1f} GiB", flush=True)
    # is every weight trained? (a compiled graph that drops the STE's weight gradients would run
    # faster than the GEMMs allow): parameters with no or an all-zero gradient after one backward
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = fwd(input_ids=ids[:, :-1], labels=ids[:, 1:].contiguous()).loss
    loss.backward()
    dead = [n for n, p in m.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    print(f"gradient check {shape}{' compile' if comp else ''}: {len(dead)} of {sum(1 for _ in m.parameters())} parameters "
          f"without a gradient{': ' + ', '.join(dead[:4]) if dead else ''}", flush=True)
except Exception as e:
    print(f"transformers QAT {shape}{' compile' if comp else ''} failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
