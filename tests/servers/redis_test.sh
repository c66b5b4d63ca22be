#!/usr/bin/env bash
# Debian's redis-server with libdepot.so preloaded, on 127.0.0.1 and a free
# port: known keys written, redis-benchmark load (bounded), every known key
# read back and compared, a clean shutdown, and a log without errors.
set -euo pipefail
lib=$(readlink -f "${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}/libdepot.so")
for tool in redis-server redis-cli redis-benchmark; do
  command -v $tool >/dev/null || { echo "FAIL: $tool missing (apt-get install redis-server redis-tools; tools/bazelw installs them)"; exit 1; }
done
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

LD_PRELOAD=$lib DEPOT_CONF=stats=1 redis-server --port "$port" --bind 127.0.0.1 \
  --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" \
  --daemonize no >"$dir/stdout" 2>"$dir/stderr" &
pid=$!
for _ in $(seq 100); do
  [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
  sleep 0.1
done
[[ $(redis-cli -p "$port" ping) == PONG ]] || { echo "FAIL: server did not start"; cat "$dir"/*; exit 1; }
grep -q libdepot.so "/proc/$pid/maps" || { echo "FAIL: libdepot.so not mapped in the server"; exit 1; }

keys=20000
gen() {  # the known keys and values, sizes 8 .. 600 bytes
  awk -v n=$keys -v mode="$1" 'BEGIN {
    for (i = 0; i < n; i++) {
      v = sprintf("v%d-", i); while (length(v) < 8 + (i * 37) % 593) v = v "abcdefgh";
      if (mode == "set") printf "SET known:%d %s\n", i, v; else print v
    } }'
}
gen set | redis-cli -p "$port" >/dev/null
redis-benchmark -h 127.0.0.1 -p "$port" -n 100000 -c 20 -P 8 -r 50000 -d 64 -q \
  -t set,get,incr,lpush,rpop,sadd,hset,lrange_100 >"$dir/bench1"
redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 10 -r 10000 -d 4096 -q -t set,get >"$dir/bench2"
cat "$dir/bench1" "$dir/bench2" | tr '\r' '\n' | grep -E "requests per second" | sed 's/^/  /'
awk -v n=$keys 'BEGIN { for (i = 0; i < n; i++) printf "GET known:%d\n", i }' |
  redis-cli -p "$port" >"$dir/got"
gen values >"$dir/want"
cmp -s "$dir/got" "$dir/want" || { echo "FAIL: values read back differ"; diff "$dir/got" "$dir/want" | head; exit 1; }
redis-cli -p "$port" info memory | grep -E "^(used_memory_rss_human|mem_allocator)" | tr -d '\r' | sed 's/^/  /'
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$pid" && status=0 || status=$?
[[ $status -eq 0 ]] || { echo "FAIL: server exited with $status"; tail "$dir/redis.log" "$dir/stderr"; exit 1; }
if grep -Eiq "error|panic|assert|bug report|segmentation" "$dir/redis.log" "$dir/stderr"; then
  echo "FAIL: errors in the server's log"; grep -Ei "error|panic|assert|bug|segmentation" "$dir/redis.log" "$dir/stderr" | head; exit 1
fi
grep -q "Depot memory statistics" "$dir/stderr" || { echo "FAIL: Depot did not serve the server"; exit 1; }
echo "PASS: $keys known keys intact after load; clean shutdown"
