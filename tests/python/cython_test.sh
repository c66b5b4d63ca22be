#!/usr/bin/env bash
# The Cython examples (tests/python/cython/): compiled with Debian's cython3
# against depot.pxd (`from depot cimport ...` found through
# depot.get_include()), built into extension modules against Python's
# headers and <depot/depot.h>, and run: plainly, and again built with
# -fsanitize=address with ASan's runtime preloaded into python3 (the
# interpreter itself is not instrumented, and Depot's blocks are not
# poisoned by ASan: this checks the examples' own code, stack and globals).
#   cython_test.sh [heap]   heap: also heap_per_object.pyx (needs DepotHeap)
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-depot}
py=/usr/bin/python3
command -v cython3 >/dev/null || {
  echo "FAIL: cython3 is missing (apt-get install cython3; tools/bazelw installs it)"; exit 1; }
site=$(cd "$root/runtime/python/tree/lib/python3/dist-packages" && pwd)
libdir=$(cd "$root/runtime/python/tree/lib" && pwd)
soname=$(cd "$libdir" && ls libdepot.so.*)
include=$(cd "$root/runtime/include" && pwd)
pyinc=$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
ext=$($py -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
work=${TEST_TMPDIR:-$(mktemp -d)}/cython
rm -rf "$work"
mkdir -p "$work/plain" "$work/asan"
export PYTHONPATH=$site HOME=${TEST_TMPDIR:-/tmp}
unset LD_PRELOAD PYTHONMALLOC
incdir=$($py -c 'import depot; print(depot.get_include())')
examples=(carray someobj poolobj counting_hook)
[[ ${1:-} == heap ]] && examples+=(heap_per_object)
for name in "${examples[@]}"; do
  PYTHONWARNINGS=ignore cython3 -3 -I "$incdir" -o "$work/$name.c" "$root/tests/python/cython/$name.pyx"
  for variant in plain asan; do
    flags=(-O1 -g)
    [[ $variant == asan ]] && flags+=(-fsanitize=address -fno-omit-frame-pointer)
    cc -shared -fPIC "${flags[@]}" -I "$pyinc" -I "$include" \
      -o "$work/$variant/$name$ext" "$work/$name.c" \
      -L "$libdir" -l:"$soname" -Wl,-rpath,"$libdir"
  done
done
echo "ok: cython3 $(cython3 --version 2>&1 | sed 's/Cython version //') compiled ${examples[*]} against depot.pxd"
cp "$root/tests/python/cython/check_examples.py" "$work/"
PYTHONPATH=$work/plain:$site $py "$work/check_examples.py" "$@"
asan=$(cc -print-file-name=libasan.so)
if [[ -f $asan ]]; then
  echo "-- under ASan (libasan preloaded into python3)"
  PYTHONPATH=$work/asan:$site LD_PRELOAD=$asan \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0 \
    $py "$work/check_examples.py" "$@"
else
  echo "FAIL: no libasan.so for cc"
  exit 1
fi
