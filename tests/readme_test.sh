#!/usr/bin/env bash
# The README's configuration reference is the table the parser uses: every
# line that tools/topo --config-reference prints must be in README.md.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
missing=0
while IFS= read -r line; do
  grep -qxF -- "$line" "$root/README.md" || { echo "not in README.md: $line"; missing=1; }
done < <("$root/tools/topo" --config-reference)
[[ $missing == 0 ]] && echo "PASS: the configuration reference matches" || exit 1
