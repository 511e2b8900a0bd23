#!/usr/bin/env bash
# What CI runs before `dotnet test` so tests/Container.Tests can run (they never skip in CI):
# installs Debian's docker.io and debootstrap, starts dockerd in the background unless one answers already, builds
# autograd-service:local with deploy/build-image-offline.sh, and installs the Kubernetes schema validator's packages.
#
# The daemon keeps every container on the host network: no bridge, no iptables rules, traffic stays on 127.0.0.1.
# Its log goes to $DOCKERD_LOG (default /tmp/autograd-dockerd.log); it keeps running after this script returns.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/autograd-dockerd.log}"
log() { printf '[ci-container] %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "run as root (it installs packages and starts dockerd)"; exit 1; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  log "a Docker daemon answers already"
else
  log "starting dockerd --bridge=none --iptables=false (log: $DOCKERD_LOG)"
  # setsid + nohup: the daemon outlives this script and its shell.
  setsid nohup dockerd --bridge=none --iptables=false >"$DOCKERD_LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up in 60 s:"; tail -n 30 "$DOCKERD_LOG" >&2; exit 1; }
fi
log "daemon: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo unknown)"

bash deploy/build-image-offline.sh

# ManifestTests validates deploy/k8s with kubernetes-models from npm (it would run npm ci itself; doing it here keeps
# the install out of the test's time).
if [[ ! -d tests/Container.Tests/k8s-validate/node_modules ]]; then
  log "npm ci in tests/Container.Tests/k8s-validate"
  (cd tests/Container.Tests/k8s-validate && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ready: autograd-service:local"
