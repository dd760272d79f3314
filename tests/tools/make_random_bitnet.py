#!/usr/bin/env python3
"""make_random_bitnet.py — writes a BitNet b1.58 model folder of a chosen shape with random
ternary weights (packed uint8 + bf16 weight_scale, bf16 norms, tied bf16 embeddings) and the
tokenizer files of an existing model folder, so `bitnet serve` / `bitnet bench` can be measured
on a model larger than the bundled one (e.g. a memory-bound ~96M-parameter one). The output is
noise, not language. write_bitnet is also what make_2b4t_shaped.py writes with. Not: a checkpoint
converter or a test fixture.

Usage: make_random_bitnet.py OUT_DIR [--tokenizer-from models/bitnet-tinystories]
           [--hidden 1024] [--ffn 2560] [--layers 8] [--heads 16] [--kv-heads 4]
           [--act relu2|silu]   (needs numpy; --act: hidden_act, default the tokenizer folder's)"""
import argparse, json, os, shutil, struct
import numpy as np

def write_bitnet(out, cfg):
    """Write cfg as out/config.json and out/model.safetensors (temp + rename) with the 2B-4T file
    layout at cfg's shapes: random packed ternary weights (rng seed 0), scale 1, norms 1, tied bf16
    embeddings ~ N(0, 0.02). Returns (safetensors bytes, ternary parameter count)."""
    H, FF, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    NH, NKV, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    HD = H // NH
    os.makedirs(out, exist_ok=True)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    rng = np.random.default_rng(0)
    valid = np.array([p | q << 2 | r << 4 | s << 6 for p in range(3) for q in range(3)
                      for r in range(3) for s in range(3)], dtype=np.uint8)
    def bf16(shape, scale):
        x = (rng.standard_normal(shape, dtype=np.float32) * scale).view(np.uint32)
        return (x >> 16).astype(np.uint16).tobytes()
    ones = lambda d: np.full(d, 0x3f80, np.uint16).tobytes()
    tensors = [("model.embed_tokens.weight", "BF16", [V, H], lambda: bf16((V, H), 0.02)),
               ("model.norm.weight", "BF16", [H], lambda: ones(H))]
    for l in range(L):
        p = f"model.layers.{l}."
        for n, d in [("input_layernorm", H), ("post_attention_layernorm", H),
                     ("self_attn.attn_sub_norm", H), ("mlp.ffn_sub_norm", FF)]:
            tensors.append((p + n + ".weight", "BF16", [d], lambda d=d: ones(d)))
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
    tmp = os.path.join(out, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for n, dt, sh, gen in tensors:
            f.write(gen())
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    return off + 8 + len(h), L * (2 * H * H + 2 * NKV * HD * H + 3 * H * FF)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer-from", default="models/bitnet-tinystories")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=2560)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--act", choices=["relu2", "silu"])
    a = ap.parse_args()
    src = json.load(open(os.path.join(a.tokenizer_from, "config.json")))
    os.makedirs(a.out, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(a.tokenizer_from, f)):
            shutil.copyfile(os.path.join(a.tokenizer_from, f), os.path.join(a.out, f))
    cfg = dict(src, hidden_size=a.hidden, intermediate_size=a.ffn, num_hidden_layers=a.layers,
               num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, tie_word_embeddings=True)
    if a.act:
        cfg["hidden_act"] = a.act
    nbytes, nt = write_bitnet(a.out, cfg)
    print(f"{a.out}: {nt / 1e6:.1f}M ternary parameters, {nbytes} bytes")
