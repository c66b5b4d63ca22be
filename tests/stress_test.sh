#!/usr/bin/env bash
# depot-stress, bounded, in whatever build this is (plain, asan, tsan): a
# plain run, one with DEPOTMALLOC=debug, the bug-finding modes, one with OS fault injection, one
# under a real address-space limit (plain build only: sanitizers need
# terabytes of address space), and a short run on the C library to check
# the tool itself.  Each must end with "errors: 0".
set -uo pipefail
stress=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}/tools/stress
secs=${STRESS_SECONDS:-15}
sizes=700,260,39,1
fail=0
out=  # the last run's summary
run() {  # run NAME EXPECT_INJECTED ARGS... (env assignments first)
  local name=$1 injected=$2; shift 2
  out=$("$@" 2>&1 | tail -8)
  local status=$?
  echo "--- $name"; echo "$out"
  if ! grep -q "errors: 0" <<<"$out"; then echo "FAIL: $name"; fail=1; fi
  if [[ $injected == yes ]] && grep -q "injected OS failures: 0$" <<<"$out"; then
    echo "FAIL: $name injected no failure"; fail=1
  fi
}
build=$("$stress" --seconds 0.5 --threads 1 --sizes 1,0,0,0 2>/dev/null | sed -n 's/.*build=\([a-z]*\).*/\1/p')
run plain no "$stress" --seconds "$secs" --threads 4 --seed 11 --sizes $sizes
run debug-hooks no env DEPOTMALLOC=debug "$stress" --seconds "$secs" --threads 4 --seed 12 --sizes $sizes
# The bug-finding modes (README "Finding bugs in your program"): debug
# mode for every family with its quarantine, the quarantine alone, the
# guarded pool sampling often (blocks on both sides of their pages), and
# all of them at once.  A report of any of them is an error here.
run debug-mode no env DEPOT_CONF=debug=1 "$stress" --seconds "$secs" --threads 4 --seed 17 --sizes $sizes
run quarantine no env DEPOT_CONF=quarantine_bytes=8m "$stress" --seconds "$secs" --threads 4 --seed 18 --sizes $sizes
run guard-sample no env DEPOT_CONF=guard_sample=50,guard_underflow=both "$stress" --seconds "$secs" --threads 4 --seed 19 --sizes $sizes
run bug-finding no env DEPOT_CONF=debug=1,guard_sample=100,guard_slots=1024 "$stress" --seconds "$secs" --threads 4 --seed 20 --sizes $sizes
run prof no env DEPOT_CONF=prof=1,prof_sample=16k,prof_final=1,prof_prefix=${TEST_TMPDIR:-/tmp}/stress "$stress" --seconds "$secs" --threads 4 --seed 15 --sizes $sizes
run faults yes "$stress" --seconds "$secs" --threads 4 --seed 13 --sizes $sizes --fault-rate 0.2
# At a low rate the seams at the reuse points (free spans, cached huge
# ranges, metadata, thread caches) must keep failures coming: more than a
# few dozen (before those seams: 36 in ten minutes), each a NULL with ENOMEM.
# Counted per operation, not per second, so that a slow build on a loaded
# machine asks for as many as it ran: about 300 per million operations in
# the plain and TSan builds alike, 0.3 before the seams; at least 50 asked.
run faults-reuse yes "$stress" --seconds "$secs" --threads 4 --seed 17 --sizes $sizes --fault-rate 0.01
nulls=$(sed -n 's/.*allocation failures (NULL): \([0-9]*\),.*/\1/p' <<<"$out")
ops=$(sed -n 's/.*operations: \([0-9]*\) .*/\1/p' <<<"$out")
if [[ -z $nulls || -z $ops || $nulls -lt 1 || $((nulls * 1000000 / ops)) -lt 50 ]]; then
  echo "FAIL: faults-reuse: only ${nulls:-no} failures in ${ops:-no} operations"; fail=1
fi
if [[ $build == plain ]]; then
  run ulimit-v no bash -c "ulimit -v 2000000 && exec \"$stress\" --seconds 5 --threads 4 --seed 14 --sizes 500,300,150,50"
else
  echo "--- ulimit-v: skipped in a $build build (sanitizers reserve huge address ranges)"
fi
# At a hard memory limit: allocations fail (NULLs), no block is damaged,
# and the run goes on (recovery after frees).
run memory-limit no env DEPOT_CONF=memory_limit=96m "$stress" --seconds 5 --threads 4 --seed 17 --sizes 500,300,150,50
run system no "$stress" --seconds 2 --threads 4 --seed 15 --sizes $sizes --allocator system
# The tool must notice a damaged block: exit 1 and a report naming it.
echo "--- self-test"
out=$(STRESS_SELF_TEST_CORRUPT=300 "$stress" --seconds 5 --threads 2 --seed 16 --sizes 1,0,0,0 2>&1)
status=$?
if [[ $status != 1 ]] || ! grep -q "CORRUPTION .*seed=16 thread=0 op=" <<<"$out"; then
  echo "FAIL: a corrupted block went unnoticed (exit $status)"; echo "$out" | tail -3; fail=1
else
  grep CORRUPTION <<<"$out"
fi
exit $fail
