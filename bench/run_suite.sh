#!/usr/bin/env bash
# `tools/bazelw run //bench`: the benchmark suite (bench/suite.py), with
# Debian's python3 (its matplotlib draws the charts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${RUNFILES_DIR:-$0.runfiles}/depot/bench/suite.py
[[ -f $suite ]] || suite=$here/suite.py
py=/usr/bin/python3
[[ -x $py ]] || py=python3
exec "$py" "$suite" "$@"
