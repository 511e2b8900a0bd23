#!/usr/bin/env python3
"""The device check's PyTorch half: the same figures as bench/Gpu (add and copy GB/s on 1 GiB, SGEMM/DGEMM TFLOP/s at
4096 and 8192, W4's chain on 10M elements in ms, with its backward) with PyTorch CUDA, TF32 off like ours. Prints JSON."""
import importlib.util
import json
import os
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
dev = torch.device("cuda")


def timed(work):
    work()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        work()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[2]


n = 1 << 28
a = torch.full((n,), 1.5, device=dev)
b = torch.full((n,), 2.5, device=dev)
r = {"add_gbps": 3 * n * 4 / timed(lambda: a + b) / 1e9}
y = torch.empty_like(a)
r["copy_gbps"] = 2 * n * 4 / timed(lambda: y.copy_(a)) / 1e9
x = torch.full((10_000_000,), 0.5, device=dev)
r["w4_chain_ms"] = 1e3 * timed(lambda: torch.sin(x) * torch.exp(-x * x) + torch.tanh(x))
# PyTorch has no plan run: the fused figures' peers are the same chain eagerly, and with its backward.
r["w4_fused_ms"] = r["w4_chain_ms"]
leaf = torch.full((10_000_000,), 0.5, device=dev, requires_grad=True)
seed = torch.ones_like(leaf)
r["w4_fused_grad_ms"] = 1e3 * timed(lambda: torch.autograd.grad(torch.sin(leaf) * torch.exp(-leaf * leaf) + torch.tanh(leaf), leaf, seed))
del a, b, y, x, leaf, seed
for size in (4096, 8192):
    for dtype, name in ((torch.float32, "sgemm"), (torch.float64, "dgemm")):
        p = torch.full((size, size), 0.01, device=dev, dtype=dtype)
        q = torch.full((size, size), 0.02, device=dev, dtype=dtype)
        r[f"{name}_{size}_tflops"] = 2 * size ** 3 / timed(lambda: p @ q) / 1e12

# W1-W7 as bench/compare.sh runs them on the CPU (bench/peer/torch_workloads.py), with every tensor on the card.
spec = importlib.util.spec_from_file_location("torch_workloads", os.path.join(os.path.dirname(__file__), "peer", "torch_workloads.py"))
workloads = importlib.util.module_from_spec(spec)
spec.loader.exec_module(workloads)
workloads.DEVICE = "cuda"
if hasattr(torch, "set_default_device"):
    torch.set_default_device("cuda")
else:  # PyTorch before 2.0
    torch.set_default_tensor_type(torch.cuda.FloatTensor)
for wid in ("W1", "W2", "W3", "W4", "W5", "W6", "W7"):
    w = workloads.make(wid, workloads.DEFAULT_W4)
    r[f"{wid}_gpu_ms"] = 1e3 * timed(w.run)
json.dump(r, sys.stdout, indent=1)
