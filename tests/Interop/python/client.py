#!/usr/bin/python3
"""Interop client: Python (Debian's python3-grpcio) against the real AutogradService over gRPC.

Stubs are generated at run time from the project's own .proto files, as any client in another language would.
Runs the chapter's C1 statelessly, C5 as a session with the loop and the branch in this script's own code, and one
error check. Exits non-zero on any mismatch.

Usage: client.py [HOST:GRPC_PORT]   (default: $AUTOGRAD_GRPC or 127.0.0.1:8081)
Environment: AUTOGRAD_PROTOS overrides the .proto folder (default: src/Contracts/Protos of this repository).
"""
import glob
import math
import os
import queue
import shutil
import struct
import sys
import tempfile

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.environ.get("AUTOGRAD_PROTOS") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "src", "Contracts", "Protos"))
TARGET = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOGRAD_GRPC", "127.0.0.1:8081")
TIMEOUT_S = 30

# google.rpc.Status and ErrorInfo, wire-compatible subsets: Debian has no googleapis-common-protos package, and the
# rich error detail travels as a serialized google.rpc.Status in the grpc-status-details-bin trailer.
RPC_STATUS_PROTO = """
syntax = "proto3";
package interop.rpc;
message AnyValue { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated AnyValue details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
"""

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def close(actual, expected, rel=1e-5, abs_tol=1e-4):
    if len(actual) != len(expected):
        return False
    return all(math.isclose(a, e, rel_tol=rel, abs_tol=abs_tol) for a, e in zip(actual, expected))


def generate_stubs(out_dir):
    files = sorted(glob.glob(os.path.join(PROTOS, "autograd", "v1", "*.proto")))
    if not files:
        raise SystemExit(f"no .proto files under {PROTOS}")
    with open(os.path.join(out_dir, "interop_rpc_status.proto"), "w") as f:
        f.write(RPC_STATUS_PROTO)
    args = ["grpc_tools.protoc", f"-I{PROTOS}", f"-I{out_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main(args + files + [os.path.join(out_dir, "interop_rpc_status.proto")]) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out_dir)


def main():
    work = tempfile.mkdtemp(prefix="autograd-py-")
    try:
        generate_stubs(work)
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all python interop checks passed")
    return 0


def run(_):
    from autograd.v1 import autodiff_pb2, autodiff_pb2_grpc, sessions_pb2, sessions_pb2_grpc, tensor_pb2
    import interop_rpc_status_pb2 as rpc_status

    def values(t):
        """A protobuf Tensor's elements as floats, whichever data field the server chose."""
        if t.raw:
            fmt = {tensor_pb2.DTYPE_FLOAT32: "f", tensor_pb2.DTYPE_FLOAT64: "d", tensor_pb2.DTYPE_INT64: "q"}[t.dtype]
            return list(struct.unpack("<%d%s" % (len(t.raw) // struct.calcsize(fmt), fmt), t.raw))
        for field in (t.float_data, t.double_data, t.int64_data, t.bool_data):
            if len(field):
                return [float(v) for v in field]
        return []

    def scalar32(v):
        return tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, float_data=[v])

    # The server is local: never route through an http_proxy the environment may set.
    with grpc.insecure_channel(TARGET, options=[("grpc.enable_http_proxy", 0)]) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
        autodiff = autodiff_pb2_grpc.AutodiffStub(channel)

        # C1, stateless: y = 2 * dot(x, x) at x = arange(4), x sent as raw little-endian float32 bytes.
        x = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[4], raw=struct.pack("<4f", 0, 1, 2, 3))
        reply = autodiff.Gradient(autodiff_pb2.GradientRequest(
            computation=autodiff_pb2.Computation(program="t = dot(x, x)\ny = 2 * t"),
            inputs={"x": x}, wrt=["x"]), timeout=TIMEOUT_S)
        check(close(values(reply.outputs["y"]), [28.0]), f"C1 y = 28 (got {values(reply.outputs['y'])})")
        check(list(reply.outputs["y"].shape) == [], "C1 y is a scalar")
        check(close(values(reply.gradients["x"]), [0, 4, 8, 12]), f"C1 dy/dx = [0,4,8,12] (got {values(reply.gradients['x'])})")
        check(reply.gradients["x"].dtype == tensor_pb2.DTYPE_FLOAT32 and list(reply.gradients["x"].shape) == [4], "C1 grad is float32[4]")

        # C5 as a session: the while and the if run here, reading norm(b) and sum(b) back to decide.
        sessions = sessions_pb2_grpc.SessionsStub(channel)
        for a, want_c, want_grad in ((0.5, 1024.0, 2048.0), (-0.3, -122880.0078, 409600.0), (1.7, 1740.8, 1024.0)):
            c, grad, steps = c5_session(sessions, sessions_pb2, scalar32, values, a)
            check(close([c], [want_c]), f"C5 a={a}: c = {want_c} (got {c})")
            check(close([grad], [want_grad]), f"C5 a={a}: dc/da = {want_grad} (got {grad}, after {steps} doublings)")

        # An error: an unknown op is INVALID_ARGUMENT with reason invalid_graph (ErrorInfo) and the autograd-code trailer.
        try:
            autodiff.Evaluate(autodiff_pb2.EvaluateRequest(
                computation=autodiff_pb2.Computation(program="y = frobnicate(x)"),
                inputs={"x": scalar32(1.0)}), timeout=TIMEOUT_S)
            check(False, "unknown op is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"unknown op: INVALID_ARGUMENT (got {e.code()})")
            trailers = dict(e.trailing_metadata() or ())
            check(trailers.get("autograd-code") == "invalid_graph", f"unknown op: trailer autograd-code = invalid_graph (got {trailers.get('autograd-code')})")
            reasons = []
            if "grpc-status-details-bin" in trailers:
                status = rpc_status.Status.FromString(trailers["grpc-status-details-bin"])
                reasons = [rpc_status.ErrorInfo.FromString(d.value).reason for d in status.details
                           if d.type_url.endswith("/google.rpc.ErrorInfo")]
            check(reasons == ["invalid_graph"], f"unknown op: ErrorInfo reason = invalid_graph (got {reasons})")
            check("frobnicate" in (e.details() or ""), f"unknown op: the detail names the op (got {e.details()!r})")


def c5_session(sessions, pb, scalar32, values, a):
    """Drives one Sessions.Run stream command by command: send one, wait for its reply, decide."""
    outbox = queue.Queue()

    def commands():
        while True:
            item = outbox.get()
            if item is None:
                return
            yield item

    replies = sessions.Run(commands(), timeout=TIMEOUT_S)
    sent = [0]

    def send(**kind):
        outbox.put(pb.Command(**kind))
        reply = next(replies)
        if reply.command_index != sent[0]:
            raise AssertionError(f"reply {reply.command_index} answers command {sent[0]}")
        sent[0] += 1
        if reply.HasField("error"):
            raise AssertionError(f"command {kind} failed: {reply.error.code}: {reply.error.detail}")
        return reply

    def apply(op, inputs, output):
        send(apply=pb.ApplyCommand(op=op, inputs=inputs, output=output))

    def fetch(name):
        return values(send(fetch=pb.FetchCommand(name=name)).value)[0]

    try:
        opened = send(open=pb.SessionOptions(gradient_mode=pb.GRADIENT_MODE_ACCUMULATE))
        if not opened.session_id:
            raise AssertionError("open replies with a session id")
        send(variable=pb.VariableCommand(name="a", value=scalar32(a), requires_grad=True))
        send(constant=pb.ConstantCommand(name="two", value=scalar32(2.0)))
        send(constant=pb.ConstantCommand(name="hundred", value=scalar32(100.0)))
        apply("mul", ["two", "a"], "b")
        steps = 0
        while True:
            apply("norm", ["b"], "n")
            if fetch("n") >= 1000:
                break
            apply("mul", ["two", "b"], "b")
            steps += 1
        apply("sum", ["b"], "s")
        if fetch("s") > 0:
            apply("identity", ["b"], "c")
        else:
            apply("mul", ["hundred", "b"], "c")
        c = fetch("c")
        send(backward=pb.BackwardCommand(output="c"))
        grad = values(send(grad=pb.GradCommand(name="a")).value)[0]
        return c, grad, steps
    finally:
        outbox.put(None)
        for _ in replies:  # drain: the server ends the stream once ours is closed
            pass


if __name__ == "__main__":
    sys.exit(main())
