#!/usr/bin/env bash
# Builds the real Dockerfile into autograd-service:local on a machine that reaches Debian's mirror and NuGet but no
# image registry. The two base images the Dockerfile names (Microsoft's .NET 10 SDK and ASP.NET Core runtime) are
# replaced by local stand-ins: a Debian bookworm minbase root file system (debootstrap) plus this machine's .NET
# install, the whole SDK for the build stage and only the shared frameworks for the runtime stage.
#
# Needs: root, a running Docker daemon, debootstrap, the .NET 10 SDK. Reruns are fast: the debootstrap tarball is
# cached under $AUTOGRAD_IMAGE_CACHE (default: .cache/images in the repository, ignored by git), the stand-in images
# are kept by the daemon under tags that name the .NET versions, and docker build reuses its layer cache.
#
# Environment: IMAGE_TAG (default autograd-service:local), AUTOGRAD_IMAGE_CACHE, DEBIAN_MIRROR (default: the first
# mirror in this machine's apt sources), DOTNET_ROOT (default: where `dotnet` lives).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_TAG="${IMAGE_TAG:-autograd-service:local}"
CACHE="${AUTOGRAD_IMAGE_CACHE:-$PWD/.cache/images}"
SUITE=bookworm
# A bare minbase lacks what .NET needs: OpenSSL, ICU (the service runs invariant, tools may not) and the CA bundle.
PACKAGES=libssl3,ca-certificates,libicu72,tzdata
# The legacy builder: Debian's daemon (API 1.41) has no buildx, and it honours --network host without entitlements.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

log() { printf '[build-image-offline] %s\n' "$*" >&2; }

if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
  DEBIAN_MIRROR=$(grep -hoE '^URIs: *[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}' || true)
  [[ -n "$DEBIAN_MIRROR" ]] || DEBIAN_MIRROR=$(grep -hoE '^deb +[^ ]+/debian/? +bookworm' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}' || true)
  DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fi

if [[ -z "${DOTNET_ROOT:-}" ]]; then
  DOTNET_ROOT=$(dirname "$(readlink -f "$(command -v dotnet)")")
fi
[[ -x "$DOTNET_ROOT/dotnet" ]] || { log "no dotnet under $DOTNET_ROOT"; exit 1; }
SDK_VERSION=$(ls "$DOTNET_ROOT/sdk" | grep -E '^10\.' | sort -V | tail -n1)
ASPNET_VERSION=$(ls "$DOTNET_ROOT/shared/Microsoft.AspNetCore.App" | grep -E '^10\.' | sort -V | tail -n1)
NETCORE_VERSION=$(ls "$DOTNET_ROOT/shared/Microsoft.NETCore.App" | grep -E '^10\.' | sort -V | tail -n1)
[[ -n "$SDK_VERSION" && -n "$ASPNET_VERSION" && -n "$NETCORE_VERSION" ]] || { log "need a .NET 10 SDK and ASP.NET Core 10 runtime in $DOTNET_ROOT"; exit 1; }

SDK_STANDIN="autograd-standin/dotnet-sdk:$SDK_VERSION"
RUNTIME_STANDIN="autograd-standin/aspnet:$ASPNET_VERSION"

docker info >/dev/null 2>&1 || { log "no Docker daemon answers (start dockerd first, see deploy/ci-container.sh)"; exit 1; }

# 1. The Debian root file system, once (not at all while the daemon still has the base image made from it).
BASE_STANDIN="autograd-standin/debian:$SUITE-minbase"
ROOTFS_TAR="$CACHE/$SUITE-minbase-${PACKAGES//,/-}.tar"
if ! docker image inspect "$BASE_STANDIN" >/dev/null 2>&1 && [[ ! -s "$ROOTFS_TAR" ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  log "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (about a minute)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; rm -rf "$work"; exit 1; }
  # Package lists and caches are not needed in an image.
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$work"
fi

# 2. The base image, then each stand-in: the base plus parts of this machine's .NET install, built from a small
#    generated context (hard links where the file system allows, so staging costs no copy).
if ! docker image inspect "$BASE_STANDIN" >/dev/null 2>&1; then
  log "docker import $ROOTFS_TAR as $BASE_STANDIN"
  docker import "$ROOTFS_TAR" "$BASE_STANDIN" >/dev/null
fi

# $1 tag, $2 a Dockerfile line after FROM and COPY, $3 "ca" to take this machine's CA bundle, rest: paths under
# DOTNET_ROOT to copy.
make_standin() {
  local tag=$1 extra=$2 ca=$3; shift 3
  if docker image inspect "$tag" >/dev/null 2>&1; then log "$tag is there"; return; fi
  log "making $tag"
  mkdir -p "$CACHE"
  local stage; stage=$(mktemp -d "$CACHE/standin.XXXXXX")
  mkdir -p "$stage/root/usr/share/dotnet" "$stage/root/usr/bin"
  local p
  for p in "$@"; do
    mkdir -p "$stage/root/usr/share/dotnet/$(dirname "$p")"
    cp -al "$DOTNET_ROOT/$p" "$stage/root/usr/share/dotnet/$p" 2>/dev/null || cp -a "$DOTNET_ROOT/$p" "$stage/root/usr/share/dotnet/$p"
  done
  ln -s /usr/share/dotnet/dotnet "$stage/root/usr/bin/dotnet"
  if [[ "$ca" == ca ]]; then
    mkdir -p "$stage/root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$stage/root/etc/ssl/certs/ca-certificates.crt"
  fi
  printf '%s\n' "FROM $BASE_STANDIN" "COPY root/ /" \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DOTNET_ROOT=/usr/share/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1" \
    "$extra" >"$stage/Dockerfile"
  docker build -q -t "$tag" "$stage" >/dev/null || { rm -rf "$stage"; exit 1; }
  rm -rf "$stage"
}

make_standin "$RUNTIME_STANDIN" "" no \
  dotnet host "shared/Microsoft.NETCore.App/$NETCORE_VERSION" "shared/Microsoft.AspNetCore.App/$ASPNET_VERSION" LICENSE.txt
# The SDK stand-in trusts the same certificate authorities as this machine (NuGet's traffic may pass through its
# proxy) and checks package signatures without a revocation server, as this machine does.
make_standin "$SDK_STANDIN" "ENV NUGET_CERT_REVOCATION_MODE=offline DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE=true" ca \
  dotnet host shared packs sdk sdk-manifests templates LICENSE.txt

# 3. The real Dockerfile, with the stand-ins as its bases.
log "docker build -t $IMAGE_TAG (SDK_IMAGE=$SDK_STANDIN, RUNTIME_IMAGE=$RUNTIME_STANDIN)"
docker build --network host \
  --build-arg "SDK_IMAGE=$SDK_STANDIN" \
  --build-arg "RUNTIME_IMAGE=$RUNTIME_STANDIN" \
  -t "$IMAGE_TAG" .
log "built $IMAGE_TAG"
