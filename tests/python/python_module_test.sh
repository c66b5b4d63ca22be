#!/usr/bin/env bash
# Python's depot module (runtime/python/), in every way of running it:
# plainly (install() in a running interpreter), preloaded with
# PYTHONMALLOC=malloc, under `python3 -m depot run` (and --debug), under
# PYTHONMALLOC=debug (Depot beneath CPython's debug hooks, which must still
# catch an overflow), beside tracemalloc; the launcher's refusal when Depot
# is not in use.  The checks themselves are in module_check.py.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-depot}
py=/usr/bin/python3
[[ -f /usr/include/python3.11/Python.h || -n $(ls /usr/include/python3.*/Python.h 2>/dev/null) ]] || {
  echo "FAIL: python3-dev is missing (tools/bazelw installs it, as root)"; exit 1; }
site=$(cd "$root/runtime/python/tree/lib/python3/dist-packages" && pwd)
lib=$(readlink -f "$root/runtime/python/tree/lib/"libdepot.so.*)
check=$root/tests/python/module_check.py
export PYTHONPATH=$site HOME=${TEST_TMPDIR:-/tmp}
unset LD_PRELOAD PYTHONMALLOC DEPOTMALLOC DEPOT_CONF
cd "${TEST_TMPDIR:-/tmp}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect NAME STATUS PATTERN CMD...: CMD exits with STATUS, prints PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3 out status=0
  shift 3
  out=$("$@" 2>&1) || status=$?
  if [[ $status == "$want" ]] && grep -q -- "$pattern" <<<"$out"; then
    grep '^ok:' <<<"$out" || true
    echo "ok: $name"
  else
    fail "$name: status $status (want $want), output:"$'\n'"$out"
  fi
}

expect "install() in a running interpreter" 0 PASS $py "$check" plain_active \
  bad_arguments uninstall_restores_when_nothing_is_live \
  install_and_free_old_blocks_from_threads install_twice stats_show_traffic \
  uninstall_drains_then_reinstall pool config_and_options dump_profile
expect "dump_profile() with prof=1" 0 PASS env DEPOT_CONF=prof=1 $py "$check" \
  dump_profile
expect "beside tracemalloc" 0 PASS $py "$check" over_tracemalloc
expect "PYTHONMALLOC=debug" 0 PASS env PYTHONMALLOC=debug $py "$check" \
  uninstall_restores_when_nothing_is_live debug_hooks install_twice \
  stats_show_traffic uninstall_drains_then_reinstall
expect "PYTHONMALLOC=malloc_debug" 0 PASS env PYTHONMALLOC=malloc_debug $py \
  "$check" debug_hooks uninstall_drains_then_reinstall
expect "python3 -X dev (debug hooks)" 0 PASS $py -X dev "$check" debug_hooks
expect "CPython's debug hooks catch an overflow of a block Depot made" 134 \
  "bad trailing pad byte" env PYTHONMALLOC=debug $py "$check" \
  debug_hooks_catch_overflow
expect "LD_PRELOAD and PYTHONMALLOC=malloc" 0 PASS \
  env LD_PRELOAD="$lib" PYTHONMALLOC=malloc $py "$check" preload_active \
  install_and_free_old_blocks_from_threads pool
expect "python3 -m depot run" 0 PASS $py -m depot run "$check" preload_active \
  install_and_free_old_blocks_from_threads stats_show_traffic pool
expect "python3 -m depot run --debug --conf" 0 PASS \
  $py -m depot run --debug --conf purge_delay_ms=0 "$check" debug_active
expect "python3 -m depot run -m module" 0 '"c_family": "preload"' \
  $py -m depot run -m depot active
# The refusals: a library that is not Depot, one the loader cannot open.
expect "depot run refuses when malloc is not Depot's" 126 \
  "Depot is not in use in this process:.*" \
  $py -m depot run --lib /lib/x86_64-linux-gnu/libm.so.6 "$check" preload_active
expect "the refusal names the library" 126 "LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 did not take effect" \
  $py -m depot run --lib /lib/x86_64-linux-gnu/libm.so.6 "$check" preload_active
expect "depot run refuses an unloadable library" 126 "status 126); --force" \
  $py -m depot run --lib /nonexistent/libdepot.so "$check" preload_active
expect "--force runs anyway" 0 PASS \
  $py -m depot run --force --lib /nonexistent/libdepot.so "$check" config_and_options
expect "depot run: usage" 2 "no program to run" $py -m depot run
expect "depot run: bad option" 2 "unknown option --nope" $py -m depot run --nope x.py
printf "import sys\nsys.exit(3)\n" >exit3.py
expect "the program's exit status" 3 "" $py -m depot run exit3.py
if ((failures)); then echo "$failures failed"; exit 1; fi
echo PASS
