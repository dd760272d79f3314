#!/usr/bin/env python3
"""convert_tasks.py — turn the public multiple-choice task files into `bitnet eval`'s JSONL.

Usage: convert_tasks.py FORMAT IN.jsonl [-o OUT.jsonl] [--labels LABELS.lst]
FORMAT: hellaswag | arc | piqa | winogrande | boolq. Reads one JSON object per line in the
dataset's original release format or its Hugging Face `datasets` JSONL export, and writes one
eval line per question with the prompts of lm-evaluation-harness's task definitions
(lm_eval/tasks/<task>/*.yaml, target_delimiter " "):

  hellaswag   context = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()),
              choices = preprocess(ending) for each ending           (rowanz/hellaswag, Rowan/hellaswag)
  arc         context = "Question: " + question + "\\nAnswer:", choices = the choice texts,
              label = index of answerKey among the choice labels      (ARC-*.jsonl, allenai/ai2_arc)
  piqa        context = "Question: " + goal + "\\nAnswer:", choices = [sol1, sol2]
              (the original release keeps labels in a separate file: --labels train-labels.lst)
  winogrande  partial scoring: contexts = sentence up to "_" + each option, continuation = the
              rest of the sentence after "_", stripped                  (allenai/winogrande)
  boolq       context = passage + "\\nQuestion: " + question + "?\\nAnswer:", choices = ["no", "yes"]
              (google boolq "answer": true/false, or super_glue "label": 0/1)

It is not a downloader (fetch the datasets yourself) and not a scorer (run `bitnet eval`).
"""
import argparse
import json
import re
import sys


def hs_preprocess(text):
    # lm_eval/tasks/hellaswag/utils.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def conv_hellaswag(d, _labels):
    ctx = d["ctx_a"] + " " + d["ctx_b"].capitalize()
    return {"context": hs_preprocess(d["activity_label"] + ": " + ctx),
            "choices": [hs_preprocess(e) for e in d["endings"]], "label": int(d["label"])}


def conv_arc(d, _labels):
    q = d["question"]
    if isinstance(q, dict):  # original ARC release: question.stem, question.choices[{text,label}]
        texts = [c["text"] for c in q["choices"]]
        labels = [c["label"] for c in q["choices"]]
        q = q["stem"]
    else:  # allenai/ai2_arc: choices {text: [], label: []}
        texts, labels = d["choices"]["text"], d["choices"]["label"]
    return {"context": "Question: " + q + "\nAnswer:", "choices": texts, "label": labels.index(d["answerKey"])}


def conv_piqa(d, label):
    if label is None:
        label = d["label"]
    return {"context": "Question: " + d["goal"] + "\nAnswer:", "choices": [d["sol1"], d["sol2"]], "label": int(label)}


def conv_winogrande(d, _labels):
    s = d["sentence"]
    i = s.index("_")
    return {"contexts": [s[:i] + d["option1"], s[:i] + d["option2"]],
            "continuation": s[i + 1:].strip(), "label": {"1": 0, "2": 1}[str(d["answer"])]}


def conv_boolq(d, _labels):
    if "label" in d:
        label = int(d["label"])
    else:
        label = 1 if d["answer"] in (True, "true", "True") else 0
    return {"context": d["passage"] + "\nQuestion: " + d["question"] + "?\nAnswer:", "choices": ["no", "yes"], "label": label}


FORMATS = {"hellaswag": conv_hellaswag, "arc": conv_arc, "piqa": conv_piqa, "winogrande": conv_winogrande, "boolq": conv_boolq}


def convert(fmt, lines, labels=None):
    """Yield eval lines (dicts) for the non-blank JSON lines of one task file."""
    conv = FORMATS[fmt]
    k = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out = conv(d, labels[k] if labels is not None else None)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise SystemExit(f"convert_tasks.py: line {n}: not a {fmt} record ({type(e).__name__}: {e})")
        k += 1
        out["delimiter"] = " "
        yield out


def self_test():
    """The prompt rules on one hand-made record per format (expected strings written by hand)."""
    hs = {"activity_label": "Baking cookies", "ctx_a": "A woman puts dough on a tray.", "ctx_b": "she",
          "endings": ["puts the tray in the oven. [step]", "eats  the tray."], "label": "0"}
    got = next(convert("hellaswag", [json.dumps(hs)]))
    assert got["context"] == "Baking cookies: A woman puts dough on a tray. She", got
    # lm-eval strips before removing the tag, so the space before "[step]" stays
    assert got["choices"] == ["puts the tray in the oven. ", "eats the tray."], got
    arc = {"id": "x", "question": {"stem": "Which is hot?", "choices": [{"text": "ice", "label": "A"}, {"text": "fire", "label": "B"}]}, "answerKey": "B"}
    got = next(convert("arc", [json.dumps(arc)]))
    assert got == {"context": "Question: Which is hot?\nAnswer:", "choices": ["ice", "fire"], "label": 1, "delimiter": " "}, got
    wg = {"sentence": "The cup fell off the table because _ was wobbly.", "option1": "the cup", "option2": "the table", "answer": "2"}
    got = next(convert("winogrande", [json.dumps(wg)]))
    assert got["contexts"] == ["The cup fell off the table because the cup", "The cup fell off the table because the table"], got
    assert got["continuation"] == "was wobbly." and got["label"] == 1, got
    bq = {"question": "is the sky blue", "passage": "The sky is blue.", "answer": True}
    got = next(convert("boolq", [json.dumps(bq)]))
    assert got["context"] == "The sky is blue.\nQuestion: is the sky blue?\nAnswer:" and got["label"] == 1, got
    pq = {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Sing to it."}
    got = next(convert("piqa", [json.dumps(pq)], labels=[0]))
    assert got["context"] == "Question: Open a jar\nAnswer:" and got["label"] == 0, got
    print("convert_tasks.py: self-test passed")


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    ap = argparse.ArgumentParser(description="convert public multiple-choice task files to bitnet eval JSONL")
    ap.add_argument("format", choices=sorted(FORMATS))
    ap.add_argument("input")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    ap.add_argument("--labels", help="PIQA original release: the labels file (one 0/1 per line)")
    a = ap.parse_args()
    labels = None
    if a.labels:
        with open(a.labels, encoding="utf-8") as f:
            labels = [int(x) for x in f.read().split()]
    with open(a.input, encoding="utf-8") as f:
        rows = list(convert(a.format, f, labels))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if a.output:
        import os
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.output)
    else:
        sys.stdout.write(text)
    print(f"convert_tasks.py: {len(rows)} {a.format} questions", file=sys.stderr)


if __name__ == "__main__":
    main()
