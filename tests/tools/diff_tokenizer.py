#!/usr/bin/env python3
"""diff_tokenizer.py — optional differential test (not run by `make test`): random strings through
`bitnet tokenize` and through HF `tokenizers` (tokenizer.json) or `sentencepiece` (tokenizer.model).

usage: python3 tests/tools/diff_tokenizer.py TOKENIZER [N] [--bin build/bitnet]
Prints the first mismatches and a summary; exit status 1 if any case differs.
"""
import random
import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    binp = sys.argv[sys.argv.index("--bin") + 1] if "--bin" in sys.argv else "build/bitnet"
    if "--bin" in sys.argv:
        args.remove(binp)
    path, n = args[0], int(args[1]) if len(args) > 1 else 200
    if path.endswith(".model"):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=path)
        ref = lambda s: sp.encode(s)
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(path)
        ref = lambda s: tok.encode(s, add_special_tokens=False).ids
    rng = random.Random(7)
    pool = (list("abcdefXYZ 0123456789 .,;:'\"!?-_()\n\t") + ["  ", "   ", "\r\n", "'s", "'LL", "é", "ß", "ж", "中", "日本",
            "😀", "👨\u200d👩\u200d👧", "🏽", "\u0301", "\u00a0", "\u3000", "\u200b", "<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>",
            "ก", "ع", "१२", "１", "½"])
    bad = 0
    for i in range(n):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 60)))
        want = ref(s)
        out = subprocess.run([binp, "tokenize", "-m", path], input=s.encode(), capture_output=True)
        got = [int(x) for x in out.stdout.split()] if out.returncode == 0 else None
        if got != want:
            bad += 1
            if bad <= 5:
                print("MISMATCH %r\n  want %s\n  got  %s %s" % (s, want, got, out.stderr.decode()[-200:]))
    print("%d of %d cases differ" % (bad, n))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
