# Compiler flags of Depot's own libraries, written once for every recipe.
# BUILD files load these lists; builds without Bazel (bench/build.sh, the
# fuzzer, the Valgrind test) get them from tools/copts.py, which evaluates
# this file as Python: keep it to plain list assignments.  Flags for every
# target (language standards, warnings) and the optimised config live in
# .bazelrc, which tools/copts.py reads too.

# Every library of Depot: only DEPOT_API symbols leave libdepot.so.
DEPOT_C_COPTS = ["-fvisibility=hidden"]

# The allocator core (alloc/): blocks are reached through `void **` links
# and span words of other types.
DEPOT_CORE_COPTS = DEPOT_C_COPTS + ["-fno-strict-aliasing"]
