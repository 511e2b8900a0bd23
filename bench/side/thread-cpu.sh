#!/usr/bin/env bash
# Where a service's CPU goes under load, by thread name (thread-pool workers, socket engine, GC, tiered JIT, kernel
# threads): starts the Release build of this checkout, drives it with wrk for WARM s (discarded), then for 8 s, and
# prints each thread group's CPU ticks (1/100 s) over the measured run with the request count and median latency.
#   bench/side/thread-cpu.sh BODY.json [clients] [path]    e.g. a C1 body at 1 client, /v1/gradient
# Environment: WARM (seconds, default 5); any DOTNET_* variable passes to the server (to try runtime knobs).
set -euo pipefail
cd "$(dirname "$0")/../.."
body=$(readlink -f "$1"); clients=${2:-1}; path=${3:-/v1/gradient}
dotnet build src/Api -c Release -v q -nologo >/dev/null
port=$((20000 + RANDOM % 30000))
dotnet src/Api/bin/Release/net10.0/AutogradService.Api.dll --Server:RestPort=$port --Server:GrpcPort=$((port + 1)) \
  --Server:ModelRepositoryPath="$(mktemp -d)" --Logging:LogLevel:Default=Warning >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.5; done
# Thread names hold spaces, so the ticks are read after the ") " that closes the name in /proc/.../stat.
snapshot() { for t in /proc/$pid/task/*; do
  echo "$(basename "$t") $(tr ' ' _ <"$t/comm" 2>/dev/null) $(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12 + $13 }')"
done | awk 'NF == 3' | sort; }
drive() { BODY_FILE=$body wrk -t1 -c"$clients" -d"$1"s -s bench/side/post.lua "http://127.0.0.1:$port$path" | tail -1; }
drive "${WARM:-5}" >/dev/null
snapshot >"/tmp/thread-cpu.$$.a"
result=$(drive 8)
snapshot >"/tmp/thread-cpu.$$.b"
echo "$result" | /usr/bin/python3 -c "import json, sys; r = json.load(sys.stdin); print('requests', r['requests'], 'p50_us', r['p50_us'])"
join "/tmp/thread-cpu.$$.a" "/tmp/thread-cpu.$$.b" | awk '{ d = $5 - $3; if (d > 0) s[$2] += d; total += d }
  END { for (k in s) print s[k], k; print total, "TOTAL" }' | sort -rn
rm -f "/tmp/thread-cpu.$$.a" "/tmp/thread-cpu.$$.b"
