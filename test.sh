#!/usr/bin/env bash
# Runs every test of the solution on a fresh Debian 12 machine, installing what the tests need first:
#   - Debian's PyTorch (the differential tests' oracle, with OpenBLAS), python3-grpcio and python3-grpc-tools (the
#     Python interop client), python3-numpy and python3-venv (the clients/python package's venv), curl (the curl
#     client) and libonnx-testdata (ONNX's test models, for the ONNX conformance run);
#   - the Node client's pinned packages (tests/Interop/setup.sh, npm ci);
#   - Debian's chromium, which tests/Playground.Tests drives through Playwright (it never downloads a browser);
#   - Docker (docker.io, a daemon on the host network only) and the service's image built offline, plus the Kubernetes
#     manifest validator's packages (deploy/ci-container.sh) for tests/Container.Tests.
# Then `dotnet test AutogradService.sln -c Release` and one closing line: "tests: N passed, N failed, N skipped".
# Arguments are passed on to dotnet test (e.g. --filter ...). CI runs this same script (.ci/run).
#
# Needs root (it installs packages and starts dockerd): run it as root or with `sudo -E ./test.sh`.
# Not installed here, because Debian 12 has no suitable package: the .NET 10 SDK (Microsoft's Debian packages or
# dotnet-install.sh) and Node.js 20 or later with npm (Debian 12's own nodejs is 18).
# With those already in place, `dotnet test AutogradService.sln -c Release` is the quick loop (README).
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

fail() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "run as root, or with sudo -E: it installs Debian packages and starts a Docker daemon"
command -v dotnet >/dev/null && dotnet --list-sdks | grep '^10\.' >/dev/null \
  || fail "the .NET 10 SDK is needed on PATH (Microsoft's packages for Debian 12, or dotnet-install.sh)"
command -v node >/dev/null && command -v npm >/dev/null \
  || fail "Node.js 20 or later with npm is needed on PATH (Debian 12's own nodejs is 18, too old for tests/Interop/node)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || fail "Node.js 20 or later is needed, found $(node --version)"

# One apt index refresh, then every Debian package the tests use that is missing.
need=()
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need+=(python3-torch python3-numpy libopenblas0-pthread)
/usr/bin/python3 -c 'import grpc, grpc_tools.protoc' >/dev/null 2>&1 || need+=(python3-grpcio python3-grpc-tools)
# The Python client package (clients/python): installed by its test into a venv with Debian's numpy and grpcio.
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
# Debian's python3 has ensurepip without its wheels; ensurepip.version() finds them only with python3-venv.
/usr/bin/python3 -c 'import ensurepip; ensurepip.version()' >/dev/null 2>&1 || need+=(python3-venv)
command -v curl >/dev/null || need+=(curl)
[[ -x /usr/bin/chromium ]] || need+=(chromium)
# ONNX's own test models with reference data (tests/Onnx.Tests' conformance run).
[[ -d /usr/share/libonnx-testdata/data/node ]] || need+=(libonnx-testdata)
# ONNX's Python helpers: the interop OIP clients build their MLP, CNN and transformer models with them.
/usr/bin/python3 -c 'import onnx.helper' >/dev/null 2>&1 || need+=(python3-onnx)
if ((${#need[@]})); then
  echo "test.sh: apt-get install ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Node client's pinned packages.
bash tests/Interop/setup.sh

# Docker (daemon on the host network only) and the service's image for the container tests.
bash deploy/ci-container.sh

# Every test project, with one closing line that adds up their counts.
log=$(mktemp)
set +e
dotnet test AutogradService.sln -c Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The short load run (bench/load.sh --ci: 30 s of checked valid, over-limit and malformed requests over REST and gRPC;
# zero wrong answers, zero unexpected codes, flat memory). Each extra run sets status=1 on failure.
load="not run"
if bash bench/load.sh --ci; then load=passed; else load=FAILED; status=1; fi
# The short fuzzing run (tests/Fuzz/run.sh --ci: AFL++ through SharpFuzz on every decoder, fixed seed, a few minutes;
# installs afl++ when missing; fails on any crash).
fuzz="not run"
if bash tests/Fuzz/run.sh --ci; then fuzz=passed; else fuzz=FAILED; status=1; fi

sum() { grep -oE "$1: +[0-9]+" "$log" | awk '{ n += $2 } END { print n + 0 }'; }
echo "load: $load; fuzz: $fuzz"
echo "tests: $(sum Passed) passed, $(sum Failed) failed, $(sum Skipped) skipped"
rm -f "$log"
exit "$status"
