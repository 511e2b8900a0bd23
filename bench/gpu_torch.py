"""PyTorch CUDA's side of bench/gpu.sh: the same measures as bench/Gpu, by the same names, as JSON on stdout.

Elementwise add and copy on 1 GiB float32 tensors (bytes moved / time), SGEMM and DGEMM at 4096 and 8192
(2 n^3 / time), best of a few runs after a warm-up, timed by CUDA events. TF32 is off: full float32, as ours.
"""
import json
import sys

import torch


def best(repeats, launch):
    launch()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        launch()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000.0)
    return min(times)


def main():
    if not torch.cuda.is_available():
        print("gpu_torch: PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = {"version": torch.__version__, "device": torch.cuda.get_device_name(0)}
    n = 1 << 28
    a = torch.full((n,), 1.5, device="cuda")
    b = torch.full((n,), 2.5, device="cuda")
    y = torch.empty_like(a)
    results["add f32 1 GiB"] = 3 * n * 4 / best(5, lambda: torch.add(a, b, out=y)) / 1e9
    results["copy f32 1 GiB"] = 2 * n * 4 / best(5, lambda: y.copy_(a)) / 1e9
    del a, b, y
    for size in (4096, 8192):
        flops = 2.0 * size ** 3
        for name, dtype in (("sgemm", torch.float32), ("dgemm", torch.float64)):
            x = torch.full((size, size), 0.5, dtype=dtype, device="cuda")
            w = torch.full((size, size), 0.25, dtype=dtype, device="cuda")
            out = torch.empty_like(x)
            results[f"{name} {size}"] = flops / best(3, lambda: torch.matmul(x, w, out=out)) / 1e12
            del x, w, out
    json.dump(results, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
