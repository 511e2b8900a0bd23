"""The chapter's cases through autograd_client against a running service, over REST and over gRPC.

    AUTOGRAD_REST=http://127.0.0.1:8080 AUTOGRAD_GRPC=127.0.0.1:8081 python -m unittest -v test_chapter

Numbers are those of ../../../docs (the chapter's cases, computed with PyTorch). tests/Interop.Tests runs this file
against the real server process, with the package installed into a venv (pip install ./clients/python).
"""
import math
import os
import unittest

import numpy as np

import autograd_client as ag

REST = os.environ.get("AUTOGRAD_REST", "http://127.0.0.1:8080")
GRPC = os.environ.get("AUTOGRAD_GRPC", "127.0.0.1:8081")

# The chapter's PyTorch cells for C5, verbatim, except `torch.randn(size=(), requires_grad=True)`, which becomes
# `s.tensor(np.random.randn(), requires_grad=True)`: the session's tensor constructor.
C5_PYTORCH_CELLS = '''
def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c

a = s.tensor(np.random.randn(), requires_grad=True)
d = f(a)
d.backward()

result = a.grad == d / a
'''

E_X = np.array([0.5, 1.0, 2.0, -1.5])  # float64, as the chapter's E cases
E_F = [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964]
E_DF = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564]
E_D2F = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112]
E_PROGRAM = "sq = x * x\nl = log(sq)\ns = sin(x)\np = l * s\nr = 1 / x\nf = p + r"


def f_c5(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


class ChapterCases:
    """Every case once per transport: subclasses set ADDRESS."""

    ADDRESS = None

    @classmethod
    def setUpClass(cls):
        cls.client = ag.Client(cls.ADDRESS)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def assertArray(self, actual, expected, dtype=None, rtol=1e-6, atol=1e-6):
        self.assertIsInstance(actual, np.ndarray)
        if dtype is not None:
            self.assertEqual(actual.dtype, np.dtype(dtype))
        np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)

    # C1: y = 2 * dot(x, x), dy/dx = 4x.

    def test_c1_stateless_gradient_is_a_numpy_array_of_the_input_dtype(self):
        r = self.client.gradient("y = 2 * dot(x, x)", {"x": np.arange(4, dtype=np.float32)}, wrt="x")
        self.assertArray(r.outputs["y"], 28.0, "float32")
        self.assertEqual(r.outputs["y"].shape, ())
        self.assertArray(r.gradients["x"], [0, 4, 8, 12], "float32")
        r64 = self.client.gradient("y = 2 * dot(x, x)", {"x": np.arange(4.0)}, wrt=["x"])
        self.assertArray(r64.gradients["x"], [0, 4, 8, 12], "float64")

    def test_c1_in_a_session(self):
        with self.client.session() as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            y = 2 * x.dot(x)
            y.backward()
            self.assertEqual(y.item(), 28.0)
            self.assertArray(x.grad.numpy(), [0, 4, 8, 12], "float64")
            self.assertTrue(bool((x.grad == 4 * x).numpy().all()))

    # C2: accumulate vs overwrite, and zero_grad.

    def test_c2_accumulate_overwrite_and_zero_grad(self):
        with self.client.session("accumulate") as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            (2 * x.dot(x)).backward()
            x.sum().backward()
            self.assertArray(x.grad.numpy(), [1, 5, 9, 13])
            x.zero_grad()
            x.sum().backward()
            self.assertArray(x.grad.numpy(), [1, 1, 1, 1])
        with self.client.session("overwrite") as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            (2 * x.dot(x)).backward()
            x.sum().backward()
            self.assertArray(x.grad.numpy(), [1, 1, 1, 1])
        r = self.client.gradient("y = sum(x)", {"x": np.arange(4.0)}, wrt="x")
        self.assertArray(r.gradients["x"], [1, 1, 1, 1])

    # C3: a non-scalar output, with a seed and with the sum convention; PyTorch's refusal on request.

    def test_c3_non_scalar_output(self):
        x = np.arange(4.0)
        seeded = self.client.gradient("y = x * x", {"x": x}, wrt="x", seeds={"y": np.ones(4)})
        self.assertArray(seeded.gradients["x"], [0, 2, 4, 6])
        unseeded = self.client.gradient("y = x * x", {"x": x}, wrt="x")
        self.assertArray(unseeded.gradients["x"], [0, 2, 4, 6])
        with self.client.session() as s:
            t = s.tensor(x, requires_grad=True)
            (t * t).backward(gradient=np.ones(4))
            self.assertArray(t.grad.numpy(), [0, 2, 4, 6])
        with self.client.session(strict_scalar_seed=True) as s:
            t = s.tensor(x, requires_grad=True)
            (t * t).backward()
            with self.assertRaises(ag.AutogradError) as caught:
                s.flush()
            self.assertEqual(caught.exception.code, "invalid_argument")
            self.assertIn("scalar outputs", caught.exception.message)

    # C4: detach.

    def test_c4_detach(self):
        with self.client.session() as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            y = x * x
            u = y.detach()
            z = u * x
            z.sum().backward()
            self.assertArray(u.numpy(), [0, 1, 4, 9])
            self.assertTrue(bool((x.grad == u).numpy().all()))
            x.zero_grad()
            y.sum().backward()
            self.assertArray(x.grad.numpy(), [0, 2, 4, 6])

    # C5: the client's own while and if, through a session, in a handful of round trips.

    def c5(self, a0):
        with self.client.session() as s:
            before = self.client.round_trips
            a = s.tensor(a0, requires_grad=True)
            d = f_c5(a)
            d.backward()
            grad = a.grad
            equal = bool(grad == d / a)
            return d.item(), grad.item(), equal, self.client.round_trips - before

    def test_c5_known_inputs(self):
        for a0, c, grad in ((0.5, 1024.0, 2048.0), (-0.3, -122880.0078, 409600.0), (1.7, 1740.8, 1024.0)):
            with self.subTest(a=a0):
                d, g, _, _ = self.c5(a0)
                self.assertTrue(math.isclose(d, c, rel_tol=1e-6), f"c = {d}, expected {c}")
                self.assertTrue(math.isclose(g, grad, rel_tol=1e-6), f"grad = {g}, expected {grad}")
                self.assertTrue(math.isclose(g, d / np.float32(a0), rel_tol=1e-6))

    def test_c5_round_trips_are_one_per_decision(self):
        # a = 0.5: b = 1, 2, ..., 1024 is tested 11 times by the while, once by the if, and the final comparison
        # brings back everything queued after it. Opening the session costs one more over REST (POST /v1/sessions);
        # over gRPC the open command rides with the first batch.
        commands = self.client.commands_sent
        _, _, equal, trips = self.c5(0.5)
        commands = self.client.commands_sent - commands
        self.assertTrue(equal)
        opening = 1 if self.client.transport == "rest" else 0
        # + d.item() (one fetch); grad.item() costs nothing: the grad command's reply already carried its value.
        self.assertEqual(trips, opening + 11 + 1 + 1 + 1)
        # Sent one by one, the same work would take a request per command: a loop test alone is mul, norm, lt, fetch.
        self.assertGreater(commands, 4 * 11)

    def test_c5_pytorch_cell_verbatim_except_the_constructor(self):
        for seed in (0, 1, 2, 3):
            np.random.seed(seed)
            with self.client.session() as s:
                scope = {"np": np, "s": s}
                exec(C5_PYTORCH_CELLS, scope)
                a, d, result = scope["a"], scope["d"], scope["result"]
                self.assertTrue(bool(result), f"seed {seed}: a.grad == d / a is {result}")
                # The gradient is c / a: 2^k, or 100 * 2^k on the negative branch.
                g = a.grad.item()
                self.assertTrue(math.isclose(g, d.item() / a.item(), rel_tol=1e-5))
                self.assertEqual(np.log2(g / (100 if a.item() < 0 else 1)) % 1, 0)

    # E1: second derivative through create_graph, and the Hessian.

    def test_e1_second_derivative(self):
        with self.client.session() as s:
            x = s.tensor(E_X, requires_grad=True)
            f = (x * x).log() * x.sin() + 1 / x
            f.sum().backward(create_graph=True)
            first = x.grad
            x.zero_grad()
            first.sum().backward()
            self.assertArray(x.grad.numpy(), E_D2F, "float64", rtol=1e-12, atol=1e-12)
        h = self.client.hessian(E_PROGRAM + "\ny = sum(f)", {"x": E_X}, wrt="x", outputs="y")
        self.assertArray(np.diag(h.hessians["x"]["x"]), E_D2F, "float64", rtol=1e-12, atol=1e-12)
        hvp = self.client.hessian(E_PROGRAM + "\ny = sum(f)", {"x": E_X}, wrt="x", outputs="y", vector={"x": np.ones(4)})
        self.assertArray(hvp.hvp["x"], E_D2F, "float64", rtol=1e-12, atol=1e-12)

    # E2: backward twice.

    def test_e2_backward_twice(self):
        with self.client.session() as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            y = 2 * x.dot(x)
            y.backward()
            y.backward()
            with self.assertRaises(ag.AutogradError) as caught:
                s.flush()
            self.assertEqual(caught.exception.code, "graph_freed")
            self.assertIn("retain_graph", caught.exception.message)
        with self.client.session() as s:
            x = s.tensor(np.arange(4.0), requires_grad=True)
            y = 2 * x.dot(x)
            y.backward(retain_graph=True)
            self.assertArray(x.grad.numpy(), [0, 4, 8, 12])
            y.backward()
            self.assertArray(x.grad.numpy(), [0, 8, 16, 24])

    # E3: C5 with a vector a; the Jacobian row by row with seeds.

    def test_e3_vector_c5_and_its_jacobian(self):
        a0 = np.array([0.3, -0.2, 0.1], dtype=np.float32)
        with self.client.session("overwrite") as s:
            a = s.tensor(a0, requires_grad=True)
            c = f_c5(a)
            self.assertArray(c.numpy(), [1228.8, -819.2, 409.6], "float32", rtol=1e-6, atol=1e-3)
            c.backward(gradient=np.ones(3, dtype=np.float32), retain_graph=True)
            self.assertArray(a.grad.numpy(), [4096, 4096, 4096])
            rows = []
            for i in range(3):
                c.backward(gradient=np.eye(3, dtype=np.float32)[i], retain_graph=True)
                rows.append(a.grad.numpy())
            self.assertArray(np.stack(rows), 4096 * np.eye(3))

    # E4: the derivative of sin without cos.

    def test_e4_sin_derivative_is_cos(self):
        x = np.linspace(-2 * np.pi, 2 * np.pi, 200, dtype=np.float32)
        r = self.client.gradient("y = sin(x)", {"x": x}, wrt="x")
        self.assertEqual(r.gradients["x"].dtype, np.float32)
        np.testing.assert_allclose(r.gradients["x"], np.cos(x), rtol=0, atol=2 * np.finfo(np.float32).eps)
        np.testing.assert_allclose(r.outputs["y"], np.sin(x), rtol=0, atol=2 * np.finfo(np.float32).eps)

    # E5: the graph as a person can look at it.

    def test_e5_inspect_draws_the_graph(self):
        r = self.client.inspect("f = log(x ** 2) * sin(x) + 1 / x", {"x": ag.spec([4], "float64")})
        self.assertTrue(r.valid)
        self.assertEqual(r.values["x"], ("float64", [4]))
        self.assertEqual(r.values["f"], ("float64", [4]))
        for op in ("pow", "log", "sin", "mul", "div", "add"):
            self.assertIn(op, r.mermaid)
            self.assertIn(op, r.dot)
        self.assertTrue(r.mermaid.startswith("flowchart"))
        self.assertTrue(r.dot.startswith("digraph"))
        self.assertGreater(r.flops, 0)
        self.assertTrue(r.peak_bytes_exact)
        self.assertIsNone(r.peak_bytes_caveat)

    def test_devices_lists_the_cpu_and_the_default(self):
        r = self.client.devices()
        self.assertEqual([d["name"] for d in r["devices"]], ["cpu"])
        self.assertGreater(r["devices"][0]["memory_bytes"], 0)
        self.assertEqual(r["default_device"], "cpu")

    # E6: chain-rule terms.

    def test_e6_values_gradients_and_intermediates(self):
        r = self.client.gradient(E_PROGRAM, {"x": E_X}, wrt="x", intermediates=["sq", "l", "s", "p", "r"])
        self.assertArray(r.outputs["f"], E_F, "float64", rtol=1e-12, atol=1e-12)
        self.assertArray(r.gradients["x"], E_DF, "float64", rtol=1e-12, atol=1e-12)
        value, adjoint = r.intermediates["s"]
        self.assertArray(value, np.sin(E_X), "float64", rtol=1e-12, atol=1e-12)
        self.assertArray(adjoint, np.log(E_X ** 2), "float64", rtol=1e-12, atol=1e-12)  # df/ds = l
        value, adjoint = r.intermediates["r"]
        self.assertArray(value, 1 / E_X, rtol=1e-12, atol=1e-12)
        self.assertArray(adjoint, np.ones(4), rtol=1e-12, atol=1e-12)

    # E7: forward mode equals reverse mode.

    def test_e7_jvp_equals_vjp(self):
        forward = self.client.jvp(E_PROGRAM, {"x": E_X}, {"x": np.ones(4)})
        reverse = self.client.gradient(E_PROGRAM, {"x": E_X}, wrt="x")
        self.assertArray(forward.tangents_out["f"], E_DF, "float64", rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(forward.tangents_out["f"], reverse.gradients["x"], rtol=1e-12)

    # E8: which mode when.

    def test_e8_jacobian_picks_the_cheaper_mode(self):
        wide = self.client.jacobian("y = sum(x * x)", {"x": np.arange(5.0)}, wrt="x")  # R^5 -> R: reverse
        self.assertEqual(wide.mode_used, "reverse")
        self.assertArray(wide.jacobians["y"]["x"], 2 * np.arange(5.0))
        tall = self.client.jacobian("y = x * w", {"x": np.array(2.0), "w": np.arange(6.0)}, wrt="x")  # R -> R^6
        self.assertEqual(tall.mode_used, "forward")
        self.assertArray(tall.jacobians["y"]["x"], np.arange(6.0))
        forced = self.client.jacobian("y = sum(x * x)", {"x": np.arange(5.0)}, wrt="x", mode="forward")
        self.assertEqual(forced.mode_used, "forward")
        self.assertArray(forced.jacobians["y"]["x"], 2 * np.arange(5.0))

    # The transport's own promises.

    def test_large_tensors_round_trip_exactly_with_their_dtype(self):
        rng = np.random.default_rng(7)
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(100_000).astype(dtype)
            r = self.client.gradient("y = sum(x * x)", {"x": x}, wrt="x")
            self.assertEqual(r.gradients["x"].dtype, np.dtype(dtype))
            np.testing.assert_array_equal(r.gradients["x"], 2 * x)
        ints = self.client.evaluate("y = x + 1", {"x": np.arange(1000, dtype=np.int64)})
        self.assertEqual(ints.outputs["y"].dtype, np.int64)
        np.testing.assert_array_equal(ints.outputs["y"], np.arange(1, 1001))
        special = self.client.evaluate("y = x * 1", {"x": np.array([np.nan, np.inf, -np.inf, 1.5])})
        self.assertTrue(np.isnan(special.outputs["y"][0]))
        np.testing.assert_array_equal(special.outputs["y"][1:], [np.inf, -np.inf, 1.5])

    def test_streamed_gradient_yields_arrays_as_they_arrive(self):
        x = np.arange(300_000, dtype=np.float64)  # 2.4 MB: the gradient comes in several chunks
        stream = self.client.gradient_stream("y = sum(x * x)", {"x": x}, wrt="x")
        items = list(stream)
        self.assertEqual([(i.role, i.name) for i in items], [("output", "y"), ("gradient", "x")])
        self.assertEqual(items[0].array.shape, ())
        self.assertEqual(items[1].array.dtype, np.float64)
        np.testing.assert_array_equal(items[1].array, 2 * x)
        self.assertIsNotNone(stream.stats)

    def test_errors_are_one_exception_with_code_node_and_op(self):
        with self.assertRaises(ag.AutogradError) as caught:
            self.client.evaluate("y = x + z", {"x": np.ones(3), "z": np.ones(4)})
        e = caught.exception
        self.assertEqual((e.code, e.node, e.op), ("shape_mismatch", "y", "add"))
        self.assertIn("[3]", e.message)
        with self.assertRaises(ag.AutogradError) as caught:
            self.client.evaluate("y = frobnicate(x)", {"x": 1.0})
        self.assertEqual(caught.exception.code, "invalid_graph")
        self.assertIn("frobnicate", caught.exception.message)
        with self.assertRaises(ag.AutogradError) as caught:
            self.client.gradient("y = x * 2", {"x": np.arange(3)}, wrt="x")
        self.assertEqual(caught.exception.code, "not_differentiable")
        with self.client.session() as s:
            x = s.tensor(np.ones(3))
            with self.assertRaises(ag.AutogradError) as caught:
                (x @ s.tensor(np.ones(4))).item()
            self.assertEqual((caught.exception.code, caught.exception.op), ("shape_mismatch", "matmul"))
            self.assertEqual(x.sum().item(), 3.0)  # the session stays usable

    def test_graphs_and_models(self):
        graph = {"inputs": [{"name": "x", "dtype": "float64", "shape": [4]}],
                 "nodes": [{"op": "dot", "inputs": ["x", "x"], "outputs": ["t"]},
                           {"op": "mul", "inputs": [2, "t"], "outputs": ["y"]}],
                 "outputs": ["y"]}
        r = self.client.gradient(graph, {"x": np.arange(4.0)}, wrt="x")
        self.assertArray(r.gradients["x"], [0, 4, 8, 12], "float64")
        name = f"c1-{self.client.transport}"
        self.client.put_model(name, "t = dot(x, x)\ny = 2 * t")
        try:
            r = self.client.gradient(ag.Model(name), {"x": np.arange(4, dtype=np.float32)}, wrt="x")
            self.assertArray(r.gradients["x"], [0, 4, 8, 12], "float32")
            self.assertIn(name, [m["name"] for m in self.client.list_models()])
        finally:
            self.client.delete_model(name)
        with self.assertRaises(ag.AutogradError) as caught:
            self.client.get_model(name)
        self.assertEqual(caught.exception.code, "not_found")

    def test_session_batches_until_a_value_is_needed(self):
        with self.client.session() as s:
            before = self.client.round_trips
            x = s.tensor(np.arange(4.0), requires_grad=True)
            y = ((x * 3 - 1) ** 2 / 2).sum()
            y.backward()
            grad = x.grad
            self.assertEqual(self.client.round_trips, before)  # nothing sent yet
            self.assertArray(grad.numpy(), 3 * (3 * np.arange(4.0) - 1))
            self.assertLessEqual(self.client.round_trips - before, 2)  # (open +) one batch
            self.assertAlmostEqual(float(y), ((3 * np.arange(4.0) - 1) ** 2 / 2).sum())
            with s.no_grad():
                z = x * 2
            self.assertArray(np.asarray(z), 2 * np.arange(4.0))

    def test_numpy_and_list_operands_become_session_constants(self):
        with self.client.session() as s:
            t = s.tensor(np.arange(3, dtype=np.float32), requires_grad=True)
            y = (np.float32(2) * t + np.arange(3.0) + t * [1.0, 2.0, 3.0]).sum()  # reflected numpy operators too
            y.backward()
            self.assertAlmostEqual(y.item(), 0 + 2 + 4 + 0 + 1 + 2 + 0 + 2 + 6)
            self.assertArray(t.grad.numpy(), [3, 4, 5])
            with self.assertRaises(ag.AutogradError) as caught:
                s.tensor(1.0).grad.item()  # not a variable: PyTorch's None, an error here
            self.assertEqual(caught.exception.code, "not_differentiable")

class Unreachable(unittest.TestCase):
    def test_a_service_that_is_not_there_is_the_same_exception(self):
        import socket
        with socket.socket() as probe:  # a port nothing listens on once this closes
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        for address in (f"http://127.0.0.1:{port}", f"grpc://127.0.0.1:{port}"):
            with self.subTest(address=address), ag.Client(address, timeout=10) as client:
                with self.assertRaises(ag.AutogradError) as caught:
                    client.evaluate("y = x", {"x": 1.0})
                self.assertEqual(caught.exception.code, "unavailable")


class RestTransport(ChapterCases, unittest.TestCase):
    ADDRESS = REST


class GrpcTransport(ChapterCases, unittest.TestCase):
    ADDRESS = "grpc://" + GRPC


if __name__ == "__main__":
    unittest.main()
