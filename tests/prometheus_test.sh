#!/bin/sh
# taskmond scraped by a real Prometheus (Debian's `prometheus`), on loopback
# with a generated configuration and a temporary data directory, while the
# test workload spawns a known number of tasks per type. Checks through the
# Prometheus HTTP API that the per-type spawn counters equal those numbers
# (also after the workload exits) and that histogram_quantile over the spawn
# latency is finite; runs promtool check metrics on a real scrape; prints the
# scrape's size and duration beside an idle collector's. Stops what it started,
# by pid, and removes its directory. Needs root; takes the build directory.
B=$(cd "${1:-build}" 2>/dev/null && pwd)
passed=0; failed=0
finish() { echo "prometheus_test: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
skip() { echo "skipped: $1"; finish; }

[ "$(id -u)" = 0 ] || skip "needs root"
for tool in prometheus promtool python3; do
	command -v $tool >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$B/taskmond" ] && [ -x "$B/tests/integration/workload" ] || skip "build $B/taskmond and the test workload first"

tmp=$(mktemp -d /tmp/prometheus_test.XXXXXX) || exit 1
tpid=""; ppid_=""; wpid=""
cleanup() {
	exec 3>&- 2>/dev/null
	for p in $wpid $ppid_ $tpid; do kill "$p" 2>/dev/null; done
	for p in $wpid $ppid_ $tpid; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
# Whatever ends the script (a closed pipe included) stops what it started.
trap 'exit 1' INT TERM HUP PIPE

# HTTP and JSON through python3's standard library.
cat >"$tmp/promq.py" <<'PY'
import json, math, sys, urllib.parse, urllib.request
def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()
cmd = sys.argv[1]
if cmd == "get":                       # get URL: the body on stdout
    sys.stdout.buffer.write(get(sys.argv[2]))
elif cmd == "query":                   # query PROMETHEUS EXPR: "labels value" lines
    url = sys.argv[2] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[3]})
    d = json.loads(get(url))
    if d.get("status") != "success":
        sys.exit("query failed: %s" % d)
    for s in d["data"]["result"]:
        m = s["metric"]
        print(",".join("%s=%s" % (k, m[k]) for k in sorted(m)), s["value"][1])
elif cmd == "port":                    # a free loopback port
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
http() { python3 "$tmp/promq.py" "$@"; }
# wait_for SECONDS COMMAND...: until it succeeds
wait_for() {
	n=$(($1 * 10)); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

mport=$(http port); pport=$(http port)
M="http://127.0.0.1:$mport/metrics"; P="http://127.0.0.1:$pport"
lib=$(readlink -f "$B/libtaskmon.so")
"$B/taskmond" --foreground --socket "$tmp/taskmond.sock" --state-dir "$tmp/state" \
	--metrics "127.0.0.1:$mport" --library "$lib" >"$tmp/taskmond.log" 2>&1 &
tpid=$!
if ! wait_for 30 http get "$M"; then
	bad "taskmond serves $M"; cat "$tmp/taskmond.log"; finish
fi
ok "taskmond serves /metrics"
http get "$M" >"$tmp/idle.txt"

# The option: bad values are refused up front; an address given that is taken stops a second collector.
"$B/taskmond" --metrics localhost >"$tmp/bad.log" 2>&1; rc=$?
if [ $rc = 2 ] && grep -q "^taskmond: --metrics takes ADDR:PORT or off, not 'localhost'$" "$tmp/bad.log"
then ok "--metrics with a bad address: exit 2 and a sentence"; else bad "--metrics localhost: exit $rc"; cat "$tmp/bad.log"; fi
"$B/taskmond" --foreground --socket "$tmp/second.sock" --state-dir "$tmp/state2" --metrics "127.0.0.1:$mport" \
	--duration 5 >"$tmp/second.log" 2>&1; rc=$?
if [ $rc = 1 ] && grep -q "cannot serve metrics on 127.0.0.1:$mport: the address is in use" "$tmp/second.log"
then ok "--metrics on a taken address: exit 1 and a sentence"; else bad "--metrics taken: exit $rc"; cat "$tmp/second.log"; fi

cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: taskmond
    static_configs:
      - targets: ['127.0.0.1:$mport']
  - job_name: prometheus              # a baseline exporter, scraped in the same run
    static_configs:
      - targets: ['127.0.0.1:$pport']
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
ppid_=$!
if ! wait_for 60 http get "$P/-/ready"; then
	bad "prometheus ready on $P"; cat "$tmp/prometheus.log"; finish
fi
ok "prometheus ready"

# The workload: a known mix, held alive (stdin open) until we are done looking.
# The collector sees every workload on the machine: this one runs under a
# name of its own (its comm, the workload label), so that others do not count.
set -- network=400 database=300 background=250 matchmaking=90
total=1040
wl=$(printf 'promtest%d' $$ | cut -c1-15)
cp "$B/tests/integration/workload" "$tmp/$wl"
mkfifo "$tmp/in"
TASKMON_SOCKET="$tmp/taskmond.sock" "$tmp/$wl" --hold "$@" <"$tmp/in" >"$tmp/workload.out" 2>&1 &
wpid=$!
exec 3>"$tmp/in"
if wait_for 60 grep -q "^done $total" "$tmp/workload.out"; then ok "workload spawned $total tasks"; else
	bad "workload finished"; cat "$tmp/workload.out"; finish; fi

# counts_match: Prometheus has every type's spawn counter at its count.
counts_match() {
	http query "$P" "sum by (type) (taskmon_tasks_spawned_total{workload=\"$wl\"})" >"$tmp/counts" || return 1
	for spec in "$@"; do
		grep -qx "type=${spec%=*} ${spec#*=}" "$tmp/counts" || return 1
	done
}
if wait_for 30 counts_match "$@"; then ok "per-type spawn counters equal the workload's counts"; else
	bad "per-type spawn counters: want $*, Prometheus has:"; cat "$tmp/counts"; fi

q="histogram_quantile(0.99, sum by (le) (taskmon_task_spawn_latency_seconds_bucket{workload=\"$wl\"}))"
p99=$(http query "$P" "$q" | awk '{print $NF}')
if python3 -c "import math,sys; v=float(sys.argv[1]); sys.exit(not (math.isfinite(v) and 0 < v < 10))" "$p99" 2>/dev/null
then ok "histogram_quantile(0.99) of spawn latency is finite: ${p99}s"; else bad "spawn latency p99 is '$p99'"; fi
q="histogram_quantile(0.5, sum by (le) (taskmon_task_spawn_latency_seconds_bucket{workload=\"$wl\"}))"
echo "     spawn latency p50: $(http query "$P" "$q" | awk '{print $NF}')s"

# A real scrape, while the workload is there, through promtool.
http get "$M" >"$tmp/busy.txt"
if out=$(promtool check metrics <"$tmp/busy.txt" 2>&1) && [ -z "$out" ]; then ok "promtool check metrics on a real scrape"
else bad "promtool check metrics:"; echo "$out" | head -20; fi

# Figures: the collector's own render time and the size, idle and with the workload.
dur() { awk '/^taskmon_collector_scrape_duration_seconds /{print $2}' "$1"; }
series() { grep -vc '^#' "$1"; }
pdur() { http query "$P" "quantile_over_time(0.5, scrape_duration_seconds{job=\"$1\"}[30s])" | awk '{print $NF}'; }
psize() { http query "$P" "scrape_samples_scraped{job=\"$1\"}" | awk '{print $NF}'; }
echo "     scrape idle:           $(wc -c <"$tmp/idle.txt") bytes, $(series "$tmp/idle.txt") samples, rendered in $(dur "$tmp/idle.txt") s"
echo "     scrape, $total tasks:  $(wc -c <"$tmp/busy.txt") bytes, $(series "$tmp/busy.txt") samples, rendered in $(dur "$tmp/busy.txt") s"
echo "     Prometheus scrape_duration_seconds, median over 30 s: taskmond $(pdur taskmond)s ($(psize taskmond) samples);" \
	"Prometheus itself $(pdur prometheus)s ($(psize prometheus) samples)"

# The workload exits; its counters stay (and its running gauge is 0).
exec 3>&-
wait "$wpid"; wpid=""
running_zero() {
	[ "$(http query "$P" "sum(taskmon_tasks_running{workload=\"$wl\"})" | awk '{print $NF}')" = 0 ]
}
wait_for 30 running_zero
sleep 5   # past the fold delay, and a few scrapes more
if counts_match "$@"; then ok "counters kept after the workload exited"; else
	bad "counters after the workload exited:"; cat "$tmp/counts"; fi

kill "$tpid"; wait "$tpid"; rc=$?; tpid=""
if [ $rc = 0 ]; then ok "taskmond stopped cleanly"; else bad "taskmond exit code $rc"; tail -20 "$tmp/taskmond.log"; fi
finish
