#!/bin/bash
# The demo workload and `make demo`'s script, as a user meets them.
#   tests/demo_test.sh BUILD_DIR
# Library-only runs everywhere; the runs under taskmond (what `make demo`
# does without a terminal, with and without --crash) need root.
set -u
B=${1:-build}
DEMO=$B/taskmon-demo
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Sanitized builds must let the real signal through, as the README says.
export ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0:allow_user_segv_handler=1
export TSAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0
# No collector for the library-only runs: a socket nobody listens on.
export TASKMON_SOCKET=$tmp/nobody.sock

ok()   { passed=$((passed + 1)); echo "ok: $1"; }
bad()  { failed=$((failed + 1)); echo "FAILED: $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | tail -n 30; }
has()  { grep -q -- "$2" "$1"; }

# --help explains every option and exits 0.
if "$DEMO" --help >"$tmp/help" 2>&1; then
	missing=""
	for o in --rate --concurrency --duration --seed --fail-rate --panic-rate --crash --crash-after --contain --quiet; do
		has "$tmp/help" "$o " || missing="$missing $o"
	done
	[ -z "$missing" ] && ok "--help names every option" || bad "--help does not explain:$missing" "$tmp/help"
else
	bad "--help exits 0" "$tmp/help"
fi

# A bad option or value: one sentence on stderr, nothing on stdout, exit 2, at once.
check_bad() {
	local rc
	timeout 10 "$DEMO" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" = 2 ] && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" = 1 ] && has "$tmp/err" '^taskmon-demo: '; then
		ok "rejects $* ($(cat "$tmp/err"))"
	else
		echo "    exit status $rc" >>"$tmp/err"
		bad "rejects $* with one sentence and exit 2" "$tmp/err"
	fi
}
check_bad --rate abc
check_bad --rate 0
check_bad --rate 1e999
check_bad --rate nan
check_bad --concurrency 1.5
check_bad --concurrency -3
check_bad --duration -1
check_bad --fail-rate 2
check_bad --fail-rate 0.6 --panic-rate 0.6
check_bad --seed -1
check_bad --seed 12x
check_bad --bogus
check_bad -x
check_bad --rate
check_bad extra
check_bad --contain
check_bad --crash-after 2

# A short library-only run: the mix, the statuses, the game, a clean exit.
if timeout 30 "$DEMO" --duration 2 --rate 400 --seed 7 --quiet >"$tmp/run" 2>&1; then
	ok "a 2 s run exits 0"
else
	bad "a 2 s run exits 0" "$tmp/run"
fi
row() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$tmp/run"; }
total=$(row all 2)
net=$(row network 2)
if [ -n "$total" ] && [ "$total" -ge 500 ] && [ "$total" -le 820 ]; then
	ok "spawned $total tasks in 2 s at 400/s (consensus rounds take a few draws)"
else
	bad "spawned about 800 tasks at 400/s, got '${total}'" "$tmp/run"
fi
# 37% of ~700 draws: a binomial spread of about 2 points; 30 to 44 is generous.
if [ -n "$net" ] && [ -n "$total" ] && [ $((net * 100 / total)) -ge 30 ] && [ $((net * 100 / total)) -le 44 ]; then
	ok "network is $((net * 100 / total))% of the tasks (mix: 37%)"
else
	bad "network near 37% of the tasks" "$tmp/run"
fi
missing=""
for t in network consensus database game_logic background maintenance ui general; do
	[ -n "$(row "$t" 2)" ] || missing="$missing $t"
done
[ -z "$missing" ] && ok "the summary has a row per type" || bad "summary rows missing:$missing" "$tmp/run"
if has "$tmp/run" '^taskmon-demo: stopped after 2\.[0-9] s (its duration ended)' && has "$tmp/run" '^game: [0-9]* dice rolled' &&
   has "$tmp/run" '^game_sync (task 1): restarted '; then
	ok "the summary says why it stopped, the game's figures and game_sync's restarts"
else
	bad "summary lines" "$tmp/run"
fi
if [ "$(row all 5)" -gt 0 ] 2>/dev/null && [ "$(row all 6)" -gt 0 ] 2>/dev/null; then
	ok "failures and panics happen at the default rates"
else
	bad "failures and panics at the default rates" "$tmp/run"
fi

# Rates of 0: every task succeeds or is cancelled at the stop.
timeout 30 "$DEMO" --duration 1 --rate 300 --fail-rate 0 --panic-rate 0 --quiet >"$tmp/run" 2>&1
if [ "$(row all 5)" = 0 ] && [ "$(row all 6)" = 0 ]; then
	ok "--fail-rate 0 --panic-rate 0: no failure, no panic"
else
	bad "--fail-rate 0 --panic-rate 0" "$tmp/run"
fi

# SIGTERM: cancels, prints its summary, exits 0.
"$DEMO" --quiet >"$tmp/run" 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
	kill -KILL "$pid"
	bad "stops within 10 s of SIGTERM" "$tmp/run"
else
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] && has "$tmp/run" 'stopped after .* (SIGTERM)' && ok "SIGTERM: summary and exit 0" ||
		bad "SIGTERM: summary and exit 0 (status $rc)" "$tmp/run"
fi

# --crash with containment: only the dice_roll task ends, as crashed.
timeout 30 "$DEMO" --duration 2 --crash --crash-after 0.5 --contain --quiet >"$tmp/run" 2>&1
rc=$?
if [ "$rc" = 0 ] && has "$tmp/run" '^crash (contained): dice_roll (task [0-9]*) SIGSEGV at address 0x' && [ "$(row all 9)" = 1 ]; then
	ok "--crash --contain: dice_roll ends crashed with SIGSEGV, the node runs on"
else
	bad "--crash --contain (status $rc)" "$tmp/run"
fi

# What `make demo` does without a terminal, under taskmond.
if [ "$(id -u)" != 0 ]; then
	echo "skipped: needs root (the runs under taskmond)"
else
	export DEMO_DIR=$tmp/demo DEMO_SECONDS=4
	start=$(date +%s)
	timeout 100 tools/demo/run-demo.sh "$B" </dev/null >"$tmp/make-demo" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && has "$tmp/make-demo" '^What taskmond saw of taskmon-demo (pid [0-9]*, exited with status 0)' &&
	   grep -q '^network  *[1-9]' "$tmp/make-demo" && grep -q '^all  *[1-9]' "$tmp/make-demo" &&
	   has "$tmp/make-demo" '^crash log: ' && has "$tmp/make-demo" '^records: ' && has "$tmp/make-demo" '^game: '; then
		ok "run-demo.sh without a terminal: summary from taskmond in $(( $(date +%s) - start )) s"
	else
		bad "run-demo.sh without a terminal (status $rc)" "$tmp/make-demo"
	fi
	if ! pgrep -f "$tmp/demo/taskmond.sock" >/dev/null 2>&1; then
		ok "nothing it started is left running"
	else
		bad "processes left running" "$tmp/make-demo"
	fi
	timeout 100 tools/demo/run-demo.sh "$B" --crash --crash-after 1 </dev/null >"$tmp/make-demo" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && has "$tmp/make-demo" '^crash: task dice_roll (id [0-9]*, type game_logic) in taskmon-demo' &&
	   has "$tmp/make-demo" 'SIGSEGV (SEGV_MAPERR), fault address 0x' &&
	   grep -q '^  #0 read_die_face+' "$tmp/make-demo" && grep -q '^  #1 roll_dice+' "$tmp/make-demo" &&
	   has "$tmp/make-demo" 'died of SIGSEGV'; then
		ok "run-demo.sh --crash: the crash record names dice_roll, SIGSEGV and read_die_face"
	else
		bad "run-demo.sh --crash (status $rc)" "$tmp/make-demo"
	fi
fi

# `make demo` on a terminal: tasktop opens on the node; q stops everything.
if [ "$(id -u)" != 0 ] || ! command -v tmux >/dev/null || [ ! -x "$B/tasktop" ]; then
	echo "skipped: the terminal run needs root, tmux and tasktop"
else
	export DEMO_DIR=$tmp/term
	tm="tmux -L demo_test_$$"
	$tm new-session -d -x 160 -y 50 "tools/demo/run-demo.sh '$B'; echo EXITED \$? >'$tmp/term.rc'; sleep 30"
	# The types screen (key 1): one row per type of each workload, the node's among them.
	for _ in $(seq 300); do
		$tm capture-pane -p >"$tmp/screen" 2>/dev/null
		has "$tmp/screen" '^tasktop  live' && $tm send-keys 1
		has "$tmp/screen" '^taskmon-de.* network ' && break
		sleep 0.1
	done
	if has "$tmp/screen" '^tasktop  live' && has "$tmp/screen" '^taskmon-de.* network '; then
		ok "on a terminal, tasktop opens live on the node"
	else
		bad "tasktop opens live on the node" "$tmp/screen"
	fi
	$tm send-keys q
	for _ in $(seq 400); do [ -s "$tmp/term.rc" ] && break; sleep 0.1; done
	$tm capture-pane -p -S -200 >"$tmp/screen" 2>/dev/null
	if has "$tmp/term.rc" 'EXITED 0' && has "$tmp/screen" '^What taskmond saw of taskmon-demo' &&
	   ! pgrep -f "$tmp/term/taskmond.sock" >/dev/null; then
		ok "q closes tasktop, stops the node and taskmond, and the summary follows"
	else
		cat "$tmp/term.rc" >>"$tmp/screen" 2>/dev/null
		bad "q stops everything" "$tmp/screen"
	fi
	$tm kill-server 2>/dev/null
fi

echo "demo_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
