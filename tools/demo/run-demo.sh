#!/bin/bash
# make demo: runs the dice-game node (taskmon-demo) under taskmond and shows
# it in tasktop.
#
#   tools/demo/run-demo.sh BUILD_DIR [taskmon-demo options...]
#
# As root it starts BUILD_DIR/taskmond (socket, state, records and logs under
# BUILD_DIR/demo/, metrics on 127.0.0.1:9464 or the next free port), waits
# until it answers, and starts the demo registered with it. On a terminal
# (stdin and stdout) it opens tasktop; quitting tasktop stops everything
# this script started. Without a terminal it runs DEMO_SECONDS (default 20),
# prints tasktop's batch view and a summary, and says where the records, the
# crash log and the metrics are. Without root, only the library's view.
set -u

B=${1:?usage: run-demo.sh BUILD_DIR [taskmon-demo options...]}
shift
DIR=${DEMO_DIR:-$B/demo}   # the tests give it a directory of their own
SOCK=$DIR/taskmond.sock
STATE=$DIR/state
RECORDS=$DIR/records
SECONDS_WANTED=${DEMO_SECONDS:-20}
TMD_PID="" DEMO_PID="" WRAP_PID="" PORT=""
DEMO_STATUS=""
failed=false   # the run did not do what it promised: exit 1 at the end
crash=false
case " $* " in *" --crash "*) crash=true ;; esac

say() { printf 'taskmon demo: %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

case $SECONDS_WANTED in
''|*[!0-9]*|0) echo "taskmon demo: DEMO_SECONDS must be a whole number of seconds above 0, not '$SECONDS_WANTED'." >&2; exit 2 ;;
esac
for f in taskmon-demo taskmon-demo-report; do
	[ -x "$B/$f" ] || { echo "taskmon demo: $B/$f is missing; run 'make demo' from the repository's root." >&2; exit 1; }
done
# The workload checks its own options before anything starts.
"$B/taskmon-demo" "$@" --help >/dev/null || exit 2

interactive=false
[ -t 0 ] && [ -t 1 ] && interactive=true
root=false
[ "$(id -u)" = 0 ] && root=true
have_tasktop=false
[ -x "$B/tasktop" ] && have_tasktop=true

# Stops what this script started, by pid: the workload first (it prints its
# summary and deregisters), then the collector. SIGKILL only after 20 s: the
# kernel takes seconds to take the collector's probes down, and a SIGKILL
# would not make that faster.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
cleanup() {
	stop_pid "$DEMO_PID"; DEMO_PID=""
	[ -n "$WRAP_PID" ] && wait "$WRAP_PID" 2>/dev/null; WRAP_PID=""
	if [ -n "$TMD_PID" ] && kill -0 "$TMD_PID" 2>/dev/null; then
		say "stopping taskmond (pid $TMD_PID); taking its probes down can take the kernel a few seconds."
		stop_pid "$TMD_PID"
	fi
	TMD_PID=""
}
trap cleanup EXIT
trap 'exit 143' TERM
# On a terminal, Ctrl-C ends tasktop (or the wait) and the summary still
# follows; without one it stops everything at once.
interrupted=false
if $interactive; then trap 'interrupted=true' INT; else trap 'exit 130' INT; fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The last scrape of /metrics, kept after the collector stops (bash's /dev/tcp:
# no curl needed).
scrape_metrics() {
	local out=$DIR/metrics.txt
	[ -n "$PORT" ] || return 1
	{
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3 | tr -d '\r' | sed '1,/^$/d' >"$out"
		exec 3<&-
	} 2>/dev/null
	[ -s "$out" ]
}

# Starts taskmond and waits until its socket answers. A port taken between
# the check and the bind makes it exit: then it tries the next port.
start_collector() {
	local base=(--foreground --socket "$SOCK" --state-dir "$STATE") help metrics=false attempt
	help=$("$B/taskmond" --help 2>&1)
	if grep -q -- --record <<<"$help"; then
		base+=(--record "$RECORDS" --interval 1s)
	else
		say "this taskmond cannot record (--record is not built yet); no records are kept."
	fi
	if grep -q -- --metrics <<<"$help"; then
		metrics=true
		PORT=9463
	else
		say "this taskmond has no Prometheus endpoint (--metrics is not built yet)."
	fi
	for attempt in 1 2 3; do
		local args=("${base[@]}")
		if $metrics; then
			PORT=$((PORT + 1))
			while port_in_use "$PORT" && [ "$PORT" -lt 9500 ]; do PORT=$((PORT + 1)); done
			args+=(--metrics "127.0.0.1:$PORT")
		fi
		# A session of its own: a Ctrl-C at the terminal must not stop it before
		# the summary has asked it what it saw (setsid does not fork here: a
		# background job of a script leads no process group).
		setsid "$B/taskmond" "${args[@]}" >"$DIR/taskmond.log" 2>&1 &
		TMD_PID=$!
		for _ in $(seq 100); do
			"$B/taskmon-demo-report" --socket "$SOCK" --ping && return 0
			kill -0 "$TMD_PID" 2>/dev/null || break
			sleep 0.1
		done
		stop_pid "$TMD_PID"
		TMD_PID=""
		$metrics || break
		[ "$attempt" -lt 3 ] && say "taskmond did not start with metrics on port $PORT; trying the next port."
	done
	say "taskmond did not come up; the end of $DIR/taskmond.log:"
	tail -n 5 "$DIR/taskmond.log"
	return 1
}

# tasktop's arguments for this run: the demo's collector, or the registries.
tasktop_source() {
	if $root; then
		printf '%s\n' --socket "$SOCK"
	elif "$B/tasktop" --help 2>&1 | grep -q -- --standalone; then
		printf '%s\n' --standalone
	fi
}

# Starts the workload with its output in demo.log. It runs under a subshell
# whose stderr is dropped, so that its death by --crash shows as an exit
# status (the summary says it), not as the shell's own "Segmentation fault".
start_demo() {
	rm -f "$DIR/demo.pid"
	( TASKMON_SOCKET=$SOCK "$B/taskmon-demo" "$@" >"$DIR/demo.log" 2>&1 &
	  echo $! >"$DIR/demo.pid"
	  wait $! ) 2>/dev/null &
	WRAP_PID=$!
	for _ in $(seq 100); do
		[ -s "$DIR/demo.pid" ] && break
		sleep 0.05
	done
	DEMO_PID=$(cat "$DIR/demo.pid")
}

# Waits for the workload; sets DEMO_STATUS.
wait_demo() {
	wait "$WRAP_PID"
	DEMO_STATUS=$?
	DEMO_PID="" WRAP_PID=""
}

demo_ending() {
	if $crash && [ "$DEMO_STATUS" = 139 ]; then
		say "taskmon-demo died of SIGSEGV, as --crash asked (exit status $DEMO_STATUS)."
		$root || say "without root no collector ran, so nothing recorded the crash: run 'make demo' as root to see its record."
	elif [ "$DEMO_STATUS" != 0 ]; then
		say "taskmon-demo ended with status $DEMO_STATUS; the end of $DIR/demo.log:"
		tail -n 5 "$DIR/demo.log"
		failed=true
	fi
}

# The node's own account. As root the collector's table below has the same
# counters with the kernel's latencies, so only the node's other lines show.
print_demo_summary() {
	grep -q '^taskmon-demo: stopped after' "$DIR/demo.log" || return 0
	if $root; then
		section "the node's own account"
		sed -n '/^taskmon-demo: stopped after/,$p' "$DIR/demo.log" | sed '/^type /,/^all /d'
	else
		section "summary from the node's library: tasks by type and status, spawn latency quantiles"
		sed -n '/^taskmon-demo: stopped after/,$p' "$DIR/demo.log"
	fi
}

where() {
	local n=0
	section "where things are"
	if [ -d "$RECORDS" ]; then
		n=$(cat "$RECORDS"/*.jsonl 2>/dev/null | wc -l)
		echo "records:   $RECORDS ($n snapshots, one a second)$( [ -x "$B/taskmon" ] && echo "; read them with: $B/taskmon dump $RECORDS --format csv" )"
	fi
	if $root; then
		echo "crash log: $STATE/crashes.jsonl$(grep -qs "\"pid\":$pid," "$STATE/crashes.jsonl" || echo ' (the demo did not crash this run)')"
		if [ -n "$PORT" ] && [ -s "$DIR/metrics.txt" ]; then
			echo "metrics:   served at http://127.0.0.1:$PORT/metrics while taskmond ran; the last scrape is in $DIR/metrics.txt ($(grep -c '^taskmon_' "$DIR/metrics.txt") samples), e.g."
			grep '^taskmon_tasks_spawned_total{workload="taskmon-demo",type="network"}' "$DIR/metrics.txt" | sed 's/^/           /'
		fi
		echo "logs:      $DIR/taskmond.log, $DIR/demo.log"
	else
		echo "log:       $DIR/demo.log"
	fi
}

# After the run, as root: what the collector saw (it keeps a workload's final
# figures after it exits) and the crash record, if any.
collector_summary() {
	local pid=$1 wait_crash=0
	$crash && wait_crash=3
	scrape_metrics
	section "summary from taskmond: tasks by type and status, kernel latency quantiles"
	"$B/taskmon-demo-report" --socket "$SOCK" --pid "$pid" --wait-gone 3 --crash-log "$STATE/crashes.jsonl" \
		--wait-crash "$wait_crash" || failed=true
}

# Two samples a second apart, the second shown: its rates are over that second.
batch_view() {
	local args total
	mapfile -t args < <(tasktop_source)
	section "tasktop -b -n 2 -d 1${args[*]:+ ${args[*]}} (its second sample)"
	if ! $have_tasktop; then
		echo "(tasktop is not built in this tree yet: no batch view.)"
		return
	fi
	"$B/tasktop" "${args[@]}" -b -n 2 -d 1 2>&1 | awk '/^tasktop  / { n++ } n == 2' >"$DIR/tasktop.txt"
	head -n 40 "$DIR/tasktop.txt"
	total=$(wc -l <"$DIR/tasktop.txt")
	[ "$total" -gt 40 ] && echo "... ($((total - 40)) more lines in $DIR/tasktop.txt)"
}

mkdir -p "$DIR"
rm -rf "$STATE" "$RECORDS" "$DIR/metrics.txt" "$DIR/tasktop.txt"
mkdir -p "$STATE"

if $root; then
	start_collector || exit 1
	say "taskmond (pid $TMD_PID) is watching; socket $SOCK$( [ -n "$PORT" ] && echo ", metrics http://127.0.0.1:$PORT/metrics")"
else
	say "the kernel side (taskmond: eBPF, crash capture, metrics) needs root, so this shows the library's own figures only."
fi

if $interactive; then
	start_demo --quiet "$@"
	pid=$DEMO_PID
	if $have_tasktop; then
		mapfile -t targs < <(tasktop_source)
		"$B/tasktop" "${targs[@]}"
		say "tasktop has closed: stopping the node$($root && echo " and taskmond")."
	else
		say "tasktop is not built in this tree yet; the node runs until Ctrl-C (its log: $DIR/demo.log)."
		while ! $interrupted && kill -0 "$DEMO_PID" 2>/dev/null; do sleep 1; done
	fi
	stop_pid "$DEMO_PID"
	wait_demo
	demo_ending
else
	say "running taskmon-demo for $SECONDS_WANTED s (DEMO_SECONDS changes it)"
	start_demo --quiet "$@" --duration "$SECONDS_WANTED"
	pid=$DEMO_PID
	# The batch view near the end, while the node still runs.
	end=$((SECONDS + SECONDS_WANTED - 3))
	while [ "$SECONDS" -lt "$end" ] && kill -0 "$DEMO_PID" 2>/dev/null; do sleep 0.5; done
	if kill -0 "$DEMO_PID" 2>/dev/null; then
		batch_view
		wait_demo
	else
		wait_demo   # it ended early (--crash): let the collector see the exit first
		sleep 1
		batch_view
	fi
	demo_ending
fi

print_demo_summary
if $root; then
	collector_summary "$pid"
fi
where
if $failed; then
	exit 1
fi
exit 0
