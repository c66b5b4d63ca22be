#!/usr/bin/env bash
# Instructions per malloc+free pair, counted with callgrind (deterministic):
# the difference between a run of N2 and a run of N1 pairs, divided by
# N2 - N1, so start-up and teardown cancel out.  The loop and the ordinary
# (out-of-line, through the PLT) calls are included.  One measuring binary
# (icount.c); each allocator is preloaded into it, Depot as libdepot.so
# like the peers, glibc as it comes.
#   bench/fastpath_icount.sh     # depot, glibc and the peers found
# DEPOT_LIB names libdepot.so (default: beside this script, one folder up as
# in Bazel's runfiles, or bazel-bin/; build it with -c opt); PEER_DIR where
# the peers' libraries are.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
depot=${DEPOT_LIB:-}
if [[ -z $depot ]]; then
  for c in "$here/libdepot.so" "$here/../libdepot.so" "$here/../bazel-bin/libdepot.so"; do
    if [[ -e $c ]]; then depot=$c; break; fi
  done
fi
[[ -n $depot && -e $depot ]] || { echo "libdepot.so not found: set DEPOT_LIB (tools/bazelw build -c opt //:libdepot.so)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=c11 -O2 -DNDEBUG -fno-builtin -o "$out/icount" "$here/icount.c"

count() {  # count PRELOAD PATTERN N -> total instructions
  env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    "$out/icount" "$2" "$3" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_pair() {  # per_pair PRELOAD PATTERN
  local a b
  a=$(count "$1" "$2" 100000)
  b=$(count "$1" "$2" 200000)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 100000 }'
}

peer_dir=${PEER_DIR:-/usr/lib/x86_64-linux-gnu}
declare -A libs=(
  [depot]=$depot
  [glibc]=""
  [jemalloc]=$peer_dir/libjemalloc.so.2
  [tcmalloc]=$peer_dir/libtcmalloc_minimal.so.4
  [mimalloc]=$peer_dir/libmimalloc.so.2
)
printf '| allocator | 32-byte pair | mixed 8..508, 100 at a time |\n|---|---|---|\n'
for name in depot glibc jemalloc tcmalloc mimalloc; do
  lib=${libs[$name]}
  if [[ -n $lib && ! -e $lib ]]; then continue; fi
  printf '| %s | %s | %s |\n' "$name" "$(per_pair "$lib" pair32)" "$(per_pair "$lib" mixed100)"
done
