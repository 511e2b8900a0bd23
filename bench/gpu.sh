#!/usr/bin/env bash
# The GPU check and benchmark for an H100/H200 with the CUDA 13 driver (cuBLAS 13, or 12) and PyTorch CUDA.
#   bench/gpu.sh publish   on a machine with the .NET SDK: bench/Gpu self-contained for linux-x64 into bench/gpu-bin
#                          (trimmed, ILGPU and the engine kept whole), so the GPU machine needs no SDK.
#   bench/gpu.sh [run]     on the GPU machine: the GPU checks on CUDA (closing line "N passed, N failed"), then
#                          add/copy GB/s on 1 GiB and SGEMM/DGEMM 4096/8192 TFLOP/s beside PyTorch CUDA's, a table,
#                          bench/results/gpu-latest.json, and which cuBLAS loaded. Bounded to 8 minutes.
#   bench/gpu.sh smoke     here, without a GPU: publishes if needed and runs everything on ILGPU's CPU accelerator at
#                          small sizes (no PyTorch), so the script and the program are exercised.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=bench/gpu-bin
exe=$bin/AutogradService.Bench.Gpu
out=bench/results/gpu-latest.json
mode=${1:-run}

publish() {
  local log
  log=$(mktemp)
  dotnet publish bench/Gpu -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -o "$bin" >"$log" 2>&1 \
    || { grep -E 'error|warn' "$log" >&2 || cat "$log" >&2; exit 1; }
  echo "published $(du -sh "$bin" | cut -f1) to $bin"
}

case $mode in
  publish) publish ;;
  smoke)
    [[ -x $exe ]] || publish
    "$exe" --cpu-accelerator --out "${2:-/tmp/gpu-smoke.json}"
    ;;
  run)
    [[ -x $exe ]] || { command -v dotnet >/dev/null && publish; } || { echo "gpu.sh: no $exe and no dotnet to publish it; run 'bench/gpu.sh publish' first" >&2; exit 2; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    ldconfig -p | grep -E 'libcublas\.so\.(13|12)' || echo "no libcublas.so.13/.12 in the loader cache (LD_LIBRARY_PATH may still find one)"
    torch_json=$(mktemp)
    if timeout 180 python3 bench/gpu_torch.py >"$torch_json"; then
      echo "PyTorch: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["version"], d["device"])' "$torch_json")"
    else
      echo "PyTorch CUDA unavailable: the table has our side only"
      echo '{}' >"$torch_json"
    fi
    timeout 300 "$exe" --torch "$torch_json" --out "$out"
    ;;
  *) echo "usage: bench/gpu.sh [publish|run|smoke]" >&2; exit 2 ;;
esac
