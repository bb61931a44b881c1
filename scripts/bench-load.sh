#!/usr/bin/env bash
# Load-generator measurements for docs/performance.md: `mldeploy test`'s generator and wrk
# (apt-get install wrk) against the same trivial HTTP/1.1 server on 127.0.0.1, 64 keep-alive
# connections, 10 s each, three rounds, alternating. The server gets one tokio thread, each
# generator two (wrk -t2), as the command does.
# Usage: scripts/bench-load.sh [CONNECTIONS] [SECONDS]   (on an idle machine: nothing else building)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-64}
secs=${2:-10}
cargo bench --bench load --no-run --quiet 2>/dev/null
bin=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
port=18080
"$bin" --serve "127.0.0.1:$port" 2>/dev/null &
server=$!
trap 'kill $server' EXIT
sleep 1
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
  if command -v wrk >/dev/null; then
    echo "== round $round: wrk -t2 -c$conns -d${secs}s --latency"
    wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/" | grep -E 'Requests/sec|^ +(50|90|99)%'
  fi
  echo "== round $round: mldeploy generator, closed loop"
  "$bin" --url "http://127.0.0.1:$port" --concurrency "$conns" --duration "$secs"
done
echo "== open loop at 10000 req/s (latency from each request's due time)"
"$bin" --url "http://127.0.0.1:$port" --concurrency "$conns" --duration "$secs" --rate 10000
# Far below saturation the trivial server answers at once, so the p99 here is the loopback
# round trip plus the generator's own overhead (scheduling, timers, parsing): an upper bound
# of what the generator adds to the p99 it reports.
echo "== open loop at 1000 req/s (generator overhead bound)"
"$bin" --url "http://127.0.0.1:$port" --concurrency "$conns" --duration "$secs" --rate 1000
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
