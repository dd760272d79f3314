#!/usr/bin/env bash
# make_style_chat.sh — writes a small chat SFT data set in one fixed reply style, deterministically
# (no randomness: every pair comes from its index): OUTDIR/train.jsonl (200 conversations) and
# OUTDIR/val.jsonl (40 held-out ones: other name/animal pairs). Each is {"messages": [user question,
# assistant answer]}; every answer opens and closes with the style marker "Yo ho!".
# Used by tests/sft.sh. Not: a benchmark data set.
set -eu
out=${1:?usage: make_style_chat.sh OUTDIR}
mkdir -p "$out"
names=(Tom Sue Ben Lily Max Mia Sam Anna Tim Lucy Jack Emma)
animals=(dog cat bird fish frog duck bunny bear lion cow)
places=(park garden forest house river farm)
: > "$out/train.jsonl"; : > "$out/val.jsonl"
n=0
for ((i = 0; i < ${#names[@]}; i++)); do
  for ((j = 0; j < ${#animals[@]}; j++)); do
    for ((k = 0; k < 2; k++)); do
      nm=${names[i]} an=${animals[j]} pl=${places[(i + 2 * j + k) % ${#places[@]}]}
      if [ $k -eq 0 ]; then q="Where did $nm see the $an?"; a="Yo ho! $nm saw the $an in the $pl. Yo ho!"
      else q="What did $nm do with the $an?"; a="Yo ho! $nm played with the $an at the $pl. Yo ho!"; fi
      line="{\"messages\": [{\"role\": \"user\", \"content\": \"$q\"}, {\"role\": \"assistant\", \"content\": \"$a\"}]}"
      # held out: every sixth pair (40 of 240)
      if [ $((n % 6)) -eq 5 ]; then echo "$line" >> "$out/val.jsonl"; else echo "$line" >> "$out/train.jsonl"; fi
      n=$((n + 1))
    done
  done
done
