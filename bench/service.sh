#!/usr/bin/env bash
# The service, measured. Two modes:
#
#   bench/service.sh [side.py options]   side by side with the FastAPI + PyTorch peer (the default): starts ours (this
#       checkout, Release) and the peer (../shared/anchors/peer_service/torch_server.py, 1 worker, under
#       /usr/bin/python3 with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for it only) on free loopback ports, drives
#       C1, W3 (JSON numbers), W3-b64, W3-bin (binary tensor framing) and GET /healthz at 1 and 16 clients with wrk,
#       one service at a time, alternating, answers checked; prints the table with ratios, CPU per request and peak
#       RSS, and writes bench/results/service-latest.json. BEFORE=<checkout> also starts an earlier build of ours and
#       drives it in the same run (before/after). Options pass to bench/side/side.py, e.g.
#       --workloads C1,W3 --conc 1 --seconds 5 --reps 2.
#   bench/service.sh --w8 [--quick]       W8: C1 against an empty call on the same server, gRPC and REST (bench/Load),
#       merged into bench/results/latest.json.
#
# Needs (side by side): apt-get install -y wrk python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-ujson
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${1:-}" = "--w8" ]; then
  shift
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
  exit 0
fi

peer_dir=${PEER_DIR:-$root/../../shared/anchors/peer_service}
[ -f "$peer_dir/torch_server.py" ] || peer_dir=/work/shared/anchors/peer_service
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-ujson"; exit 1; }
run=$(mktemp -d /tmp/side-by-side.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_ours() { # checkout port log
  (cd "$1" && dotnet build src/Api -c Release -v q -nologo >/dev/null)
  dotnet "$1/src/Api/bin/Release/net10.0/AutogradService.Api.dll" --Server:RestPort="$2" --Server:GrpcPort=$(($2 + 1)) \
    --Server:ModelRepositoryPath="$(mktemp -d)" --Logging:LogLevel:Default=Warning >"$3" 2>&1 &
  pids+=($!)
}
wait_healthy() {
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.5; done
  echo "port $1 never became healthy"; exit 1
}

base=$((20000 + RANDOM % 20000))
start_ours "$root" "$base" "$run/ours.log"; ours=${pids[-1]}
args=(--ours "http://127.0.0.1:$base=$ours")
if [ -n "${BEFORE:-}" ]; then
  start_ours "$BEFORE" $((base + 2)) "$run/before.log"; before=${pids[-1]}
  args+=(--before "http://127.0.0.1:$((base + 2))=$before")
fi
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$peer_dir/torch_server.py" --port $((base + 4)) --workers 1 \
  >"$run/peer.log" 2>&1 &
peer=$!; pids+=($peer)
args+=(--peer "http://127.0.0.1:$((base + 4))=$peer")
for port in $base $((base + 4)) ${BEFORE:+$((base + 2))}; do wait_healthy "$port"; done

mkdir -p bench/results
PEER_DIR="$peer_dir" /usr/bin/python3 bench/side/side.py "${args[@]}" --bodies "$run/bodies" \
  --out bench/results/service-latest.json "$@"
