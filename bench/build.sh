#!/usr/bin/env bash
# Builds the benchmark suite with the plain compiler, for machines without
# Bazel (a larger machine for thread-scaling runs, say): libdepot.so, the
# microbenchmarks, the workloads, and the suite's scripts beside them.
#   bench/build.sh [OUTDIR]          default OUTDIR: bench/out (git-ignored)
# Needs gcc, g++ and Google Benchmark.  Where the machine has no package
# registry, carry Debian's libbenchmark packages unpacked into a folder and
# name it in BENCH_DEPS (bench/fetch_deps.sh makes such a folder here):
#   BENCH_DEPS=$PWD/.benchdeps bench/build.sh && python3 bench/out/suite.py \
#     --peer-dir .benchdeps/usr/lib/x86_64-linux-gnu --threads=1,2,4,8,16
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
# libdepot.so: the core, the runtime and the malloc override, position
# independent, exporting only the DEPOT_API functions and the malloc family.
pic=()
for c in "$root"/alloc/*.c "$root"/runtime/*.c; do
  o=$out/obj/pic-$(basename "$(dirname "$c")")-$(basename "$c" .c).o
  gcc -std=c11 "${flags[@]}" -I"$root/runtime/include" -fPIC -fvisibility=hidden -c "$c" -o "$o"
  pic+=("$o")
done
gcc -shared "${pic[@]}" -ldl -lpthread -o "$out/libdepot.so"
g++ -std=c++17 "${flags[@]}" "${extra[@]}" "$root/bench/micro.cc" -lbenchmark -o "$out/micro"
gcc -std=c11 "${flags[@]}" "$root/bench/workloads.c" -ldl -o "$out/workloads"
# fastpath_icount.sh compiles icount.c and preloads the libdepot.so beside it.
cp "$root/bench/suite.py" "$root/bench/redis_bench.sh" "$root/bench/fastpath_icount.sh" \
  "$root/bench/icount.c" "$out/"
echo "built $out: libdepot.so micro workloads (run: python3 $out/suite.py)"
