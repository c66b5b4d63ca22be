#!/usr/bin/env bash
# A bounded fuzzing run for CI: the seed corpus plus 20,000 executions.
set -euo pipefail
root=${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}
exec "$root/tests/fuzz/fuzz.sh" -runs=20000 -seed=1
