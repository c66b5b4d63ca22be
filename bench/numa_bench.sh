#!/usr/bin/env bash
# The same workloads under numa=off, local and interleave, policies
# interleaved run by run; reports the median time per operation of each.
# On one node the three should be within noise: no cost when there is
# nothing to gain.  Pass HWLOC_SYNTHETIC to try a made-up topology.
#   tools/bazelw run //bench:numa_bench -- [--runs N]
set -euo pipefail
runs=5
[[ ${1:-} == --runs ]] && runs=$2
here=$(cd "$(dirname "$0")" && pwd)
root=${RUNFILES_DIR:-$0.runfiles}/depot
micro=$root/bench/micro
lib=$(readlink -f "$root/libdepot.so")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
filter='^(batch100/mixed|scaling/real_time/threads:[12]$|prodcons/2thr)'
policies=(off local interleave)
for ((r = 0; r < runs; r++)); do
  for ((i = 0; i < 3; i++)); do
    p=${policies[$(((i + r) % 3))]}
    LD_PRELOAD=$lib DEPOT_CONF=numa=$p "$micro" --benchmark_filter="$filter" \
      --benchmark_min_time=0.1 --benchmark_repetitions=3 \
      --benchmark_report_aggregates_only=true 2>/dev/null |
      awk -v p="$p" '$1 ~ /_median$/ && $2 ~ /^[0-9.]+$/ {
        sub(/_median$/, "", $1); print p, $1, $2, $3 }' >>"$tmp/all"
  done
done
echo "| workload | off | local | interleave | local/off | interleave/off |"
echo "|---|---|---|---|---|---|"
awk '{ key = $2; unit[key] = $4; v[key, $1, ++n[key, $1]] = $3; keys[key] = 1 }
  function median(k, p,   m, i, j, t, a) {
    m = n[k, p]; for (i = 1; i <= m; i++) a[i] = v[k, p, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END { for (k in keys) { o = median(k, "off"); l = median(k, "local"); x = median(k, "interleave")
    printf "| %s | %.1f %s | %.1f %s | %.1f %s | %.2f | %.2f |\n", k, o, unit[k], l, unit[k], x, unit[k], l / o, x / o } }' \
  "$tmp/all" | sort
