#!/bin/sh
# Runs each test given, shows its output, and ends with one line that adds up
# the individual tests of every binary; exits non-zero when any failed or a
# binary died. A test is a cmocka binary, or SCRIPT@ARG for a script that
# takes the build directory and ends with "NAME: N passed, N failed".
passed=0; failed=0; skipped=0; broken=""
out=$(mktemp); rcf=$(mktemp)
trap 'rm -f "$out" "$rcf"' EXIT
count() {   # count PATTERN: the number in the first line matching it
	sed -n "s/$1/\1/p" "$out" | head -n 1
}
for spec in "$@"; do
	t=${spec%@*}
	arg=""
	[ "$t" != "$spec" ] && arg=${spec#*@}
	echo "== $(basename "$t")"
	{ "$t" $arg 2>&1; echo $? >"$rcf"; } | tee "$out"
	p=$(count '^\[  PASSED  \] \([0-9]*\) test.*'); f=$(count '^\[  FAILED  \] \([0-9]*\) test.*')
	s=$(count '^\[  SKIPPED \] \([0-9]*\) test.*')
	if [ -z "$p$f" ]; then
		p=$(count '^[a-z_]*: \([0-9]*\) passed.*'); f=$(count '^[a-z_]*: [0-9]* passed, \([0-9]*\) failed.*')
	fi
	# A binary that exits non-zero after a clean summary (a leak report at
	# exit, say) still fails.
	if [ -z "$p$f" ] || { [ "$(cat "$rcf")" != 0 ] && [ "${f:-0}" = 0 ]; }; then
		broken="$broken $(basename "$t")"
		continue
	fi
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
done
echo
[ -n "$broken" ] && echo "binaries that died or exited non-zero despite their summary:$broken"
if [ "$skipped" -gt 0 ]; then
	echo "tests: $passed passed, $failed failed, $skipped skipped"
else
	echo "tests: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ -z "$broken" ]
