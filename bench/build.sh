#!/usr/bin/env bash
# Builds the benchmark suite with the plain compiler, for machines without
# Bazel (a larger machine for thread-scaling runs, say): libdepot.so, the
# microbenchmarks, the workloads, and the suite's scripts beside them.
#   bench/build.sh [OUTDIR]          default OUTDIR: bench/out (git-ignored)
# Needs gcc, g++, python3 and Google Benchmark.  Where the machine has no
# package registry, carry Debian's libbenchmark packages unpacked into a
# folder and name it in BENCH_DEPS (bench/fetch_deps.sh makes such a folder
# here):
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
# The flags Bazel's optimised build uses (.bazelrc and tools/copts.bzl,
# through tools/copts.py), plus what -c opt adds (-DNDEBUG) and symbols.
copts() {
  local v
  v=$(python3 "$root/tools/copts.py" --config opt "${@:2}") || exit 1
  read -ra "$1" <<<"$v"
}
copts c_flags c
copts cxx_flags c++
common=(-DNDEBUG -g -I"$root" -pthread)
# libdepot.so: the core, the runtime and the malloc override, linked as
# Bazel links it (tools/build_libdepot.sh).
"$root/tools/build_libdepot.sh" "$out/libdepot.so" "$out/obj"
g++ "${cxx_flags[@]}" "${common[@]}" "${extra[@]}" "$root/bench/micro.cc" -lbenchmark -o "$out/micro"
gcc "${c_flags[@]}" "${common[@]}" "$root/bench/workloads.c" -ldl -o "$out/workloads"
# Heaps against mimalloc's (bench/heap_bench.c), on the libdepot.so above.
gcc "${c_flags[@]}" "${common[@]}" -I"$root/runtime/include" "$root/bench/heap_bench.c" \
  "$out/libdepot.so" -Wl,-rpath,"$out" -ldl -o "$out/heap_bench"
# fastpath_icount.sh compiles icount.c and preloads the libdepot.so beside it.
cp "$root/bench/suite.py" "$root/bench/redis_bench.sh" "$root/bench/fastpath_icount.sh" \
  "$root/bench/icount.c" "$out/"
echo "built $out: libdepot.so micro workloads heap_bench (run: python3 $out/suite.py)"
