#!/usr/bin/env bash
# Redis under Depot and its peers, interleaved: Debian's redis-server with
# each allocator preloaded (glibc through a shim, jemalloc being what Debian
# links it with), loaded with redis-benchmark on 127.0.0.1.  Reports the
# median requests per second (mean over the workload's commands) and the
# server's peak resident memory (VmHWM), and each as a ratio to jemalloc.
#   tools/bazelw run //bench:redis_bench -- [--runs N] [--requests N] [--raw]
set -euo pipefail
runs=5 requests=100000 raw=0 peer_dir=${PEER_DIR:-}
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --raw) raw=1; shift ;;  # one "RUN allocator rps peak_kib" line per run
    --peer-dir) peer_dir=$2; shift 2 ;;
    *) echo "usage: redis_bench [--runs N] [--requests N] [--raw] [--peer-dir DIR]" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
find_lib() { for c in "$@"; do [[ -e $c ]] && { readlink -f "$c"; return; }; done; }
depot=$(find_lib "${RUNFILES_DIR:-/nonexistent}/depot/libdepot.so" "$here/../libdepot.so" "$here/libdepot.so")
shim=$(find_lib "${RUNFILES_DIR:-/nonexistent}/depot/bench/libglibc_shim.so" "$here/libglibc_shim.so")
lib=${peer_dir:-/usr/lib/x86_64-linux-gnu}
declare -A preload=([depot]=$depot [glibc]=$shim [jemalloc]="" \
  [tcmalloc]=$lib/libtcmalloc_minimal.so.4 [mimalloc]=$lib/libmimalloc.so.2)
names=()
for n in depot glibc jemalloc tcmalloc mimalloc; do
  p=${preload[$n]}
  if [[ -n $p && ! -e $p ]]; then echo "note: $n not installed ($p); skipped" >&2; continue; fi
  names+=("$n")
done
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

one_run() {  # one_run NAME -> "rps peak_kib"
  local name=$1 pid rps peak
  env ${preload[$name]:+LD_PRELOAD=${preload[$name]}} redis-server --port "$port" \
    --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --logfile "$tmp/log" &
  pid=$!
  for _ in $(seq 100); do [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done
  # Fill with values of several sizes, then a mixed command load.
  for d in 64 512 2048; do
    redis-benchmark -p "$port" -n $((requests / 2)) -r $((requests / 2)) -c 20 -P 16 \
      -d $d -t set -q >/dev/null
  done
  rps=$(redis-benchmark -p "$port" -n "$requests" -r $((requests * 2)) -c 50 -P 16 -d 256 \
    -t set,get,incr,lpush,lpop,sadd,hset,spop,zadd,lrange_100 --csv |
    awk -F'"' 'NR > 1 { s += $4; n++ } END { printf "%.0f", s / n }')
  peak=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  echo "$rps $peak"
}

for ((r = 0; r < runs; r++)); do  # interleaved, the starting allocator rotating
  for ((i = 0; i < ${#names[@]}; i++)); do
    n=${names[$(((i + r) % ${#names[@]}))]}
    one_run "$n" >>"$tmp/$n"
  done
done

if ((raw)); then
  for n in "${names[@]}"; do sed "s/^/RUN $n /" "$tmp/$n"; done
  exit 0
fi
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ref_rps=$(cut -d' ' -f1 "$tmp/jemalloc" | median)
ref_mem=$(cut -d' ' -f2 "$tmp/jemalloc" | median)
echo "Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $runs interleaved runs, $requests requests per command:"
echo
echo "| allocator | requests/s (median) | min..max | peak RSS MiB | rps / jemalloc | RSS / jemalloc |"
echo "|---|---|---|---|---|---|"
for n in "${names[@]}"; do
  rps=$(cut -d' ' -f1 "$tmp/$n" | median)
  lo=$(cut -d' ' -f1 "$tmp/$n" | sort -n | head -1)
  hi=$(cut -d' ' -f1 "$tmp/$n" | sort -n | tail -1)
  mem=$(cut -d' ' -f2 "$tmp/$n" | median)
  awk -v n="$n" -v r="$rps" -v lo="$lo" -v hi="$hi" -v m="$mem" -v rr="$ref_rps" -v rm="$ref_mem" \
    'BEGIN { printf "| %s | %.0f | %.0f..%.0f | %.1f | %.2f | %.2f |\n", n, r, lo, hi, m / 1024, r / rr, m / rm }'
done
