#!/usr/bin/env bash
# Load and soak (issue #9, must-have 6): builds the service (Release), starts it on 127.0.0.1 with free ports, waits
# for /readyz, runs the checked mixed load of bench/Load (`soak`: valid, over-limit and malformed requests over REST
# and gRPC) for a fixed time, then stops the service with SIGTERM and expects it to exit 0.
#
#   bench/load.sh                        60 s, 32 clients
#   bench/load.sh --ci                   30 s, 16 clients: what CI runs
#   bench/load.sh --duration 600 --clients 64 --json-out /tmp/soak.json
#   bench/load.sh --rest URL --grpc URL  against a service that is already running (RSS only with --pid)
#
# Other options go to the driver (`--exclude CASE,...`, `--seed N`, `--rss-margin F`, ...; `--list` shows the cases).
# Exit code: 0 when the verdict is PASS (no wrong answer, no unexpected code, flat RSS, pool and sessions back to idle,
# service healthy and cleanly stopped), non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60 clients=32 warmup=5 rest="" grpc="" build=1 list=0
driver_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    # The RSS baseline is taken half-way (the driver's default): the GC's committed heap and the runtime's array pools
    # grow for a while under this mix before they level off (docs/RELIABILITY.md).
    --ci) duration=30 clients=16 warmup=5 ;;
    --duration) duration="$2"; shift ;;
    --clients) clients="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --rest) rest="$2"; shift ;;
    --grpc) grpc="$2"; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    --list) list=1 ;;
    *) driver_args+=("$1") ;;
  esac
  shift
done

if [ "$build" = 1 ]; then
  echo "building the service and the driver (Release)..." >&2
  dotnet build -c Release src/Api/AutogradService.Api.csproj -v q -nologo >/dev/null
  dotnet build -c Release bench/Load/AutogradService.Load.csproj -v q -nologo >/dev/null
fi

if [ "$list" = 1 ]; then
  exec dotnet bench/Load/bin/Release/net10.0/AutogradService.Load.dll soak --list "${driver_args[@]}"
fi

server="" work=""
stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null || true
  local code=0
  wait "$server" || code=$?
  server=""
  return "$code"
}
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null || true
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$rest" ]; then
  work=$(mktemp -d)
  free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  rest_port=$(free_port); grpc_port=$(free_port)
  while [ "$grpc_port" = "$rest_port" ]; do grpc_port=$(free_port); done
  rest="http://127.0.0.1:$rest_port" grpc="http://127.0.0.1:$grpc_port"
  dotnet src/Api/bin/Release/net10.0/AutogradService.Api.dll --Server:BindAddress=127.0.0.1 \
    --Server:RestPort="$rest_port" --Server:GrpcPort="$grpc_port" --Server:ModelRepositoryPath="$work/models" \
    --Logging:LogLevel:Default=Warning >"$work/server.log" 2>&1 &
  server=$!
  driver_args+=(--pid "$server")
  for _ in $(seq 1 120); do
    curl -sf "$rest/readyz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { echo "the service did not start:" >&2; tail -20 "$work/server.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "service pid $server on $rest (REST) and $grpc (gRPC)" >&2
fi
[ -n "$grpc" ] || { echo "--rest needs --grpc" >&2; exit 2; }

status=0
dotnet bench/Load/bin/Release/net10.0/AutogradService.Load.dll soak --rest "$rest" --grpc "$grpc" \
  --duration "$duration" --warmup "$warmup" --clients "$clients" "${driver_args[@]}" || status=$?

if [ -n "$server" ]; then
  errors=$(grep -c '^fail:' "$work/server.log" || true)
  echo "server log: $errors error entries" >&2
  # The exception type and message of each logged error, counted: the classes of input the service answered with 500/UNKNOWN.
  [ "$errors" = 0 ] || grep -A3 '^fail:' "$work/server.log" | grep -E '^ +[A-Za-z.]+(Exception|Error):' | sed 's/^ *//' | sort | uniq -c | sort -rn | head -12 >&2
  code=0
  stop_server || code=$?
  if [ "$code" != 0 ]; then
    echo "the service exited with $code after SIGTERM (expected 0)" >&2
    tail -20 "$work/server.log" >&2
    [ "$status" != 0 ] || status=1
  else
    echo "the service stopped cleanly on SIGTERM" >&2
  fi
fi
exit "$status"
