#!/usr/bin/env bash
# Debian's python3 runs a set of its own test modules with libdepot.so
# preloaded and PYTHONMALLOC=malloc, so every Python allocation goes through
# Depot.  Every module that passes without Depot must pass with it.
set -euo pipefail
lib=$(readlink -f "${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}/libdepot.so")
py=/usr/bin/python3
$py -c 'import test.libregrtest' 2>/dev/null || {
  echo "FAIL: Python's test suite is missing (apt-get install libpython3.11-testsuite; tools/bazelw installs it)"; exit 1; }
modules="test_dict test_list test_set test_unicode test_json test_pickle test_threading
  test_gc test_bytes test_deque test_collections test_itertools test_weakref
  test_memoryview test_sort test_re test_array test_tuple test_dictviews test_queue
  test_struct test_functools test_enum test_copy test_csv test_zlib test_hashlib"
export HOME=${TEST_TMPDIR:-/tmp}
cd "${TEST_TMPDIR:-/tmp}"
run() {  # run LABEL [env...]: prints the failed modules, one per line
  local out=$TEST_TMPDIR/$1.log; shift
  env "$@" PYTHONMALLOC=malloc $py -m test -j2 $modules >"$out" 2>&1 || true
  grep -E "^0:[0-9:]+ .*\] test_[a-z_]+ (failed|crashed)" "$out" | sed -E 's/.*\] (test_[a-z_]+) .*/\1/' | sort -u
  grep -q "Tests result:" "$out" || echo "(the run did not finish)"
}
TEST_TMPDIR=${TEST_TMPDIR:-$(mktemp -d)}
base=$(run plain)
with=$(run depot LD_PRELOAD="$lib")
echo "failing without Depot: ${base:-none}"
echo "failing with Depot:    ${with:-none}"
extra=$(comm -13 <(echo "$base") <(echo "$with") | grep . || true)
if [[ -n $extra ]]; then
  echo "FAIL: these pass without Depot but not with it: $extra"
  tail -50 "$TEST_TMPDIR/depot.log"
  exit 1
fi
grep -E "^Total duration|^Tests result" "$TEST_TMPDIR/depot.log" | sed 's/^/  with Depot: /'
echo "PASS"
