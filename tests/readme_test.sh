#!/bin/bash
# The README's promises, checked: every option it shows for taskmond,
# tasktop, taskmon dump/plan and taskmon-demo is one the program accepts
# (its --help lists it), every make target it names exists, and every
# repository path it names is there. (The README's C example is built and run
# against the installed library by install_test.sh.)
# Usage: tests/readme_test.sh BUILD_DIR
set -u
B=${1:-build}
cd "$(dirname "$0")/.."
passed=0; failed=0
ok()  { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

# Lines of the README's code blocks and tables that run a program, and the
# options on them. A line "prog ... --opt" in a code block, or "| `--opt ...`"
# in the option table of a program's section.
help_of() {
	case $1 in
	taskmond)     "$B/taskmond" --help 2>&1 ;;
	tasktop)      "$B/tasktop" --help 2>&1 ;;
	dump)         "$B/taskmon" help dump 2>&1 ;;
	plan)         "$B/taskmon" help plan 2>&1 ;;
	taskmon-demo) "$B/taskmon-demo" --help 2>&1 ;;
	esac
}

check_options() {   # check_options PROG TEXT: every -x / --xyz in TEXT is in PROG's help
	local prog=$1 text=$2 help opt
	help=$(help_of "$prog")
	if [ -z "$help" ]; then
		bad "$prog --help printed nothing"
		return
	fi
	for opt in $(printf '%s\n' "$text" | grep -oE '(^|[ [|`])--?[a-zA-Z][a-zA-Z-]*' | sed 's/^[ [|`]//' | sort -u); do
		if printf '%s\n' "$help" | grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|$)"; then
			ok "$prog $opt (README) is in its help"
		else
			bad "$prog $opt is shown in the README but not in its --help"
		fi
	done
}

# Program lines in code blocks.
in_code=0
while IFS= read -r line; do
	case $line in '```'*) in_code=$((1 - in_code)); continue ;; esac
	[ $in_code = 1 ] || continue
	case $line in
	taskmond\ *|"         ["*)       check_options taskmond "$line" ;;
	tasktop\ *)                      check_options tasktop "$line" ;;
	"taskmon dump "*)                check_options dump "${line#taskmon dump }" ;;
	"taskmon plan "*)                check_options plan "${line#taskmon plan }" ;;
	esac
done < README.md

# The option table of taskmond's section: rows "| `--opt ...` |".
table=$(sed -n '/^### taskmond, the collector/,/^### /p' README.md | grep -E '^\| `-' | cut -d'|' -f2)
check_options taskmond "$table"

# The demo's options named in the README (DEMO_ARGS=--crash ...).
demo=$(grep -oE 'DEMO_ARGS="?--[a-z-]+' README.md | sed 's/.*=//; s/"//')
[ -n "$demo" ] && check_options taskmon-demo "$demo"

# make targets named in the README exist (make -n parses and finds a rule).
for t in $(grep -oE '`make [a-z]+' README.md | awk '{print $2}' | sort -u) \
         $(grep -oE '^make [a-z]+' README.md | awk '{print $2}' | sort -u); do
	if make -n "$t" >/dev/null 2>&1; then
		ok "make $t exists"
	else
		bad "the README names 'make $t', which has no rule"
	fi
done

# Repository paths named in the README exist.
for p in $(grep -oE '`(lib|user|bpf|tools|tests|docs|mk)/[A-Za-z0-9_./-]+`' README.md | tr -d '`' | sort -u); do
	if [ -e "$p" ]; then
		ok "$p exists"
	else
		bad "the README names $p, which is not in the repository"
	fi
done

# Metric names in the README are ones taskmond exports (user/metrics.h lists them).
for n in $(grep -oE '`taskmon_[a-z_]+`' README.md | tr -d '`' | sort -u); do
	if grep -q "$n" user/metrics.h user/metrics.c; then
		ok "metric $n is exported"
	else
		bad "the README names metric $n, which taskmond does not export"
	fi
done

echo "readme: $passed passed, $failed failed"
[ "$failed" = 0 ]
