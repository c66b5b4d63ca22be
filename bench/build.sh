#!/usr/bin/env bash
# Builds the benchmark binaries with the plain compiler, for machines without
# Bazel (a larger machine for thread-scaling runs, say).
#   bench/build.sh [OUTDIR]          default OUTDIR: bench/out (git-ignored)
# Needs gcc, g++ and Google Benchmark.  Where the machine has no package
# registry, carry Debian's libbenchmark packages unpacked into a folder and
# name it in BENCH_DEPS (bench/fetch_deps.sh makes such a folder here):
#   BENCH_DEPS=$PWD/.benchdeps bench/build.sh && bench/out/bench
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
out=${1:-$root/bench/out}
mkdir -p "$out/obj"
extra=()
if [[ -n ${BENCH_DEPS:-} ]]; then
  libdir=$BENCH_DEPS/usr/lib/x86_64-linux-gnu
  extra=(-I"$BENCH_DEPS/usr/include" -L"$libdir" -Wl,-rpath,"$libdir")
fi
flags=(-O2 -DNDEBUG -g -I"$root" -fno-strict-aliasing -pthread)
objs=()
for c in "$root"/alloc/*.c; do
  o=$out/obj/$(basename "$c" .c).o
  gcc -std=c11 "${flags[@]}" -c "$c" -o "$o"
  objs+=("$o")
done
g++ -std=c++17 "${flags[@]}" "${extra[@]}" "$root/bench/bench.cc" "${objs[@]}" \
  -lbenchmark -o "$out/bench"
gcc -std=c11 "${flags[@]}" -fno-builtin "$root/bench/icount.c" "${objs[@]}" -o "$out/icount"
echo "built $out/bench and $out/icount"
