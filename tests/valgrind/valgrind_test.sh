#!/usr/bin/env bash
# memcheck understands Depot's blocks.  Builds Depot with its Valgrind client
# requests (-DDEPOT_VALGRIND) and a small program, then:
#   - with three bugs (a leak, an uninitialised read, a use after free), each
#     is reported once, against the program's own file;
#   - with none, heavy use from threads produces no report at all, so Depot's
#     own metadata gives no false ones.
set -euo pipefail
command -v valgrind >/dev/null || { echo "FAIL: valgrind is missing (tools/bazelw installs it)"; exit 1; }
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
out=${TEST_TMPDIR:-$(mktemp -d)}
gcc -std=c11 -O1 -g -DDEPOT_VALGRIND -I"$root" -I"$root/runtime/include" \
  "$root"/alloc/*.c "$root"/runtime/*.c "$root/tests/valgrind/vg_user.c" \
  -ldl -lpthread -o "$out/vg_user"
vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite)
fail=0

"${vg[@]}" "$out/vg_user" clean >"$out/clean.log" 2>&1 || { echo "FAIL: clean run reported errors"; fail=1; }
grep -E "ERROR SUMMARY|definitely lost|clean run done" "$out/clean.log" | sed 's/^/  clean: /'
grep -q "ERROR SUMMARY: 0 errors" "$out/clean.log" || { fail=1; tail -40 "$out/clean.log"; }

"${vg[@]}" "$out/vg_user" bugs >"$out/bugs.log" 2>&1 && { echo "FAIL: the bugs went unreported"; fail=1; }
grep -E "ERROR SUMMARY|definitely lost:" "$out/bugs.log" | sed 's/^/  bugs: /'
check() {  # check PATTERN: an error of that kind whose first frame is in vg_user.c
  if ! grep -A3 -E "$1" "$out/bugs.log" | grep -m1 -E "^==[0-9]+== +(at|by) " | grep -q "vg_user.c"; then
    echo "FAIL: no '$1' report against vg_user.c"; fail=1
  fi
}
check "Conditional jump or move depends on uninitialised value"
check "Invalid read of size"
grep -q "definitely lost: 100 bytes in 1 blocks" "$out/bugs.log" || { echo "FAIL: the leak of 100 bytes"; fail=1; }
grep -A6 "100 bytes in 1 blocks are definitely lost" "$out/bugs.log" | grep -q "leak (vg_user.c" ||
  { echo "FAIL: the leak is not attributed to leak() in vg_user.c"; fail=1; }
grep -q "ERROR SUMMARY: 3 errors" "$out/bugs.log" || { echo "FAIL: expected exactly 3 errors"; fail=1; }
if ((fail)); then tail -60 "$out/bugs.log"; exit 1; fi
echo "PASS"
