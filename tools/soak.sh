#!/bin/sh
# Soak: the demo workload at a high rate with failures, panics, a contained
# crash and critical-task restarts, a second demo that is stopped and started
# again (every other time with kill -9), the collector recording, and tasktop
# in batch mode, for SOAK_SECONDS. Prints the memory of every process at the
# start, after the warm-up and at the end, the events the kernel could not
# queue, the errors in every log, and checks that each demo's counters add up
# (spawned + restarts = ended + running, nothing running after the stop).
#
#   tools/soak.sh [BUILD_DIR]     (make soak; needs root for the collector)
# Environment: SOAK_SECONDS (600), SOAK_RATE (spawns/s, 5000), SOAK_WARMUP
# (seconds, default a fifth of the run, at most 60), SOAK_KEEP=1 keeps the
# temporary directory.
set -u
build=${1:-build}
secs=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-5000}
warm=${SOAK_WARMUP:-$((secs / 5 < 60 ? secs / 5 : 60))}
[ "$warm" -lt 5 ] && warm=5
[ "$(id -u)" = 0 ] || { echo "soak: needs root (the collector loads BPF programs)"; exit 1; }
for f in "$build/taskmond"; do
	[ -x "$f" ] || { echo "soak: $f is missing; run make first"; exit 1; }
done
demo=$build/taskmon-demo
if [ ! -x "$demo" ]; then
	echo "soak: $demo is missing; make demo builds it"
	exit 1
fi
tasktop=$build/tasktop
dir=$(mktemp -d /tmp/taskmon-soak.XXXXXX)
sock=$dir/taskmond.sock
export TASKMON_SOCKET=$sock
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	sleep 1
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: files kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT INT TERM

rss() {   # rss PID: resident KiB, or - when gone
	awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print "-" }' "/proc/$1/status" 2>/dev/null || echo -
}

# The collector's own figures, from a snapshot on its socket.
collector_fig() {   # collector_fig KEY...
	python3 - "$sock" "$@" <<'EOF' 2>/dev/null || echo "?"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(struct.pack('<IHHIi', 0x31574d54, 1, 2, 8, 0) + struct.pack('<II', 1, 0))
def full(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
magic, ver, typ, ln, st = struct.unpack('<IHHIi', full(16))
doc = json.loads(full(ln))
print(' '.join('%s=%s' % (k, doc['collector'].get(k, '?')) for k in sys.argv[2:]))
EOF
}

# Finished tasks are kept for the retention period: half the warm-up, so that
# the collector reaches its steady state before the warm-up sample.
retention=$((warm / 2 < 10 ? 10 : warm / 2))
mkdir -p "$dir/state" "$dir/rec"
"$build/taskmond" --socket "$sock" --state-dir "$dir/state" --record "$dir/rec" --interval 1s \
	--retention "$retention" --metrics off --foreground >"$dir/taskmond.log" 2>&1 &
tmd=$!
pids="$tmd"
for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "soak: taskmond did not start:"; cat "$dir/taskmond.log"; exit 1; }

# The long-running demo: high rate, failures, panics, a contained crash,
# game_sync's restarts. Stopped with SIGTERM after the last sample.
"$demo" --rate "$rate" --concurrency 1024 --duration 0 --fail-rate 0.05 --panic-rate 0.03 \
	--crash --crash-after 10 --contain --quiet >"$dir/demo.log" 2>&1 &
main=$!
pids="$pids $main"

# The churning demo: stopped and started again every 30 s, every other time with kill -9.
(
	n=0
	end=$(( $(date +%s) + secs - 5 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		n=$((n + 1))
		"$demo" --rate $((rate / 5)) --duration 0 --quiet >"$dir/churn.$n.log" 2>&1 &
		c=$!
		sleep 30
		if [ $((n % 2)) = 0 ]; then kill -9 "$c"; else kill -TERM "$c"; fi
		wait "$c" 2>/dev/null
	done
	echo "$n" >"$dir/churn.count"
) &
churn=$!
pids="$pids $churn"

tt=""
if [ -x "$tasktop" ]; then
	"$tasktop" -b -d 5 --socket "$sock" >"$dir/tasktop.log" 2>&1 &
	tt=$!
	pids="$pids $tt"
fi

mem_line() {   # mem_line LABEL
	printf '  %-10s taskmond %8s KiB   demo %8s KiB   tasktop %8s KiB   %s\n' "$1" "$(rss $tmd)" "$(rss $main)" \
		"$([ -n "$tt" ] && rss "$tt" || echo -)" "$(collector_fig lost events memory_bytes tasks_kept)"
}

echo "soak: ${secs}s at $rate spawns/s (warm-up ${warm}s, retention ${retention}s), files in $dir"
echo "  (taskmond also watches every other workload of this user it finds in /dev/shm)"
sleep 3
mem_line start
s_tmd=$(rss $tmd); s_demo=$(rss $main)
sleep $((warm - 3))
mem_line warm
w_tmd=$(rss $tmd); w_demo=$(rss $main); w_tt=$([ -n "$tt" ] && rss "$tt" || echo 0)
lost_warm=$(collector_fig lost | sed 's/.*=//')
left=$((secs - warm))
[ $left -gt 0 ] && sleep $left
mem_line end
e_tmd=$(rss $tmd); e_demo=$(rss $main); e_tt=$([ -n "$tt" ] && rss "$tt" || echo 0)
lost_end=$(collector_fig lost | sed 's/.*=//')
kill -TERM "$main"
wait "$main"
demo_rc=$?
wait "$churn" 2>/dev/null

problems=0
flat() {   # flat NAME WARM END: growth after the warm-up within 10% + 4 MiB
	case "$2$3" in *-*|*\?*) echo "  $1: gone before the end"; problems=$((problems + 1)); return;; esac
	limit=$(( $2 + $2 / 10 + 4096 ))
	if [ "$3" -gt "$limit" ]; then
		echo "  $1: memory grew from $2 to $3 KiB after the warm-up (more than 10% + 4 MiB)"
		problems=$((problems + 1))
	else
		echo "  $1: flat after the warm-up ($2 -> $3 KiB)"
	fi
}
echo "memory:"
flat taskmond "$w_tmd" "$e_tmd"
flat demo "$w_demo" "$e_demo"
[ -n "$tt" ] && flat tasktop "$w_tt" "$e_tt"

echo "events the kernel could not queue: ${lost_warm:-?} after the warm-up, ${lost_end:-?} at the end"
if [ -n "$lost_end" ] && [ -n "$lost_warm" ] && [ "$lost_end" != "?" ] && [ "$lost_end" != "$lost_warm" ]; then
	echo "  lost events after the warm-up: $((lost_end - lost_warm))"
	problems=$((problems + 1))
fi

# Counters: the demo's closing table, its "all" row.
check_counts() {   # check_counts LOG
	awk '/^all / { sp = $2; ok = $4; f = $5; p = $6; c = $7; t = $8; cr = $9; r = $10
	               ended = ok + f + p + c + t + cr
	               printf "  %s: spawned %d + restarts %d = %d, ended %d, running 0 after the stop: %s\n",
	                      FILENAME, sp, r, sp + r, ended, (sp + r == ended) ? "consistent" : "INCONSISTENT"
	               bad = sp + r != ended; seen = 1 }
	     END { if (!seen) { printf "  %s: no closing table\n", FILENAME; exit 2 } exit bad }' "$1"
}
echo "counters (spawned + restarts = ended + running):"
check_counts "$dir/demo.log" || problems=$((problems + 1))
for f in "$dir"/churn.*.log; do
	[ -f "$f" ] || continue
	grep -q '^all ' "$f" && { check_counts "$f" || problems=$((problems + 1)); }
done
echo "  churning demo: $(cat "$dir/churn.count" 2>/dev/null || echo ?) runs (every other one ended by kill -9)"
[ "$demo_rc" = 0 ] || { echo "  the long-running demo exited with status $demo_rc"; problems=$((problems + 1)); }

echo "errors in the logs:"
errs=0
for f in "$dir/taskmond.log" "$dir/demo.log" "$dir"/churn.*.log ${tt:+"$dir/tasktop.log"}; do
	n=$(grep -ciE 'error|fatal|assert|sanitizer|leak|cannot' "$f")
	if [ "$n" -gt 0 ]; then
		echo "  $(basename "$f"): $n lines, first:"
		grep -iE 'error|fatal|assert|sanitizer|leak|cannot' "$f" | head -n 3 | sed 's/^/    /'
		errs=$((errs + n))
	fi
done
[ $errs = 0 ] && echo "  none"
problems=$((problems + (errs > 0)))
kill -0 "$tmd" 2>/dev/null || { echo "  taskmond died"; problems=$((problems + 1)); }
echo "records written: $(cat "$dir"/rec/*.jsonl 2>/dev/null | wc -l) in $(ls "$dir/rec" | wc -l) files," \
     "$(du -sk "$dir/rec" | cut -f1) KiB;" \
     "crash log lines: $(cat "$dir/state/crashes.jsonl" 2>/dev/null | wc -l)"
echo "soak: $problems problems"
[ "$problems" = 0 ]
