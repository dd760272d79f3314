#!/usr/bin/env bash
# cli_args.sh — the `bitnet` command line as a new user meets it (issue 9): the one argument
# parser (llama.cpp long names, --opt=value, a range check on every number, suggestions,
# --version, help CMD), `run`'s prompt handling (-f FILE, --print-ids, --no-display-prompt,
# errors before any output, --seed -1), `tokenize --decode` keeping NUL bytes, `bench` and
# `make bench` on the bundled model, messages that name the real problem, and tests/run.sh
# reporting suites that ran nothing as skipped. Not: the numerics (cli.sh and the golden tests).
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
G=tests/golden
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
P="Once upon a time"

# --- run -f FILE: exactly the file's bytes, then the continuation (same as -p) ---
printf '%s' "$P" > "$T/p.txt"
"$B" run -m $M -f "$T/p.txt" -n 8 --temp 0 > "$T/f.out" 2> "$T/f.err"; rc=$?
"$B" run -m $M -p "$P" -n 8 --temp 0 > "$T/p.out" 2>/dev/null
[ $rc -eq 0 ] && cmp -s "$T/f.out" "$T/p.out" && ok "run -f echoes the file, no stray bytes" ||
    fail "run -f echoes the file, no stray bytes" "rc=$rc $(od -c "$T/f.out" | head -3) vs $(head -c 80 "$T/p.out")"
mkdir "$T/dir"; : > "$T/empty.txt"
for f in "$T/dir" "$T/empty.txt" "$T/missing.txt"; do
    "$B" run -m $M -f "$f" -n 4 > "$T/o" 2> "$T/e"; rc=$?
    [ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -q "$f" "$T/e" && ok "run -f $(basename "$f") is an error" ||
        fail "run -f $(basename "$f") is an error" "rc=$rc out '$(head -c 80 "$T/o")' err '$(cat "$T/e")'"
done
grep -q "empty" <("$B" run -m $M -f "$T/empty.txt" 2>&1) && ok "run -f empty says empty" || fail "run -f empty says empty" "$("$B" run -m $M -f "$T/empty.txt" 2>&1)"

# --- --print-ids: ids only; --no-display-prompt: continuation only ---
out=$("$B" run -m $M -p "$P" -n 8 --temp 0 --print-ids 2>/dev/null)
[[ "$out" =~ ^[0-9]+( [0-9]+)*$ ]] && [ "$(echo "$out" | wc -w)" -eq 8 ] && ok "run --print-ids prints ids only" || fail "run --print-ids prints ids only" "'$out'"
"$B" run -m $M -p "$P" -n 8 --temp 0 --no-display-prompt > "$T/np.out" 2>/dev/null; rc=$?
want=$(tail -c +$((${#P} + 1)) "$T/p.out")
[ $rc -eq 0 ] && [ "$(cat "$T/np.out")" = "$want" ] && [ -n "$want" ] && ok "run --no-display-prompt prints the continuation only" ||
    fail "run --no-display-prompt prints the continuation only" "rc=$rc '$(head -c 80 "$T/np.out")' want '$want'"

# --- errors come before any output ---
for i in $(seq 700); do printf 'word '; done > "$T/long.txt"
"$B" run -m $M -f "$T/long.txt" -n 4 > "$T/o" 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -q "at most 512" "$T/e" && ! grep -q -- "-c 1024\|use -c" "$T/e" && ok "prompt longer than the model: error, no output, no -c hint" ||
    fail "prompt longer than the model: error, no output, no -c hint" "rc=$rc out $(wc -c < "$T/o") bytes, err '$(cat "$T/e")'"
"$B" run -m $M -f "$T/long.txt" -n 4 -c 64 > "$T/o" 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -q "at most 512" "$T/e" && ok "prompt longer than the model with -c 64: same error" || fail "prompt longer than the model with -c 64" "rc=$rc '$(cat "$T/e")'"
"$B" run -m $M -p "$P $P $P" -n 4 -c 8 > "$T/o" 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -Eq -- "use -c ([9]|[1-9][0-9]|[1-4][0-9][0-9]|50[0-9]|51[0-2])[^0-9]" "$T/e" && ok "prompt longer than -c: suggests a -c that fits" ||
    fail "prompt longer than -c: suggests a -c that fits" "rc=$rc '$(cat "$T/e")'"
"$B" run -m $M -p "$P" -c 1024 > "$T/o" 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -q -- "-c 512 or less" "$T/e" && ! grep -q "context: context" "$T/e" && ok "-c above the model's positions: clear error" ||
    fail "-c above the model's positions: clear error" "rc=$rc '$(cat "$T/e")'"
mkdir "$T/mix"; for f in config.json model.safetensors; do ln -s "$PWD/$G/bitnet-b158-packed/$f" "$T/mix/$f"; done
ln -s "$PWD/$G/tokenizer-bpe-32k/tokenizer.json" "$T/mix/tokenizer.json"
"$B" run -m "$T/mix" -p "hello world" -n 2 > "$T/o" 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/o" ] && grep -q "tokenizer has 32005 tokens but the model's vocabulary is 1029" "$T/e" && ok "tokenizer larger than the model's vocabulary refused at load" ||
    fail "tokenizer larger than the model's vocabulary refused at load" "rc=$rc out '$(head -c 80 "$T/o")' err '$(cat "$T/e")'"
"$B" run -m "$T/nowhere" -p hi > /dev/null 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && grep -q "$T/nowhere: no such file or folder" "$T/e" && ok "missing model folder says it does not exist" || fail "missing model folder says it does not exist" "rc=$rc '$(cat "$T/e")'"
mkdir "$T/badjson"; printf '{"model_type": "bitnet",\n' > "$T/badjson/config.json"; : > "$T/badjson/model.safetensors"
"$B" info -m "$T/badjson" > /dev/null 2> "$T/e"; rc=$?
[ $rc -ne 0 ] && grep -q "config.json: invalid JSON at byte" "$T/e" && ok "invalid config.json says invalid JSON and where" || fail "invalid config.json says invalid JSON and where" "rc=$rc '$(cat "$T/e")'"

# --- every numeric option is range-checked: one line naming the option and the range ---
while read -r cmd opt val; do
    "$B" $cmd $opt "$val" > "$T/o" 2> "$T/e"; rc=$?
    name=${opt#--}; name=${name#-}
    [ $rc -eq 2 ] && [ ! -s "$T/o" ] && [ "$(wc -l < "$T/e")" -eq 1 ] && grep -q -- "$opt" "$T/e" && grep -Eq "needs|must" "$T/e" &&
        ok "$cmd $opt $val rejected" || fail "$cmd $opt $val rejected" "rc=$rc '$(cat "$T/e")'"
done <<EOF
run --temp inf
run --temp -1
run --temp nan
run --top-p 0
run --top-p 1.5
run --min-p 2
run --min-p -0.1
run --repeat-penalty 0
run --repeat-penalty inf
run --frequency-penalty nan
run --presence-penalty inf
run --presence-penalty -inf
run --top-k -1
run --top-k 1.5
run --repeat-last-n -5
run --seed -5
run --seed 1e3
run --seed 18446744073709551616
run --logit-bias 5=nan
run --logit-bias 5=inf
run --logit-bias 5=1e39
run --logit-bias x=1
run -n abc
run -n 99999999999
run -t 0
run -c -1
logits -t 0
tokenize --repeat 0
bench -p -5
bench -t 0,1
bench -r x
chat --temp inf
chat -n 0
EOF
"$B" run --temp=inf > /dev/null 2> "$T/e"; grep -q -- "--temp needs a finite number >= 0, got 'inf'" "$T/e" && ok "--temp=inf names the option and the range" || fail "--temp=inf names the option and the range" "$(cat "$T/e")"
"$B" run --top-p 1.5 2> "$T/e" > /dev/null; grep -q "in (0, 1\]" "$T/e" && ok "--top-p shows its range (0, 1]" || fail "--top-p shows its range" "$(cat "$T/e")"

# --- --opt=value forms and llama.cpp long names give the same text as the short forms ---
HOT="--temp 0.9 --top-k 20 --top-p 0.9 --min-p 0.02 --repeat-penalty 1.1 --repeat-last-n 16 --seed 7"
"$B" run -m $M -p "$P" -n 12 -t 1 -c 256 $HOT > "$T/short.out" 2>/dev/null
"$B" run --model $M --prompt "$P" --n-predict 12 --threads 1 --ctx-size 256 $HOT > "$T/long.out" 2>/dev/null
"$B" run --model=$M --prompt="$P" --n-predict=12 --threads=1 --ctx-size=256 --temp=0.9 --top-k=20 --top-p=0.9 --min-p=0.02 \
    --repeat-penalty=1.1 --repeat-last-n=16 --seed=7 > "$T/eq.out" 2>/dev/null
"$B" run --model $M --file "$T/p.txt" --predict 12 --threads 1 --ctx-size 256 $HOT > "$T/file.out" 2>/dev/null
[ -s "$T/short.out" ] && cmp -s "$T/short.out" "$T/long.out" && ok "llama.cpp long names (--model --prompt --n-predict --threads --ctx-size)" ||
    fail "llama.cpp long names" "'$(head -c 80 "$T/short.out")' vs '$(head -c 80 "$T/long.out")'"
[ -s "$T/short.out" ] && cmp -s "$T/short.out" "$T/eq.out" && ok "--opt=value forms" || fail "--opt=value forms" "'$(head -c 80 "$T/eq.out")'"
[ -s "$T/short.out" ] && cmp -s "$T/short.out" "$T/file.out" && ok "--file and --predict" || fail "--file and --predict" "'$(head -c 80 "$T/file.out")'"
"$B" info --model=$M > "$T/o" 2>&1 && grep -q "layers: *6" "$T/o" && ok "info --model=DIR" || fail "info --model=DIR" "$(head -3 "$T/o")"
"$B" run -m $M -p "$P" --n-predcit 3 > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 2 ] && grep -q "unknown option '--n-predcit' (did you mean --n-predict?)" "$T/e" && ok "unknown option suggests the closest" || fail "unknown option suggests the closest" "rc=$rc $(cat "$T/e")"
"$B" run -m $M -p "$P" --print-ids=yes > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 2 ] && grep -q "takes no value" "$T/e" && ok "a flag given a value is an error" || fail "a flag given a value is an error" "rc=$rc $(cat "$T/e")"
"$B" run -m $M -p "$P" --temp > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--temp needs a value" "$T/e" && ok "a missing value is an error" || fail "a missing value is an error" "rc=$rc $(cat "$T/e")"
"$B" run -m $M -p -h -n 3 --temp 0 > "$T/o" 2>/dev/null; rc=$?
[ $rc -eq 0 ] && grep -q "^-h" "$T/o" && ok "an option's value may look like an option (-p -h)" || fail "an option's value may look like an option (-p -h)" "rc=$rc $(head -c 80 "$T/o")"

# --- --seed -1 is random; -v prints the seed, which reproduces the text ---
"$B" run -m $M -p "$P" -n 16 --temp 1.5 --top-k 0 --seed -1 -v > "$T/s1" 2> "$T/s1.err"
"$B" run -m $M -p "$P" -n 16 --temp 1.5 --top-k 0 --seed -1 > "$T/s2" 2>/dev/null
seed=$(sed -n 's/^seed \([0-9]*\),.*/\1/p' "$T/s1.err")
"$B" run -m $M -p "$P" -n 16 --temp 1.5 --top-k 0 --seed "$seed" > "$T/s3" 2>/dev/null
[ -n "$seed" ] && [ "$seed" != 18446744073709551615 ] && cmp -s "$T/s1" "$T/s3" && ok "--seed -1 picks a seed, -v prints it, it reproduces the text ($seed)" ||
    fail "--seed -1 picks a seed, -v prints it" "seed '$seed' $(cat "$T/s1.err")"
[ -s "$T/s1" ] && [ -s "$T/s2" ] && ! cmp -s "$T/s1" "$T/s2" && ok "--seed -1 twice gives different text" || fail "--seed -1 twice gives different text" "same or no text"

# --- --version, help CMD, -h from the tables ---
want=$(sed -n 's/^#define BITNET_VERSION "\(.*\)"/\1/p' include/bitnet.h)
[ "$("$B" --version)" = "bitnet $want" ] && ok "bitnet --version ($want)" || fail "bitnet --version" "'$("$B" --version 2>&1)' want 'bitnet $want'"
for c in run chat logits info tokenize tokenize-file bench; do
    a=$("$B" help $c); rc=$?; b=$("$B" $c -h)
    [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ] && ok "bitnet help $c = bitnet $c -h" || fail "bitnet help $c" "rc=$rc"
done
"$B" help frobnicate > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 2 ] && grep -q "unknown command 'frobnicate'" "$T/e" && ok "help of an unknown command" || fail "help of an unknown command" "rc=$rc"
h=$("$B" run -h)
for o in "-m, --model DIR" "-n, --n-predict, --predict N" "-c, --ctx-size N" "-t, --threads N" "--temp T" "--no-display-prompt" "--seed S"; do
    grep -qF -- "$o" <<<"$h" && ok "run -h lists '$o'" || fail "run -h lists '$o'" "$h"
done

# --- tokenize --decode writes every byte, NULs included ---
printf 'a\0b\0c' > "$T/nul.txt"
"$B" tokenize -m $M < "$T/nul.txt" | "$B" tokenize -m $M --decode > "$T/nul.out"
cmp -s "$T/nul.txt" "$T/nul.out" && ok "tokenize --decode keeps NUL bytes" || fail "tokenize --decode keeps NUL bytes" "$(od -c "$T/nul.out" | head -2)"
"$B" tokenize-file -m $M "$T/p.txt" "$T/a.u32" "$T/b.u32" 2> "$T/e" >/dev/null; rc=$?
[ $rc -eq 2 ] && grep -q "too many arguments" "$T/e" && ok "tokenize-file with a third file" || fail "tokenize-file with a third file" "rc=$rc $(cat "$T/e")"

BA=$(realpath -m "$B"); MA=$(realpath -m $M)
(cd "$T" && cp p.txt ./-p.txt && "$BA" tokenize-file -m "$MA" -- -p.txt out.u32 2>/dev/null)
[ "$(stat -c %s "$T/out.u32" 2>/dev/null)" = $((4 * $("$B" tokenize -m $M < "$T/p.txt" | wc -w))) ] && ok "-- ends the options (a file named -p.txt)" ||
    fail "-- ends the options" "$(ls -la "$T")"

# --- bench on the bundled model with its defaults; make bench runs it ---
"$B" bench -m $M -t 1 -r 1 > "$T/b.out" 2> "$T/b.err"; rc=$?
[ $rc -eq 0 ] && grep -q "pp512 .*tok/s" "$T/b.out" && grep -q "tg128 .*tok/s" "$T/b.out" && ok "bench -m bundled model with default -p/-n" ||
    fail "bench -m bundled model with default -p/-n" "rc=$rc $(cat "$T/b.out" "$T/b.err")"
"$B" bench -m $M -p 1024 -t 1 > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 2 ] && grep -q -- "-p 1024 exceeds the model's context of 512 positions" "$T/e" && ok "bench -p beyond the context names it" || fail "bench -p beyond the context names it" "rc=$rc $(cat "$T/e")"
mk=$(make -n bench 2>&1)
grep -q "bitnet bench -m models/bitnet-tinystories" <<<"$mk" && ok "make bench runs bitnet bench on the bundled model" || fail "make bench runs bitnet bench on the bundled model" "$mk"

# --- tests/run.sh: a suite with no checks is skipped with its reason ---
mkdir -p "$T/rs/tests"; cp tests/run.sh "$T/rs/tests/"
printf 'echo "ok a1"; echo "ok a2"\n' > "$T/rs/tests/a.sh"
printf 'echo "skip b: qemu not installed"\n' > "$T/rs/tests/b.sh"
printf 'echo "# nothing here"\n' > "$T/rs/tests/c.sh"
printf 'echo "ok d1"; echo "skip d2: no GPU"\n' > "$T/rs/tests/d.sh"
rs=$(cd "$T/rs" && BUILD=nobuild bash tests/run.sh 2>&1); rc=$?
[ $rc -eq 0 ] && [ "$(tail -n 1 <<<"$rs")" = "3 passed, 0 failed, 3 skipped" ] && grep -q "^b.sh  *skipped: qemu not installed" <<<"$rs" &&
    grep -q "^c.sh  *skipped: ran no checks" <<<"$rs" && ! grep -q "0 ok  *0 failed" <<<"$rs" && ok "run.sh prints skipped suites with the reason" ||
    fail "run.sh prints skipped suites with the reason" "rc=$rc $rs"
exit 0
