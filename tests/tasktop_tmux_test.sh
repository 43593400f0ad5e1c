#!/bin/bash
# tasktop end to end, in a real terminal (tmux, 120x40): a collector (as root;
# otherwise tasktop reads the workloads' shared memory), the test workload with
# two task types of its own, then keys: types screen, filter, sort, invert,
# Enter on a task, pause, resize, the collector going away and coming back,
# quit, and a terminal left as it was found. Then batch mode against the
# collector's own snapshot of the same moment (its record directory, read by
# `taskmon dump`), and replay of that directory.
#
#   tests/tasktop_tmux_test.sh BUILD_DIR
set -u
B=${1:-build}
NAME=tasktop_tmux
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() {
	fail=$((fail + 1))
	echo "FAIL: $*"
	# What the terminal showed, for the log.
	[ -n "${T+x}" ] && "${T[@]}" capture-pane -p -t tt 2>/dev/null | sed 's/^/  | /'
}
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$NAME: $pass passed, $fail failed"; exit $((fail > 0)); }

for bin in "$B/tasktop" "$B/tests/integration/workload"; do
	if [ ! -x "$bin" ]; then
		bad "$bin is not built"
		finish
	fi
done
if ! command -v tmux >/dev/null; then
	echo "skipped: tmux is not installed"
	finish
fi

TMP=$(mktemp -d /tmp/tasktop-test.XXXXXX)
SOCK=$TMP/run/taskmond.sock
REC=$TMP/records
T=(tmux -L "tasktop-test-$$" -f /dev/null)
TMD_PID=
WL_PID=

cleanup() {
	"${T[@]}" kill-server 2>/dev/null
	exec 7>&- 2>/dev/null
	for p in $WL_PID $TMD_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

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

screen() { "${T[@]}" capture-pane -p -t tt; }
screen_has() { screen | grep -qF -- "$1"; }
screen_matches() { screen | grep -qE -- "$1"; }
line_matches() { screen | sed -n "${1}p" | grep -qE -- "$2"; }   # line numbers from 1
alt_screen() { [ "$("${T[@]}" display -p -t tt '#{alternate_on}')" = "$1" ]; }
keys() { "${T[@]}" send-keys -t tt "$@"; }

start_collector() {
	"$B/taskmond" --socket "$SOCK" --state-dir "$TMP/state" --foreground --metrics off \
		--record "$REC" --interval 500ms >>"$TMP/taskmond.log" 2>&1 &
	TMD_PID=$!
	wait_for 15 test -S "$SOCK"
}

MODE=standalone
if [ "$(id -u)" = 0 ] && [ -x "$B/taskmond" ]; then
	if start_collector; then
		MODE=live
	else
		bad "taskmond did not open its socket: $(tail -3 "$TMP/taskmond.log")"
		finish
	fi
else
	echo "not root or no taskmond: tasktop reads shared memory (standalone)"
fi
echo "mode: $MODE"

# The workload: task types no other process uses, so that filters find only ours.
mkfifo "$TMP/wl.in"
exec 7<>"$TMP/wl.in"
TASKMON_SOCKET=$SOCK "$B/tests/integration/workload" --wait --hold ttalpha=3 ttbeta=2 \
	<"$TMP/wl.in" >"$TMP/wl.out" 2>&1 &
WL_PID=$!
check "workload ready" wait_for 15 grep -q '^ready' "$TMP/wl.out"
echo go >&7
check "workload done" wait_for 30 grep -q '^done 5' "$TMP/wl.out"

# ---- interactive, under tmux ---------------------------------------------------
if [ "$MODE" = live ]; then
	SRC=(--socket "$SOCK" --max-tasks 65536)
else
	SRC=(--standalone)
fi
"${T[@]}" new-session -d -s tt -x 120 -y 40 -- \
	sh -c "stty sane; $B/tasktop -d 0.5 ${SRC[*]}; echo \"tasktop exited \$?\"; stty -a | tr ' ' '\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\n' ' '; echo; sleep 600"
check "tasktop starts in the alternate screen" wait_for 10 alt_screen 1
check "header names the source ($MODE)" wait_for 10 screen_has "tasktop  $MODE"
check "key bar at the bottom" wait_for 5 line_matches 40 '^EnterDetail /Filter'

# Types: our two types, with the counts the workload ran.
keys 1 / tt Enter
type_row() { screen | awk -v t="$1" '$1 ~ /^workload:/ && $2 == t'; }
check "types screen lists ttalpha" wait_for 10 screen_matches '^workload:[0-9]+ +ttalpha '
row=$(type_row ttalpha)
echo "  $row"
# WORKLOAD TYPE RUN SPAWNED SPWN/S OK ...
check "ttalpha: 3 spawned, 3 succeeded, none running" [ "$(echo "$row" | awk '{print $3, $4, $6}')" = "0 3 3" ]
row=$(type_row ttbeta)
check "ttbeta: 2 spawned, 2 succeeded" [ "$(echo "$row" | awk '{print $3, $4, $6}')" = "0 2 2" ]
keys / BSpace BSpace Enter

# Tasks: filter, sort by name, invert, open one.
keys 2 / ttalpha Enter
check "filter keeps the three ttalpha tasks" wait_for 5 screen_matches '^Tasks 3 of .*filter "ttalpha"'
keys '<' '<' '<' '<'
check "sorted by name" wait_for 5 screen_has 'sort NAME asc'
names_are() { [ "$(screen | awk '$3 ~ /^ttalpha_/ {print $3}' | tr '\n' ' ')" = "$1" ]; }
check "ascending: ttalpha_0 1 2" wait_for 5 names_are 'ttalpha_0 ttalpha_1 ttalpha_2 '
keys i
check "inverted: ttalpha_2 1 0" wait_for 5 names_are 'ttalpha_2 ttalpha_1 ttalpha_0 '
# The selection follows its task through sorting: g takes it to the top row.
keys g Enter
check "Enter opens the task" wait_for 5 screen_matches '^Task +[0-9]+ ttalpha_2$'
check "detail: type" screen_has "ttalpha (id "
check "detail: how it ended" screen_has "Last status     succeeded, rc 0"
check "detail: spawn latency" screen_has "Spawn latency of type ttalpha"
keys Escape
check "Esc goes back to the list" wait_for 5 screen_has 'filter "ttalpha"'

# Pause, then a smaller terminal: redrawn to fit, the key bar on the new last row.
keys p
check "p pauses" wait_for 5 line_matches 1 'PAUSED$'
"${T[@]}" resize-window -t tt -x 80 -y 24
check "resize: redrawn at 80x24" wait_for 5 line_matches 24 '^EnterDetail'
check "resize: title fits 80 columns" line_matches 1 '^tasktop.{67}PAUSED$'
"${T[@]}" resize-window -t tt -x 120 -y 40
keys p
check "p resumes" wait_for 5 line_matches 1 '[0-9]$'

# The collector goes away: tasktop says so and keeps running; then reconnects.
if [ "$MODE" = live ]; then
	kill "$TMD_PID" && wait "$TMD_PID" 2>/dev/null
	TMD_PID=
	gone() { ! screen | sed -n 1,6p | grep -q 'live from'; }
	check "collector gone: the header says so" wait_for 10 gone
	echo "  header: $(screen | sed -n 4,5p | tr -s ' ' | tr '\n' ' ')"
	check "tasktop still runs" alt_screen 1
	if start_collector; then
		check "collector back: live again" wait_for 15 screen_has 'live from'
	else
		bad "taskmond did not restart"
	fi
fi

# Quit: exit code 0, the alternate screen left, the terminal modes restored.
keys q
check "q quits with code 0" wait_for 5 screen_has "tasktop exited 0"
check "alternate screen left" alt_screen 0
check "terminal modes restored (icanon echo)" screen_matches '^(icanon echo|echo icanon) *$'

# Colours unless NO_COLOR; Ctrl-C (SIGINT) restores the terminal as q does.
# (The shell around tasktop ignores SIGINT, so that it lives on to report.)
run_in_tmux() {   # env assignments for tasktop, then waits for its screen
	# The next session starts before the last one ends: a server left
	# without sessions exits, and a client racing it fails.
	"${T[@]}" rename-session -t tt old 2>/dev/null
	"${T[@]}" new-session -d -s tt -x 120 -y 40 -- \
		sh -c "trap '' INT; stty sane; env $1 $B/tasktop ${SRC[*]}; echo \"tasktop exited \$?\"; stty -a | tr ' ' '\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\n' ' '; echo; sleep 600"
	"${T[@]}" kill-session -t old 2>/dev/null
	wait_for 10 screen_has "tasktop  $MODE"
}
colours() { "${T[@]}" capture-pane -e -p -t tt | grep -qE $'\e\\[([0-9;]*;)?(3[0-7]|4[0-7])[;m]'; }
run_in_tmux "TERM=tmux-256color"
check "colours by default" wait_for 5 colours
keys F4
check "F4 shows crashes" wait_for 5 screen_matches '^Crashes'
keys C-c
check "Ctrl-C quits with code 0" wait_for 5 screen_has "tasktop exited 0"
check "Ctrl-C: alternate screen left" alt_screen 0
check "Ctrl-C: terminal modes restored" screen_matches '^(icanon echo|echo icanon) *$'
run_in_tmux "TERM=tmux-256color NO_COLOR=1"
sleep 1
check "NO_COLOR: no colours" eval '! colours'
check "NO_COLOR: attributes still mark the selection" eval "${T[*]} capture-pane -e -p -t tt | grep -qE $'\\e\\[[0-9;]*7'"

# ---- batch mode against the collector's snapshot of the same moment -------------
batch_counts() {   # pid type -> "spawned succeeded" from tasktop -b's Types table
	awk -v w="workload:$1" -v t="$2" '$1 == w && $2 == t {print $4, $6; exit}'
}
"$B/tasktop" -b -n 1 "${SRC[@]}" >"$TMP/batch.txt" 2>"$TMP/batch.err"
check "batch mode exits 0" [ $? = 0 ]
check "batch output is plain text" eval "! LC_ALL=C grep -q '[^[:print:]]' '$TMP/batch.txt'"
for ty in ttalpha ttbeta; do
	got=$(batch_counts "$WL_PID" $ty <"$TMP/batch.txt")
	if [ "$MODE" = live ] && [ -x "$B/taskmon" ]; then
		# The next record after the batch sample: the workload is done, its counts
		# final. (CSV lines end in CRLF.)
		sleep 1.2
		want=$("$B/taskmon" dump "$REC" --format csv --select pid,type,spawned,succeeded 2>/dev/null |
			awk -F, -v p="$WL_PID" -v t=$ty '{sub(/\r$/, "")} $1 == p && $2 == t {s = $3 " " $4} END {print s}')
		check "batch $ty counts ($got) equal the collector's snapshot ($want)" [ -n "$got" -a "$got" = "$want" ]
	else
		want=$([ $ty = ttalpha ] && echo "3 3" || echo "2 2")
		check "batch $ty counts ($got) equal what the workload ran ($want)" [ "$got" = "$want" ]
	fi
done

# ---- replay of the record directory: the same counts in the last record ----------
if [ "$MODE" = live ] && [ -d "$REC" ]; then
	replay_records() {   # plays the directory in batch mode; true with 12 records or more
		"$B/tasktop" -b --replay "$REC" >"$TMP/replay.txt" 2>&1 || return 1
		[ "$(grep -c '^tasktop  replay' "$TMP/replay.txt")" -ge 12 ]
	}
	check "replay in batch mode: every record printed" wait_for 10 replay_records
	last=$(awk '/^tasktop  replay/ {n = NR} END {print n}' "$TMP/replay.txt")
	got=$(tail -n +"${last:-1}" "$TMP/replay.txt" | batch_counts "$WL_PID" ttalpha)
	check "replay's last record: ttalpha 3 3 ($got)" [ "$got" = "3 3" ]
	"${T[@]}" rename-session -t tt old 2>/dev/null
	"${T[@]}" new-session -d -s tt -x 120 -y 40 -- sh -c "$B/tasktop --replay $REC; sleep 600"
	"${T[@]}" kill-session -t old 2>/dev/null
	check "replay opens" wait_for 10 screen_has "tasktop  replay"
	keys p ':' '#1' Enter
	check "replay: jump to record 1" wait_for 5 line_matches 1 'record 1/'
	keys ']'
	check "replay: ] steps 10 records" wait_for 5 line_matches 1 'record 11/'
	keys Left
	check "replay: Left steps back one" wait_for 5 line_matches 1 'record 10/'
	keys q
fi

finish
