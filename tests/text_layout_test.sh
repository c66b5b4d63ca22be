#!/usr/bin/env bash
# libdepot.so's layout keeps what a program runs together (tools/copts.bzl,
# "layout").  Builds libdepot.so as the optimised build does
# (tools/build_libdepot.sh; its core run executes the same functions as
# Bazel's -c opt library's, compared on 2026-11-30), then:
#   1. every function of it that tools/text_order.c's "core" run executes
#      (callgrind) is on tools/libdepot.order's lists, the ones before the
#      plain .text: else the list is stale (run tools/text_order.sh on an
#      optimised libdepot.so);
#   2. the listed functions are the first in .text, together: the link
#      follows the list;
#   3. what the "all" run executes of the list (huge blocks, a fork and
#      an idle pause besides) and the entry points lie in two 64 KiB
#      windows of the file (the kernel maps a library in 64 KiB windows
#      around each fault; before the ordering the core run touched all
#      three windows of code); what it executes off the list is named.
#      The resident code of the core run is printed (what the windows make
#      of it depends on the kernel, the page size and the loader's
#      alignment).
set -euo pipefail
command -v valgrind >/dev/null || { echo "FAIL: valgrind is missing (tools/bazelw installs it)"; exit 1; }
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
out=${TEST_TMPDIR:-$(mktemp -d)}
lib_so=$out/libdepot.so
"$root/tools/build_libdepot.sh" "$lib_so"
gcc -std=c11 -O2 -pthread -o "$out/text_order" "$root/tools/text_order.c"
order=$root/tools/libdepot.order
listed=$(sed -n '/^# What every program runs/,/^# The plain/p' "$order" |
  sed -n 's/^\.text\.\([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' | LC_ALL=C sort -u)
fail=0

# 1. What the core run executes, by name without clone suffixes.
ran=$("$root/tools/text_order.sh" --ran "$lib_so" core)
# Those outside .text's function sections: the entry points (depot_prof_text)
# and crtbegin's and libc_nonshared's plain .text.  .text's bounds, hex:
read -r text_lo text_hi < <(readelf -SW "$lib_so" | python3 -c '
import sys
for l in sys.stdin:
    f = l.replace("[ ", "[").split()
    if len(f) > 5 and f[1] == ".text":
        print(f[3], "%x" % (int(f[3], 16) + int(f[5], 16)))')
nm -n "$lib_so" | awk '$2 ~ /^[tT]$/ { print $1, $3 }' >"$out/syms"
in_text=$(python3 - "$out/syms" "$text_lo" "$text_hi" <<'PY'
import sys
lo, hi = int(sys.argv[2], 16), int(sys.argv[3], 16)
for line in open(sys.argv[1]):
    addr, name = line.split()
    if lo <= int(addr, 16) < hi:
        print(name.split(".")[0])
PY
)
plain="frame_dummy register_tm_clones deregister_tm_clones __do_global_dtors_aux pthread_atfork atexit"
missing=$(LC_ALL=C comm -23 <(echo "$ran") <(echo "$listed") |
  LC_ALL=C comm -12 - <(echo "$in_text" | LC_ALL=C sort -u) | grep -vxF -f <(tr ' ' '\n' <<<"$plain") || true)
if [[ -n $missing ]]; then
  echo "FAIL: functions every program runs are not on tools/libdepot.order's lists" \
    "(run tools/text_order.sh on an optimised libdepot.so):" $missing
  fail=1
else
  echo "ok: the $(wc -w <<<"$ran") functions the core run executes are listed"
fi

# 2. The listed functions lead .text, and what the core run executes in
#    .text is among them (but crtbegin's and libc_nonshared's plain .text).
python3 - "$out/syms" "$text_lo" "$text_hi" <(echo "$listed") <(echo "$ran") "$plain" <<'PY' || fail=1
import sys
lo, hi = int(sys.argv[2], 16), int(sys.argv[3], 16)
listed = set(open(sys.argv[4]).read().split())
ran = set(open(sys.argv[5]).read().split()) - set(sys.argv[6].split())
syms = [(int(a, 16), n.split(".")[0]) for a, n in (l.split() for l in open(sys.argv[1]))]
syms = [(a, n) for a, n in syms if lo <= a < hi]
k = 0
while k < len(syms) and syms[k][1] in listed:
    k += 1
end = syms[k][0] if k < len(syms) else hi
outside = sorted({n for a, n in syms if n in ran and a >= end})
if k == 0 or outside:
    print("FAIL: functions the core run executes lie outside the leading block of %d:" % k, outside[:10])
    sys.exit(1)
print("ok: the listed functions lead .text (%d symbols, %d bytes)" % (k, end - lo))
PY

# 3. The windows: the all run's functions that are on the list,
#    frame_dummy (crtbegin's, run at load), the entry points (malloc,
#    calloc, realloc and the aligned ones: depot_prof_text), and .fini,
#    which every process runs at exit.  What the all run executes off the
#    list is named, not failed: its paths beyond the core run's may depend
#    on the machine (the purger's timing, what /sys and /proc say), and
#    check 1 already fails a list that misses what the core run executes.
ran_all=$("$root/tools/text_order.sh" --ran "$lib_so" all)
entries="frame_dummy malloc calloc realloc posix_memalign aligned_alloc memalign _fini"
python3 - "$out/syms" "$text_lo" "$text_hi" <(echo "$ran_all") "$entries" \
  <(echo "$listed") "$plain" <<'PY' || fail=1
import sys
lo, hi = int(sys.argv[2], 16), int(sys.argv[3], 16)
ran = set(open(sys.argv[4]).read().split())
entries = set(sys.argv[5].split())
listed = set(open(sys.argv[6]).read().split())
plain = set(sys.argv[7].split())
names, off_list = {}, []
for a, n in (l.split() for l in open(sys.argv[1])):
    base, at = n.split(".")[0], int(a, 16)
    if base in entries or (base in ran and base in listed):
        names.setdefault(at >> 16, []).append(n)
    elif base in ran and base not in plain and lo <= at < hi:
        off_list.append("%s (0x%x)" % (n, at))
windows = sorted(names)
print("the all run's listed code and the entry points lie in 64 KiB windows",
      ["0x%x" % (w << 16) for w in windows])
if off_list:
    print("note: the all run executed functions off the list here:", " ".join(off_list))
if len(windows) > 2:
    for w in windows[1:]:
        print("  0x%x:" % (w << 16), " ".join(names[w]))
    print("FAIL: more than two windows")
    sys.exit(1)
PY
if ! rss=$(LD_PRELOAD=$lib_so "$out/text_order" core rss); then
  echo "FAIL: text_order core failed"
  fail=1
fi
echo "resident KiB of libdepot.so in the core run: $rss"
((fail == 0)) && echo PASS
exit "$fail"
