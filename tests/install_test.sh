#!/bin/sh
# Installs into a scratch DESTDIR and builds the README example against it
# with pkg-config, shared and static; checks the soname and the USDT probes.
# Usage: tests/install_test.sh BUILD_DIR
set -u
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() {   # check DESCRIPTION COMMAND...
	desc=$1; shift
	if out=$("$@" 2>&1); then pass=$((pass + 1)); echo "[       OK ] $desc"
	else fail=$((fail + 1)); echo "[  FAILED  ] $desc"; echo "$out" | sed 's/^/    /'; fi
}
prefix=/usr/local
check "make install into DESTDIR" make -s install DESTDIR="$tmp/root" PREFIX=$prefix
export PKG_CONFIG_PATH="$tmp/root$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
check "pkg-config knows taskmon" pkg-config --exists taskmon
check "soname is libtaskmon.so.0" sh -c "readelf -d '$tmp/root$prefix/lib/libtaskmon.so' | grep -q 'SONAME.*libtaskmon.so.0'"
example=tests/examples/readme_example.c
check "README example builds against the shared library" \
	sh -c "cc -Wall -Wextra -Werror $example \$(pkg-config --cflags --libs taskmon) -o '$tmp/ex'"
check "README example runs and its task times out" \
	sh -c "LD_LIBRARY_PATH='$tmp/root$prefix/lib' '$tmp/ex' | grep -qx 'fetch_peers ended timed_out (rc 1)'"
check "README example builds statically" \
	sh -c "cc $example \$(pkg-config --cflags taskmon) '$tmp/root$prefix/lib/libtaskmon.a' \$(pkg-config --libs-only-other --static taskmon) -pthread -linih -o '$tmp/ex_static' && '$tmp/ex_static' >/dev/null"
for probe in task_spawn task_start task_end task_restart task_giveup; do
	check "USDT probe taskmon:$probe in libtaskmon.so" \
		sh -c "readelf -n '$build/libtaskmon.so' | grep -A2 'stapsdt' | grep -q 'Name: $probe'"
done
check "exported symbols are the public API only" \
	sh -c "! nm -D --defined-only '$build/libtaskmon.so' | awk '{print \$3}' | grep -v '^tm_' | grep -q ."
echo "install_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
