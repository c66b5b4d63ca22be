#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan and UBSan on) and runs it on
# the seed corpus; extra arguments go to libFuzzer.  A long run:
#   tests/fuzz/fuzz.sh -max_total_time=3600 -jobs=2
# CI runs a bounded number of executions (tests:fuzz_test).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
[[ -d $root/alloc ]] || root=${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}
out=${FUZZ_OUT:-${TEST_TMPDIR:-/tmp/depot-fuzz}}
mkdir -p "$out/corpus"
command -v clang >/dev/null || { echo "clang is needed (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DDEPOT_OVERRIDE_PREFIX=fz_ -I"$root" -I"$root/runtime/include" \
  "$root"/alloc/*.c "$root"/runtime/*.c "$root/tests/fuzz/fuzz_depot.c" \
  -ldl -lpthread -o "$out/fuzz_depot"
cp -n "$root"/tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
chmod u+w "$out"/corpus/*
exec "$out/fuzz_depot" "$out/corpus" -max_len=1024 "$@"
