#!/usr/bin/env bash
# The README's configuration, checked against the code:
#  1. its reference table is the table the parser uses: every line that
#     tools/topo --config-reference prints must be in README.md;
#  2. every configuration example in it works: each `DEPOT_CONF=...`,
#     `DEPOTMALLOC=...`, `DEPOTMALLOCSTATS=...` and `key=value` of a known key
#     (inline or in a code block), and each value of the `numa=` table, is
#     run through tools/topo with strict_config=1 (so any error exits 1), on
#     a synthetic 4-node machine so that the node lists name real nodes; the
#     key=value ones also as a line of a DEPOT_CONF_FILE.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
readme=$root/README.md
topo=$root/tools/topo
missing=0
while IFS= read -r line; do
  grep -qxF -- "$line" "$readme" || { echo "not in README.md: $line"; missing=1; }
done < <("$topo" --config-reference)
[[ $missing == 0 ]] && echo "PASS: the configuration reference matches" || exit 1

tmp=${TEST_TMPDIR:-$(mktemp -d)}
keys=$("$topo" --config-reference | sed -n 's/^| `\([a-z_]*\)` |.*/\1/p' | paste -sd'|')
[[ -n $keys ]] || { echo "no keys in the reference"; exit 1; }

# Inline examples and code-block words, one per line, quotes dropped.
examples() {
  grep -o '`[^`]*`' "$readme" | tr -d '`'
  sed -n '/^```sh$/,/^```$/p' "$readme" | tr ' ' '\n'
}
# The numa= table: rows between its header and the next blank line.
numa_values() {
  sed -n '/^| `numa=` | placement |$/,/^$/p' "$readme" | sed -n 's/^| `\([^`]*\)`.*/\1/p'
}

strict=$tmp/strict.conf
echo strict_config=1 >"$strict"
failed=0 checked=0
check() {  # check WHAT ENV... : runs topo under ENV (which sets strict_config=1)
  local what=$1; shift
  local out status=0
  out=$(env HWLOC_SYNTHETIC="numa:4 core:1 pu:1" "$@" "$topo" 2>&1 >/dev/null) || status=$?
  checked=$((checked + 1))
  # Any line of Depot's own is a complaint (the statistics report is not).
  if [[ $status != 0 ]] || grep -q '^depot:' <<<"$out"; then
    echo "FAIL: README example $what (exit $status): $out"
    failed=1
  fi
}
while IFS= read -r ex; do
  ex=${ex//\"/}
  case $ex in
    *key=value*) ;;  # the placeholder, not an example
    *=) ;;  # a key named, no value
    DEPOT_CONF=*)  # strict_config=1 from the file: the example may set it too
      check "$ex" DEPOT_CONF_FILE="$strict" "$ex" ;;
    DEPOTMALLOC=* | DEPOTMALLOCSTATS=*)
      check "$ex" DEPOT_CONF_FILE="$strict" "$ex" ;;
    *=*)
      key=${ex%%=*}
      if [[ $key =~ ^($keys)$ ]]; then
        check "$ex" DEPOT_CONF_FILE="$strict" DEPOT_CONF="$ex"
        printf '%s\n' "$ex" >"$tmp/readme.conf"
        check "$ex (in a file)" DEPOT_CONF_FILE="$tmp/readme.conf" DEPOT_CONF=strict_config=1
      fi ;;
  esac
done < <(examples | sort -u)
while IFS= read -r v; do
  [[ $v == *= ]] && continue  # the header
  check "numa=$v" DEPOT_CONF_FILE="$strict" DEPOT_CONF="numa=$v"
  printf 'numa=%s\n' "$v" >"$tmp/readme.conf"
  check "numa=$v (in a file)" DEPOT_CONF_FILE="$tmp/readme.conf" DEPOT_CONF=strict_config=1
done < <(numa_values)
# The examples must be found at all (a change of the README's layout would
# otherwise pass silently).
if [[ $checked -lt 20 ]]; then echo "FAIL: only $checked examples found"; failed=1; fi
[[ $failed == 0 ]] && echo "PASS: $checked configuration examples of the README work"
exit $failed
