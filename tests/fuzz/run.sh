#!/bin/sh
# Runs each libFuzzer target for a while and prints what it reached.
#   run.sh OUT_DIR SECONDS TARGET...
# Each target starts from its seed corpus (tests/fuzz/corpus/<t>) plus what
# earlier runs found (OUT_DIR/corpus/<t>, kept between runs), with its
# dictionary when there is one. Crashes, leaks and timeouts are saved under
# OUT_DIR/artifacts/<t>/; copy one into the seed corpus to keep it as a
# regression input. Exits non-zero when any target found something.
out=$1; secs=$2; shift 2
here=$(dirname "$0")
status=0
summary=""
for t in "$@"; do
	bin=$out/fuzz_$t
	work=$out/corpus/$t
	art=$out/artifacts/$t
	mkdir -p "$work" "$art" "$here/corpus/$t"
	dict=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	log=$out/$t.log
	echo "== fuzz_$t for ${secs}s"
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" $dict "$work" "$here/corpus/$t" >"$log" 2>&1
	rc=$?
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	found=$(ls "$art" 2>/dev/null | wc -l)
	line=$(printf '%-12s %10s execs %8s exec/s  cov(edges) %6s  features %7s  corpus %6s  findings %s' \
		"$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found")
	echo "$line"
	summary="$summary$line
"
	if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
		status=1
		grep -E 'ERROR|SUMMARY|check failed|runtime error' "$log" | head -n 10
		echo "   log: $log  artifacts: $art/"
	fi
done
echo
echo "fuzz summary (${secs}s per target):"
printf '%s' "$summary"
exit $status
