#!/usr/bin/python3
"""PyTorch oracle for the engine's differential tests.

Reads a JSON batch (stdin, or the file named by the first argument):
  {"cases": [{"id", "dtype", "inputs": {name: {"shape", "data", "dtype"?}}, "steps": [{"op", "inputs", "attrs", "output"}],
              "output", "wrt": [names], "order": 1 | 2}]}
and writes {"results": [{"id", "ok", "value": {"shape", "dtype", "data"}, "grads": [{"shape", "dtype", "data"}], "error"}]}.

A step's inputs are value names or number literals; a literal becomes a 0-d tensor of the dtype of the step's first
tensor input. Attributes use the test's canonical names (see OPS below). Gradients are those of sum(output) with respect
to each wrt input (order 2: of sum(first-order gradient)); inputs the output does not depend on get zeros.
NaN and infinities are written as the strings "NaN", "Infinity", "-Infinity". Exit code 3 means torch is missing.
"""
import json
import math
import sys

try:
    import torch
    import torch.nn.functional as tnf
except ImportError as e:  # the C# side turns this into a failure (CI) or a skip (AUTOGRAD_SKIP_TORCH=1)
    print(f"torch_oracle: cannot import torch: {e}", file=sys.stderr)
    sys.exit(3)

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "bool": torch.bool}
WIRE = {v: k for k, v in DTYPES.items()}


def axes_of(x, a):
    """The canonical "axes" attribute: absent means all axes; negatives count from the end."""
    if a is None:
        return list(range(x.dim()))
    if isinstance(a, int):
        a = [a]
    return sorted(v % max(x.dim(), 1) for v in a)


def reduce(fn):
    """A reduction over canonical axes/keepdims. An explicit empty axes list reduces nothing (NumPy's rule)."""
    def run(i, at):
        x = i[0]
        axes = axes_of(x, at.get("axes"))
        if x.dim() > 0 and not axes:
            return x
        return fn(x, axes, bool(at.get("keepdims", False)))
    return run


def prod(x, axes, keep):
    # torch.prod takes one dim at a time; reduce from the last axis so earlier indices stay valid.
    if x.dim() == 0:
        return x.clone()
    for a in sorted(axes, reverse=True):
        x = torch.prod(x, dim=a, keepdim=keep)
    return x


def norm(x, axes, keep, ord_):
    o = float(ord_)
    o = math.inf if o >= 1e300 else o
    return torch.linalg.vector_norm(x, ord=o, dim=axes if x.dim() > 0 else None, keepdim=keep)


def squeeze(x, at):
    axes = at.get("axes")
    if axes is None:
        return torch.squeeze(x)
    for a in sorted(axes_of(x, axes), reverse=True):
        x = torch.squeeze(x, a)
    return x


def unsqueeze(x, at):
    axes = at.get("axes", at.get("axis"))
    axes = [axes] if isinstance(axes, int) else list(axes)
    rank = x.dim() + len(axes)
    for a in sorted(v % rank for v in axes):
        x = torch.unsqueeze(x, a)
    return x


def slice_(x, at):
    index = [slice(None)] * x.dim()
    steps = at.get("steps") or [1] * len(at["axes"])
    for a, s, e, st in zip(at["axes"], at["starts"], at["ends"], steps):
        index[a % x.dim()] = slice(s, e, st)
    return x[tuple(index)]


def flatten(x, at):
    if "onnx_axis" in at:  # ONNX Flatten: two dims, split before axis
        k = at["onnx_axis"] % (x.dim() + 1) if x.dim() > 0 else 0
        lead = 1
        for d in x.shape[:k]:
            lead *= d
        return torch.reshape(x, (lead, -1))
    return torch.flatten(x, at.get("start", 0), at.get("end", -1))


def transpose(x, at):
    perm = at.get("perm")
    return x.permute(*perm) if perm is not None else x.permute(*reversed(range(x.dim())))


def cross_entropy(i, at):
    logits, target = i[0], i[1]
    return tnf.cross_entropy(logits, target, reduction=at.get("reduction", "mean"))


def cast(x, at):
    return x.to(DTYPES[at["dtype"]])


def _promoted(a, b):
    """Both operands in their common dtype, as the engine's dispatcher promotes them."""
    common = torch.promote_types(a.dtype, b.dtype)
    return a.to(common), b.to(common)


OPS = {
    # elementwise, one input
    "neg": lambda i, at: torch.neg(i[0]),
    "abs": lambda i, at: torch.abs(i[0]),
    "exp": lambda i, at: torch.exp(i[0]),
    "log": lambda i, at: torch.log(i[0]),
    "log1p": lambda i, at: torch.log1p(i[0]),
    "expm1": lambda i, at: torch.expm1(i[0]),
    "sqrt": lambda i, at: torch.sqrt(i[0]),
    "rsqrt": lambda i, at: torch.rsqrt(i[0]),
    "square": lambda i, at: torch.square(i[0]),
    "reciprocal": lambda i, at: torch.reciprocal(i[0]),
    "sin": lambda i, at: torch.sin(i[0]),
    "cos": lambda i, at: torch.cos(i[0]),
    "tan": lambda i, at: torch.tan(i[0]),
    "tanh": lambda i, at: torch.tanh(i[0]),
    "sigmoid": lambda i, at: torch.sigmoid(i[0]),
    "relu": lambda i, at: torch.relu(i[0]),
    "softplus": lambda i, at: tnf.softplus(i[0]),
    "sign": lambda i, at: torch.sign(i[0]),
    "erf": lambda i, at: torch.erf(i[0]),
    "logical_not": lambda i, at: torch.logical_not(i[0]),
    # elementwise, two or three inputs (broadcasting)
    "add": lambda i, at: torch.add(i[0], i[1]),
    "sub": lambda i, at: torch.sub(i[0], i[1]),
    "mul": lambda i, at: torch.mul(i[0], i[1]),
    "div": lambda i, at: torch.div(i[0], i[1]),
    "pow": lambda i, at: torch.pow(i[0], i[1]),
    "maximum": lambda i, at: torch.maximum(i[0], i[1]),
    "minimum": lambda i, at: torch.minimum(i[0], i[1]),
    "eq": lambda i, at: torch.eq(i[0], i[1]),
    "ne": lambda i, at: torch.ne(i[0], i[1]),
    "lt": lambda i, at: torch.lt(i[0], i[1]),
    "le": lambda i, at: torch.le(i[0], i[1]),
    "gt": lambda i, at: torch.gt(i[0], i[1]),
    "ge": lambda i, at: torch.ge(i[0], i[1]),
    "logical_and": lambda i, at: torch.logical_and(i[0], i[1]),
    "logical_or": lambda i, at: torch.logical_or(i[0], i[1]),
    "where": lambda i, at: torch.where(i[0], i[1], i[2]),
    # reductions: canonical attrs axes (absent = all), keepdims
    "sum": reduce(lambda x, a, k: torch.sum(x, dim=a, keepdim=k)),
    "mean": reduce(lambda x, a, k: torch.mean(x, dim=a, keepdim=k)),
    "max": reduce(lambda x, a, k: torch.amax(x, dim=a, keepdim=k)),
    "min": reduce(lambda x, a, k: torch.amin(x, dim=a, keepdim=k)),
    "prod": reduce(prod),
    "logsumexp": reduce(lambda x, a, k: torch.logsumexp(x, dim=a, keepdim=k)),
    "norm": lambda i, at: reduce(lambda x, a, k: norm(x, a, k, at.get("ord", 2)))(i, at),
    # linear algebra
    # torch.dot refuses mixed dtypes where the engine promotes (as torch.matmul does): promote first.
    "dot": lambda i, at: torch.dot(*_promoted(i[0], i[1])),
    "matmul": lambda i, at: torch.matmul(i[0], i[1]),
    "outer": lambda i, at: torch.outer(*_promoted(i[0], i[1])),
    # movement: canonical attrs perm, shape, axes, axis, starts/ends/axes/steps, start/end
    "transpose": lambda i, at: transpose(i[0], at),
    "reshape": lambda i, at: torch.reshape(i[0], tuple(at["shape"])),
    "broadcast_to": lambda i, at: torch.broadcast_to(i[0], tuple(at["shape"])),
    "squeeze": lambda i, at: squeeze(i[0], at),
    "unsqueeze": lambda i, at: unsqueeze(i[0], at),
    "concat": lambda i, at: torch.cat(i, dim=at.get("axis", 0)),
    "stack": lambda i, at: torch.stack(i, dim=at.get("axis", 0)),
    "slice": lambda i, at: slice_(i[0], at),
    "gather": lambda i, at: torch.index_select(i[0], at.get("axis", 0) % max(i[0].dim(), 1), i[1].reshape(-1)),
    "flatten": lambda i, at: flatten(i[0], at),
    # neural-network ops
    "softmax": lambda i, at: torch.softmax(i[0], dim=at.get("axis", -1)),
    "log_softmax": lambda i, at: torch.log_softmax(i[0], dim=at.get("axis", -1)),
    "cross_entropy": cross_entropy,
    "mse_loss": lambda i, at: tnf.mse_loss(i[0], i[1], reduction=at.get("reduction", "mean")),
    # other
    "identity": lambda i, at: i[0],
    "detach": lambda i, at: i[0].detach(),
    "cast": lambda i, at: cast(i[0], at),
}


def number(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return v


def encode(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def pack(t):
    t = t.detach()
    values = t.to(torch.float64).reshape(-1).tolist() if t.dtype != torch.bool else [float(b) for b in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "dtype": WIRE[t.dtype], "data": [encode(v) for v in values]}


def run_case(case):
    dtype = DTYPES[case.get("dtype", "float64")]
    wrt = case.get("wrt", [])
    env = {}
    for name, spec in case["inputs"].items():
        dt = DTYPES[spec.get("dtype", case.get("dtype", "float64"))]
        data = [number(v) for v in spec["data"]]
        t = torch.tensor(data, dtype=torch.float64 if dt.is_floating_point else dt).to(dt).reshape(spec["shape"])
        if name in wrt:
            t.requires_grad_(True)
        env[name] = t
    for step in case["steps"]:
        op = step["op"]
        if op not in OPS:
            raise KeyError(f"the oracle has no mapping for op '{op}'")
        tensors = [env[v] for v in step["inputs"] if isinstance(v, str)]
        like = tensors[0].dtype if tensors else dtype
        args = [env[v] if isinstance(v, str) else torch.tensor(number(v), dtype=like) for v in step["inputs"]]
        env[step["output"]] = OPS[op](args, step.get("attrs") or {})
    out = env[case["output"]]
    leaves = [env[n] for n in wrt]
    grads = []
    if leaves:
        if out.requires_grad:
            order = int(case.get("order", 1))
            gs = torch.autograd.grad(out.sum(), leaves, allow_unused=True, create_graph=order > 1)
            if order == 2:
                gs = [torch.autograd.grad(g.sum(), [x], allow_unused=True)[0] if g is not None and g.requires_grad else None
                      for g, x in zip(gs, leaves)]
        else:
            gs = [None] * len(leaves)
        grads = [pack(g if g is not None else torch.zeros_like(x)) for g, x in zip(gs, leaves)]
    return {"id": case.get("id"), "ok": True, "value": pack(out), "grads": grads, "error": None}


def main():
    torch.set_num_threads(1)
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    batch = json.loads(text)
    results = []
    for case in batch["cases"]:
        try:
            results.append(run_case(case))
        except Exception as e:  # one bad case must not hide the others
            results.append({"id": case.get("id"), "ok": False, "value": None, "grads": [], "error": f"{type(e).__name__}: {e}"})
    json.dump({"torch": torch.__version__, "results": results}, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
