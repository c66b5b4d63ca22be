#!/usr/bin/env bash
# Line coverage of the fuzzer, per file of alloc/ and runtime/: builds the
# target with clang's source-based coverage (no sanitizers), runs it on the
# seed corpus and then for SECONDS more (default 60), and prints llvm-cov's
# report.  Needs clang, llvm-profdata and llvm-cov (apt-get install clang
# llvm).  The README's figures come from:
#   tests/fuzz/coverage.sh 60
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
secs=${1:-60}
out=${FUZZ_OUT:-/tmp/depot-fuzz-cov}
mkdir -p "$out/corpus"
for tool in clang llvm-profdata llvm-cov; do
  command -v $tool >/dev/null || { echo "$tool is needed (apt-get install clang llvm)" >&2; exit 1; }
done
clang -std=c11 -g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
  -DDEPOT_OVERRIDE_PREFIX=fz_ -I"$root" -I"$root/runtime/include" \
  "$root"/alloc/*.c "$root"/runtime/*.c "$root/tests/fuzz/fuzz_depot.c" \
  -ldl -lpthread -o "$out/fuzz_cov"
cp -n "$root"/tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
chmod u+w "$out"/corpus/*
rm -f "$out"/*.profraw
LLVM_PROFILE_FILE="$out/fuzz.profraw" "$out/fuzz_cov" "$out/corpus" -max_len=1024 \
  -max_total_time="$secs" -seed=1 -print_final_stats=1 2>"$out/fuzz.log" || true
grep -E "stat::(number_of_executed_units|average_exec_per_sec)" "$out/fuzz.log"
llvm-profdata merge -sparse "$out/fuzz.profraw" -o "$out/fuzz.profdata"
# Paths relative to the checkout, lines only.
llvm-cov report "$out/fuzz_cov" -instr-profile="$out/fuzz.profdata" \
  "$root/alloc" "$root/runtime" | sed "s|$root/||" |
  awk '/^(alloc|runtime)\// && $8 > 0 { print } /^TOTAL/ { print "~" $0 }' |
  LC_ALL=C sort | sed 's/^~//' |
  awk 'BEGIN { print "| file | lines | missed | covered |\n|---|---|---|---|" }
       { printf "| %s | %s | %s | %s |\n", $1, $8, $9, $10 }'
