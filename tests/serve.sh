#!/usr/bin/env bash
# serve.sh — `bitnet serve` over HTTP with curl (python3 only reads the JSON): endpoints, greedy
# output identical to `bitnet run --temp 0`, streaming format, stop strings across token
# boundaries, max_tokens, usage, finish_reason, seeds, logit_bias, prompt caching, every bad
# input's status and JSON error body, the queue bound (503 + Retry-After), the API key (401), a
# client hang-up freeing its slot, SIGTERM draining. Then the optional openai-client test and the
# bounded concurrency test (tests/serve_client.py). Servers listen on free 127.0.0.1 ports and are
# always killed on exit. Skips (with the reason) when serve is not built, or curl/python3 missing.
set -u
cd "$(dirname "$0")/.."
B=${BUILD:-build}/bitnet
M=models/bitnet-tinystories
DEV=(--device "${SERVE_DEVICE:-cpu}")   # env SERVE_DEVICE=cuda: the servers and the `bitnet run` references on the GPU
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
ok() { echo "ok $1"; }
bad() { echo "FAIL $1: $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "${MSG:-check failed}"; fi; MSG=; }

if "$B" serve -h 2>&1 | grep -q "without HTTP support"; then echo "skip serve: built without libmicrohttpd (install libmicrohttpd-dev)"; exit 0; fi
command -v curl >/dev/null || { echo "skip serve: curl is not installed"; exit 0; }
command -v python3 >/dev/null || { echo "skip serve: python3 (to read the JSON answers) is not installed"; exit 0; }

# start NAME ARGS...: a server on a free port; sets URL and PID (log in $T/NAME.log)
start() {
    local name=$1; shift
    "$B" serve -m "$M" --port 0 -t 1 "${DEV[@]}" "$@" 2>"$T/$name.log" &
    PID=$!; PIDS+=("$PID")
    for _ in $(seq 100); do
        URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/$name.log" 2>/dev/null | head -n 1)
        [ -n "$URL" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL serve_start_$name: the server did not start: $(cat "$T/$name.log")"; exit 1
}
# j FILE PYEXPR: evaluate PYEXPR with d = the JSON in FILE (prints the value)
j() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }
# post PATH BODY OUT: POST JSON; prints the HTTP status
post() { curl -s -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$URL$1"; }
# sse FILE: the streamed text (concatenated deltas) if FILE is well-formed SSE ending in [DONE], else "BAD..."
sse() { python3 - "$1" <<'EOF'
import json, sys
raw = open(sys.argv[1]).read()
evs = raw.split("\n\n")
if evs[-1] != "" or evs[-2] != "data: [DONE]": print("BAD: no [DONE] at the end"); sys.exit()
text, fin, usage = "", None, None
for e in evs[:-2]:
    if not e.startswith("data: "): print("BAD event", e[:80]); sys.exit()
    o = json.loads(e[6:])
    if o.get("usage"): usage = o["usage"]
    for c in o["choices"]:
        if fin: print("BAD: text after finish_reason"); sys.exit()
        text += c.get("text") or (c.get("delta") or {}).get("content") or ""
        fin = c.get("finish_reason") or fin
print(json.dumps({"text": text, "finish": fin, "usage": usage}))
EOF
}

wait_jobs() { for p in $(jobs -p); do [ "$p" = "$PID" ] || wait "$p"; done; }  # every background client

start main --parallel 4 --sample-threads 4   # 4 sampling threads even at -t 1: the parallel draws are tested
code=$(curl -s -o "$T/h.json" -w '%{http_code}' "$URL/health")
MSG="status $code $(cat "$T/h.json")"; check serve_health test "$code" = 200 -a "$(j "$T/h.json" 'd["status"]')" = ok
code=$(curl -s -o "$T/m.json" -w '%{http_code}' "$URL/v1/models")
MSG="status $code $(cat "$T/m.json")"; check serve_models test "$code" = 200 -a "$(j "$T/m.json" 'd["data"][0]["id"]')" = bitnet-tinystories

# greedy completion == bitnet run --temp 0 (same prompt, BOS, 24 tokens)
want=$("$B" run -m "$M" "${DEV[@]}" -p "Once upon a time" -n 24 --temp 0 -t 1 --no-display-prompt 2>/dev/null)
code=$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}' "$T/c.json")
got=$(j "$T/c.json" 'd["choices"][0]["text"]')
MSG="got '$got' want '$want'"; check serve_greedy_equals_run test "$code" = 200 -a "$got" = "$want"
want24=$want
ntok=$(echo -n "Once upon a time" | "$B" tokenize -m "$M" --bos | wc -w)
MSG="$(j "$T/c.json" 'd["usage"]') want prompt $ntok"
check serve_usage test "$(j "$T/c.json" 'd["usage"]["prompt_tokens"],d["usage"]["completion_tokens"],d["usage"]["total_tokens"]')" = "$ntok 24 $((ntok + 24))"
MSG="$(j "$T/c.json" 'd["choices"][0]["finish_reason"]')"; check serve_finish_length test "$MSG" = length
check serve_completion_object test "$(j "$T/c.json" 'd["object"], d["id"].startswith("cmpl-")')" = "text_completion True"

# chat: rendered with the model's template (bitnet: "User: ...<|eot_id|>Assistant: "), same as run on that text
want=$("$B" run -m "$M" "${DEV[@]}" -p "User: Tell me a story.<|eot_id|>Assistant: " -n 20 --temp 0 -t 1 --no-display-prompt 2>/dev/null)
code=$(post /v1/chat/completions '{"model":"x","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":20,"temperature":0}' "$T/ch.json")
got=$(j "$T/ch.json" 'd["choices"][0]["message"]["content"]')
MSG="status $code got '$got' want '$want'"; check serve_chat_greedy_equals_run test "$code" = 200 -a "$got" = "$want"
check serve_chat_object test "$(j "$T/ch.json" 'd["object"], d["choices"][0]["message"]["role"]')" = "chat.completion assistant"

# streamed chat: well-formed chunks, same text as not streamed, usage chunk when asked
curl -sN -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":20,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' "$URL/v1/chat/completions" >"$T/s.txt"
res=$(sse "$T/s.txt")
MSG="$res"; check serve_stream_chat test "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["text"]==sys.argv[2], r["finish"], r["usage"]["completion_tokens"])' "$res" "$want" 2>/dev/null)" = "True length 20"
check serve_stream_chunk_object grep -q '"object":"chat.completion.chunk"' "$T/s.txt"
curl -sN -d '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stream":true}' "$URL/v1/completions" >"$T/s2.txt"
res=$(sse "$T/s2.txt")
MSG="$res"; check serve_stream_completion test "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["text"]==sys.argv[2], r["finish"])' "$res" "$(j "$T/c.json" 'd["choices"][0]["text"]')" 2>/dev/null)" = "True length"

# batched decoding keeps sequences apart: 4 greedy requests at once, each == bitnet run alone
prompts=("Once upon a time" "The little dog" "Tom had a red ball" "One day, a girl named Sue")
curl -s "$URL/health" >"$T/h0.json"
# one curl process, its 4 transfers in parallel (-Z): they arrive together even on a loaded machine
cargs=()
for i in 0 1 2 3; do
    [ $i -gt 0 ] && cargs+=(--next)
    cargs+=(-s -d "{\"prompt\":\"${prompts[$i]}\",\"max_tokens\":100,\"temperature\":0}" -o "$T/par$i.json" "$URL/v1/completions")
done
curl -Z --parallel-immediate --parallel-max 4 "${cargs[@]}"
curl -s "$URL/health" >"$T/h1.json"
dt=$(( $(j "$T/h1.json" 'd["tokens_generated"]') - $(j "$T/h0.json" 'd["tokens_generated"]') ))
ds=$(( $(j "$T/h1.json" 'd["decode_steps"]') - $(j "$T/h0.json" 'd["decode_steps"]') ))
# one forward per step over every active sequence: 400 tokens in far fewer than 400 steps
MSG="$dt tokens in $ds steps"; check serve_batched_steps test "$dt" = 400 -a "$ds" -lt 300
# the engine's counters: 400 tokens sampled; a non-streamed request's thread is woken once (at
# its end), not per token; time was spent in the forward
ec=$(python3 -c 'import json,sys; a,b=(json.load(open(f))["engine"] for f in sys.argv[1:]); print(b["sampled"]-a["sampled"], b["wakeups"]-a["wakeups"], b["decode_ms"]>a["decode_ms"])' "$T/h0.json" "$T/h1.json" 2>&1)
MSG="sampled, wakeups, forward time grew: $ec"; check serve_engine_counters test "$ec" = "400 4 True"
same=0
for i in 0 1 2 3; do
    w=$("$B" run -m "$M" "${DEV[@]}" -p "${prompts[$i]}" -n 100 --temp 0 -t 1 --no-display-prompt 2>/dev/null)
    [ "$(j "$T/par$i.json" 'd["choices"][0]["text"]')" = "$w" ] && same=$((same + 1))
done
MSG="$same of 4 equal"; check serve_parallel_greedy_equals_run test "$same" = 4
# all-greedy steps run bitnet_ctx_decode_greedy (ids only, no logits rows): counted in /health
gs=$(python3 -c 'import json,sys; a,b=(json.load(open(f))["engine"] for f in sys.argv[1:]); print(b["greedy_steps"]-a["greedy_steps"] >= 100, b["greedy_steps"]-a["greedy_steps"] <= b["batch_rows"])' "$T/h0.json" "$T/h1.json" 2>&1)
MSG="greedy steps: $gs"; check serve_greedy_steps test "$gs" = "True True"

# sampled requests decoded together are drawn in parallel (4 sampling threads), each from its own
# row with its own sampler: 4 seeded requests at once give the texts each gives alone
cargs=()
for i in 0 1 2 3; do
    [ $i -gt 0 ] && cargs+=(--next)
    cargs+=(-s -d "{\"prompt\":\"${prompts[$i]}\",\"max_tokens\":60,\"temperature\":1,\"seed\":$((7 + i))}" -o "$T/ps$i.json" "$URL/v1/completions")
done
curl -s "$URL/health" >"$T/h2.json"
curl -Z --parallel-immediate --parallel-max 4 "${cargs[@]}"
curl -s "$URL/health" >"$T/h3.json"
same=0
for i in 0 1 2 3; do
    post /v1/completions "{\"prompt\":\"${prompts[$i]}\",\"max_tokens\":60,\"temperature\":1,\"seed\":$((7 + i))}" "$T/pa$i.json" >/dev/null
    a=$(j "$T/ps$i.json" 'd["choices"][0]["text"]'); b=$(j "$T/pa$i.json" 'd["choices"][0]["text"]')
    [ -n "$a" ] && [ "$a" = "$b" ] && same=$((same + 1))
done
ds=$(( $(j "$T/h3.json" 'd["decode_steps"]') - $(j "$T/h2.json" 'd["decode_steps"]') ))
MSG="$same of 4 equal; $ds steps for the 4 at once"; check serve_parallel_sampled_equals_alone test "$same" = 4 -a "$ds" -lt 200

# stop strings: "girl named" spans several tokens; the text ends right before it, in both modes
full=$(j "$T/c.json" 'd["choices"][0]["text"]')
pre=${full%%girl named*}
code=$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stop":["zzz","girl named"]}' "$T/st.json")
MSG="$(cat "$T/st.json")"; check serve_stop_string test "$(j "$T/st.json" 'repr(d["choices"][0]["text"]), d["choices"][0]["finish_reason"]')" = "$(python3 -c 'import sys; print(repr(sys.argv[1]), "stop")' "$pre")"
curl -sN -d '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stop":"girl named","stream":true}' "$URL/v1/completions" >"$T/st.txt"
res=$(sse "$T/st.txt")
MSG="$res"; check serve_stop_string_stream test "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["text"]==sys.argv[2], r["finish"])' "$res" "$pre" 2>/dev/null)" = "True stop"
# a stop string that starts in the middle of a token ("irl nam")
pre2=${full%%irl nam*}
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stop":"irl nam"}' "$T/st2.json" >/dev/null
MSG="$(cat "$T/st2.json")"; check serve_stop_mid_token test "$(j "$T/st2.json" 'repr(d["choices"][0]["text"])')" = "$(python3 -c 'import sys; print(repr(sys.argv[1]))' "$pre2")"

# end of generation: logit_bias +100 on EOS makes it the first token: finish stop, 0 tokens, ""
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"logit_bias":{"2047":100}}' "$T/e.json" >/dev/null
MSG="$(cat "$T/e.json")"; check serve_finish_eos test "$(j "$T/e.json" 'repr(d["choices"][0]["text"]), d["choices"][0]["finish_reason"], d["usage"]["completion_tokens"]')" = "'' stop 0"
# ignore_eos (llama.cpp's field): EOS made the first token no longer ends the request
post /v1/completions '{"prompt":"Once upon a time","max_tokens":5,"temperature":0,"logit_bias":{"2047":100},"ignore_eos":true}' "$T/ie.json" >/dev/null
MSG="$(cat "$T/ie.json")"; check serve_ignore_eos test "$(j "$T/ie.json" 'd["choices"][0]["finish_reason"], d["usage"]["completion_tokens"]')" = "length 5"
# and a greedy request with ignore_eos is the same text as without (this prompt has no EOS in 24 tokens)
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"ignore_eos":true}' "$T/ie2.json" >/dev/null
MSG="$(cat "$T/ie2.json")"; check serve_ignore_eos_greedy test "$(j "$T/ie2.json" 'd["choices"][0]["text"]')" = "$want24"
# logit_bias -100 bans the greedy first token
first=$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":1,"temperature":0}' "$T/f.json" >/dev/null; j "$T/f.json" 'd["choices"][0]["text"]')
firstid=$(echo -n "$first" | "$B" tokenize -m "$M" | awk '{print $1}')
post /v1/completions "{\"prompt\":\"Once upon a time\",\"max_tokens\":1,\"temperature\":0,\"logit_bias\":{\"$firstid\":-100}}" "$T/f2.json" >/dev/null
MSG="first '$first' ($firstid) then '$(j "$T/f2.json" 'd["choices"][0]["text"]')'"; check serve_logit_bias_ban test -n "$firstid" -a "$(j "$T/f2.json" 'd["choices"][0]["text"]')" != "$first"
# seeds: the same seed gives the same sampled text
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":1,"seed":42}' "$T/r1.json" >/dev/null
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":1,"seed":42}' "$T/r2.json" >/dev/null
MSG="$(j "$T/r1.json" 'd["choices"][0]["text"]') vs $(j "$T/r2.json" 'd["choices"][0]["text"]')"
check serve_seed_repeatable test -n "$(j "$T/r1.json" 'd["choices"][0]["text"]')" -a "$(j "$T/r1.json" 'd["choices"][0]["text"]')" = "$(j "$T/r2.json" 'd["choices"][0]["text"]')"
# prompt caching: a follow-up that extends the conversation (previous prompt + the reply + a new
# user turn) reuses the slot's cache for the prompt and the reply (all but the reply's last
# token, sampled but never fed); a third turn reuses the second; a fresh server gives the same text
cache_turns() {  # PREFIX: three chained greedy chat requests -> $T/PREFIX{1,2,3}.json
    local msgs='[{"role":"user","content":"Tell me about a cat and a dog."}]'
    for t in 1 2 3; do
        post /v1/chat/completions "{\"messages\":$msgs,\"max_tokens\":10,\"temperature\":0}" "$T/$1$t.json" >/dev/null
        msgs=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); d=json.load(open(sys.argv[2]))
m += [{"role":"assistant","content":d["choices"][0]["message"]["content"]},{"role":"user","content":"And then?"}]; print(json.dumps(m))' "$msgs" "$T/$1$t.json")
    done
}
cache_turns p
n1=$(j "$T/p1.json" 'd["usage"]["prompt_tokens"]'); c2=$(j "$T/p2.json" 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
n2=$(j "$T/p2.json" 'd["usage"]["prompt_tokens"]'); c3=$(j "$T/p3.json" 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
MSG="first prompt $n1 tokens (+10 generated), the second reused $c2"; check serve_prompt_cache_reply test "${c2:-0}" -gt "${n1:-99999}"
MSG="second prompt $n2 tokens, the third reused $c3"; check serve_prompt_cache_third_turn test "${c3:-0}" -gt "${n2:-99999}"
MURL=$URL MPID=$PID
start fresh --parallel 1
cache_turns f
same=1; for t in 1 2 3; do [ "$(j "$T/p$t.json" 'd["choices"][0]["message"]["content"], d["usage"]["prompt_tokens"]')" = "$(j "$T/f$t.json" 'd["choices"][0]["message"]["content"], d["usage"]["prompt_tokens"]')" ] || same=0; done
MSG="$(j "$T/p3.json" 'd["choices"][0]["message"]["content"]') vs fresh $(j "$T/f3.json" 'd["choices"][0]["message"]["content"]')"
check serve_prompt_cache_same_as_fresh test "$same" = 1 -a "$(j "$T/f1.json" 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')" = 0
kill -TERM "$PID"; wait "$PID"
# llama3 trims the content, so a reply starting with a space (this model's) re-encodes otherwise:
# the previous prompt is still reused whole
start llama3 --parallel 1 --chat-template llama3
cache_turns l
n1=$(j "$T/l1.json" 'd["usage"]["prompt_tokens"]'); c2=$(j "$T/l2.json" 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
MSG="llama3: first prompt $n1 tokens, the second reused $c2"; check serve_prompt_cache_llama3 test "${c2:-0}" -ge "${n1:-99999}"
kill -TERM "$PID"; wait "$PID"
URL=$MURL PID=$MPID

# chunked prefill keeps a running stream flowing: while A streams, B joins with a ~250-token
# prompt, which with --chunk 8 must take ceil(n/8) steps while A gets a token in every step
# (tests/serve_client.py chunked: engine step counts from "timings", not wall-clock time)
MURL=$URL MPID=$PID
start chunk --parallel 2 --chunk 8
python3 tests/serve_client.py chunked "$URL" --chunk 8 --timeout 120
kill -TERM "$PID"; wait "$PID"
URL=$MURL PID=$MPID

# bad input: status + OpenAI-style JSON error body
expect() {  # NAME STATUS PATH BODY [PARAM]
    local code; code=$(post "$3" "$4" "$T/err.json")
    local msg; msg=$(j "$T/err.json" 'd["error"]["message"]')
    MSG="status $code, body $(head -c 300 "$T/err.json")"
    if [ "$code" = "$2" ] && [ -n "$msg" ] && { [ -z "${5:-}" ] || [ "$(j "$T/err.json" 'd["error"]["param"]')" = "$5" ]; }; then ok "$1"; else bad "$1" "$MSG"; fi
}
expect serve_bad_json 400 /v1/chat/completions '{"messages": [' ""
expect serve_bad_not_object 400 /v1/chat/completions '[1,2]'
expect serve_bad_empty_body 400 /v1/completions ''
expect serve_bad_no_messages 400 /v1/chat/completions '{"model":"x"}' messages
expect serve_bad_messages_type 400 /v1/chat/completions '{"messages":"hi"}' messages
expect serve_bad_role 400 /v1/chat/completions '{"messages":[{"role":"wizard","content":"hi"}]}' messages
expect serve_bad_content_type 400 /v1/chat/completions '{"messages":[{"role":"user","content":5}]}' messages
expect serve_bad_temperature_type 400 /v1/completions '{"prompt":"a","temperature":"hot"}' temperature
expect serve_bad_temperature_range 400 /v1/completions '{"prompt":"a","temperature":5}' temperature
expect serve_bad_max_tokens 400 /v1/completions '{"prompt":"a","max_tokens":1.5}' max_tokens
expect serve_bad_max_tokens_zero 400 /v1/completions '{"prompt":"a","max_tokens":0}' max_tokens
expect serve_bad_top_p 400 /v1/completions '{"prompt":"a","top_p":0}' top_p
expect serve_bad_stream_type 400 /v1/completions '{"prompt":"a","stream":"yes"}' stream
expect serve_bad_ignore_eos_type 400 /v1/completions '{"prompt":"a","ignore_eos":1}' ignore_eos
expect serve_bad_stop_type 400 /v1/completions '{"prompt":"a","stop":[1]}' stop
expect serve_bad_stop_count 400 /v1/completions '{"prompt":"a","stop":["a","b","c","d","e"]}' stop
expect serve_bad_n 400 /v1/completions '{"prompt":"a","n":2}' n
expect serve_bad_logit_bias_key 400 /v1/completions '{"prompt":"a","logit_bias":{"99999":1}}' logit_bias
expect serve_bad_logit_bias_value 400 /v1/completions '{"prompt":"a","logit_bias":{"5":"x"}}' logit_bias
expect serve_bad_seed 400 /v1/completions '{"prompt":"a","seed":"x"}' seed
expect serve_bad_prompt_ids 400 /v1/completions '{"prompt":[1,2,99999]}' prompt
expect serve_bad_model_type 400 /v1/completions '{"prompt":"a","model":7}' model
expect serve_bad_logprobs 400 /v1/chat/completions '{"messages":[{"role":"user","content":"a"}],"logprobs":true}' logprobs
long=$(python3 -c 'print("once upon a time " * 300)')
expect serve_bad_prompt_too_long 400 /v1/completions "{\"prompt\":\"$long\"}" prompt
check serve_bad_prompt_too_long_code test "$(j "$T/err.json" 'd["error"]["code"]')" = context_length_exceeded
code=$(post /v1/completions '{"prompt":"a","max_tokens":2,"frobnicate":{"x":1},"user":"u"}' "$T/u.json")
MSG="$code $(cat "$T/u.json")"; check serve_unknown_field_ignored test "$code" = 200
code=$(curl -s -o "$T/err.json" -w '%{http_code}' "$URL/v1/nope"); MSG="$code"; check serve_404 test "$code" = 404 -a -n "$(j "$T/err.json" 'd["error"]["message"]')"
code=$(curl -s -o "$T/err.json" -D "$T/hdr" -w '%{http_code}' "$URL/v1/chat/completions"); MSG="$code"
check serve_405 test "$code" = 405 -a -n "$(j "$T/err.json" 'd["error"]["message"]')"
check serve_405_allow grep -qi '^Allow: POST' "$T/hdr"
code=$(curl -s -o "$T/pg.html" -w '%{http_code}' "$URL/"); MSG="$code"; check serve_page test "$code" = 200 && grep -q 'id="send"' "$T/pg.html"

# a client that hangs up mid-stream frees its slot at once
curl -sN -d '{"prompt":"Once upon a time","max_tokens":100000,"temperature":1,"stream":true}' "$URL/v1/completions" >/dev/null &
CP=$!; sleep 0.5; kill "$CP" 2>/dev/null; wait "$CP" 2>/dev/null
freed=0
for _ in $(seq 40); do curl -s "$URL/health" >"$T/h.json"; [ "$(j "$T/h.json" 'd["slots_processing"]')" = 0 ] && { freed=1; break; }; sleep 0.05; done
MSG="$(cat "$T/h.json")"; check serve_disconnect_frees_slot test "$freed" = 1

# the optional openai client, and the bounded concurrency test: 16 clients x 20 streamed requests
if python3 -c 'import openai' 2>/dev/null; then
    python3 tests/serve_client.py openai "$URL" "$want"
else
    echo "skip serve_openai_client: the python 'openai' package is not installed (pip install openai)"
fi
python3 tests/serve_client.py load "$URL" --clients 16 --requests 20 --max-tokens 16 --timeout 120
kill -TERM "$PID"; wait "$PID"; rc=$?
MSG="exit $rc"; check serve_sigterm_idle test "$rc" = 0

# API key: 401 with a JSON body without or with a wrong key; /health needs none
start key --api-key s3cret
code=$(curl -s -o "$T/k.json" -w '%{http_code}' "$URL/v1/models")
MSG="$code $(cat "$T/k.json")"; check serve_key_missing test "$code" = 401 -a "$(j "$T/k.json" 'd["error"]["type"]')" = authentication_error
code=$(curl -s -o "$T/k.json" -w '%{http_code}' -H 'Authorization: Bearer wrong' "$URL/v1/models"); MSG="$code"; check serve_key_wrong test "$code" = 401
code=$(curl -s -o "$T/k.json" -w '%{http_code}' -H 'Authorization: Bearer s3cret' "$URL/v1/models"); MSG="$code"; check serve_key_right test "$code" = 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/health"); MSG="$code"; check serve_key_health_open test "$code" = 200
kill -TERM "$PID"; wait "$PID"

# limits: body size (413), queue bound (503 + Retry-After); SIGTERM drains a running stream
start lim --parallel 1 --queue 1 --max-body 4
big=$(python3 -c 'print("{\"prompt\":\"" + "a" * 6000 + "\"}")')
code=$(post /v1/completions "$big" "$T/b.json"); MSG="$code $(head -c 200 "$T/b.json")"
check serve_body_too_large test "$code" = 413 -a -n "$(j "$T/b.json" 'd["error"]["message"]')"
# one slot, one queue place: request 1 takes the slot (waited for in /health, so the test does
# not race the engine's pick-up), then of 7 requests sent at once those beyond 1 get 503 + Retry-After
qreq() { curl -s -o "$T/q$1.json" -D "$T/qh$1" -w '%{http_code}\n' -d '{"prompt":"Once upon a time","max_tokens":500,"temperature":0,"ignore_eos":true}' "$URL/v1/completions" >"$T/qc$1"; }
qreq 1 &
for _ in $(seq 100); do curl -s "$URL/health" | grep -q '"slots_processing":1' && break; sleep 0.05; done
for i in 2 3 4 5 6 7 8; do qreq $i & done
wait_jobs
n503=0; n200=0; hdr=0
for i in 1 2 3 4 5 6 7 8; do
    c=$(cat "$T/qc$i")
    if [ "$c" = 503 ] && [ -n "$(j "$T/q$i.json" 'd["error"]["message"]')" ]; then n503=$((n503 + 1)); grep -qi '^Retry-After:' "$T/qh$i" && hdr=$((hdr + 1)); fi
    [ "$c" = 200 ] && n200=$((n200 + 1))
done
MSG="$n200 x 200, $n503 x 503"; check serve_queue_full_503 test "$n503" -ge 1 -a $((n200 + n503)) = 8 -a "$n200" -ge 2
MSG="$hdr of $n503"; check serve_retry_after test "$hdr" = "$n503"
kill -TERM "$PID"; wait "$PID"
# SIGTERM drains: the running stream and the queued requests finish, new ones get 503, exit 0
start drain --parallel 1 --queue 8
curl -sN -d '{"prompt":"Once upon a time","max_tokens":500,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' "$URL/v1/completions" >"$T/d1.txt" &
C1=$!
for _ in $(seq 100); do [ -s "$T/d1.txt" ] && break; sleep 0.02; done
for i in 2 3 4 5; do curl -s -d '{"prompt":"Once upon a time","max_tokens":500,"temperature":0}' "$URL/v1/completions" >"$T/d$i.json" & done
for _ in $(seq 100); do  # until all five are in (one running, four queued)
    curl -s "$URL/health" >"$T/h.json"
    [ "$(j "$T/h.json" 'd["queued"] + d["slots_processing"]')" = 5 ] && break
    sleep 0.02
done
kill -TERM "$PID"
# the signal is taken by the main thread: once /health says 503, new requests must be refused
for _ in $(seq 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] || break; sleep 0.02; done
code=$(curl -s -o "$T/dr.json" -w '%{http_code}' -d '{"prompt":"a","max_tokens":2}' "$URL/v1/completions")
MSG="$code $(cat "$T/dr.json")"; check serve_draining_refuses test "$code" = 503 -o "$code" = 000
wait "$PID"; rc=$?
wait_jobs
res=$(sse "$T/d1.txt")
MSG="exit $rc, stream: $res"; check serve_sigterm_drains test "$rc" = 0 -a "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["finish"], r["usage"]["completion_tokens"])' "$res" 2>/dev/null)" = "length 500"
n=0; for i in 2 3 4 5; do [ "$(j "$T/d$i.json" 'd["usage"]["completion_tokens"]')" = 500 ] && n=$((n + 1)); done
MSG="$n of 4 queued requests finished"; check serve_sigterm_drains_queued test "$n" = 4
