#!/usr/bin/env bash
# The man pages render with `man -l` without a warning, and depot(7) names
# every configuration key that topo --config-reference prints.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
failures=0
for page in "$root"/tools/man/out/*; do
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  if [[ -n $warnings ]]; then
    echo "FAIL: ${page##*/}: $warnings"
    failures=$((failures + 1))
  fi
done
rendered=$(MANWIDTH=200 man -l "$root/tools/man/out/depot.7" 2>/dev/null)
keys=$("$root/tools/topo" --config-reference | awk -F'`' 'NR > 2 { print $2 }')
[[ -n $keys ]] || { echo "FAIL: no keys from topo --config-reference"; exit 1; }
for key in $keys; do
  grep -qE "^ +$key\$|^ +$key " <<<"$rendered" || {
    echo "FAIL: depot(7) does not list $key"
    failures=$((failures + 1))
  }
done
((failures == 0)) && echo "PASS: $(ls "$root"/tools/man/out | wc -l) pages, $(wc -w <<<"$keys") keys" \
  || exit 1
