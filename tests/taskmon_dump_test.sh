#!/bin/sh
# taskmon dump and taskmond --record from the command line.
#   1. dump over a record directory written here: formats, --select, time
#      bounds, quoting, bad arguments (exit 2 with one sentence), and an
#      OpenMetrics import by promtool when it is installed;
#   2. taskmond's recording options refused with one sentence;
#   3. as root: taskmond --record --interval 200ms while the test workload
#      spawns a known mix of tasks; taskmon dump shows those counts per type.
# Usage: tests/taskmon_dump_test.sh BUILD_DIR
set -u
build=${1:-build}
taskmon=$build/taskmon
tmp=$(mktemp -d /tmp/taskmon_dump_test.XXXXXX)
tmd_pid=""; wl_pid=""
cleanup() {
	[ -n "$wl_pid" ] && kill "$wl_pid" 2>/dev/null
	[ -n "$tmd_pid" ] && kill "$tmd_pid" 2>/dev/null && wait "$tmd_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "[       OK ] $1"; }
bad() { fail=$((fail + 1)); echo "[  FAILED  ] $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -n 20 | sed 's/^/    /'; }
check() {   # check DESCRIPTION COMMAND...
	desc=$1; shift
	if out=$("$@" 2>&1); then ok "$desc"; else bad "$desc" "$out"; fi
}
# refuses DESCRIPTION PATTERN COMMAND...: exit 2, nothing on stdout, one line on stderr matching PATTERN
refuses() {
	desc=$1; pat=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
	if [ $rc -eq 2 ] && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pat" "$tmp/err"; then
		ok "$desc"
	else
		bad "$desc" "exit $rc; stdout: $(head -c 300 "$tmp/out"); stderr: $(cat "$tmp/err")"
	fi
}

# ---- 1. a record directory written here -------------------------------------------------------
dir=$tmp/rec
mkdir -p "$dir"
now=$(date +%s)
# rec SECONDS SEQ SPAWNED: one record of two workloads, the second named a,"b
rec() {
	t=$1; seq=$2; s=$3
	printf '{"version":1,"now_ns":1,"collector":{"lost":3},"workloads":['
	printf '{"pid":100,"comm":"server","types":['
	printf '{"id":0,"name":"general","registry":{"spawned":0,"running":0,"rejected":0},"kernel":{"tasks_started":0,"tasks_ended":0}},'
	printf '{"id":1,"name":"network","registry":{"spawned":%d,"running":1,"succeeded":%d,"failed":0},' "$s" $((s - 1))
	printf '"kernel":{"tasks_started":%d,"tasks_ended":%d,"oncpu_ns":1500000000,"spawn_latency":{"count":%d,"p50_ns":20000,"p95_ns":40000,"p99_ns":90000,"max_ns":120000}}}]},' "$s" $((s - 1)) "$s"
	printf '{"pid":200,"comm":"a,\\"b","types":[{"id":9,"name":"","registry":{"spawned":2},"kernel":{"tasks_started":2}}]}'
	printf '],"tasks":[],"record":{"version":1,"seq":%d,"interval_ns":1000000000,"time_unix_ns":%d000000000,' "$seq" "$t"
	printf '"processes":[{"pid":100,"comm":"server","rss_bytes":%d,"threads":5,"cpu_ns":2500000000}],' $((1048576 + s))
	printf '"collector":{"rss_bytes":4096,"cpu_ns":7}}}\n'
}
t0=$((now - 3600))      # an hour ago: two files, one record a minute ...
f1=$(date -u -d "@$t0" +taskmon-%Y%m%dT%H%M%SZ.jsonl)
for i in 0 1 2 3 4; do rec $((t0 + 60 * i)) "$i" $((10 + i)); done >"$dir/$f1"
t1=$((now - 300))       # ... and five minutes ago, with a record in flight
f2=$(date -u -d "@$t1" +taskmon-%Y%m%dT%H%M%SZ.jsonl)
{ for i in 0 1 2; do rec $((t1 + 60 * i)) $((5 + i)) $((20 + i)); done; printf '{"version":1,"workl'; } >"$dir/$f2"
echo "not a record file" >"$dir/README"

"$taskmon" dump "$dir" >"$tmp/all.json" 2>"$tmp/all.err"
rows=$(wc -l <"$tmp/all.json")
[ "$rows" -eq 16 ] && ok "json: one row per record, workload and active type (16)" || bad "json rows: $rows, not 16" "$(head -3 "$tmp/all.json")"
grep -q '^{"schema":1,"time":"' "$tmp/all.json" && ok "json: schema 1 first, then time" || bad "json: schema first" "$(head -1 "$tmp/all.json")"
! grep -q '"type":"general"' "$tmp/all.json" && ok "json: types never used are left out" || bad "json: an unused type shown"
grep -q '"workload":"a,\\"b","type":"9"' "$tmp/all.json" && ok "json: escaped workload name, unnamed type by its id" \
	|| bad "json: escaping" "$(grep '"pid":200' "$tmp/all.json" | head -1)"
grep -q '"pid":100,"workload":"server","type":"network","spawned":22,.*"spawn_latency_p99_ns":90000,.*"rss_bytes":1048598,"threads":5,"cpu_ns":2500000000,"collector_rss_bytes":4096,"collector_cpu_ns":7,"collector_events_lost":3}$' "$tmp/all.json" \
	&& ok "json: counters, quantiles, process and collector figures" || bad "json: figures" "$(tail -2 "$tmp/all.json")"
grep '"pid":200' "$tmp/all.json" | head -1 | grep -q '"rss_bytes":null' && ok "json: no process figures -> null" || bad "json: null process"
grep -q "1 line skipped" "$tmp/all.err" && ok "the record in flight is skipped and said so" || bad "skipped note" "$(cat "$tmp/all.err")"
# Time order and JSON validity through the reader's own eyes: times only grow.
awk -F'"time_unix_ns":' '{ split($2, a, ","); if (a[1] + 0 < last) exit 1; last = a[1] + 0 }' "$tmp/all.json" \
	&& ok "json: rows in time order" || bad "json: time order"

"$taskmon" dump "$dir" --format csv --select time,workload,type,spawned,rss_bytes >"$tmp/out.csv" 2>/dev/null
head -1 "$tmp/out.csv" | grep -q "^time,workload,type,spawned,rss_bytes$(printf '\r')\$" && ok "csv: header of the selected fields" \
	|| bad "csv header" "$(head -1 "$tmp/out.csv")"
tr -d '\r' <"$tmp/out.csv" | grep -q ',"a,""b",9,2,$' && ok "csv: RFC 4180 quoting, empty for null" || bad "csv quoting" "$(grep b "$tmp/out.csv" | head -1)"
[ "$(wc -l <"$tmp/out.csv")" -eq 17 ] && ok "csv: header and 16 rows" || bad "csv rows: $(wc -l <"$tmp/out.csv")"

"$taskmon" dump "$dir" --select spawned,pid --format json 2>/dev/null | head -1 | grep -qx '{"schema":1,"spawned":10,"pid":100}' \
	&& ok "--select: those fields, in that order" || bad "--select order" "$("$taskmon" dump "$dir" --select spawned,pid | head -1)"

# Time bounds, in every form.
n=$("$taskmon" dump "$dir" --since -10m --select seq 2>/dev/null | wc -l)
[ "$n" -eq 6 ] && ok "--since -10m: the recent file only" || bad "--since -10m gave $n rows, not 6"
iso=$(date -u -d "@$((t0 + 60))" +%Y-%m-%dT%H:%M:%SZ)
iso_until=$(date -u -d "@$((t0 + 180))" '+%Y-%m-%d %H:%M:%S')
n=$("$taskmon" dump "$dir" --since "$iso" --until "$iso_until" --select seq | wc -l)
[ "$n" -eq 6 ] && ok "--since RFC 3339 --until 'YYYY-MM-DD HH:MM:SS', inclusive" || bad "rfc3339 bounds gave $n rows, not 6"
n=$("$taskmon" dump "$dir" --since "$((t0 + 240))" --until "$((t1 + 60))" --select seq 2>/dev/null | wc -l)
[ "$n" -eq 6 ] && ok "--since/--until unix seconds" || bad "unix bounds gave $n rows, not 6"
off=$(date -u -d "@$((t0 + 30 + 3600))" +%Y-%m-%dT%H:%M:%S+01:00)
n=$("$taskmon" dump "$dir" --until "$off" --select seq | wc -l)
[ "$n" -eq 2 ] && ok "--until with a zone offset" || bad "--until offset gave $n rows, not 2"
"$taskmon" dump "$dir" --since -1m >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && [ ! -s "$tmp/out" ] && grep -q "no records" "$tmp/err" && ok "no record in range: a note, exit 0" || bad "empty range" "$(cat "$tmp/err")"

# OpenMetrics.
"$taskmon" dump "$dir" --format openmetrics >"$tmp/out.om" 2>/dev/null
[ "$(tail -n 1 "$tmp/out.om")" = "# EOF" ] && ok "openmetrics: ends with # EOF" || bad "openmetrics EOF" "$(tail -2 "$tmp/out.om")"
grep -q '^# TYPE taskmon_tasks_spawned counter$' "$tmp/out.om" && \
grep -q "^taskmon_tasks_spawned_total{workload=\"server\",pid=\"100\",type=\"network\"} 10 $t0.000\$" "$tmp/out.om" && \
grep -q "^taskmon_tasks_spawned_total{workload=\"a,\\\\\"b\",pid=\"200\",type=\"9\"} 2 $t0.000\$" "$tmp/out.om" && \
grep -q "^taskmon_task_oncpu_seconds_total{workload=\"server\",pid=\"100\",type=\"network\"} 1.500000000 $t0.000\$" "$tmp/out.om" && \
grep -q "^taskmon_process_resident_memory_bytes{workload=\"server\",pid=\"100\"} 1048586 $t0.000\$" "$tmp/out.om" && \
grep -q "^taskmon_collector_cpu_seconds_total 0.000000007 $t0.000\$" "$tmp/out.om" \
	&& ok "openmetrics: families, labels, escaping, base units, timestamps" || bad "openmetrics samples" "$(head -12 "$tmp/out.om")"
n=$(grep -c '^taskmon_process_threads{' "$tmp/out.om")
[ "$n" -eq 8 ] && ok "openmetrics: a process figure once per record" || bad "openmetrics: $n thread samples, not 8"
# Each family's samples together, each series' samples together.
awk '/^#/ { next } { split($1, a, "{"); if (a[1] != fam) { if (seen[a[1]]++) exit 1; fam = a[1] }
     if ($1 != ser) { if (sser[$1]++) exit 1; ser = $1 } }' "$tmp/out.om" \
	&& ok "openmetrics: families and series not interleaved" || bad "openmetrics grouping"
if command -v promtool >/dev/null 2>&1; then
	check "openmetrics: promtool imports it" promtool tsdb create-blocks-from openmetrics "$tmp/out.om" "$tmp/tsdb"
else
	echo "skipped: promtool is not installed (openmetrics import)"
fi

# Bad arguments: exit 2, one sentence.
refuses "unknown --select field lists the valid ones" "unknown field 'nope'.*spawn_latency_p99_ns" "$taskmon" dump "$dir" --select time,nope
refuses "bad --format" "json, csv or openmetrics" "$taskmon" dump "$dir" --format xml
refuses "bad --since" "--since takes a time" "$taskmon" dump "$dir" --since yesterday
refuses "bad --until" "--until takes a time" "$taskmon" dump "$dir" --until 2026-13-01
refuses "--since after --until" "after --until" "$taskmon" dump "$dir" --since -1m --until -1h
refuses "no directory" "which record directory" "$taskmon" dump
refuses "two directories" "not several" "$taskmon" dump "$dir" "$dir"
refuses "unknown option" "unknown option '--frobnicate'" "$taskmon" dump "$dir" --frobnicate
refuses "option without its value" "needs a value" "$taskmon" dump "$dir" --since
refuses "unknown command" "not a command" "$taskmon" frobnicate
"$taskmon" dump "$tmp/missing" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "cannot read the record directory" "$tmp/err" && ok "missing directory: exit 1, one sentence" || bad "missing directory" "$(cat "$tmp/err")"
check "taskmon --help" sh -c "'$taskmon' --help | grep -q 'dump'"
check "taskmon help dump" sh -c "'$taskmon' help dump | grep -q -- '--select FIELDS'"
check "taskmon dump --help" sh -c "'$taskmon' dump --help | grep -q 'collector_events_lost'"

# ---- 2. taskmond's recording options ------------------------------------------------------------
tmd=$build/taskmond
refuses "taskmond --interval bad" "--interval takes a duration" "$tmd" --record "$tmp/r" --interval 10parsecs
refuses "taskmond --interval too short" "at least 10ms" "$tmd" --record "$tmp/r" --interval 1ms
refuses "taskmond --retain without a unit" "--retain takes an age" "$tmd" --record "$tmp/r" --retain 500
refuses "taskmond --retain without --record" "which is missing" "$tmd" --retain 7d

# ---- 3. end to end, as root ------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root (taskmond --record end to end)"
else
	sock=$tmp/taskmond.sock
	rdir=$tmp/recorded
	# --library: probes on the workload's libtaskmon before it registers
	# (installing them when it registers can miss its first spawns).
	"$tmd" --foreground --socket "$sock" --state-dir "$tmp/state" --record "$rdir" --interval 200ms \
		--library "$(readlink -f "$build/libtaskmon.so")" --metrics off --duration 60 2>"$tmp/tmd.err" &
	tmd_pid=$!
	# Ready when the first record is written: the recorder starts once the
	# programs are attached, right before the loop.
	i=0; while [ -z "$(ls "$rdir" 2>/dev/null)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	mkfifo "$tmp/wl.in"
	: >"$tmp/wl.out"
	TASKMON_SOCKET=$sock "$build/tests/integration/workload" --wait --hold network=40 database=25 ledger=7 \
		<"$tmp/wl.in" >"$tmp/wl.out" 2>&1 &
	wl_pid=$!
	exec 3>"$tmp/wl.in"
	i=0; while ! grep -q '^ready' "$tmp/wl.out" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(sed -n 's/^ready //p' "$tmp/wl.out")
	# Spawning starts once a record shows the workload followed: tm_init
	# waits only 50 ms for its registration, and a slow (sanitized) collector
	# may take longer to attach its probes.
	i=0; while ! cat "$rdir"/* | grep -q "{\"pid\":$pid,\"comm\":" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	echo go >&3
	i=0; while ! grep -q '^done' "$tmp/wl.out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 1   # a few records while it holds its threads
	echo bye >&3
	exec 3>&-
	wait "$wl_pid"; wl_pid=""
	sleep 0.5
	kill -TERM "$tmd_pid"; wait "$tmd_pid"; rc=$?; tmd_pid=""
	[ $rc -eq 0 ] && ok "taskmond --record stops cleanly on SIGTERM" || bad "taskmond exit $rc" "$(cat "$tmp/tmd.err")"
	grep -q '^done 72$' "$tmp/wl.out" && ok "the workload spawned 72 tasks" || bad "workload" "$(cat "$tmp/wl.out")"
	nfiles=$(ls "$rdir" | grep -c '^taskmon-[0-9]\{8\}T[0-9]\{6\}Z\.jsonl$')
	[ "$nfiles" -ge 1 ] && [ "$nfiles" -eq "$(ls "$rdir" | wc -l)" ] && ok "record files named taskmon-YYYYMMDDTHHMMSSZ.jsonl" \
		|| bad "record files" "$(ls -l "$rdir")"
	lines=$(cat "$rdir"/* | wc -l)
	[ "$lines" -ge 8 ] && ok "a record every 200 ms ($lines records)" || bad "only $lines records"
	for f in "$rdir"/*; do [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || bad "$f ends in a torn line"; done
	"$taskmon" dump "$rdir" --format csv --select pid,type,spawned,succeeded,started,ended >"$tmp/e2e.csv" 2>"$tmp/e2e.err"
	for want in network=40 database=25 ledger=7; do
		type=${want%=*}; count=${want#*=}
		last=$(grep "^$pid,$type," "$tmp/e2e.csv" | tail -n 1 | tr -d '\r')
		[ "$last" = "$pid,$type,$count,$count,$count,$count" ] \
			&& ok "dump: $type spawned, succeeded, started, ended = $count" || bad "dump: $type: '$last', not $count" "$(tail -5 "$tmp/e2e.csv")"
	done
	"$taskmon" dump "$rdir" --select pid,rss_bytes,threads --format csv | grep "^$pid," | tr -d '\r' \
		| awk -F, '$2 > 1048576 && $3 >= 1 { n++ } END { exit !(n > 0) }' \
		&& ok "dump: the workload's RSS and threads while it ran" || bad "no process figures for pid $pid"
	"$taskmon" dump "$rdir" --format openmetrics >"$tmp/e2e.om" && [ "$(tail -n 1 "$tmp/e2e.om")" = "# EOF" ] \
		&& ok "dump of a real recording as openmetrics" || bad "openmetrics of the recording"
	if command -v promtool >/dev/null 2>&1; then
		check "promtool imports the real recording" promtool tsdb create-blocks-from openmetrics "$tmp/e2e.om" "$tmp/tsdb2"
	fi
	! grep -q 'record' "$tmp/tmd.err" && ok "taskmond reported no recording trouble" || bad "taskmond stderr" "$(cat "$tmp/tmd.err")"
fi

echo "taskmon_dump: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
