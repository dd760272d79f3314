#!/usr/bin/env python3
"""make_gguf.py — writes the small GGUF test files under tests/gguf/ from the golden models in
tests/golden/ (optional: the committed outputs are what `make test` reads; no Python is needed
to run the suite). Needs numpy and llama.cpp's gguf-py (`pip install gguf numpy`).

usage: python3 tests/tools/make_gguf.py [OUT_DIR]    (default tests/gguf)

What it writes (byte-deterministic):
  packed-tq2_0.gguf   bitnet-b158-packed, arch "bitnet-b1.58": linears with rows of a multiple of
                      256 as TQ2_0 with d = weight_scale (as llama.cpp's converter writes them),
                      ffn_down (rows of 704) as F16 values q * weight_scale; token_embd BF16, tied.
  packed-tq1_0.gguf   the same as TQ1_0 with d = 1 and the scale in a 1-element F32 tensor
                      "<name>.scale" (llama.cpp's bitnet wq_scale), ffn_down as I2_S (keeps the
                      file small); token_embd F16 (rounded: the one allowed difference).
  packed-i2_s.gguf    every linear I2_S (bitnet.cpp's x86 layout: 128-value blocks, f32 scale
                      after the codes); token_embd BF16.
  packed-i2_s-q6_k.gguf  the same with token_embd Q6_K (bitnet.cpp's --quant-embd): a quantized head.
  master-i2_s.gguf    bitnet-b158-master (f32 master weights ternarized here exactly as the
                      loader does: scale = (float)(sequential double sum |w| / n)), arch "bitnet-25",
                      token_embd F32.
  1bitllm-i2_s.gguf   bitnet-1bitllm (f16 latent weights), arch "bitnet" (silu), token_embd and
                      output F16 (as in the source: exact); tokenizer "llama" from tokenizer.model.
  tokenizer-bpe-32k.gguf   tokenizer.ggml.* only (gpt2, pre llama-bpe) from tokenizer-bpe-32k;
  tokenizer-bpe-nopre.gguf the same from tokenizer-bpe without tokenizer.ggml.pre (old files);
  tokenizer-spm-8k.gguf    tokenizer.ggml.* only (llama: tokens, scores, token_type) from tokenizer-spm-8k;
  quants.gguf         decoder cases: for each type, "t.<type>" and "t.<type>.ref" (F32, what
                      gguf-py's dequantize gives; for I2_S the ternary values times the scale,
                      in both bitnet.cpp layouts), and ternary TQ tensors "tern.<type>" with
                      "tern.<type>.q" (I8 values) and their scale in "tern.<type>.s".
Every file is read back with gguf-py's GGUFReader as a check of the writer.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GOLD = os.path.join(ROOT, "tests", "golden")
I2_S = 36
ALIGN = 32

# ---------------------------------------------------------------- a minimal GGUF v3 writer
GV = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8,
      "arr": 9, "u64": 10, "i64": 11, "f64": 12}
FMT = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "f32": "<f",
       "bool": "<B", "u64": "<Q", "i64": "<q", "f64": "<d"}


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == "str":
        return gstr(v)
    if t.startswith("arr:"):
        et = t[4:]
        out = struct.pack("<IQ", GV[et], len(v))
        return out + b"".join(gstr(x) if et == "str" else struct.pack(FMT[et], x) for x in v)
    return struct.pack(FMT[t], v)


class Writer:
    def __init__(self, align=ALIGN):
        self.align = align
        self.kv = []      # (key, type, value)
        self.t = []       # (name, ggml dims, type, bytes)

    def add(self, key, t, v):
        self.kv.append((key, t, v))

    def tensor(self, name, dims, ttype, data):
        self.t.append((name, list(dims), int(ttype), bytes(data)))

    def bytes(self):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.t), len(self.kv)))
        for k, t, v in self.kv:
            out += gstr(k) + struct.pack("<I", GV["arr"] if t.startswith("arr:") else GV[t]) + gval(t, v)
        off = 0
        for name, dims, tt, data in self.t:
            out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", tt, off)
            off += (len(data) + self.align - 1) // self.align * self.align
        out += b"\0" * ((-len(out)) % self.align)
        for _, _, _, data in self.t:
            out += data + b"\0" * ((-len(data)) % self.align)
        return bytes(out)

    def save(self, path):
        with open(path + ".tmp", "wb") as f:
            f.write(self.bytes())
        os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- encoders
def i2s_bytes(q, scale, block=128):
    """bitnet.cpp's I2_S: codes q+1 in blocks of `block` values (block/4 bytes): value j of a
    block at byte j % (block/4), bits 6 - 2*(j // (block/4)); then the f32 scale and 28 zeros."""
    q = np.asarray(q, dtype=np.int8).reshape(-1)
    assert q.size % block == 0
    g = block // 4
    c = (q.astype(np.uint8) + 1).reshape(-1, 4, g)
    packed = (c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]
    return packed.astype(np.uint8).tobytes() + struct.pack("<f", float(scale)) + b"\0" * 28


def q6_k_bytes(x):
    """A plain Q6_K encoder (gguf-py has only the decoder): per 16-value group an int8 scale of
    the superblock's fp16 d, 6-bit values q + 32 split into ql (low 4) and qh (high 2)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, 256)
    out = bytearray()
    for blk in x:
        g = blk.reshape(16, 16)
        amax = np.abs(g).max(axis=1)
        gscale = amax / 31.0
        d = np.float16(gscale.max() / 127.0 if gscale.max() > 0 else 0.0)
        df = np.float32(d)
        sc = np.zeros(16, np.int8) if df == 0 else np.clip(np.rint(gscale / df), -128, 127).astype(np.int8)
        L = np.zeros(256, np.int32)
        for i in range(16):
            s = df * np.float32(sc[i])
            if s != 0:
                L[16 * i:16 * i + 16] = np.clip(np.rint(g[i] / s), -32, 31).astype(np.int32)
        u = (L + 32).astype(np.uint8)
        ql = np.zeros(128, np.uint8)
        qh = np.zeros(64, np.uint8)
        for n in range(2):
            v = u[128 * n:128 * n + 128]
            for l in range(32):
                ql[64 * n + l] = (v[l] & 15) | ((v[l + 64] & 15) << 4)
                ql[64 * n + l + 32] = (v[l + 32] & 15) | ((v[l + 96] & 15) << 4)
                qh[32 * n + l] = (v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6)
        out += ql.tobytes() + qh.tobytes() + sc.tobytes() + d.tobytes()
    return bytes(out)


def quant_bytes(x, t):
    if t == T.Q6_K:
        return q6_k_bytes(x)
    return quants.quantize(np.asarray(x, dtype=np.float32), t).tobytes()


def f32b(x):
    return np.asarray(x, dtype=np.float32).tobytes()


def bf16b(x):
    """float32 -> bf16 round-to-nearest-even (exact for values that came from bf16)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r.tobytes()


# ---------------------------------------------------------------- safetensors (numpy only)
def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        dt = v["dtype"]
        if dt == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, np.float16).astype(np.float32)
        elif dt == "F32":
            a = np.frombuffer(raw, np.float32).copy()
        elif dt == "U8":
            a = np.frombuffer(raw, np.uint8).copy()
        else:
            raise SystemExit(f"{path}: dtype {dt}")
        out[k] = a.reshape(v["shape"])
    return out


def unpack_2b4t(p):
    r4, cols = p.shape
    q = np.zeros((4 * r4, cols), np.int8)
    for k in range(4):
        q[k * r4:(k + 1) * r4] = ((p >> (2 * k)) & 3).astype(np.int8) - 1
    return q


def ternarize(w):
    """The loader's absmean: scale = (float)(sequential double sum |w| / n), q = clamp(rint(w / scale))."""
    w = np.asarray(w, dtype=np.float32)
    s = np.cumsum(np.abs(w).astype(np.float64).reshape(-1))[-1]
    mean = np.float32(s / w.size)
    mean = max(mean, np.float32(1e-5))
    g = np.float32(1.0) / mean
    q = np.clip(np.rint(w * g), -1, 1).astype(np.int8)
    return q, np.float32(mean)


SLOTS = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
         ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
         ("ffn_down", "mlp.down_proj")]


def model_linears(folder, st, cfg):
    """{gguf base name: (q int8 [out, in], f32 scale)} for every BitLinear of the golden model."""
    out = {}
    for l in range(cfg["num_hidden_layers"]):
        for g, h in SLOTS:
            key = f"model.layers.{l}.{h}.weight"
            w = st[key]
            if w.dtype == np.uint8:
                q, s = unpack_2b4t(w), np.float32(st[key + "_scale"].reshape(-1)[0])
            else:
                q, s = ternarize(w)
            out[f"blk.{l}.{g}"] = (q, s)
    return out


def norms(st, cfg, onebit):
    sub_a = "inner_attn_ln" if onebit else "attn_sub_norm"
    sub_f = "ffn_layernorm" if onebit else "ffn_sub_norm"
    out = {"output_norm": st["model.norm.weight"]}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out[f"blk.{l}.attn_norm"] = st[p + "input_layernorm.weight"]
        out[f"blk.{l}.ffn_norm"] = st[p + "post_attention_layernorm.weight"]
        out[f"blk.{l}.attn_sub_norm"] = st[p + f"self_attn.{sub_a}.weight"]
        out[f"blk.{l}.ffn_sub_norm"] = st[p + f"mlp.{sub_f}.weight"]
    return out


def hparams(w, arch, cfg):
    w.add("general.architecture", "str", arch)
    w.add("general.name", "str", "bitnet.c test model")
    w.add("general.alignment", "u32", ALIGN)
    w.add(f"{arch}.vocab_size", "u32", cfg["vocab_size"])
    w.add(f"{arch}.context_length", "u32", cfg["max_position_embeddings"])
    w.add(f"{arch}.embedding_length", "u32", cfg["hidden_size"])
    w.add(f"{arch}.block_count", "u32", cfg["num_hidden_layers"])
    w.add(f"{arch}.feed_forward_length", "u32", cfg["intermediate_size"])
    w.add(f"{arch}.attention.head_count", "u32", cfg["num_attention_heads"])
    w.add(f"{arch}.attention.head_count_kv", "u32", cfg["num_key_value_heads"])
    w.add(f"{arch}.rope.freq_base", "f32", float(cfg["rope_theta"]))
    w.add(f"{arch}.rope.dimension_count", "u32", cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", "f32", float(cfg["rms_norm_eps"]))


def bpe_tokenizer(w, folder, pre=True):
    """tokenizer.ggml.* (gpt2 / llama-bpe) from a byte-level BPE tokenizer.json."""
    tj = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    special = set()
    for a in tj.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
        if a.get("special"):
            special.add(a["id"])
    n = max(vocab.values()) + 1
    toks = [""] * n
    for k, i in vocab.items():
        toks[i] = k
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    cp = os.path.join(folder, "config.json")
    cfg = json.load(open(cp)) if os.path.exists(cp) else {
        "bos_token_id": vocab["<|begin_of_text|>"], "eos_token_id": vocab["<|end_of_text|>"]}
    w.add("tokenizer.ggml.model", "str", "gpt2")
    if pre:
        w.add("tokenizer.ggml.pre", "str", "llama-bpe")
    w.add("tokenizer.ggml.tokens", "arr:str", toks)
    w.add("tokenizer.ggml.token_type", "arr:i32", [3 if i in special else 1 for i in range(n)])
    w.add("tokenizer.ggml.merges", "arr:str", merges)
    w.add("tokenizer.ggml.bos_token_id", "u32", cfg["bos_token_id"])
    w.add("tokenizer.ggml.eos_token_id", "u32", cfg["eos_token_id"])


def _varint(b, i):
    x = sh = 0
    while True:
        c = b[i]; i += 1
        x |= (c & 0x7F) << sh; sh += 7
        if not c & 0x80:
            return x, i


def _fields(b):
    """(field, wire type, value) of a protobuf message (value: int, or bytes for type 2)."""
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        f, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 5:
            v = b[i:i + 4]; i += 4
        elif wt == 1:
            v = b[i:i + 8]; i += 8
        elif wt == 2:
            n, i = _varint(b, i)
            v = b[i:i + n]; i += n
        else:
            raise SystemExit("protobuf: wire type %d" % wt)
        yield f, wt, v


def spm_tokenizer(w, folder):
    """tokenizer.ggml.* (llama / SentencePiece) from a tokenizer.model, as llama.cpp's converter
    writes them: tokens, scores, token_type (the piece types), special ids, add_space_prefix."""
    b = open(os.path.join(folder, "tokenizer.model"), "rb").read()
    toks, scores, types = [], [], []
    ids = {"unk": 0, "bos": 1, "eos": 2}
    dummy = True
    for f, wt, v in _fields(b):
        if f == 1 and wt == 2:
            piece, score, ty = b"", 0.0, 1
            for g, wt2, x in _fields(v):
                if g == 1:
                    piece = x
                elif g == 2:
                    score = struct.unpack("<f", x)[0]
                elif g == 3:
                    ty = x
            toks.append(piece); scores.append(score); types.append(ty)
        elif f == 2 and wt == 2:
            for g, wt2, x in _fields(v):
                if g in (40, 41, 42) and wt2 == 0:
                    ids[{40: "unk", 41: "bos", 42: "eos"}[g]] = x if x < 2 ** 31 else x - 2 ** 64
        elif f == 3 and wt == 2:
            for g, wt2, x in _fields(v):
                if g == 3 and wt2 == 0:
                    dummy = bool(x)
    w.add("tokenizer.ggml.model", "str", "llama")
    w.add("tokenizer.ggml.tokens", "arr:str", toks)
    w.add("tokenizer.ggml.scores", "arr:f32", scores)
    w.add("tokenizer.ggml.token_type", "arr:i32", types)
    for k, v in ids.items():
        if v >= 0:
            w.add(f"tokenizer.ggml.{'unknown' if k == 'unk' else k}_token_id", "u32", v)
    w.add("tokenizer.ggml.add_space_prefix", "bool", int(dummy))


def make_model(out, name, folder, arch, lin_type, embd_type, tq_scale_tensor=False, tok=True):
    folder = os.path.join(GOLD, folder)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    st = read_st(os.path.join(folder, "model.safetensors"))
    onebit = cfg.get("model_type") == "llama"
    w = Writer()
    hparams(w, arch, cfg)
    if tok == "spm":
        spm_tokenizer(w, folder)
    elif tok:
        bpe_tokenizer(w, folder)
    emb = st["model.embed_tokens.weight"]
    V, H = emb.shape

    def float_tensor(nm, x, t):
        x = np.asarray(x, np.float32)
        dims = list(reversed(x.shape))
        if t == T.F32:
            w.tensor(nm, dims, T.F32, f32b(x))
        elif t == T.F16:
            w.tensor(nm, dims, T.F16, x.astype(np.float16).tobytes())
        elif t == T.BF16:
            w.tensor(nm, dims, T.BF16, bf16b(x))
        else:
            w.tensor(nm, dims, t, quant_bytes(x, t))

    float_tensor("token_embd.weight", emb, embd_type)
    for k, v in norms(st, cfg, onebit).items():
        float_tensor(k + ".weight", v, T.F32)
    if "lm_head.weight" in st:
        float_tensor("output.weight", st["lm_head.weight"], embd_type)
    for base, (q, s) in model_linears(folder, st, cfg).items():
        O, I = q.shape
        nm = base + ".weight"
        if lin_type == I2_S:
            w.tensor(nm, [I, O], I2_S, i2s_bytes(q, s))
        elif I % 256 == 0:
            if tq_scale_tensor:   # d = 1, the scale in a separate f32 tensor (exact)
                w.tensor(nm, [I, O], lin_type, quant_bytes(q.astype(np.float32), lin_type))
                w.tensor(base + ".scale", [1], T.F32, f32b([s]))
            else:                 # d = scale (fp16: exact for the bf16 scales of the packed model)
                assert np.float32(np.float16(s)) == s, f"{nm}: scale {s} is not exact in fp16"
                w.tensor(nm, [I, O], lin_type, quant_bytes(q.astype(np.float32) * s, lin_type))
        else:                     # rows not a multiple of 256: F16 ternary values (or I2_S, smaller)
            if tq_scale_tensor:
                w.tensor(nm, [I, O], I2_S, i2s_bytes(q, s))
            else:
                assert np.float32(np.float16(s)) == s
                w.tensor(nm, [I, O], T.F16, (q.astype(np.float32) * s).astype(np.float16).tobytes())
    path = os.path.join(out, name)
    w.save(path)
    return path


def make_tokenizer(out, name, folder, pre):
    """A GGUF file with only tokenizer metadata (no tensors)."""
    w = Writer()
    w.add("general.architecture", "str", "bitnet-b1.58")
    bpe_tokenizer(w, os.path.join(GOLD, folder), pre)
    path = os.path.join(out, name)
    w.save(path)
    return path


def make_spm_tokenizer(out, name, folder):
    w = Writer()
    w.add("general.architecture", "str", "bitnet")
    spm_tokenizer(w, os.path.join(GOLD, folder))
    path = os.path.join(out, name)
    w.save(path)
    return path


def make_quants(out):
    rng = np.random.default_rng(10)
    w = Writer(64)
    w.add("general.architecture", "str", "test")
    w.add("general.alignment", "u32", 64)
    # metadata of every type, for the getters
    w.add("test.u8", "u8", 200); w.add("test.i8", "i8", -100); w.add("test.u16", "u16", 60000)
    w.add("test.i16", "i16", -30000); w.add("test.u32", "u32", 4000000000); w.add("test.i32", "i32", -2000000000)
    w.add("test.u64", "u64", 2 ** 63 + 5); w.add("test.i64", "i64", -(2 ** 40)); w.add("test.f32", "f32", 0.25)
    w.add("test.f64", "f64", 1e300); w.add("test.bool", "bool", 1); w.add("test.str", "str", "caf\u00e9")
    w.add("test.arr_i32", "arr:i32", [1, -2, 3]); w.add("test.arr_f32", "arr:f32", [0.5, -1.5])
    w.add("test.arr_str", "arr:str", ["a", "", "\u00fcber"]); w.add("test.arr_empty", "arr:u8", [])
    x = (rng.standard_normal((2, 512)) * 0.05).astype(np.float32)
    x[0, 5] = 0.4   # an outlier
    for nm, t in [("f32", T.F32), ("f16", T.F16), ("bf16", T.BF16), ("q8_0", T.Q8_0), ("q4_0", T.Q4_0),
                  ("q6_k", T.Q6_K), ("tq1_0", T.TQ1_0), ("tq2_0", T.TQ2_0)]:
        if t == T.F32:
            raw = f32b(x)
        elif t == T.F16:
            raw = x.astype(np.float16).tobytes()
        elif t == T.BF16:
            raw = bf16b(x)
        else:
            raw = quant_bytes(x, t)
        ref = quants.dequantize(np.frombuffer(raw, np.uint8).reshape(2, -1), t).astype(np.float32)
        w.tensor(f"t.{nm}", [512, 2], t, raw)
        w.tensor(f"t.{nm}.ref", [512, 2], T.F32, f32b(ref))
    # ternary tensors: values q * s (s exact in fp16), one zero block in TQ2_0
    for nm, t in [("tq1_0", T.TQ1_0), ("tq2_0", T.TQ2_0)]:
        q = rng.integers(-1, 2, size=(4, 256)).astype(np.int8)
        if t == T.TQ2_0:
            q[2] = 0
        s = np.float32(np.float16(0.0371))
        w.tensor(f"tern.{nm}", [256, 4], t, quant_bytes(q.astype(np.float32) * s, t))
        w.tensor(f"tern.{nm}.q", [256, 4], 24, q.tobytes())  # I8 (type 24): read by the test only
        w.tensor(f"tern.{nm}.s", [1], T.F32, f32b([s]))
    q = rng.integers(-1, 2, size=(3, 128)).astype(np.int8)
    s = np.float32(0.0123456)
    for nm, blk in [("i2_s_x86", 128), ("i2_s_arm", 64)]:
        w.tensor(f"tern.{nm}", [128, 3], I2_S, i2s_bytes(q, s, blk))
        w.tensor(f"tern.{nm}.q", [128, 3], 24, q.tobytes())
        w.tensor(f"tern.{nm}.s", [1], T.F32, f32b([s]))
    path = os.path.join(out, "quants.gguf")
    w.save(path)
    return path


def check(path):
    """Read back with gguf-py (I2_S and I8 are listed by type number only)."""
    r = gguf.GGUFReader(path)
    return len(r.tensors), len(r.fields)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "gguf")
    os.makedirs(out, exist_ok=True)
    paths = [
        make_model(out, "packed-tq2_0.gguf", "bitnet-b158-packed", "bitnet-b1.58", T.TQ2_0, T.BF16),
        make_model(out, "packed-tq1_0.gguf", "bitnet-b158-packed", "bitnet-b1.58", T.TQ1_0, T.F16, tq_scale_tensor=True),
        make_model(out, "packed-i2_s.gguf", "bitnet-b158-packed", "bitnet-b1.58", I2_S, T.BF16),
        make_model(out, "packed-i2_s-q6_k.gguf", "bitnet-b158-packed", "bitnet-b1.58", I2_S, T.Q6_K, tok=False),
        make_model(out, "master-i2_s.gguf", "bitnet-b158-master", "bitnet-25", I2_S, T.F32),
        make_model(out, "1bitllm-i2_s.gguf", "bitnet-1bitllm", "bitnet", I2_S, T.F16, tok="spm"),
        make_quants(out),
        make_tokenizer(out, "tokenizer-bpe-32k.gguf", "tokenizer-bpe-32k", True),
        make_tokenizer(out, "tokenizer-bpe-nopre.gguf", "tokenizer-bpe", False),
        make_spm_tokenizer(out, "tokenizer-spm-8k.gguf", "tokenizer-spm-8k"),
    ]
    for p in paths:
        try:
            nt, nf = check(p)
            print(f"{os.path.relpath(p)}: {os.path.getsize(p)} bytes, {nt} tensors, {nf} fields (gguf-py reads it)")
        except Exception as e:  # gguf-py cannot size I2_S (type 36): say so, do not hide it
            print(f"{os.path.relpath(p)}: {os.path.getsize(p)} bytes; gguf-py GGUFReader: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
