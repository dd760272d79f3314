#!/usr/bin/env python3
"""make_tokenizer_cases.py — expected ids for hard tokenizer cases, from the reference libraries.

Writes tests/golden-extra/<tokenizer-dir>/golden_encode.json (same layout as tests/golden's:
text, ids from HF `tokenizers` without special tokens, decoded = HF decode with
skip_special_tokens=False, and for SentencePiece dirs sentencepiece_ids from `sentencepiece`)
and tests/golden-extra/invalid_utf8.json (byte strings that are not UTF-8, with the text that
Python's errors="replace" decoding gives: what a byte-level decode of their tokens must return).

Run from the repository root:  pip install tokenizers sentencepiece && python3 tests/tools/make_tokenizer_cases.py
The C test (tests/test_tokenizer.c) only reads the JSON output; it never needs Python.
"""
import json
import os
import random

from tokenizers import Tokenizer
import sentencepiece as spm

GOLDEN = "tests/golden"
OUT = "tests/golden-extra"
DIRS = [("tokenizer-bpe", False), ("tokenizer-bpe-32k", False), ("tokenizer-spm", True), ("tokenizer-spm-8k", True)]


def cases():
    c = []
    # runs of spaces, tabs, newlines
    for n in (1, 2, 3, 4, 7, 16, 33, 100):
        c += [" " * n, "a" + " " * n + "b", " " * n + "lead", "trail" + " " * n, "x" + " " * n + "\n" + " " * n + "y"]
    c += ["\t\t  \t x", "a\n\n\n\nb", "\n \n  \n   \n", "  \r\n\r\n  z", "a\rb\r\r\nc", "end\n", "\n\nstart",
          "word  \n  word", "   \n", "\u00a0\u00a0x", "x\u3000y\u2003z\u2009w", "tab\u000bvt\u000cff", "nel\u0085x",
          "zw\u200bsp\u200cnj\u200djn", "bom\ufeffx", "line\u2028sep\u2029par"]
    # mixed scripts
    c += ["Hello мир 世界 مرحبا שלום नमस्ते こんにちは 안녕", "abcдеф", "日本語とEnglishの混在テキスト123",
          "ภาษาไทยไม่มีช่องว่าง", "Ελληνικά κείμενα", "ქართული", "Ꭰ Ꮳ Ᏼ", "𝕳𝖊𝖑𝖑𝖔 𝔀𝓸𝓻𝓵𝓭", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ",
          "e\u0301 a\u0308 n\u0303 combining", "Å vs A\u030a", "İstanbul ıi ǅ ǈ", "straße STRASSE", "ŉ ǰ ΐ ﬁ ﬂ"]
    # emoji
    c += ["👨\u200d👩\u200d👧\u200d👦", "👩🏽\u200d💻 coding", "🏳️\u200d🌈 flag", "🇫🇷🇩🇪🇯🇵", "❤️‍🔥", "1️⃣2️⃣#️⃣",
          "🧑‍🤝‍🧑 together", "a👍b👍🏿c", "😀😃😄😁😆😅😂🤣" * 3]
    # digits and numbers
    c += ["1", "12", "123", "1234", "12345", "1234567890123", "3.14159265358979", "1,234,567.89", "-42 +17 0x1F 1e-9",
          "٣٤٥ ۱۲۳ १२३ ১২৩", "½ ¾ ² ³ ¹ ⅓", "１２３４５", "v1.2.3-rc4", "2024-01-01T12:34:56Z", "a1b2c3d4", "999999999999"]
    # contractions and apostrophes
    c += ["IT'S WE'LL THEY'RE I'M YOU'VE HE'D DON'T", "it's we'll they're", "it’s curly", "'s 't 're 've 'm 'll 'd",
          "''''", "rock'n'roll", "'ſ 'S 'ſt", "O'Neil's"]
    # special-token text inside prose
    c += ["Hello<|eot_id|>world", "x <|begin_of_text|> y", "<|eot_id|><|eot_id|>", "<|eot_id", "<|eot_id|",
          "a<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<|begin_of_text|><|end_of_text|>",
          "<s>hello</s>", "a<s>b</s>c<unk>d", " <s> ", "<s><s></s>", "<<|eot_id|>>", "<|EOT_ID|>", "<|reserved_special_token_0|>"]
    # punctuation, code, misc
    c += ["!!!", "...", "—–-", "«»“”„‘’", "a.b,c;d:e!f?g", "def f(x):\n\treturn x**2 # ok\n", "{\"key\": [1, 2, {\"n\": null}]}",
          "<div class=\"x\">&amp;</div>", "C:\\Windows\\System32", "$$\\sum_{i=0}^n i^2$$", "a" * 300, "ab" * 150,
          "x" + "-" * 64 + "x", "https://example.com/a/b?c=d&e=f#g", "[[[]]]((( )))"]
    rng = random.Random(1234)
    alphabet = (list("abcXYZ019 _-.,'\n\t") + ["é", "ß", "ж", "中", "😀", "\u200d", "🏽", "\u0301", "ٍ", "ก", "\u00a0", "\u3000"]
                + ["<|eot_id|>", "<s>", "</s>", "'s", "  ", "\r\n"])
    for _ in range(60):
        c.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return c


def invalid_cases():
    raw = [b"\xff", b"\xc3", b"\xc3(", b"abc\x80def", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98", b"\xed\xa0\x80",
           b"\xc0\xaf", b"\xf5\x80\x80\x80", b"ok \xfe\xff ok", b"\xf0\x9f\x98\x80\xf0\x9f", b"Hello\xa0world", b"\x00\x01\x7f"]
    return [{"text_hex": r.hex(), "lossy": r.decode("utf-8", errors="replace")} for r in raw]


def main():
    os.makedirs(OUT, exist_ok=True)
    cs = cases()
    for d, is_spm in DIRS:
        tok = Tokenizer.from_file(os.path.join(GOLDEN, d, "tokenizer.json"))
        sp = spm.SentencePieceProcessor(model_file=os.path.join(GOLDEN, d, "tokenizer.model")) if is_spm else None
        out = []
        for text in cs:
            ids = tok.encode(text, add_special_tokens=False).ids
            e = {"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}
            if sp is not None:
                e["sentencepiece_ids"] = sp.encode(text)
            out.append(e)
        os.makedirs(os.path.join(OUT, d), exist_ok=True)
        with open(os.path.join(OUT, d, "golden_encode.json"), "w", encoding="utf-8") as f:
            json.dump({"reference": "HF tokenizers %s; sentencepiece %s (tests/tools/make_tokenizer_cases.py)" % (
                __import__("tokenizers").__version__, spm.__version__), "add_special_tokens": False, "cases": out},
                f, ensure_ascii=False, indent=0)
    with open(os.path.join(OUT, "invalid_utf8.json"), "w", encoding="utf-8") as f:
        json.dump({"reference": "Python bytes.decode('utf-8', errors='replace')", "cases": invalid_cases()}, f, ensure_ascii=False, indent=0)
    print("wrote %d cases x %d tokenizers" % (len(cs), len(DIRS)))


if __name__ == "__main__":
    main()
