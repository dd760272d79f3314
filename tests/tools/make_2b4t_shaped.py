#!/usr/bin/env python3
"""Writes a model folder with the exact shapes and file layout of microsoft/bitnet-b1.58-2B-4T
(packed uint8 ternary weights + bf16 weight_scale, bf16 norms and tied embeddings) but random
values, so the loader and `bitnet info` can be measured at full size without the real
checkpoint. Usage: make_2b4t_shaped.py OUT_DIR   (needs numpy; about 1.2 GB on disk)."""
import json, os, struct, sys
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
H, FF, L, NH, NKV, V = 2560, 6912, 30, 20, 5, 128256
HD = H // NH
cfg = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": V,
       "hidden_size": H, "intermediate_size": FF, "num_hidden_layers": L,
       "num_attention_heads": NH, "num_key_value_heads": NKV, "max_position_embeddings": 4096,
       "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "relu2",
       "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
       "torch_dtype": "bfloat16",
       "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                               "quantization_mode": "offline"}}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
rng = np.random.default_rng(0)
valid = np.array([a | b << 2 | c << 4 | d << 6 for a in range(3) for b in range(3)
                  for c in range(3) for d in range(3)], dtype=np.uint8)
tensors = []  # (name, dtype, shape, generator)
def bf16(shape, scale):
    x = (rng.standard_normal(shape, dtype=np.float32) * scale).view(np.uint32)
    return (x >> 16).astype(np.uint16).tobytes()
tensors.append(("model.embed_tokens.weight", "BF16", [V, H], lambda: bf16((V, H), 0.02)))
tensors.append(("model.norm.weight", "BF16", [H], lambda: bf16((H,), 0) if False else np.full(H, 0x3f80, np.uint16).tobytes()))
for l in range(L):
    p = f"model.layers.{l}."
    for n, d in [("input_layernorm", H), ("post_attention_layernorm", H),
                 ("self_attn.attn_sub_norm", H), ("mlp.ffn_sub_norm", FF)]:
        tensors.append((p + n + ".weight", "BF16", [d], lambda d=d: np.full(d, 0x3f80, np.uint16).tobytes()))
    for n, o, i in [("self_attn.q_proj", H, H), ("self_attn.k_proj", NKV * HD, H),
                    ("self_attn.v_proj", NKV * HD, H), ("self_attn.o_proj", H, H),
                    ("mlp.gate_proj", FF, H), ("mlp.up_proj", FF, H), ("mlp.down_proj", H, FF)]:
        tensors.append((p + n + ".weight", "U8", [o // 4, i], lambda o=o, i=i: valid[rng.integers(0, 81, (o // 4) * i)].tobytes()))
        tensors.append((p + n + ".weight_scale", "BF16", [1], lambda: np.array([0x3f80], np.uint16).tobytes()))
size = {"BF16": 2, "U8": 1}
hdr, off = {"__metadata__": {"format": "pt"}}, 0
for n, dt, sh, _ in tensors:
    nb = int(np.prod(sh)) * size[dt]
    hdr[n] = {"dtype": dt, "shape": sh, "data_offsets": [off, off + nb]}
    off += nb
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for n, dt, sh, gen in tensors:
        f.write(gen())
print(out, off + 8 + len(h), "bytes")
