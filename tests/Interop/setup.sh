#!/usr/bin/env bash
# Installs what the interop clients need on a fresh Debian 12 machine (run as root, or with sudo available):
# Debian's python3-grpcio and python3-grpc-tools for tests/Interop/python, curl for tests/Interop/curl, and the
# pinned npm packages (package-lock.json) for tests/Interop/node and tests/Interop/openapi. Node 20+ and npm must already be installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(python3 python3-grpcio python3-grpc-tools curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
/usr/bin/python3 -c 'import grpc, grpc_tools.protoc; print("python3-grpcio", grpc.__version__)'

command -v node >/dev/null || { echo "node (20 or later) is needed for tests/Interop/node" >&2; exit 1; }
(cd "$here/node" && npm ci --no-audit --no-fund)
# Redocly CLI, pinned, for the OpenAPI document's lint (tests/Interop.Tests/OpenApiTests.cs).
(cd "$here/openapi" && npm ci --no-audit --no-fund)
node -e 'console.log("node", process.version, "@grpc/grpc-js", require("'"$here"'/node/node_modules/@grpc/grpc-js/package.json").version)'
