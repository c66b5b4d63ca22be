#!/usr/bin/env bash
# The core's files form the stack alloc/README.md draws (tools/check_layers.py).
set -euo pipefail
exec python3 tools/check_layers.py "$PWD"
