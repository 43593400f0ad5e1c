#!/bin/sh
# Replays every fuzz corpus (tests/fuzz/corpus/<target>/) through its target
# built without libFuzzer: a crash, a sanitizer report or a failed check in
# any input fails that target. $1: the build directory.
build=${1:-build}
here=$(dirname "$0")
passed=0; failed=0
for dir in "$here"/fuzz/corpus/*/; do
	t=$(basename "$dir")
	bin=$build/tests/fuzz/replay_$t
	if [ ! -x "$bin" ]; then
		echo "replay_$t: not built"
		failed=$((failed + 1))
		continue
	fi
	if out=$("$bin" "$dir" 2>&1); then
		echo "ok   $t: $(echo "$out" | tail -n 1 | sed 's/.*: //')"
		passed=$((passed + 1))
	else
		echo "FAIL $t"
		echo "$out" | tail -n 40
		failed=$((failed + 1))
	fi
done
echo "fuzz_replay: $passed passed, $failed failed"
