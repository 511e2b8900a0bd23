#!/usr/bin/env bash
# W8: the service's own throughput. Starts the real server on free loopback ports, drives C1 over gRPC and REST
# with 1 and 16 concurrent clients and an empty RPC / empty GET on the same server (the transport's ceiling), and
# merges "W8 <transport>@<clients>" entries (ratio = C1 rate / empty rate; the target is >= 0.5) into
# bench/results/latest.json. Usage: bench/service.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=5
[ "${1:-}" = "--quick" ] && seconds=2

dotnet build -c Release src/Api/AutogradService.Api.csproj -v q -nologo >/dev/null
dotnet build -c Release bench/Load/AutogradService.Load.csproj -v q -nologo >/dev/null
rest=$((20000 + RANDOM % 20000)); grpc=$((rest + 1))
dotnet src/Api/bin/Release/net10.0/AutogradService.Api.dll --Server:RestPort=$rest --Server:GrpcPort=$grpc \
  --Server:ModelRepositoryPath="$(mktemp -d)" --Logging:LogLevel:Default=Warning >/tmp/autograd-w8.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$rest/healthz" >/dev/null && break; sleep 0.5; done

json=$(dotnet bench/Load/bin/Release/net10.0/AutogradService.Load.dll --rest "http://127.0.0.1:$rest" \
  --grpc "http://127.0.0.1:$grpc" --seconds "$seconds" --concurrency 1,16)
mkdir -p bench/results
/usr/bin/python3 - "$json" <<'PY'
import json, os, sys
r = json.loads(sys.argv[1])
path = "bench/results/latest.json"
latest = json.load(open(path)) if os.path.exists(path) else {}
print(f"{'W8':<22}{'clients':>8}{'C1 req/s':>12}{'empty req/s':>14}{'ratio':>8}")
for transport, empty in (("grpc", "grpc-ping"), ("rest", "rest-empty")):
    for c in (1, 16):
        c1, e = r[f"{transport}-c1@{c}"]["rps"], r[f"{empty}@{c}"]["rps"]
        ratio = round(c1 / e, 3) if e else None
        latest[f"W8 {transport}@{c}"] = {"threads": c, "c1_rps": c1, "empty_rps": e, "ratio": ratio}
        print(f"{'W8 C1 ' + transport:<22}{c:>8}{c1:>12.0f}{e:>14.0f}{ratio:>8}")
json.dump(latest, open(path, "w"), indent=2)
PY
