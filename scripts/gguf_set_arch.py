#!/usr/bin/env python3
"""gguf_set_arch.py — copies a GGUF file with general.architecture and every `<arch>.*` key
renamed to NEW_ARCH; tensor infos and data are copied byte for byte (only the padding before the
data is recomputed). scripts/peers.sh uses it to time a peer whose llama.cpp does not know the
architecture `bitnet-b1.58` (2B-4T, relu2) on the same weights under `bitnet` (silu): the same
tensors and the same work per token, but a different activation, so the output is NOT the
model's — a timing aid, not a converter. No dependencies (python3 only).

usage: gguf_set_arch.py IN.gguf OUT.gguf NEW_ARCH     (OUT written to OUT.tmp, then renamed)"""
import os
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def rd(f, fmt):
    n = struct.calcsize(fmt)
    b = f.read(n)
    if len(b) != n:
        sys.exit(f"gguf_set_arch: {f.name}: truncated")
    return struct.unpack("<" + fmt, b)[0]


def rd_str(f):
    return f.read(rd(f, "Q"))


def rd_value(f, t):
    """Returns the raw bytes of one value of GGUF type t."""
    if t in SIZES:
        return f.read(SIZES[t])
    if t == 8:
        s = rd_str(f)
        return struct.pack("<Q", len(s)) + s
    if t == 9:
        et, n = rd(f, "I"), rd(f, "Q")
        return struct.pack("<IQ", et, n) + b"".join(rd_value(f, et) for _ in range(n))
    sys.exit(f"gguf_set_arch: {f.name}: unknown value type {t}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    src, dst, new = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    with open(src, "rb") as f:
        if f.read(4) != b"GGUF":
            sys.exit(f"gguf_set_arch: {src}: not a GGUF file")
        ver, nt, nkv = rd(f, "I"), rd(f, "Q"), rd(f, "Q")
        kvs, old, align = [], None, 32
        for _ in range(nkv):
            k, t = rd_str(f), None
            t = rd(f, "I")
            v = rd_value(f, t)
            if k == b"general.architecture":
                old = v[8:]
                v = struct.pack("<Q", len(new)) + new
            if k == b"general.alignment":
                align = struct.unpack("<I", v)[0]
            kvs.append([k, t, v])
        if old is None:
            sys.exit(f"gguf_set_arch: {src}: no general.architecture")
        infos = []
        for _ in range(nt):
            name = rd_str(f)
            nd = rd(f, "I")
            rest = f.read(8 * nd + 4 + 8)
            infos.append(struct.pack("<Q", len(name)) + name + struct.pack("<I", nd) + rest)
        data_at = (f.tell() + align - 1) // align * align
        head = bytearray(b"GGUF" + struct.pack("<IQQ", ver, nt, nkv))
        for k, t, v in kvs:
            if k.startswith(old + b"."):
                k = new + k[len(old):]
            head += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + v
        for i in infos:
            head += i
        head += b"\0" * ((align - len(head) % align) % align)
        f.seek(data_at)
        with open(dst + ".tmp", "wb") as o:
            o.write(head)
            while True:
                b = f.read(1 << 24)
                if not b:
                    break
                o.write(b)
    os.replace(dst + ".tmp", dst)
    print(f"{dst}: architecture {old.decode()} -> {new.decode()}")


if __name__ == "__main__":
    main()
