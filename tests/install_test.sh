#!/usr/bin/env bash
# The installed Depot: //:install into a temporary prefix; a C program
# built against it with pkg-config, with CMake's find_package(depot) and
# with plain -ldepot, each run and checked to be on Depot; depot-run on a
# program, a static one, one with its own malloc and a setuid one; the
# sonames and TLS flags of both libdepot.so variants; a staged (DESTDIR)
# install; --uninstall leaving the prefix empty.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-depot}
tmp=${TEST_TMPDIR:-$(mktemp -d)}
prefix=$tmp/prefix
work=$tmp/work
mkdir -p "$prefix" "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# expect NAME STATUS PATTERN CMD...: CMD exits with STATUS and prints PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3 out status=0
  shift 3
  out=$("$@" 2>&1) || status=$?
  if [[ $status == "$want" ]] && grep -q -- "$pattern" <<<"$out"; then
    pass "$name"
  else
    fail "$name: status $status (want $want), output:"$'\n'"$out"
  fi
}

# ---- install -------------------------------------------------------------
"$root/install" --prefix="$prefix" >/dev/null
bzl() { sed -n "s/^DEPOT_VERSION_$1 = \([0-9]*\)$/\1/p" "$root/tools/version.bzl"; }
hdr() { sed -n "s/^#define DEPOT_VERSION_$1 \([0-9]*\)$/\1/p" "$prefix/include/depot/depot.h"; }
version=$(hdr MAJOR).$(hdr MINOR).$(hdr PATCH)
major=$(hdr MAJOR)
[[ $version == "$(bzl MAJOR).$(bzl MINOR).$(bzl PATCH)" ]] \
  && pass "depot.h and tools/version.bzl agree on $version" \
  || fail "depot.h says $version, tools/version.bzl $(bzl MAJOR).$(bzl MINOR).$(bzl PATCH)"

for f in bin/depot-run bin/depot-stress bin/depot-topo include/depot/depot.h \
  lib/libdepot.so.$version lib/libdepot.a lib/libdepot_malloc.a \
  lib/pkgconfig/depot.pc lib/pkgconfig/depot-malloc.pc \
  lib/cmake/depot/depot-config.cmake lib/cmake/depot/depot-config-version.cmake \
  share/man/man3/depot.3 share/man/man7/depot.7 share/man/man1/depot-run.1 \
  share/man/man1/depot-stress.1 share/man/man1/depot-topo.1; do
  [[ -f $prefix/$f ]] || fail "not installed: $f"
done
[[ $(readlink "$prefix/lib/libdepot.so") == libdepot.so.$major &&
  $(readlink "$prefix/lib/libdepot.so.$major") == libdepot.so.$version ]] \
  && pass "libdepot.so -> libdepot.so.$major -> libdepot.so.$version" \
  || fail "the libdepot.so links"

# ---- sonames and TLS flags -----------------------------------------------
dyn=$(readelf -d "$prefix/lib/libdepot.so.$version")
grep -q "Library soname: \[libdepot.so.$major\]" <<<"$dyn" && pass "soname libdepot.so.$major" \
  || fail "soname: $dyn"
grep -q STATIC_TLS <<<"$dyn" && pass "the default libdepot.so uses static TLS (initial-exec)" \
  || fail "no STATIC_TLS flag in the default variant"
dyn=$(readelf -d "$root/tests/libdepot_dlopen.so")
grep -q "Library soname: \[libdepot.so.$major\]" <<<"$dyn" && pass "dlopen variant: soname" \
  || fail "dlopen variant soname: $dyn"
grep -q STATIC_TLS <<<"$dyn" && fail "the dlopen variant has the STATIC_TLS flag" \
  || pass "the dlopen variant has no STATIC_TLS flag"

# ---- building against it -------------------------------------------------
src=$root/tests/install/uses_depot.c
cd "$work"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[[ $(pkg-config --modversion depot) == "$version" ]] && pass "pkg-config: depot $version" \
  || fail "pkg-config --modversion depot: $(pkg-config --modversion depot)"
# shellcheck disable=SC2046
gcc -o by_pkgconfig "$src" $(pkg-config --cflags --libs depot) -Wl,-rpath,"$prefix/lib"
expect "pkg-config depot: malloc on libdepot.so" 0 "PASS: Depot .* serves malloc" ./by_pkgconfig
# The same file (device and inode): the sandbox may reach the prefix by
# another path (a link or a bind mount).
loaded=$(ldd by_pkgconfig | sed -n "s/^[[:space:]]*libdepot\.so\.$major => \([^ ]*\) .*/\1/p")
[[ -n $loaded && $loaded -ef "$prefix/lib/libdepot.so.$major" ]] \
  && pass "it loads the installed libdepot.so.$major" || fail "ldd: $(ldd by_pkgconfig)"
# shellcheck disable=SC2046
gcc -o by_pkgconfig_malloc "$src" $(pkg-config --cflags --libs depot-malloc)
expect "pkg-config depot-malloc: malloc linked statically" 0 "serves malloc" ./by_pkgconfig_malloc

gcc -o by_ldepot "$src" -I"$prefix/include" -L"$prefix/lib" -ldepot -Wl,-rpath,"$prefix/lib"
expect "plain -ldepot" 0 "serves malloc" ./by_ldepot
gcc -o by_static "$src" -I"$prefix/include" "$prefix/lib/libdepot.a" -lpthread -ldl
expect "plain libdepot.a (the API)" 0 "serves the API" ./by_static api

cp "$root/tests/install/CMakeLists.txt" "$src" "$work/"
if cmake -S "$work" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" >cmake.log 2>&1 &&
  cmake --build "$work/build" >>cmake.log 2>&1; then
  pass "CMake find_package(depot 1.0)"
  expect "CMake depot::depot" 0 "serves malloc" build/uses_depot_shared
  expect "CMake depot::malloc" 0 "serves malloc" build/uses_depot_malloc
  expect "CMake depot::depot_static" 0 "serves the API" build/uses_depot_static api
else
  fail "CMake: $(cat cmake.log)"
fi
cat >need2.txt <<'EOF'
cmake_minimum_required(VERSION 3.13)
project(wants_two C)
find_package(depot 2 REQUIRED)
EOF
mkdir -p two && mv need2.txt two/CMakeLists.txt
cmake -S two -B two/build -DCMAKE_PREFIX_PATH="$prefix" >two.log 2>&1 \
  && fail "find_package(depot 2) accepted Depot $version" \
  || pass "find_package(depot 2) refuses Depot $version"

# ---- depot-run -----------------------------------------------------------
cat >plain.c <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  free(malloc(100));
  printf("program ran, Depot %s\n", dlsym(RTLD_DEFAULT, "DepotMem_Version") ? "loaded" : "absent");
  return argc > 1 ? atoi(argv[1]) : 0;
}
EOF
cat >own.c <<'EOF'
#include <stddef.h>
#include <stdio.h>
static _Alignas(16) char pool[1 << 20];
static size_t used;
void *malloc(size_t n) { void *p = pool + used; used += (n + 15) & ~(size_t)15; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { return malloc(a * b); }
void *realloc(void *p, size_t n) { (void)p; return malloc(n); }
int main(void) { puts("program ran"); return 0; }
EOF
gcc -o plain plain.c -ldl
gcc -static -o plain_static plain.c -ldl 2>/dev/null
gcc -o own own.c
cp plain plain_setuid && chmod u+s plain_setuid
run=$prefix/bin/depot-run
expect "depot-run: Depot loaded, exit status passed through" 3 "program ran, Depot loaded" "$run" -- ./plain 3
expect "depot-run --stats prints the report" 0 "resident memory" "$run" --stats -- ./plain
expect "depot-run --conf reaches DEPOT_CONF" 0 "depot: config: purge_delay_ms=0" \
  "$run" --conf verbose=1,purge_delay_ms=0 -- ./plain
expect "depot-run: a static program is refused" 126 "statically linked" "$run" -- ./plain_static
"$run" -- ./plain_static 2>&1 | grep -q "program ran" && fail "the static program ran"
expect "depot-run --force: a static program runs, with a warning" 0 "ran without Depot" \
  "$run" --force -- ./plain_static
expect "depot-run: a program with its own malloc is stopped" 126 "malloc in it is not Depot's" "$run" -- ./own
"$run" -- ./own 2>&1 | grep -q "program ran" && fail "the own-malloc program ran"
expect "depot-run: a setuid program is refused" 126 "setuid" "$run" -- ./plain_setuid
expect "depot-run: a missing program" 127 "no such program" "$run" -- ./nonexistent

# ---- Python's depot package -----------------------------------------------
pysite=$(ls -d "$prefix"/lib/python3*/dist-packages 2>/dev/null | head -1)
if [[ -n $pysite && -f $pysite/depot/_depot.so ]]; then
  for f in __init__.py __main__.py _depot.so __init__.pxd depot.pxd; do
    [[ -f $pysite/depot/$f ]] || fail "not installed: ${pysite#$prefix/}/depot/$f"
  done
  expect "the installed depot package loads the installed libdepot.so" 0 \
    "^$(readlink -f "$prefix")/lib/libdepot.so.$version\$" env PYTHONPATH="$pysite" /usr/bin/python3 -c \
    'import depot, os; print(os.path.realpath(depot.active()["library"]))'
  expect "python3 -m depot run from the prefix" 0 '"c_family": "preload"' \
    env PYTHONPATH="$pysite" /usr/bin/python3 -m depot run -m depot active
else
  echo "skip: no Python package installed (the build had no python3-dev)"
fi

# ---- uninstall, staged install -------------------------------------------
"$root/install" --prefix="$prefix" --uninstall >/dev/null
left=$(find "$prefix" -mindepth 1)
[[ -z $left ]] && pass "--uninstall leaves the prefix empty" || fail "left behind: $left"

stage=$tmp/stage
"$root/install" --prefix=/opt/depot --destdir="$stage" >/dev/null
grep -qx "prefix=/opt/depot" "$stage/opt/depot/lib/pkgconfig/depot.pc" \
  && pass "DESTDIR: the pkg-config file names the real prefix" || fail "DESTDIR depot.pc"
DESTDIR=$stage "$root/install" --prefix=/opt/depot --uninstall >/dev/null
[[ -z $(find "$stage/opt/depot" -mindepth 1) ]] && pass "DESTDIR: uninstall" \
  || fail "DESTDIR uninstall left $(find "$stage")"

((failures == 0)) && echo "PASS: install" || { echo "$failures failures"; exit 1; }
