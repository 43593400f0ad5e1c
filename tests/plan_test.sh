#!/bin/sh
# taskmon plan: fits on synthetic records with a known line, records that
# cannot carry a plan, hostile records, configuration limits, the chart; then,
# as root, records taskmond made of a workload that grows its concurrency in
# steps: the fitted memory per task must lie within 15% of what the workload
# measured of itself.
# Usage: tests/plan_test.sh BUILD_DIR
set -u
build=${1:-build}
tm=$build/taskmon
tmp=$(mktemp -d)
tmd_pid=""
cleanup() {
	[ -n "$tmd_pid" ] && kill "$tmd_pid" 2>/dev/null && wait "$tmd_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "[       OK ] $1"; }
ko() { fail=$((fail + 1)); echo "[  FAILED  ] $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/    /'; }
check() {   # check DESCRIPTION COMMAND...
	desc=$1; shift
	if out=$("$@" 2>&1); then ok "$desc"; else ko "$desc" "$out"; fi
}

# gen DIR N MODE: N records 200 ms apart of one workload "synth" whose RSS is
# 4 MiB + 10000 B per running task (± 2000 B of noise) and whose CPU is
# 0.01 + 20 µs per spawn/s cores; the collector's 0.002 + 1 µs per spawn/s.
# MODE linear: 200 more tasks every 6 records and some churn; flat: nothing changes.
gen() {
	mkdir -p "$1"
	awk -v n="$2" -v mode="$3" 'BEGIN {
		sec0 = 1767225600; mono0 = 1000000000000; spawned = 0; cnt = 0; mean = 0; cpu = 0; ccpu = 0
		for (i = 0; i < n; i++) {
			running = mode == "flat" ? 100 : int(i / 6) * 200
			d = 0
			if (i > 0 && mode != "flat") d = (i % 6 == 0 ? 200 : 0) + (i * 37) % 50
			rate = d / 0.2
			spawned += d
			cpu += (0.01 + 20e-6 * rate) * 0.2e9
			ccpu += (0.002 + 1e-6 * rate) * 0.2e9
			if (d > 0) { m = 20000 + 10 * rate; mean = (mean * cnt + m * d) / (cnt + d); cnt += d }
			rss = 4194304 + 10000 * running + ((i * 7919) % 4001 - 2000)
			mono = mono0 + i * 200000000
			ns = i * 200000000; s = sec0 + int(ns / 1000000000); ns = ns % 1000000000
			tasks = ""
			for (k = 0; k < 5 && d > 0; k++)
				tasks = tasks (k ? "," : "") sprintf("{\"pid\":200,\"id\":%d,\"start_ns\":%.0f,\"kernel\":{\"spawn_latency_ns\":%.0f}}", i * 10 + k, mono - 1000 * (k + 1), m * (1 + k / 10))
			printf "{\"version\":1,\"now_ns\":%.0f,\"now_unix_ns\":%d%09d,\"collector\":{\"pid\":100},", mono, s, ns
			printf "\"machine\":{\"registry\":{\"spawned\":%d}},", spawned
			printf "\"workloads\":[{\"pid\":200,\"comm\":\"synth\",\"start_ticks\":5,\"alive\":true,"
			printf "\"registry\":{\"running\":%d,\"spawned\":%d},", running, spawned
			printf "\"kernel\":{\"spawn_latency\":{\"count\":%d,\"mean_ns\":%.3f,\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"max_ns\":%.0f}},", cnt, mean, mean, mean * 2, mean * 3
			printf "\"types\":[{\"id\":1,\"name\":\"network\",\"registry\":{\"running\":%d}}]}],", running / 2
			printf "\"tasks\":[%s],", tasks
			printf "\"record\":{\"version\":1,\"seq\":%d,\"interval_ns\":200000000,\"time_unix_ns\":%d%09d,", i, s, ns
			printf "\"processes\":[{\"pid\":200,\"comm\":\"synth\",\"rss_bytes\":%.0f,\"threads\":%d,\"cpu_ns\":%.0f}],", rss, running + 1, cpu
			printf "\"collector\":{\"rss_bytes\":8388608,\"cpu_ns\":%.0f}}}\n", ccpu
		}
	}' > "$1/taskmon-20260101T000000Z.jsonl"
}

# bytes_per_task FILE: the per-task figure of the first memory fit, in bytes.
bytes_per_task() {
	awk '/memory  RSS = / { for (i = 1; i <= NF; i++) if ($i == "+" || $i == "-") {
		u = $(i + 2); m = u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1
		printf "%.0f\n", ($i == "-" ? -1 : 1) * $(i + 1) * m; exit } }' "$1"
}

no_nan() {   # the report never prints NaN or infinity
	! grep -qiw -e nan -e inf -e -nan "$@"
}

within() {   # within GOT WANT PERCENT
	awk -v g="$1" -v w="$2" -v p="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(g != "" && w > 0 && d <= w * p / 100) }'
}

# ---- synthetic records ------------------------------------------------------
gen "$tmp/lin" 60 linear
"$tm" plan "$tmp/lin" --tasks 50000 --spawn-rate 1000 --svg "$tmp/lin.svg" >"$tmp/lin.out" 2>"$tmp/lin.err"
rc=$?
if [ $rc = 0 ]; then ok "a plan from 60 synthetic records"; else ko "a plan from 60 synthetic records (rc $rc)" "$(cat "$tmp/lin.err")"; fi
got=$(bytes_per_task "$tmp/lin.out")
if within "$got" 10000 1; then ok "fitted memory per task $got B, built as 10000 B"; else ko "fitted memory per task '$got' B, built as 10000 B" "$(cat "$tmp/lin.out")"; fi
check "fitted CPU per spawn is the 20 µs built in" grep -q 'workload cores = 0.0100 + 20 µs × spawns/s   R² 1.000' "$tmp/lin.out"
check "collector CPU per spawn is the 1 µs built in" grep -q 'collector cores = 0.0020 + 1 µs × machine spawns/s' "$tmp/lin.out"
check "--tasks 50000 is answered, with a warning that it is far beyond the data" \
	sh -c "grep -q -- '--tasks 50000: RSS 481 MiB ± ' '$tmp/lin.out' && grep -q 'far outside the data' '$tmp/lin.out'"
check "--spawn-rate 1000 is answered in cores, workload and collector" \
	grep -q -- '--spawn-rate 1000: 0.033 cores = 0.030 in the workload (R² 1.000) + 0.003 in the collector' "$tmp/lin.out"
check "latency against load: a table of four rows with the exact interval means" \
	sh -c "[ \$(grep -c '^    [0-9]*\.\.[0-9]* ' '$tmp/lin.out') = 4 ] && grep -q '225..1240 .* 30.3 µs' '$tmp/lin.out'"
check "no NaN or infinity printed" no_nan "$tmp/lin.out" "$tmp/lin.err"

# ---- the chart --------------------------------------------------------------
check "the chart is a whole SVG document" sh -c "head -c 5 '$tmp/lin.svg' | grep -q '<?xml' && tail -n 1 '$tmp/lin.svg' | grep -qx '</svg>'"
check "the chart has its six panels" \
	sh -c "for t in Concurrency 'Spawn rate' 'Spawn latency p99' 'Memory (dashed' 'Memory against concurrency' 'CPU against spawn rate'; do grep -q \"\$t\" '$tmp/lin.svg' || exit 1; done"
check "the chart draws the fitted lines dashed" grep -q 'stroke-dasharray' "$tmp/lin.svg"
check "the chart holds no NaN" no_nan "$tmp/lin.svg"
if command -v xmllint >/dev/null; then
	check "the chart is well-formed XML" xmllint --noout "$tmp/lin.svg"
fi
if command -v rsvg-convert >/dev/null; then
	check "the chart renders" sh -c "rsvg-convert '$tmp/lin.svg' -o '$tmp/lin.png' && [ -s '$tmp/lin.png' ]"
fi

# ---- records that cannot carry a plan --------------------------------------
refuses() {   # refuses DESCRIPTION PATTERN ARGS...: exit 1, one sentence matching PATTERN, no report
	desc=$1; pat=$2; shift 2
	"$tm" plan "$@" >"$tmp/r.out" 2>"$tmp/r.err"
	rc=$?
	if [ $rc = 1 ] && [ ! -s "$tmp/r.out" ] && [ "$(wc -l <"$tmp/r.err")" = 1 ] && grep -q "$pat" "$tmp/r.err" &&
	   no_nan "$tmp/r.err"; then
		ok "$desc"
	else
		ko "$desc (rc $rc)" "$(cat "$tmp/r.out" "$tmp/r.err")"
	fi
}
gen "$tmp/flat" 40 flat
refuses "records where nothing varied" "never varied\|varied across the 40 records" "$tmp/flat" --tasks 50000
gen "$tmp/two" 2 linear
refuses "two records are too few" "2 records .* needs at least 3" "$tmp/two"
mkdir "$tmp/empty"
refuses "an empty directory" "0 records" "$tmp/empty"
refuses "a directory that does not exist" "$tmp/none" "$tmp/none"
refuses "a --workload that no record holds" "of that --workload name" "$tmp/lin" --workload nope
refuses "a --pid that no record holds" "of that --pid" "$tmp/lin" --pid 4242

# ---- hostile records --------------------------------------------------------
mkdir "$tmp/bad"
f=$tmp/bad/taskmon-20260101T000000Z.jsonl
{
	sed -n 1,20p "$tmp/lin/taskmon-20260101T000000Z.jsonl" | sed 's/"comm":"synth"/"comm":"<b>\&amp;\\u0001\\u00e9\\"x<\/b>"/g'
	echo 'not json'
	echo '{"record":{"time_unix_ns":1767225604100000000},"now_ns":"x","collector":[],"workloads":{}}'
	sed -n 21p "$tmp/lin/taskmon-20260101T000000Z.jsonl" | sed 's/"rss_bytes":[0-9]*/"rss_bytes":1e308/; s/"running":[0-9]*/"running":-5/'
	sed -n 22p "$tmp/lin/taskmon-20260101T000000Z.jsonl" | sed 's/"cpu_ns":[0-9]*/"cpu_ns":99999999999999999999999/g; s/"spawned":[0-9]*/"spawned":1/g'
	sed -n 23p "$tmp/lin/taskmon-20260101T000000Z.jsonl" | sed 's/"workloads":\[/"workloads":[1,"a",null,{"alive":true,"pid":200},/'
	sed -n 24,60p "$tmp/lin/taskmon-20260101T000000Z.jsonl"
	printf '{"torn":'
} >"$f"
"$tm" plan "$tmp/bad" --tasks 50000 --spawn-rate 1000 --svg "$tmp/bad.svg" >"$tmp/bad.out" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q 'lines did not parse' "$tmp/bad.out"; then ok "hostile records are counted and left out"; else ko "hostile records (rc $rc)" "$(cat "$tmp/bad.out")"; fi
check "hostile records: no NaN or infinity" no_nan "$tmp/bad.out" "$tmp/bad.svg"
check "a hostile name is printed as printable ASCII" grep -q '^workload <b>&amp;???"x</b>:' "$tmp/bad.out"
check "--workload keeps only the workloads of that name" \
	sh -c "[ \"\$('$tm' plan '$tmp/bad' --workload synth | grep '^workload' | cut -d: -f1)\" = 'workload synth' ]"
check "a hostile name is escaped in the chart" \
	sh -c "! grep -q '<b>' '$tmp/bad.svg' && grep -q '&lt;b&gt;&amp;amp;???&quot;x&lt;/b&gt;' '$tmp/bad.svg'"
if command -v xmllint >/dev/null; then
	check "the chart of hostile records is well-formed XML" xmllint --noout "$tmp/bad.svg"
fi

# ---- limits from the library's configuration --------------------------------
printf '[task_limits]\nmax_concurrent_total = 30000\nmax_concurrent_network = 500\n' >"$tmp/limits.ini"
"$tm" plan "$tmp/lin" --tasks 50000 --config "$tmp/limits.ini" >"$tmp/cfg.out" 2>&1
check "headroom against max_concurrent_total" grep -q 'max_concurrent_total = 30000: peak 1800 running, 94% headroom' "$tmp/cfg.out"
check "--tasks past the limit is called out" grep -q -- '--tasks 50000 is past it' "$tmp/cfg.out"
check "a type's limit is held against that type's peak" grep -q 'network max_concurrent = 500: peak 900 running exceeds it' "$tmp/cfg.out"
printf '[task_limits]\nmax_concurrent_totl = 3\n' >"$tmp/bad.ini"
refuses "a bad configuration file: one sentence naming the file and line" "bad.ini:2: unknown key" "$tmp/lin" --config "$tmp/bad.ini"
refuses "a configuration file that does not exist" "cannot open" "$tmp/lin" --config "$tmp/none.ini"

# ---- usage ------------------------------------------------------------------
usage_fails() {   # usage_fails ARGS...: exit 2 and a sentence on stderr
	"$tm" plan "$@" >/dev/null 2>"$tmp/u.err"
	rc=$?
	if [ $rc = 2 ] && [ -s "$tmp/u.err" ]; then ok "refused: plan $*"; else ko "refused: plan $* (rc $rc)"; fi
}
usage_fails
usage_fails "$tmp/lin" --tasks 0
usage_fails "$tmp/lin" --tasks 12x
usage_fails "$tmp/lin" --spawn-rate nan
usage_fails "$tmp/lin" --spawn-rate -3
usage_fails "$tmp/lin" --svg
usage_fails "$tmp/lin" --bogus
usage_fails "$tmp/lin" --workload
usage_fails "$tmp/lin" --pid 0
usage_fails "$tmp/lin" --pid x
check "--help prints the usage" sh -c "'$tm' plan --help | grep -q '^usage: taskmon plan'"

# ---- real records of a workload that grows in steps (root) ------------------
grower=$build/tests/integration/grower
if [ "$(id -u)" != 0 ]; then
	echo "[  SKIPPED ] real records: skipped: needs root (taskmond loads BPF programs)"
elif ! "$build/taskmond" --help 2>&1 | grep -q -- '--record'; then
	echo "[  SKIPPED ] real records: skipped: this taskmond has no --record"
else
	rec=$tmp/rec
	"$build/taskmond" --foreground --socket "$tmp/sock" --state-dir "$tmp/state" --metrics off \
		--library "$(cd "$build" && pwd)/libtaskmon.so" --record "$rec" --interval 200ms >"$tmp/tmd.log" 2>&1 &
	tmd_pid=$!
	i=0
	while [ ! -S "$tmp/sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	# The recorder stops before the tasks end: the fit is of memory while the
	# tasks are held (a process that ends them keeps much of it, cached).
	mkfifo "$tmp/go"
	TASKMON_SOCKET=$tmp/sock "$grower" --step 250 --steps 8 --hold-ms 1000 --wait <"$tmp/go" >"$tmp/grower.out" 2>&1 &
	grower_pid=$!
	exec 3>"$tmp/go"
	i=0
	while ! grep -q '^truth' "$tmp/grower.out" && kill -0 "$grower_pid" 2>/dev/null && [ $i -lt 1200 ]; do
		sleep 0.1; i=$((i + 1))
	done
	sleep 0.6   # a last record or two of the final level
	kill "$tmd_pid" && wait "$tmd_pid" 2>/dev/null
	tmd_pid=""
	exec 3>&-
	wait "$grower_pid"
	grc=$?
	if [ $grc = 0 ]; then ok "the grower ran 8 steps of 250 tasks"; else ko "the grower (rc $grc)" "$(cat "$tmp/grower.out" "$tmp/tmd.log")"; fi
	# --pid: another program of the same name may be running on this machine
	gpid=$(awk '$1 == "ready" { print $2 }' "$tmp/grower.out")
	"$tm" plan "$rec" --pid "${gpid:-0}" --tasks 50000 --spawn-rate 1000 --svg "$tmp/rec.svg" >"$tmp/rec.out" 2>&1
	rc=$?
	sed 's/^/    | /' "$tmp/rec.out"
	if [ $rc = 0 ]; then ok "a plan from taskmond's records"; else ko "a plan from taskmond's records (rc $rc)" "$(tail -20 "$tmp/tmd.log")"; fi
	truth=$(awk '$1 == "truth" { print $NF }' "$tmp/grower.out")
	got=$(awk '/^workload grower:/ { f = 1 } f' "$tmp/rec.out" >"$tmp/grower.plan"; bytes_per_task "$tmp/grower.plan")
	r2=$(awk '/^workload grower:/ { f = 1 } f && /memory  RSS =/ { for (i = 1; i < NF; i++) if ($i == "R²") { print $(i + 1); exit } }' "$tmp/rec.out")
	echo "    fitted per task ${got:-?} B (R² ${r2:-?}), measured by the workload ${truth:-?} B"
	if within "$got" "$truth" 15; then ok "fitted memory per task within 15% of the measured"; else ko "fitted memory per task '$got' B against measured '$truth' B"; fi
	check "real records: no NaN or infinity" no_nan "$tmp/rec.out" "$tmp/rec.svg"
	if command -v xmllint >/dev/null; then
		check "the chart of real records is well-formed XML" xmllint --noout "$tmp/rec.svg"
	fi
fi

echo "plan_test: $pass passed, $fail failed"
[ $fail = 0 ]
