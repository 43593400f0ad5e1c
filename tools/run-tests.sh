#!/bin/sh
# Runs each test binary given, shows its cmocka output, and ends with one
# summary line; exits non-zero when any binary failed.
passed=0; failed=0; failed_names=""
for t in "$@"; do
	echo "== $(basename "$t")"
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names $(basename "$t")"; fi
done
echo
[ -n "$failed_names" ] && echo "failing test binaries:$failed_names"
echo "test binaries: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
