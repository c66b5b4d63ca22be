#!/usr/bin/env bash
# Instructions per malloc+free pair, counted with callgrind (deterministic):
# the difference between a run of N2 and a run of N1 pairs, divided by
# N2 - N1, so start-up and teardown cancel out.  The loop and the ordinary
# (out-of-line) calls are included.  Peers are measured by preloading their
# library into the "system" variant when it is installed:
#   bench/fastpath_icount.sh                 # depot and glibc (and peers found)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=c11 -O2 -DNDEBUG -fno-builtin -I. -o "$out/icount" bench/icount.c alloc/*.c -lpthread

count() {  # count PRELOAD VARIANT PATTERN N -> total instructions
  env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    "$out/icount" "$2" "$3" "$4" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_pair() {  # per_pair PRELOAD VARIANT PATTERN
  local a b
  a=$(count "$1" "$2" "$3" 100000)
  b=$(count "$1" "$2" "$3" 200000)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 100000 }'
}

peer_dir=${PEER_DIR:-/usr/lib/x86_64-linux-gnu}
declare -A peers=(
  [glibc]=""
  [jemalloc]=$peer_dir/libjemalloc.so.2
  [tcmalloc]=$peer_dir/libtcmalloc_minimal.so.4
  [mimalloc]=$peer_dir/libmimalloc.so.2
)
printf '| allocator | 32-byte pair | mixed 8..508, 100 at a time |\n|---|---|---|\n'
printf '| depot | %s | %s |\n' "$(per_pair "" depot pair32)" "$(per_pair "" depot mixed100)"
for name in glibc jemalloc tcmalloc mimalloc; do
  lib=${peers[$name]}
  if [[ -n $lib && ! -e $lib ]]; then continue; fi
  printf '| %s | %s | %s |\n' "$name" "$(per_pair "$lib" system pair32)" "$(per_pair "$lib" system mixed100)"
done
