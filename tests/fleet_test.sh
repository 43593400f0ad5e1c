#!/bin/sh
# The fleet kit (tools/fleet/): alert rules pass promtool's check and unit
# tests, every dashboard query parses as PromQL, the dashboard is JSON, the
# systemd unit passes systemd-analyze. Takes the build directory as $1 (unused).
cd "$(dirname "$0")/../tools/fleet" || exit 1
passed=0; failed=0
check() {   # check NAME COMMAND...: runs it, shows its output when it fails
	name=$1; shift
	if out=$("$@" 2>&1); then
		echo "ok   $name"; passed=$((passed + 1))
	else
		echo "FAIL $name"; echo "$out" | sed 's/^/     /'; failed=$((failed + 1))
	fi
}
skip() { echo "skip $1: $2"; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

if ! command -v python3 >/dev/null 2>&1; then
	skip "dashboard checks" "python3 is not installed"
	dash=""
else
	check "dashboard.json parses" python3 -m json.tool dashboard.json
	dash=yes
fi
if command -v promtool >/dev/null 2>&1; then
	check "promtool check rules alerts.yml" promtool check rules alerts.yml
	check "promtool test rules alerts_test.yml" promtool test rules alerts_test.yml
	if [ -n "$dash" ]; then
		# Each panel's queries as recording rules, Grafana's variables filled in:
		# promtool then parses every one of them.
		python3 - dashboard.json >"$tmp/dashboard_rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$workload", ".*")
        n += 1
        print("      - record: dashboard:query_%d\n        expr: %s" % (n, json.dumps(e)))
if n < 10:
    sys.exit("only %d queries in the dashboard" % n)
PY
		check "dashboard queries parse" promtool check rules "$tmp/dashboard_rules.yml"
	fi
else
	skip "promtool checks" "promtool is not installed (Debian package prometheus)"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart to exist: point it at a binary that does.
	sed "s#^ExecStart=[^ ]*#ExecStart=$(command -v true)#" taskmond.service >"$tmp/taskmond.service"
	check "systemd-analyze verify taskmond.service" sh -c "! systemd-analyze verify '$tmp/taskmond.service' 2>&1 | grep ."
else
	skip "systemd unit" "systemd-analyze is not installed"
fi
echo "fleet_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
