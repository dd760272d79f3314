#!/usr/bin/env bash
# Runs every libFuzzer harness built by `make fuzz` (build-fuzz/fuzz/fuzz_*) for SECONDS each
# (default 30) on its committed seed corpus (tests/fuzz/corpus/NAME) and regression inputs
# (tests/fuzz/regress/NAME), with its dictionary (tests/fuzz/NAME.dict) if there is one. New
# corpus units go to a temp folder, so the repository is not modified; a crash, leak, timeout or
# out-of-memory input is saved as build-fuzz/crashes/NAME-* and makes the script fail. Prints one
# line per target with its executions. Usage: scripts/fuzz.sh [SECONDS] [NAME...]
set -u
cd "$(dirname "$0")/.."
secs=${1:-30}; shift || true
bin=build-fuzz/fuzz
[ -d "$bin" ] || { echo "fuzz: no $bin (run make fuzz)" >&2; exit 2; }
names=("$@")
if [ ${#names[@]} -eq 0 ]; then for f in "$bin"/fuzz_*; do [ -x "$f" ] && names+=("$(basename "$f")"); done; fi
mkdir -p build-fuzz/crashes
# the harnesses write their inputs to files (and the BPE trainer fsyncs): use memory when we can
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/bitnet_fuzzrun_XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=(); total=0
for n in "${names[@]}"; do
    mkdir -p "$work/$n"
    dirs=("$work/$n")
    for d in "tests/fuzz/corpus/$n" "tests/fuzz/regress/$n"; do [ -d "$d" ] && dirs+=("$d"); done
    opts=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
          -artifact_prefix="build-fuzz/crashes/$n-")
    [ -f "tests/fuzz/$n.dict" ] && opts+=(-dict="tests/fuzz/$n.dict")
    log="$work/$n.log"
    "$bin/$n" "${opts[@]}" "${dirs[@]}" >"$log" 2>&1; rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    total=$((total + ${execs:-0}))
    if [ "$rc" -ne 0 ]; then
        failed+=("$n"); printf '%-24s FAILED (exit %d) after %s executions\n' "$n" "$rc" "${execs:-?}"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|abort|stream !=' "$log" | head -n 20
    else
        printf '%-24s %10s executions in %ss, %s\n' "$n" "${execs:-?}" "$secs" "${cov:-cov: ?}"
    fi
done
echo "fuzz: ${#names[@]} targets, $total executions, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
