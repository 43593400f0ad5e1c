#!/bin/sh
# Installs the Debian packages named as arguments that are not installed yet.
# Quick no-op when everything is present; one clear sentence when it cannot act.
set -eu
missing=""
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "taskmon: this system has no apt-get; install these packages (or their equivalents) by hand:$missing" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "taskmon: missing packages:$missing; run 'make deps' as root to install them." >&2
		exit 1
	fi
else
	SUDO=""
fi
echo "taskmon: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
