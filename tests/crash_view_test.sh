#!/bin/bash
# A workload crashes inside a task while tasktop is open (tmux, 120x40):
# tasktop's Crashes screen lists the crash (workload, task name, type, SIGSEGV,
# top frame), the task shows as crashed, and tasktop keeps refreshing and
# quits cleanly with q. Needs root: the crash comes from the collector's
# crash log, and the collector loads BPF.
#
#   tests/crash_view_test.sh BUILD_DIR
set -u
B=${1:-build}
NAME=crash_view
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() {
	fail=$((fail + 1))
	echo "FAIL: $*"
	# What the terminal showed, for the log.
	[ -n "${T+x}" ] && "${T[@]}" capture-pane -p -t cv 2>/dev/null | sed 's/^/  | /'
}
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$NAME: $pass passed, $fail failed"; exit $((fail > 0)); }

if [ "$(id -u)" != 0 ]; then
	echo "skipped: needs root (the collector loads BPF and writes the crash log)"
	finish
fi
for bin in "$B/taskmond" "$B/tasktop" "$B/tests/integration/crasher" "$B/tests/integration/workload"; do
	if [ ! -x "$bin" ]; then
		bad "$bin is not built"
		finish
	fi
done
if ! command -v tmux >/dev/null; then
	echo "skipped: tmux is not installed"
	finish
fi

TMP=$(mktemp -d /tmp/crash-view-test.XXXXXX)
SOCK=$TMP/sock
T=(tmux -L "crash-view-test-$$" -f /dev/null)
TMD_PID=
CR_PID=
WL_PID=

# Waits up to $1 seconds for command "$2..." to succeed.
wait_for() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	while [ $SECONDS -le $end ]; do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# Stops a process this script started: TERM, then KILL after $2 seconds.
stop_pid() {
	local pid=$1 secs=$2
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	local end=$((SECONDS + secs))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -le $end ]; do
		sleep 0.2
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

cleanup() {
	"${T[@]}" kill-server 2>/dev/null
	exec 7>&- 8>&- 2>/dev/null
	stop_pid "$CR_PID" 5
	stop_pid "$WL_PID" 5
	# taskmond detaches its uprobes on the way out: an RCU grace period each.
	stop_pid "$TMD_PID" 40
	rm -rf "$TMP"
}
trap cleanup EXIT

screen() { "${T[@]}" capture-pane -p -t cv; }
screen_has() { screen | grep -qF -- "$1"; }
screen_matches() { screen | grep -qE -- "$1"; }
alt_screen() { [ "$("${T[@]}" display -p -t cv '#{alternate_on}')" = "$1" ]; }
keys() { "${T[@]}" send-keys -t cv "$@"; }
title() { screen | sed -n 1p; }

"$B/taskmond" --foreground --socket "$SOCK" --state-dir "$TMP/state" --metrics off \
	>"$TMP/taskmond.log" 2>&1 &
TMD_PID=$!
if ! wait_for 30 test -S "$SOCK"; then
	bad "taskmond did not open its socket: $(tail -3 "$TMP/taskmond.log")"
	finish
fi

# A workload that stays, beside the one that will crash.
export TASKMON_SOCKET=$SOCK
mkfifo "$TMP/wl.in" "$TMP/cr.in"
exec 7<>"$TMP/wl.in" 8<>"$TMP/cr.in"
"$B/tests/integration/workload" --hold cvsteady=2 <"$TMP/wl.in" >"$TMP/wl.out" 2>&1 &
WL_PID=$!
# The crash must be a real SIGSEGV, not a sanitizer's report and exit. The
# subshell keeps its exit status and keeps bash's "Segmentation fault" out of
# the log.
(
	ASAN_OPTIONS=handle_segv=0:handle_abort=0:detect_leaks=0 TSAN_OPTIONS=handle_segv=0:handle_abort=0 \
		"$B/tests/integration/crasher" segv <"$TMP/cr.in" >"$TMP/cr.out" 2>&1
	echo $? >"$TMP/cr.status"
) 2>/dev/null &
check "workload ran its tasks" wait_for 20 grep -q '^done 2' "$TMP/wl.out"
check "crasher ready" wait_for 20 grep -q '^ready' "$TMP/cr.out"
CR_PID=$(awk '/^ready/ {print $2; exit}' "$TMP/cr.out")

"${T[@]}" new-session -d -s cv -x 120 -y 40 -- \
	sh -c "stty sane; $B/tasktop -d 0.5 --socket $SOCK --max-tasks 65536; echo \"tasktop exited \$?\"; sleep 600"
check "tasktop starts, live" wait_for 15 screen_has "tasktop  live"
keys 4
check "4 opens the Crashes screen, empty" wait_for 5 screen_matches '^Crashes 0 '

# The crash, while tasktop is open on that screen.
echo go >&8
wait_for 10 test -s "$TMP/cr.status" && CR_PID=
st=$(cat "$TMP/cr.status" 2>/dev/null)
check "the crasher died of SIGSEGV (status ${st:-none})" [ "${st:-0}" = $((128 + 11)) ]
# (The TYPE column may be cut short, game_lo~.)
row() { screen | grep -E "crasher:[0-9]+ +[0-9]+ +dice_roll +game_lo[a-z_~]* +SIGSEGV"; }
has_row() { row >/dev/null; }
check "Crashes screen lists the crash: task dice_roll, game_logic, SIGSEGV" wait_for 15 has_row
echo "  $(row)"
check "the crash's top frame is dice_roll" eval 'row | grep -qE "SIGSEGV[^ ]* +0x[0-9a-f]+ +dice_roll"'
check "Crashes screen counts one" screen_matches '^Crashes 1 '

# Still running: the clock in the title moves, other screens draw. (The
# collector watches every workload on the machine: the filters find ours.)
t1=$(title)
changed() { [ "$(title)" != "$t1" ]; }
check "tasktop keeps refreshing after the crash" wait_for 5 changed
check "tasktop still in the alternate screen" alt_screen 1
keys 2 / dice_roll Enter
task_row() { screen | grep -E "crasher:[0-9]+ +dice_roll +game_logic"; }
has_task_row() { task_row >/dev/null; }
check "Tasks screen lists the crashed task" wait_for 10 has_task_row
state=$(task_row | awk '{print $5}')
echo "  $(task_row)"
# The library could not record the crash (its process died at once); the
# collector marks the task crashed from the crash signal on its thread.
is_crashed() { [ "$(task_row | awk '{print $5}')" = crashed ]; }
check "the crashed task's state is crashed, not running" wait_for 5 is_crashed
keys / BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace Enter
keys / cvsteady Enter
check "the other workload's tasks are still listed" wait_for 10 screen_matches 'cvsteady_1'
keys F4
check "F4 goes back to the Crashes screen" wait_for 5 has_row

keys q
check "q quits with code 0" wait_for 5 screen_has "tasktop exited 0"
check "alternate screen left" alt_screen 0
check "taskmond still running" kill -0 "$TMD_PID"

# taskmond stops cleanly (bounded: the kernel detaches its uprobes), its log
# free of sanitizer reports.
kill "$TMD_PID"
end=$((SECONDS + 40))
while kill -0 "$TMD_PID" 2>/dev/null && [ $SECONDS -le $end ]; do
	sleep 0.2
done
if kill -0 "$TMD_PID" 2>/dev/null; then
	bad "taskmond still running 40 s after SIGTERM"
else
	wait "$TMD_PID"
	rc=$?
	TMD_PID=
	check "taskmond exits 0 on SIGTERM (rc $rc)" [ "$rc" = 0 ]
fi
check "taskmond's log has no sanitizer report" \
	eval "! grep -qE 'AddressSanitizer|ThreadSanitizer|LeakSanitizer|runtime error' '$TMP/taskmond.log'"

finish
