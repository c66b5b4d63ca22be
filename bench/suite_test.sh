#!/usr/bin/env bash
# The benchmark suite still works (it is not run by CI otherwise): smoke
# mode (tiny work, one run) under Depot and glibc must produce every
# workload's row and the targets, and exit 0; a crashing run must make it
# exit 1 with the crash in its report; bad options to the workloads program
# get an error, not a crash.  Times are not checked (targets belong to the
# suite, never to tests).
set -euo pipefail
root=${TEST_SRCDIR:-$PWD/bazel-bin/bench/suite_test.runfiles}/${TEST_WORKSPACE:-depot}
tmp=${TEST_TMPDIR:-$(mktemp -d)}
py=/usr/bin/python3
[[ -x $py ]] || py=python3
suite=("$py" "$root/bench/suite.py" --no-install --libdepot "$root/libdepot.so"
       --workloads-bin "$root/bench/workloads")

"${suite[@]}" --smoke --allocators depot,glibc --out "$tmp/smoke" >"$tmp/out.md" 2>"$tmp/err" ||
  { cat "$tmp/err"; echo "FAIL: the smoke run exited $?"; exit 1; }
for row in larson xmalloc scratch scratch-warm thrash thrash-many mstress large pyobject \
  histo-lifo histo-fifo xfree-lifo xfree-fifo xfree-fifo/2xcpu xfree-fifo/4xcpu \
  thread-rss classes40 small-st small-thread; do
  grep -q "^| $row | " "$tmp/out.md" || { cat "$tmp/out.md"; echo "FAIL: no target row for $row"; exit 1; }
done
for line in "## Targets: Depot / best peer" "| no workload above 1.25x the best peer |" \
  "| resident memory per thread (thread-rss) <= 256 KiB |" \
  "| peak RSS / best peer, geometric mean <= 1.10 |"; do
  grep -qF "$line" "$tmp/out.md" || { cat "$tmp/out.md"; echo "FAIL: no line '$line'"; exit 1; }
done
ls "$tmp/smoke"/*.md "$tmp/smoke"/*.csv >/dev/null

# Heap profiling's cost is reported in the same run: Depot with prof=1
# against Depot with prof=0, per benchmark and as a geometric mean.
"${suite[@]}" --smoke --allocators depot,depot-prof --workloads larson,histo-lifo \
  --out "$tmp/prof" >"$tmp/prof.md" 2>"$tmp/err" ||
  { cat "$tmp/err"; echo "FAIL: the profiling smoke run exited $?"; exit 1; }
for line in "## Heap profiling overhead" "| larson | " "| histo-lifo | " \
  "| geometric mean, workloads | " "| geometric mean, every benchmark | " "| heap profiling on (prof=1, 512 KiB): time / Depot's"; do
  grep -qF "$line" "$tmp/prof.md" || { cat "$tmp/prof.md"; echo "FAIL: no line '$line'"; exit 1; }
done
echo "PASS: smoke run, every row and target"

# A run that crashes: the suite reports it and exits 1.
printf '#!/bin/sh\nkill -SEGV $$\n' >"$tmp/crash"
chmod +x "$tmp/crash"
rc=0
"$py" "$root/bench/suite.py" --smoke --no-install --allocators glibc --libdepot "$root/libdepot.so" \
  --workloads-bin "$tmp/crash" --out "$tmp/crash-out" >"$tmp/crash.md" 2>/dev/null || rc=$?
[[ $rc == 1 ]] || { echo "FAIL: a crashing run left the suite's exit status $rc, not 1"; exit 1; }
grep -q "killed by signal 11" "$tmp/crash.md" || { cat "$tmp/crash.md"; echo "FAIL: crash not reported"; exit 1; }
echo "PASS: a crashing run makes the suite exit 1"

# Bad input to the workloads program: exit 2 with a message.
for bad in "larson --threads 0" "larson --threads x" "larson --scale -1" "nosuch" "larson --bogus 1"; do
  rc=0
  # shellcheck disable=SC2086
  "$root/bench/workloads" $bad >/dev/null 2>"$tmp/bad" || rc=$?
  [[ $rc == 2 && -s $tmp/bad ]] || { echo "FAIL: 'workloads $bad' exited $rc"; exit 1; }
done
echo "PASS: bad options are refused"
