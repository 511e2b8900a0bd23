#!/usr/bin/env bash
# Interop client: curl over REST against the real AutogradService.
# C1 (y = 2 * dot(x, x), gradient at x = arange(4)) and E6 (f(x) = log(x^2)*sin(x) + 1/x in float64 with every
# intermediate's value and adjoint), asserting the numbers with /usr/bin/python3. Exits non-zero on any mismatch.
#
# Usage: c1_e6.sh [BASE_URL]   (default: $AUTOGRAD_REST or http://127.0.0.1:8080)
set -euo pipefail

base="${1:-${AUTOGRAD_REST:-http://127.0.0.1:8080}}"
py=/usr/bin/python3

post() { # path, JSON body → response body on stdout; non-2xx fails with the problem details shown
  curl -sS --fail-with-body --noproxy '*' --max-time 30 -X POST "$base$1" -H 'Content-Type: application/json' -d "$2"
}

# Reads the response on stdin and runs the Python assertions given as $1 with `r` = the parsed JSON.
assert_json() {
  "$py" -c '
import json, math, sys
r = json.load(sys.stdin)
failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok: failures.append(what)
def close(actual, expected, rel=1e-12, abs_tol=1e-12):
    return len(actual) == len(expected) and all(math.isclose(a, e, rel_tol=rel, abs_tol=abs_tol) for a, e in zip(actual, expected))
def tensor(t, dtype, shape, label):
    check(t["dtype"] == dtype and t["shape"] == shape, "%s is %s%s (got %s%s)" % (label, dtype, shape, t["dtype"], t["shape"]))
    return t["data"]
'"$1"'
sys.exit(1 if failures else 0)
'
}

echo "== C1 over REST: y = 2 * dot(x, x), x = arange(4)"
post /v1/gradient '{"program": "t = dot(x, x)\ny = 2 * t", "inputs": {"x": [0, 1, 2, 3]}, "wrt": ["x"]}' | assert_json '
y = tensor(r["outputs"]["y"], "float32", [], "C1 y")
check(close(y, [28]), "C1 y = 28 (got %s)" % y)
g = tensor(r["gradients"]["x"], "float32", [4], "C1 dy/dx")
check(close(g, [0, 4, 8, 12]), "C1 dy/dx = [0,4,8,12] (got %s)" % g)
check("forward_ms" in r["stats"], "C1 stats present")
'

echo "== E6 over REST: f(x) = log(x^2)*sin(x) + 1/x, float64, per-node values and adjoints"
post /v1/gradient '{
  "program": "s = square(x)\nl = log(s)\nn = sin(x)\np = l * n\nr = 1 / x\nf = p + r",
  "inputs": {"x": {"dtype": "float64", "shape": [4], "data": [0.5, 1, 2, -1.5]}},
  "wrt": ["x"],
  "intermediates": ["s", "l", "n", "p", "r"]
}' | assert_json '
xs = [0.5, 1.0, 2.0, -1.5]
f = tensor(r["outputs"]["f"], "float64", [4], "E6 f")
check(close(f, [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964]), "E6 f (got %s)" % f)
df = tensor(r["gradients"]["x"], "float64", [4], "E6 f\x27")
check(close(df, [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564]), "E6 f\x27 (got %s)" % df)
# The chain rule, node by node: values forward, adjoints (df/dnode) backward.
s = [x * x for x in xs]; l = [math.log(v) for v in s]; n = [math.sin(x) for x in xs]
expect = {
    "s": (s, [ni / si for ni, si in zip(n, s)]),
    "l": (l, n),
    "n": (n, l),
    "p": ([a * b for a, b in zip(l, n)], [1.0] * 4),
    "r": ([1 / x for x in xs], [1.0] * 4),
}
for name, (value, adjoint) in expect.items():
    got = r["intermediates"].get(name)
    check(got is not None, "E6 intermediate %s returned" % name)
    if got is None: continue
    v = tensor(got["value"], "float64", [4], name + " value"); a = tensor(got["adjoint"], "float64", [4], name + " adjoint")
    check(close(v, value), "E6 %s value (got %s)" % (name, v))
    check(close(a, adjoint), "E6 %s adjoint (got %s)" % (name, a))
# The adjoints compose to f\x27: df/dx = ds/dx * adj(s) + dn/dx * adj(n) + dr/dx * adj(r).
composed = [2 * x * (ni / si) + math.cos(x) * li - 1 / (x * x) for x, ni, si, li in zip(xs, n, s, l)]
check(close(df, composed), "E6 f\x27 equals the chain rule over the returned adjoints")
'

echo "all curl interop checks passed"
