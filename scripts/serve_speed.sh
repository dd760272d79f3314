#!/usr/bin/env bash
# serve_speed.sh — `bitnet serve --parallel 8` throughput with one stream and with 8 concurrent
# streams, measured in the same run: starts a server on a free 127.0.0.1 port, runs
# tests/serve_client.py speed (per round: 8 requests one after another, then 8 at once; EOS
# banned so every stream runs to --tokens), and prints the machine (cores, load before and
# after), each round, the engine's own per-step breakdown (forward / sampling / streaming /
# other, from /health) and the medians: 1-stream tok/s, 8-stream aggregate tok/s, their ratio,
# and the same per second of the server's CPU time (steadier on a shared machine).
#
# It prints numbers; it does not judge them (no pass/fail on speed). Not: a load test (that is
# `serve_client.py load`) or a library benchmark (that is `bitnet bench -B 8`).
#
# usage: scripts/serve_speed.sh MODEL_DIR [-t THREADS] [--tokens N] [--rounds R] [--streams S] [--temp T] [--ignore-eos] [-- SERVE_ARGS...]
#   defaults: -t 0 (the physical cores), --tokens 64, --rounds 3, --streams 8, --temp 0.8 (the
#   server's full-vocabulary sampler); --ignore-eos: the requests' "ignore_eos" instead of a
#   logit_bias ban on EOS (with --temp 0 the server then runs the greedy path, ids only: on a GPU
#   no logits rows come back); SERVE_ARGS go to `bitnet serve` (e.g. --head q8, --device cuda).
#   env BITNET: the binary (default build/bitnet).
# Random test models: tests/tools/make_random_bitnet.py (e.g. --ffn 2816: 90M parameters;
# --hidden 2560 --ffn 6912 --layers 30 --heads 20 --kv-heads 5: the 2B-4T body, 521 MB).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BITNET:-$ROOT/build/bitnet}
die() { echo "serve_speed: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: scripts/serve_speed.sh MODEL_DIR [-t THREADS] [--tokens N] [--rounds R] [--streams S] [--temp T] [--ignore-eos] [-- SERVE_ARGS...]"
M=$1; shift
T=0; N=64; R=3; S=8; TEMP=0.8; IE=0
while [ $# -gt 0 ]; do
    case $1 in
        -t) T=$2; shift 2 ;;
        --tokens) N=$2; shift 2 ;;
        --rounds) R=$2; shift 2 ;;
        --streams) S=$2; shift 2 ;;
        --temp) TEMP=$2; shift 2 ;;
        --ignore-eos) IE=1; shift ;;
        --) shift; break ;;
        *) die "unknown argument '$1'" ;;
    esac
done
[ -x "$B" ] || die "$B is not built (make)"
"$B" serve -h 2>&1 | grep -q "without HTTP support" && die "$B was built without libmicrohttpd"
[ -f "$M/config.json" ] || die "$M: no config.json (a model folder is needed)"
eos=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])).get("eos_token_id"); print(e[0] if isinstance(e,list) else e)' "$M/config.json") ||
    die "$M/config.json: cannot read eos_token_id"
LOG=$(mktemp)
"$B" serve -m "$M" --port 0 -t "$T" --parallel "$S" "$@" 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f "$LOG"' EXIT
port=
for _ in $(seq 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$LOG" | grep -o '[0-9]*$')
    [ -n "$port" ] && break
    kill -0 $PID 2>/dev/null || die "the server did not start: $(cat "$LOG")"
    sleep 0.2
done
[ -n "$port" ] || die "the server did not start within 120 s: $(cat "$LOG")"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg)"
command -v nvidia-smi >/dev/null 2>&1 && echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -n 1)"
grep -o 'listening on.*' "$LOG"
if [ $IE = 1 ]; then EOSARG=(--ignore-eos); else EOSARG=(--ban "$eos"); fi
echo "requests: temperature $TEMP, ${EOSARG[*]}, $N tokens each"
python3 "$ROOT/tests/serve_client.py" speed "http://127.0.0.1:$port" --streams "$S" --max-tokens "$N" --rounds "$R" \
    "${EOSARG[@]}" --temperature "$TEMP" --pid $PID --timeout 600
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
