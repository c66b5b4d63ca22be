#!/usr/bin/env bash
# depot.install() in a running interpreter, then CPython's own test modules
# (the set tests/servers/python_suite_test.sh runs preloaded) in that same
# interpreter, one after another: every module that passes without Depot
# must pass with it, and Depot's statistics must show the traffic (the
# router's live blocks, and the blocks made before install() that went back
# to pymalloc).
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-depot}
py=/usr/bin/python3
$py -c 'import test.libregrtest' 2>/dev/null || {
  echo "FAIL: Python's test suite is missing (apt-get install libpython3.11-testsuite; tools/bazelw installs it)"; exit 1; }
export PYTHONPATH=$(cd "$root/runtime/python/tree/lib/python3/dist-packages" && pwd)
export HOME=${TEST_TMPDIR:-/tmp}
TEST_TMPDIR=${TEST_TMPDIR:-$(mktemp -d)}
cd "$TEST_TMPDIR"
unset LD_PRELOAD PYTHONMALLOC DEPOTMALLOC
modules=$(sed -n '/^modules="/,/"$/p' "$root/tests/servers/python_suite_test.sh" | tr -d '"' | sed 's/^modules=//')
[[ -n $modules ]] || { echo "FAIL: cannot read the module list"; exit 1; }
driver='
import atexit, sys
if sys.argv[1] == "depot":
    import depot
    print("install:", depot.install(), flush=True)
    def report():
        s = depot.stats()
        print("depot stats: installed", s["installed"], "object domain",
              s["domains"]["object"]["total"], flush=True)
    atexit.register(report)
sys.argv = ["regrtest"] + sys.argv[2:]
from test.libregrtest.main import main
main()
'
logs=${TEST_UNDECLARED_OUTPUTS_DIR:-$TEST_TMPDIR}
run() {  # run LABEL: prints the failed modules, one per line
  local out=$logs/$1.log
  $py -c "$driver" "$1" $modules >"$out" 2>&1 || true
  # regrtest's summary: "N tests failed:" (or crashed, or "failed again")
  # then the names on indented lines, up to a blank line.
  awk '/^[0-9]+ tests? (failed|crashed|failed again)/ {on=1; next}
       on && /^ *$/ {on=0} on {for (i = 1; i <= NF; i++) print $i}' "$out" | sort -u
  grep -q "Tests result:" "$out" || echo "(the run did not finish)"
}
# Both at once (the baseline only says which modules fail here anyway).
run plain >"$TEST_TMPDIR/plain.failed" &
with=$(run depot)
wait
base=$(cat "$TEST_TMPDIR/plain.failed")
echo "failing without Depot: ${base:-none}"
echo "failing with depot.install(): ${with:-none}"
extra=$(comm -13 <(echo "$base") <(echo "$with") | grep . || true)
if [[ -n $extra ]]; then
  echo "FAIL: these pass without Depot but not after depot.install(): $extra"
  tail -50 "$logs/depot.log"
  exit 1
fi
log=$logs/depot.log
grep -E "^install:|^depot stats:|^Total duration|Tests result" "$log" | sed 's/^/  /'
live=$(sed -n "s/.*'object': {'live_blocks': \([0-9-]*\), 'foreign_frees': \([0-9]*\)}.*/\1 \2/p" "$log")
read -r live foreign <<<"$live"
if [[ -z ${live:-} ]] || ((live < 1000 || foreign < 100)); then
  echo "FAIL: Depot's statistics do not show the traffic (live ${live:-?}, foreign frees ${foreign:-?})"
  exit 1
fi
echo PASS
