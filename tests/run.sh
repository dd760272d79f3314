#!/usr/bin/env bash
# Runs every test binary in $BUILD/tests and every tests/*.sh, then prints one summary line.
# A check line is "ok NAME" or "FAIL NAME: ..."; a binary or script that exits non-zero without
# printing a FAIL line counts as one failure (a crash is never a pass).
set -u
BUILD=${BUILD:-build}
export BUILD
pass=0; fail=0; failed_names=()
run_one() {
    local name=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    local p f
    p=$(grep -c '^ok ' <<<"$out"); f=$(grep -c '^FAIL ' <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; out+=$'\n'"FAIL $name: exited with status $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -gt 0 ]; then failed_names+=("$name"); echo "$out" | grep -v '^ok ' | tail -n 40; fi
    printf '%-40s %4d ok %4d failed\n' "$name" "$p" "$f"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in tests/*.sh; do
    [ "$(basename "$s")" = run.sh ] && continue
    run_one "$(basename "$s")" bash "$s"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
