#!/usr/bin/python3
"""The peer's half of bench/compare.sh: the issue's workloads W1-W7 (and the plan runs' P1, P2) in PyTorch, timed like the engine's
`--workload` mode (median of k calls after a warm-up), printing one JSON line {"workload": ..., "ms": ...}.

Run with Debian's PyTorch: /usr/bin/python3 bench/peer/torch_workloads.py --workload W3 --threads 1 --iterations 20
The caller (compare.sh) unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this command only.
"""
import argparse
import json
import math
import statistics
import time

import torch

DEFAULT_W4 = 10_000_000

# Where the workloads' tensors live: bench/gpu_torch.py sets "cuda" (with torch.set_default_device) for the device check.
DEVICE = "cpu"


def uniform(shape, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, device="cpu") * (high - low) + low).to(DEVICE)


class TinyDot:
    """W1: x = arange(4), y = 2 * dot(x, x), dy/dx; the graph built on every call."""

    def run(self):
        x = torch.arange(4.0, requires_grad=True)
        y = 2 * torch.dot(x, x)
        (g,) = torch.autograd.grad(y, x)
        return g

    def check(self):
        assert self.run().tolist() == [0, 4, 8, 12]


def chapter(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    return b if b.sum() > 0 else 100 * b


class ControlFlow:
    """W2: the chapter's f(a) and dc/da on a fresh random scalar each call."""

    def run(self):
        a = torch.randn(size=(), requires_grad=True)
        (g,) = torch.autograd.grad(chapter(a), a)
        return g

    def check(self):
        a = torch.randn(size=(), requires_grad=True)
        c = chapter(a)
        (g,) = torch.autograd.grad(c, a)
        assert math.isclose(g.item(), (c / a).item(), rel_tol=1e-5)


class Mlp:
    """W3: MLP 784-256-256-10, ReLU, softmax cross-entropy, batch 64; gradients of all six parameters."""

    def __init__(self):
        b, n_in, hidden, out = 64, 784, 256, 10
        self.x = uniform((b, n_in), 0, 1, 31)
        self.labels = torch.arange(b) % out
        s_in, s_h = math.sqrt(6 / n_in), math.sqrt(6 / hidden)
        self.params = [t.requires_grad_() for t in (
            uniform((n_in, hidden), -s_in, s_in, 32), uniform((hidden,), -0.01, 0.01, 33),
            uniform((hidden, hidden), -s_h, s_h, 34), uniform((hidden,), -0.01, 0.01, 35),
            uniform((hidden, out), -s_h, s_h, 36), uniform((out,), -0.01, 0.01, 37))]

    def run(self):
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = torch.relu(self.x @ w1 + b1)
        h2 = torch.relu(h1 @ w2 + b2)
        loss = torch.nn.functional.cross_entropy(h2 @ w3 + b3, self.labels)
        return torch.autograd.grad(loss, self.params)

    def check(self):
        assert abs(self.run()[5].sum().item()) < 1e-5


class ElementwiseChain:
    """W4: sum(sin(x) * exp(-x * x) + tanh(x)) and its gradient."""

    def __init__(self, n):
        self.x = uniform((n,), -3, 3, 41).requires_grad_()

    def run(self):
        x = self.x
        (g,) = torch.autograd.grad((torch.sin(x) * torch.exp(-x * x) + torch.tanh(x)).sum(), x)
        return g

    def check(self):
        x = self.x.detach()[:4]
        expected = (torch.cos(x) - 2 * x * torch.sin(x)) * torch.exp(-x * x) + 1 - torch.tanh(x) ** 2
        assert torch.allclose(self.run()[:4], expected, atol=1e-5)


class MatMulSum:
    """W5: sum(A @ B), 1024 x 1024; gradients of both."""

    def __init__(self):
        self.a = uniform((1024, 1024), -1, 1, 51).requires_grad_()
        self.b = uniform((1024, 1024), -1, 1, 52).requires_grad_()

    def run(self):
        return torch.autograd.grad((self.a @ self.b).sum(), (self.a, self.b))

    def check(self):
        da, _ = self.run()
        assert torch.allclose(da[5], self.b.detach().sum(dim=1), rtol=1e-3, atol=1e-3)


class SecondDerivative:
    """W6: d2/dx2 sum(sin(x)) elementwise on 1M elements, via create_graph."""

    def __init__(self):
        self.x = uniform((1_000_000,), -3, 3, 61).requires_grad_()

    def run(self):
        (first,) = torch.autograd.grad(torch.sin(self.x).sum(), self.x, create_graph=True)
        (second,) = torch.autograd.grad(first.sum(), self.x)
        return second

    def check(self):
        assert torch.allclose(self.run(), -torch.sin(self.x.detach()), atol=1e-5)


class TanhJacobian:
    """W7: the 100 x 100 Jacobian of tanh(W x) with respect to x, PyTorch's vectorized (vmap) path."""

    def __init__(self, vectorize=True):
        self.w = uniform((100, 100), -0.2, 0.2, 71)
        self.x = uniform((100,), -1, 1, 72)
        self.vectorize = vectorize

    def run(self):
        w = self.w
        return torch.autograd.functional.jacobian(lambda x: torch.tanh(w @ x), self.x, vectorize=self.vectorize)

    def check(self):
        t = torch.tanh(self.w @ self.x)
        assert torch.allclose(self.run(), (1 - t * t)[:, None] * self.w, atol=1e-5)


class PlanEvaluate:
    """P1/P2: the plan-run workloads' functions, forward only (torch.no_grad()), 10M elements."""

    def __init__(self, f):
        self.x = uniform((10_000_000,), -3, 3, 71)
        self.f = f

    def run(self):
        with torch.no_grad():
            return self.f(self.x)

    def check(self):
        x = self.x[:4].double()
        assert torch.allclose(self.run()[:4].double(), self.f(x), atol=1e-5)


def make(workload, size):
    return {
        "W1": TinyDot, "W2": ControlFlow, "W3": Mlp, "W4": lambda: ElementwiseChain(size),
        "W5": MatMulSum, "W6": SecondDerivative, "W7": TanhJacobian,
        "W7-rows": lambda: TanhJacobian(vectorize=False),
        "P1": lambda: PlanEvaluate(lambda x: torch.sin(x) * torch.exp(-x * x) + torch.tanh(x)),
        "P2": lambda: PlanEvaluate(lambda x: (x * 2 + 1) * x - x / 3),
    }[workload]()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workload", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--warmup-seconds", type=float, default=0.5)
    p.add_argument("--size", type=int, default=DEFAULT_W4, help="W4's element count")
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)  # Debian's build defaults to 1 here: always set it explicitly
    workload = args.workload.upper().replace("-ROWS", "-rows")
    w = make(workload, args.size)
    if not args.no_check:
        w.check()
    start = time.perf_counter()
    n = 0
    while n < args.warmup or time.perf_counter() - start < args.warmup_seconds:
        w.run()
        n += 1

    times = []
    for _ in range(max(1, args.iterations)):
        t0 = time.perf_counter_ns()
        w.run()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    result = {"workload": workload, "threads": torch.get_num_threads(), "ms": round(statistics.median(times), 6),
              "min_ms": round(min(times), 6), "iterations": len(times), "torch": torch.__version__}
    if workload == "W4" and args.size != DEFAULT_W4:
        result["variant"] = f"{args.size:,} elements instead of 10M"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
