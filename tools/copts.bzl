# Compiler flags of Depot's own libraries, written once for every recipe.
# BUILD files load these lists; builds without Bazel (bench/build.sh, the
# fuzzer, the Valgrind test) get them from tools/copts.py, which evaluates
# this file as Python: keep it to plain list assignments.  Flags for every
# target (language standards, warnings) and the optimised config live in
# .bazelrc, which tools/copts.py reads too.

# Every library of Depot: only DEPOT_API symbols leave libdepot.so; each
# function in its own section, so that libdepot.so's link can put the
# functions every program runs first (tools/libdepot.order, BUILD).
DEPOT_C_COPTS = ["-fvisibility=hidden", "-ffunction-sections"]

# The allocator core (alloc/): blocks are reached through `void **` links
# and span words of other types.
DEPOT_CORE_COPTS = DEPOT_C_COPTS + ["-fno-strict-aliasing"]

# How libdepot.so is linked (BUILD; tools/build_libdepot.sh through
# tools/copts.py, which turns the $(location) into the file's path).  No C++ runtime; libgcc linked in (the
# stack walker's unwinder: loading libgcc_s costs every process about
# 0.1 ms, its constructor runs CPUID, which traps in a virtual machine).
# The layout: the kernel maps a library's pages in 64 KiB at a time around
# each fault, so where code sits decides what a process keeps resident.
# gold puts first the functions every program runs (tools/libdepot.order,
# made by tools/text_order.sh; every function has its own section, above),
# and --rosegment gives read-only data a segment of its own, so that the
# code only profiling, debug mode, statistics or the heap API run fills
# windows that a program using malloc alone never faults in.
DEPOT_SO_LINKOPTS = [
    "-Wl,--as-needed",
    "-static-libgcc",
    "-fuse-ld=gold",
    "-Wl,--rosegment",
    "-Wl,--section-ordering-file,$(location //tools:libdepot.order)",
]
