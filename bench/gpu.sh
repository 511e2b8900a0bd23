#!/usr/bin/env bash
# The device check for the GPU backend: one prepared script for a machine with an NVIDIA GPU (H100/H200, CUDA 13
# driver, PyTorch with CUDA), where minutes are scarce. Two steps:
#
#   bench/gpu.sh build   here (any machine with the .NET SDK): publishes bench/Gpu self-contained (ILGPU is not
#                        trimmed) and packs it as bench/gpu-publish.tar.xz, small enough to carry to the device
#   bench/gpu.sh run     there: unpacks, runs the op conformance on CUDA (closing line "N passed, N failed"), then our
#                        figures (kernels, W4 fused, W1-W7 on the GPU and the CPU) and PyTorch CUDA's in the same
#                        run, prints the side-by-side table and writes
#                        bench/results/gpu-latest.json. Well under 8 minutes on an H100.
#   bench/gpu.sh smoke   here: the conformance and the bench on ILGPU's CPU accelerator at small sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  build)
    rm -rf bench/gpu-publish
    dotnet publish bench/Gpu -c Release -r linux-x64 --self-contained -o bench/gpu-publish -v q -nologo
    tar -C bench -cJf bench/gpu-publish.tar.xz gpu-publish
    ls -la bench/gpu-publish.tar.xz
    ;;
  smoke)
    dotnet run --project bench/Gpu -c Release -- conformance bench workloads --cpu-accelerator
    ;;
  run)
    [ -d bench/gpu-publish ] || tar -C bench -xJf bench/gpu-publish.tar.xz
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    ls /usr/lib/x86_64-linux-gnu/libcublas.so.* /usr/local/cuda*/lib64/libcublas.so.* 2>/dev/null || echo "no libcublas on the default paths"
    mkdir -p bench/results
    ours=$(mktemp); torch=$(mktemp)
    bench/gpu-publish/AutogradService.Gpu.Bench conformance bench workloads --json "$ours"
    python3 bench/gpu_torch.py > "$torch"
    python3 - "$ours" "$torch" <<'PY'
import json, sys, datetime
ours, torch = (json.load(open(p)) for p in sys.argv[1:3])
rows = []
print(f"{'figure':<20} {'ours':>12} {'pytorch':>12} {'ours/peer':>10}")
for key in ours:
    o, t = ours[key], torch.get(key)
    # Higher is better for rates, lower for times: the ratio always reads "how many times PyTorch's".
    ratio = None if not t else (o / t if not key.endswith("_ms") else t / o)
    rows.append({"figure": key, "ours": o, "pytorch": t, "ratio": ratio})
    print(f"{key:<20} {o:>12.3f} {t if t is not None else float('nan'):>12.3f} {ratio if ratio else float('nan'):>10.2f}")
json.dump({"when": datetime.datetime.utcnow().isoformat() + "Z", "rows": rows}, open("bench/results/gpu-latest.json", "w"), indent=1)
PY
    ;;
  *)
    echo "usage: bench/gpu.sh build | run | smoke" >&2
    exit 2
    ;;
esac
