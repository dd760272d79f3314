#!/usr/bin/env bash
# sampling.sh — the sampling and thread options of `bitnet run` on the bundled model: the seed is
# random by default and with --seed -1 (shown by -v, and reusing it reproduces the text),
# --repeat-last-n 0 turns the penalties off and -1 takes the whole context (llama.cpp), -t
# defaults to the physical cores and warns beyond the online CPUs.
# Not: the sampler's arithmetic (tests/test_sampler.c does that).
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
HOT="-p Once -n 40 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -t 1"

"$B" run -m $M $HOT -v > "$T/a" 2> "$T/ea"
"$B" run -m $M $HOT -v > "$T/b" 2> "$T/eb"
seed_of() { sed -n 's/^seed \([0-9]*\),.*/\1/p' "$1"; }
sa=$(seed_of "$T/ea"); sb=$(seed_of "$T/eb")
[ -n "$sa" ] && [ -n "$sb" ] && [ "$sa" != "$sb" ] && ok "default seed is random, shown by -v ($sa, $sb)" || fail "default seed is random, shown by -v" "'$sa' '$sb' $(head -c 200 "$T/ea")"
cmp -s "$T/a" "$T/b" && fail "random seeds give other text" "same text" || ok "random seeds give other text"
"$B" run -m $M $HOT --seed "$sa" > "$T/c" 2>/dev/null
cmp -s "$T/a" "$T/c" && ok "the shown seed reproduces the text" || fail "the shown seed reproduces the text" "$(head -c 100 "$T/a") vs $(head -c 100 "$T/c")"
"$B" run -m $M $HOT --seed -1 -v > /dev/null 2> "$T/ed"
sd=$(seed_of "$T/ed")
[ -n "$sd" ] && [ "$sd" != 18446744073709551615 ] && ok "--seed -1 is random ($sd)" || fail "--seed -1 is random" "'$sd'"
"$B" run -m $M $HOT --seed -2 > /dev/null 2> "$T/ee"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--seed" "$T/ee" && ok "--seed -2 refused" || fail "--seed -2 refused" "rc=$rc $(cat "$T/ee")"

# --repeat-last-n: 0 = no penalties (same text as no penalty), -1 accepted, -2 refused
G="-p Once -n 60 --temp 0 -t 1"
"$B" run -m $M $G > "$T/p0" 2>/dev/null
"$B" run -m $M $G --repeat-penalty 3 --repeat-last-n 0 > "$T/p1" 2>/dev/null
"$B" run -m $M $G --repeat-penalty 3 > "$T/p2" 2>/dev/null
"$B" run -m $M $G --repeat-penalty 3 --repeat-last-n -1 > "$T/p3" 2>/dev/null; rc3=$?
cmp -s "$T/p0" "$T/p1" && ok "--repeat-last-n 0 turns the penalty off" || fail "--repeat-last-n 0 turns the penalty off" "$(head -c 120 "$T/p1")"
cmp -s "$T/p0" "$T/p2" && fail "--repeat-penalty 3 changes greedy text (window 64)" "same text" || ok "--repeat-penalty 3 changes greedy text (window 64)"
[ $rc3 -eq 0 ] && [ -s "$T/p3" ] && ok "--repeat-last-n -1 (whole context) accepted" || fail "--repeat-last-n -1 (whole context) accepted" "rc=$rc3"
"$B" run -m $M $G --repeat-last-n -2 > /dev/null 2> "$T/ef"; rc=$?
[ $rc -eq 2 ] && ok "--repeat-last-n -2 refused" || fail "--repeat-last-n -2 refused" "rc=$rc $(cat "$T/ef")"

# threads: default = physical cores (-v shows it), a warning beyond the online CPUs
"$B" run -m $M -p Once -n 2 --temp 0 -v > /dev/null 2> "$T/et"
nt=$(sed -n 's/^seed .*, threads \([0-9]*\),.*/\1/p' "$T/et"); on=$(getconf _NPROCESSORS_ONLN)
[ -n "$nt" ] && [ "$nt" -ge 1 ] && [ "$nt" -le "$on" ] && ok "-t defaults to the physical cores ($nt of $on online)" || fail "-t defaults to the physical cores" "'$nt' of $on: $(cat "$T/et")"
"$B" run -m $M -p Once -n 2 --temp 0 -t $((on + 1)) > /dev/null 2> "$T/ew"; rc=$?
[ $rc -eq 0 ] && grep -q "warning: -t $((on + 1)) is more threads than the $on online CPUs" "$T/ew" && ok "-t over the online CPUs warns" || fail "-t over the online CPUs warns" "rc=$rc $(cat "$T/ew")"
"$B" run -m $M -p Once -n 2 --temp 0 -t 1 > /dev/null 2> "$T/ew1"
grep -q warning "$T/ew1" && fail "-t 1 does not warn" "$(cat "$T/ew1")" || ok "-t 1 does not warn"

# logit bias goes through the library: a token outside the vocabulary is named
"$B" run -m $M -p Once -n 2 --logit-bias 99999=1 > /dev/null 2> "$T/eb2"; rc=$?
[ $rc -ne 0 ] && grep -q "logit bias token 99999 is out of the vocabulary (2048)" "$T/eb2" && ok "--logit-bias out of the vocabulary" || fail "--logit-bias out of the vocabulary" "rc=$rc $(cat "$T/eb2")"
exit 0
