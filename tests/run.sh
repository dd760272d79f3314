#!/usr/bin/env bash
# Runs every test binary in $BUILD/tests and every tests/*.sh, then prints one summary line.
# A check line is "ok NAME", "FAIL NAME: ..." or "skip NAME: REASON" (a check that could not run
# here); a binary or script that exits non-zero without printing a FAIL line counts as one failure
# (a crash is never a pass), and one that ran no check at all is reported as skipped with the
# reason it gave (its skip lines) or "ran no checks". The closing line is
# "N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
export BUILD
pass=0; fail=0; skip=0; failed_names=()
run_one() {
    local name=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    local p f s
    p=$(grep -c '^ok ' <<<"$out"); f=$(grep -c '^FAIL ' <<<"$out"); s=$(grep -c '^skip ' <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; out+=$'\n'"FAIL $name: exited with status $rc"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then s=1; out+=$'\n'"skip $name: ran no checks"; fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    if [ "$f" -gt 0 ]; then failed_names+=("$name"); echo "$out" | grep -v '^ok ' | tail -n 40; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        printf '%-40s skipped: %s\n' "$name" "$(grep '^skip ' <<<"$out" | head -n 1 | sed 's/^skip [^:]*: *//')"
    elif [ "$s" -gt 0 ]; then
        printf '%-40s %4d ok %4d failed %4d skipped\n' "$name" "$p" "$f" "$s"
        grep '^skip ' <<<"$out" | sed 's/^/    /'
    else
        printf '%-40s %4d ok %4d failed\n' "$name" "$p" "$f"
    fi
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
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
