#!/usr/bin/env python3
"""Writes a model folder with the exact shapes and file layout of microsoft/bitnet-b1.58-2B-4T
(packed uint8 ternary weights + bf16 weight_scale, bf16 norms and tied embeddings) but random
values, so the loader and `bitnet info` can be measured at full size without the real
checkpoint. Usage: make_2b4t_shaped.py OUT_DIR [--tokenizer-from DIR [--tokenizer-only]]
(needs numpy; about 1.2 GB on disk; --tokenizer-only adds the tokenizer to an existing folder). --tokenizer-from (e.g. tests/golden/tokenizer-bpe-32k, a Llama-3-style
byte-level BPE) also writes OUT_DIR/tokenizer.json from DIR's, its added tokens moved to ids
128000.. and `<|reserved_special_token_N|>` up to id 128255, so the tokenizer has the 2B-4T's
128256 ids (ids 32000..127999 unused) and GGUF files made from the folder carry a vocabulary
llama.cpp accepts. Not a real tokenizer for the weights (they are noise)."""
import argparse, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_bitnet import write_bitnet

V = 128256


def write_tokenizer(out, src):
    """out/tokenizer.json = src/tokenizer.json with the added tokens renumbered from 128000 and
    reserved specials filling the ids up to V - 1 (temp file + rename)."""
    t = json.load(open(os.path.join(src, "tokenizer.json")))
    move = {a["id"]: 128000 + i for i, a in enumerate(t["added_tokens"])}
    for a in t["added_tokens"]:
        a["id"] = move[a["id"]]
    proto = dict(t["added_tokens"][0])
    for i in range(128000 + len(move), V):
        t["added_tokens"].append(dict(proto, id=i, content=f"<|reserved_special_token_{i - 128000}|>"))
    def fix(o):   # ids inside the post-processor's special_tokens
        if isinstance(o, dict):
            if "ids" in o and isinstance(o["ids"], list):
                o["ids"] = [move.get(x, x) for x in o["ids"]]
            for v in o.values():
                fix(v)
        elif isinstance(o, list):
            for v in o:
                fix(v)
    fix(t.get("post_processor"))
    tmp = os.path.join(out, "tokenizer.json.tmp")
    json.dump(t, open(tmp, "w"), ensure_ascii=False)
    os.replace(tmp, os.path.join(out, "tokenizer.json"))


ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--tokenizer-from")
ap.add_argument("--tokenizer-only", action="store_true")
a = ap.parse_args()
cfg = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": V,
       "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 30,
       "num_attention_heads": 20, "num_key_value_heads": 5, "max_position_embeddings": 4096,
       "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "relu2",
       "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
       "torch_dtype": "bfloat16",
       "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                               "quantization_mode": "offline"}}
if not (a.tokenizer_from and a.tokenizer_only):
    nbytes, _ = write_bitnet(a.out, cfg)
    print(a.out, nbytes, "bytes")
if a.tokenizer_from:
    write_tokenizer(a.out, a.tokenizer_from)
    print(a.out + "/tokenizer.json from", a.tokenizer_from)
