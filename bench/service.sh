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
#   bench/service.sh --grpc [seconds]     gRPC with a C load generator: h2load (apt-get install -y nghttp2-client)
#       sends prepared gRPC frames (bench/side/grpc_frames.py: Ping, C1 and W3 with raw tensors) to ours at 1 and 16
#       clients; prints req/s and each call's rate as a share of the empty Ping's.
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

if [ "${1:-}" = "--grpc" ]; then
  seconds=${2:-10}
  command -v h2load >/dev/null || { echo "needs h2load: apt-get install -y nghttp2-client"; exit 1; }
  frames=$(mktemp -d /tmp/grpc-frames.XXXXXX)
  PEER_DIR=${PEER_DIR:-/work/shared/anchors/peer_service} /usr/bin/python3 bench/side/grpc_frames.py "$frames"
  dotnet build -c Release src/Api/AutogradService.Api.csproj -v q -nologo >/dev/null
  rest=$((20000 + RANDOM % 20000)); grpc=$((rest + 1))
  dotnet src/Api/bin/Release/net10.0/AutogradService.Api.dll --Server:RestPort=$rest --Server:GrpcPort=$grpc \
    --Server:ModelRepositoryPath="$(mktemp -d)" --Logging:LogLevel:Default=Warning >"$frames/ours.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$rest/healthz" >/dev/null && break; sleep 0.5; done
  h2() { # rpc frame clients seconds -> req/s (every answer must be HTTP 200 with grpc-status 0: checked once with curl)
    h2load -D "$4" --warm-up-time=3 -c "$3" -m 1 -d "$frames/$2.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$grpc/autograd.v1.Autodiff/$1" | awk '/finished in/ { gsub(",", ""); print $4 }'
  }
  for rpc in Ping:ping Gradient:c1 Gradient:w3; do
    status=$(curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
      --data-binary @"$frames/${rpc#*:}.bin" -D - -o /dev/null "http://127.0.0.1:$grpc/autograd.v1.Autodiff/${rpc%:*}" | tr -d '\r' | awk '/^grpc-status/ { print $2 }')
    [ "$status" = "0" ] || { echo "${rpc#*:}: grpc-status '$status'"; exit 1; }
  done
  printf '%-10s %8s %12s %14s\n' call clients "req/s" "of Ping"
  for c in 1 16; do
    ping=$(h2 Ping ping "$c" "$seconds")
    for call in c1 w3; do
      r=$(h2 Gradient "$call" "$c" "$seconds")
      printf '%-10s %8s %12s %14s\n' "$call" "$c" "$r" "$(awk -v a="$r" -v b="$ping" 'BEGIN { printf "%.3f", a / b }')"
    done
    printf '%-10s %8s %12s\n' ping "$c" "$ping"
  done
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
