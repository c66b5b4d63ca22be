#!/usr/bin/env bash
# Builds libdepot.so with the plain compiler, as Bazel's optimised build
# does: the flags of .bazelrc's opt config and tools/copts.bzl (through
# tools/copts.py), -DNDEBUG and symbols, runtime/entry_align.c first on the
# link line (as in BUILD), and DEPOT_SO_LINKOPTS (gold and
# tools/libdepot.order); where gcc cannot link with gold, without the code
# layout (the same code, in link order).  For machines without Bazel
# (bench/build.sh) and for the test of the layout
# (tests/text_layout_test.sh).
#   tools/build_libdepot.sh OUT_SO [OBJ_DIR]     OBJ_DIR defaults to OUT_SO's
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: tools/build_libdepot.sh OUT_SO [OBJ_DIR]}
objdir=${2:-$(dirname "$out")}
mkdir -p "$objdir"
flags() {  # flags VAR LIST...: tools/copts.py's words into the array VAR
  local v
  v=$(python3 "$root/tools/copts.py" --config opt c "${@:2}") || exit 1
  read -ra "$1" <<<"$v"
}
flags core DEPOT_CORE_COPTS
flags lib DEPOT_C_COPTS
flags link DEPOT_SO_LINKOPTS
if ! echo 'int main(void){return 0;}' | gcc -x c -fuse-ld=gold -o /dev/null - 2>/dev/null; then
  echo "tools/build_libdepot.sh: no gold linker: libdepot.so without its code layout" >&2
  kept=()
  for f in "${link[@]}"; do
    case $f in -fuse-ld=gold | -Wl,--rosegment | -Wl,--section-ordering-file,*) ;; *) kept+=("$f") ;; esac
  done
  link=("${kept[@]}")
fi
objs=()
jobs_max=$(nproc 2>/dev/null || echo 2)
for c in "$root"/runtime/entry_align.c "$root"/alloc/*.c \
    $(ls "$root"/runtime/*.c | grep -v /entry_align.c); do
  dir=$(basename "$(dirname "$c")")
  o=$objdir/pic-$dir-$(basename "$c" .c).o
  if [[ $dir == alloc ]]; then f=("${core[@]}"); else f=("${lib[@]}"); fi
  gcc "${f[@]}" -DNDEBUG -g -I"$root" -I"$root/runtime/include" -pthread -fPIC \
    -c "$c" -o "$o" &
  objs+=("$o")
  (($(jobs -r | wc -l) < jobs_max)) || wait -n
done
for p in $(jobs -p); do wait "$p"; done
# The compile flags among link's words are ignored by a link.
gcc -shared "${objs[@]}" "${link[@]}" -ldl -lpthread -o "$out"
