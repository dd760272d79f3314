#!/usr/bin/env bash
# chat.sh — `bitnet chat` from a pipe with the bundled model (512-token context): replies are
# capped at half the context so a second turn fits; a conversation that outgrows the context
# drops its oldest turns, keeps the system prompt and says so; a message longer than the context
# is refused with its size and the chat goes on; the format comes from tokenizer_config.json.
# Not: the quality of the replies (the bundled model is a story model, not a chat model).
set -u
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
turns() { grep -c "generation: [0-9]* tokens" "$1"; }

# two turns with the default reply cap: no "context full"
printf 'Hello there\nTell me a story\n' | "$B" chat -m $M --seed 5 -t 1 > "$T/o1" 2> "$T/e1"; rc=$?
[ $rc -eq 0 ] && [ "$(turns "$T/e1")" -eq 2 ] && ! grep -q "context full" "$T/e1" && ok "two turns fit (default reply cap)" ||
    fail "two turns fit (default reply cap)" "rc=$rc $(tail -c 400 "$T/e1")"
ngen=$(sed -n 's/.*generation: \([0-9]*\) tokens.*/\1/p' "$T/e1" | sort -n | tail -1)
[ -n "$ngen" ] && [ "$ngen" -le 256 ] && ok "replies capped at half the context ($ngen <= 256)" || fail "replies capped at half the context" "max reply $ngen"

# a longer conversation: the oldest turns go, the system prompt stays (BOS + its tokens)
sys="You are a storyteller."
printf 'Hello there\nTell me a story\nWhat happened next?\nAnd then?\n' |
    "$B" chat -m $M --seed 5 -t 1 -s "$sys" -n 150 > "$T/o2" 2> "$T/e2"; rc=$?
nsys=$(( $(printf 'System: %s<|eot_id|>' "$sys" | "$B" tokenize -m $M | wc -w) + 1 ))
note=$(grep "outgrew the context" "$T/e2" | head -1)
[ $rc -eq 0 ] && [ "$(turns "$T/e2")" -eq 4 ] && ! grep -q "context full" "$T/e2" && ok "four turns of 150 tokens in a 512 context" ||
    fail "four turns of 150 tokens in a 512 context" "rc=$rc $(tail -c 400 "$T/e2")"
case "$note" in
    *"context of 512 tokens: dropped the oldest 1 turn, kept the system prompt ($nsys tokens)"*) ok "oldest turn dropped, system prompt kept, said on stderr" ;;
    *) fail "oldest turn dropped, system prompt kept, said on stderr" "note '$note' (system prompt $nsys tokens)" ;;
esac
grep -q "outgrew" "$T/o2" && fail "the note goes to stderr, not stdout" "$(grep outgrew "$T/o2")" || ok "the note goes to stderr, not stdout"

# one message longer than the context: refused with its size, and the next message is answered
long=$(for i in $(seq 600); do printf 'word '; done)
printf '%s\nHello\n' "$long" | "$B" chat -m $M --seed 5 -t 1 -n 20 > "$T/o3" 2> "$T/e3"; rc=$?
grep -Eq "message too long \([0-9]+ tokens, context 512\)" "$T/e3" && ok "message too long (N tokens, context M)" ||
    fail "message too long (N tokens, context M)" "$(tail -c 400 "$T/e3")"
grep -q "/clear" "$T/e3" && fail "no /clear hint for a message that can never fit" "$(cat "$T/e3")" || ok "no /clear hint for a message that can never fit"
[ $rc -eq 0 ] && [ "$(turns "$T/e3")" -eq 1 ] && ok "the chat goes on after a refused message" || fail "the chat goes on after a refused message" "rc=$rc $(tail -c 300 "$T/e3")"

# the format is the library's detection; -v shows it and the seed, and --seed -1 is random
printf 'Hi\n' | "$B" chat -m $M -t 1 -n 5 -v > /dev/null 2> "$T/e4"
grep -Eq "^seed [0-9]+, threads 1, context 512, chat format bitnet$" "$T/e4" && ok "-v shows the detected format and the seed" || fail "-v shows the detected format and the seed" "$(cat "$T/e4")"
"$B" chat -m $M --chat-format chatml < /dev/null > /dev/null 2> "$T/e5"; rc=$?
[ $rc -eq 2 ] && grep -q "chatml" "$T/e5" && ok "unknown --chat-format refused" || fail "unknown --chat-format refused" "rc=$rc $(cat "$T/e5")"
exit 0
