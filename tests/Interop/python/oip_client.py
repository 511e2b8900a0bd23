#!/usr/bin/python3
"""Interop client: the Open Inference Protocol (KServe v2) and its gradient extension, against the real service.

gRPC stubs are generated at run time from the project's inference/grpc_service.proto and autograd/v2/gradient.proto
with Debian's python3-grpc-tools, as any protocol client would; REST is plain HTTP (urllib). The script registers a
small MLP as a JSON graph over /v1, then runs inference, a batch of VJPs, a JVP and a Jacobian over both transports
and checks every number against the engine's own /v1 transforms. Then it uploads three ONNX models built with ONNX's
own helpers (onnx_models.py: an MLP, a CNN and a transformer block) as application/onnx files and runs the same calls
on each, over REST (JSON and the binary tensor extension) and gRPC. Exits non-zero on any mismatch.

Usage: oip_client.py REST_BASE HOST:GRPC_PORT   (e.g. http://127.0.0.1:8080 127.0.0.1:8081)
Environment: AUTOGRAD_PROTOS overrides the .proto folder (default: src/Contracts/Protos of this repository).
"""
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import urllib.error
import urllib.request

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.environ.get("AUTOGRAD_PROTOS") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "src", "Contracts", "Protos"))
REST = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOGRAD_REST", "http://127.0.0.1:8080")
TARGET = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AUTOGRAD_GRPC", "127.0.0.1:8081")
TIMEOUT_S = 30
MODEL = "py-oip-mlp"

# A two-layer MLP as a JSON graph: h = tanh(x @ w1 + b1), y = h @ w2, with y's row sums as a second output.
GRAPH = {
    "inputs": [
        {"name": "x", "dtype": "float32", "shape": [2, 3]},
        {"name": "w1", "dtype": "float32", "shape": [3, 4]},
        {"name": "w2", "dtype": "float32", "shape": [4, 2]},
    ],
    "constants": {"b1": {"dtype": "float32", "shape": [4], "data": [0.1, -0.2, 0.3, 0.0]}},
    "nodes": [
        {"op": "matmul", "inputs": ["x", "w1"], "outputs": ["xw"]},
        {"op": "add", "inputs": ["xw", "b1"], "outputs": ["z"]},
        {"op": "tanh", "inputs": ["z"], "outputs": ["h"]},
        {"op": "matmul", "inputs": ["h", "w2"], "outputs": ["y"]},
        {"op": "sum", "inputs": ["y"], "outputs": ["total"], "attrs": {"axes": [1]}},
    ],
    "outputs": ["y", "total"],
}
X = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75]
W1 = [0.2, -0.1, 0.4, 0.3, -0.5, 0.6, 0.1, -0.2, 0.3, 0.2, -0.4, 0.5]
W2 = [0.7, -0.3, 0.2, 0.5, -0.6, 0.1, 0.4, -0.2]
SHAPES = {"x": [2, 3], "w1": [3, 4], "w2": [4, 2]}
VALUES = {"x": X, "w1": W1, "w2": W2}
COTANGENTS = [[1, 0, 0, 0], [0, 1, 0, 0], [0.5, -2, 3, 0.25]]  # a batch of three cotangents of y (shape [2, 2])

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def close(actual, expected, rel=1e-5, abs_tol=1e-5):
    return len(actual) == len(expected) and all(math.isclose(a, e, rel_tol=rel, abs_tol=abs_tol) for a, e in zip(actual, expected))


def http(method, path, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(REST + path, data=data, method=method)
    if data is not None and content_type:
        request.add_header("content-type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def v1_tensor(name):
    return {"dtype": "float32", "shape": SHAPES[name], "data": VALUES[name]}


def v1(transform, **fields):
    status, body = http("POST", f"/v1/{transform}", {"model": MODEL, "inputs": {n: v1_tensor(n) for n in VALUES}, **fields})
    if status != 200:
        raise SystemExit(f"/v1/{transform} failed: {status} {body}")
    return body


def oip_inputs():
    return [{"name": n, "datatype": "FP32", "shape": SHAPES[n], "data": VALUES[n]} for n in VALUES]


def named(tensors, name):
    return next(t for t in tensors if t["name"] == name)


def rest_checks():
    status, server = http("GET", "/v2")
    check(status == 200 and "gradient" in server["extensions"], "REST GET /v2 advertises the gradient extension")
    check(http("GET", "/v2/health/ready")[0] == 200, "REST /v2/health/ready is 200")
    status, meta = http("GET", f"/v2/models/{MODEL}")
    check(status == 200 and [i["name"] for i in meta["inputs"]] == ["x", "w1", "w2"] and meta["inputs"][0]["datatype"] == "FP32",
          "REST model metadata lists the inputs as FP32")
    check(http("GET", f"/v2/models/{MODEL}/ready")[0] == 200, "REST model ready")

    evaluated = v1("evaluate")["outputs"]
    # curl's and urllib's habit of the form content type is accepted: the body is JSON either way.
    status, infer = http("POST", f"/v2/models/{MODEL}/infer", {"id": "py-1", "inputs": oip_inputs()}, "application/x-www-form-urlencoded")
    check(status == 200 and infer["id"] == "py-1", "REST infer answers with the request id")
    for name in ("y", "total"):
        check(close(named(infer["outputs"], name)["data"], evaluated[name]["data"]), f"REST infer {name} equals /v1 evaluate")

    flat = [v for row in COTANGENTS for v in row]
    status, vjp = http("POST", f"/v2/models/{MODEL}/vjp",
                       {"inputs": oip_inputs(), "cotangents": [{"name": "y", "datatype": "FP32", "shape": [3, 2, 2], "data": flat}]})
    check(status == 200 and vjp["parameters"]["batch_size"] == 3, "REST vjp takes a batch of three cotangents")
    check(vjp["parameters"]["batched_backward"] == "one_pass", "REST batched vjp runs as one backward pass")
    for b, row in enumerate(COTANGENTS):
        g = v1("gradient", outputs=["y"], seeds={"y": {"dtype": "float32", "shape": [2, 2], "data": row}})["gradients"]
        for name in VALUES:
            n = len(VALUES[name])
            got = named(vjp["derivatives"], name)["data"][b * n:(b + 1) * n]
            check(close(got, g[name]["data"]), f"REST vjp row {b} d{name} equals /v1 gradient")

    tangent = [1, 0, 0, 0, 0, 0]
    status, jvp = http("POST", f"/v2/models/{MODEL}/jvp",
                       {"inputs": oip_inputs(), "tangents": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": tangent}]})
    expected = v1("jvp", tangents={"x": {"dtype": "float32", "shape": [2, 3], "data": tangent}})["tangents_out"]
    check(status == 200 and close(named(jvp["derivatives"], "total")["data"], expected["total"]["data"]), "REST jvp equals /v1 jvp")

    status, jac = http("POST", f"/v2/models/{MODEL}/jacobian", {"inputs": oip_inputs(), "wrt": ["x"], "of": ["total"]})
    expected = v1("jacobian", wrt=["x"], outputs=["total"])["jacobians"]["total"]["x"]
    block = named(jac["derivatives"], "total/x")
    check(status == 200 and block["shape"] == [2, 2, 3] and close(block["data"], expected["data"]), "REST jacobian equals /v1 jacobian")

    status, error = http("POST", f"/v2/models/{MODEL}/infer", {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]})
    check(status == 400 and "INT32" in error["error"], "REST refuses an unsupported datatype with the protocol's error body")
    status, error = http("POST", "/v2/models/py-oip-absent/infer", {"inputs": []})
    check(status == 404 and "error" in error, "REST unknown model is 404 with an error body")


def generate_stubs(out_dir):
    files = [os.path.join(PROTOS, "inference", "grpc_service.proto"), os.path.join(PROTOS, "autograd", "v2", "gradient.proto")]
    args = ["grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main(args + files) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out_dir)


def raw_floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def floats(raw):
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def grpc_checks():
    from inference import grpc_service_pb2 as pb, grpc_service_pb2_grpc as pb_grpc
    from autograd.v2 import gradient_pb2, gradient_pb2_grpc

    channel = grpc.insecure_channel(TARGET)
    oip = pb_grpc.GRPCInferenceServiceStub(channel)
    gradients = gradient_pb2_grpc.GradientServiceStub(channel)
    check(oip.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT_S).live, "gRPC ServerLive")
    check(oip.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT_S).ready, "gRPC ServerReady")
    check("gradient" in oip.ServerMetadata(pb.ServerMetadataRequest(), timeout=TIMEOUT_S).extensions, "gRPC ServerMetadata lists gradient")
    check(oip.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=TIMEOUT_S).ready, "gRPC ModelReady")
    meta = oip.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), timeout=TIMEOUT_S)
    check([list(i.shape) for i in meta.inputs] == [[2, 3], [3, 4], [4, 2]], "gRPC ModelMetadata shapes")

    def request():
        r = pb.ModelInferRequest(model_name=MODEL, id="py-grpc")
        for name in VALUES:
            r.inputs.add(name=name, datatype="FP32", shape=SHAPES[name])
            r.raw_input_contents.append(raw_floats(VALUES[name]))
        return r

    evaluated = v1("evaluate")["outputs"]
    response = oip.ModelInfer(request(), timeout=TIMEOUT_S)
    names = [o.name for o in response.outputs]
    check(response.id == "py-grpc" and names == ["y", "total"], "gRPC ModelInfer returns the outputs in order")
    for i, name in enumerate(names):
        check(close(floats(response.raw_output_contents[i]), evaluated[name]["data"]), f"gRPC ModelInfer {name} equals /v1 evaluate")

    vjp = gradient_pb2.GradientRequest(infer=request(), wrt=["w1"])
    vjp.cotangents.add(name="y", datatype="FP32", shape=[3, 2, 2])
    vjp.raw_cotangent_contents.append(raw_floats([v for row in COTANGENTS for v in row]))
    result = gradients.Vjp(vjp, timeout=TIMEOUT_S)
    check(result.outputs.parameters["batch_size"].int64_param == 3, "gRPC Vjp takes a batch of three")
    check(list(result.derivatives[0].shape) == [3, 3, 4], "gRPC Vjp derivative has the batch axis")
    got = floats(result.raw_derivative_contents[0])
    for b, row in enumerate(COTANGENTS):
        g = v1("gradient", outputs=["y"], wrt=["w1"], seeds={"y": {"dtype": "float32", "shape": [2, 2], "data": row}})["gradients"]["w1"]["data"]
        check(close(got[b * 12:(b + 1) * 12], g), f"gRPC Vjp row {b} equals /v1 gradient")

    jac = gradients.Jacobian(gradient_pb2.GradientRequest(infer=request(), wrt=["w2"], of=["y"]), timeout=TIMEOUT_S)
    expected = v1("jacobian", wrt=["w2"], outputs=["y"])["jacobians"]["y"]["w2"]["data"]
    check(jac.derivatives[0].name == "y/w2" and close(floats(jac.raw_derivative_contents[0]), expected), "gRPC Jacobian equals /v1 jacobian")

    bad = request()
    bad.inputs[0].datatype = "UINT8"
    try:
        oip.ModelInfer(bad, timeout=TIMEOUT_S)
        check(False, "gRPC refuses UINT8")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "UINT8" in e.details(), "gRPC refuses UINT8 with INVALID_ARGUMENT")
    channel.close()


def put_onnx(name, path):
    with open(path, "rb") as f:
        data = f.read()
    request = urllib.request.Request(REST + f"/v1/models/{name}", data=data, method="PUT")
    request.add_header("content-type", "application/onnx")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read())


def v1_model(model, transform, inputs, **fields):
    v1_inputs = {i["name"]: {"dtype": "float32", "shape": i["shape"], "data": i["data"]} for i in inputs}
    status, body = http("POST", f"/v1/{transform}", {"model": model, "inputs": v1_inputs, **fields})
    if status != 200:
        raise SystemExit(f"/v1/{transform} on {model} failed: {status} {body}")
    return body


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def framed(path, header, data):
    """POSTs a body in the binary tensor extension's framing; returns the answer's JSON header and its bytes after it."""
    head = json.dumps(header).encode()
    request = urllib.request.Request(REST + path, data=head + data, method="POST")
    request.add_header("content-type", "application/octet-stream")
    request.add_header("Inference-Header-Content-Length", str(len(head)))
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        length = int(response.headers["Inference-Header-Content-Length"])
        body = response.read()
    return json.loads(body[:length]), body[length:]


def onnx_checks(models_dir):
    """The ONNX models over REST and gRPC: infer, a batch of VJPs, a JVP and a Jacobian, each against /v1."""
    from inference import grpc_service_pb2 as pb, grpc_service_pb2_grpc as pb_grpc
    from autograd.v2 import gradient_pb2, gradient_pb2_grpc
    import onnx_reference  # beside this script, on sys.path since main put it there
    with open(os.path.join(models_dir, "models.json")) as f:
        models = json.load(f)
    channel = grpc.insecure_channel(TARGET)
    oip = pb_grpc.GRPCInferenceServiceStub(channel)
    gradients = gradient_pb2_grpc.GradientServiceStub(channel)
    for kind, m in models.items():
        model = f"py-onnx-{kind}"
        described = put_onnx(model, os.path.join(models_dir, m["file"]))
        check(described["format"] == "onnx" and described["outputs"] == [o["name"] for o in m["outputs"]], f"{kind}: the ONNX file registers")
        inputs, out, wrt = m["inputs"], m["differentiate"], m["wrt"]
        out_shape = next(o["shape"] for o in m["outputs"] if o["name"] == out)
        oip_in = [{"name": i["name"], "datatype": "FP32", "shape": i["shape"], "data": i["data"]} for i in inputs]
        evaluated = v1_model(model, "evaluate", inputs)["outputs"]

        status, infer = http("POST", f"/v2/models/{model}/infer", {"inputs": oip_in})
        check(status == 200 and all(close(named(infer["outputs"], o["name"])["data"], evaluated[o["name"]]["data"]) for o in m["outputs"]),
              f"{kind}: REST infer equals /v1 evaluate")

        # The same inference in the binary tensor extension: input bytes after the JSON, outputs back as bytes.
        header, data = framed(f"/v2/models/{model}/infer", {
            "inputs": [{"name": i["name"], "datatype": "FP32", "shape": i["shape"], "parameters": {"binary_data_size": 4 * len(i["data"])}}
                       for i in inputs],
            "parameters": {"binary_data_output": True}}, b"".join(raw_floats(i["data"]) for i in inputs))
        at, ok = 0, True
        for o in header["outputs"]:
            size = o["parameters"]["binary_data_size"]
            ok &= close(floats(data[at:at + size]), evaluated[o["name"]]["data"])
            at += size
        check(ok and at == len(data), f"{kind}: REST infer with binary tensors equals /v1 evaluate")

        rows = [[((j * 7 + b * 3) % 5 - 2) / 2 for j in range(count(out_shape))] for b in range(2)]
        status, vjp = http("POST", f"/v2/models/{model}/vjp", {
            "inputs": oip_in, "wrt": [wrt],
            "cotangents": [{"name": out, "datatype": "FP32", "shape": [2] + out_shape, "data": [v for r in rows for v in r]}]})
        check(status == 200 and vjp["parameters"]["batch_size"] == 2, f"{kind}: REST vjp takes a batch of two cotangents")
        n = count(next(i["shape"] for i in inputs if i["name"] == wrt))
        # PyTorch, reading the same file's weights, as an oracle independent of the service (float64; ours is float32).
        torch_outputs, torch_vjp = onnx_reference.reference(kind, os.path.join(models_dir, m["file"]), inputs, out, rows[1])
        check(all(close(named(infer["outputs"], o)["data"], v, rel=1e-4, abs_tol=1e-5) for o, v in torch_outputs.items()),
              f"{kind}: REST infer equals PyTorch")
        check(close(named(vjp["derivatives"], wrt)["data"][n:2 * n], torch_vjp, rel=1e-3, abs_tol=1e-4), f"{kind}: REST vjp equals PyTorch's")
        for b, row in enumerate(rows):
            g = v1_model(model, "gradient", inputs, outputs=[out], wrt=[wrt],
                         seeds={out: {"dtype": "float32", "shape": out_shape, "data": row}})["gradients"][wrt]["data"]
            check(close(named(vjp["derivatives"], wrt)["data"][b * n:(b + 1) * n], g, rel=1e-4, abs_tol=1e-5),
                  f"{kind}: REST vjp row {b} equals /v1 gradient")

        tangent = [((j * 5) % 3 - 1) / 2 for j in range(n)]
        status, jvp = http("POST", f"/v2/models/{model}/jvp", {
            "inputs": oip_in, "of": [out], "tangents": [{"name": wrt, "datatype": "FP32", "shape": inputs[0]["shape"], "data": tangent}]})
        expected = v1_model(model, "jvp", inputs, outputs=[out],
                            tangents={wrt: {"dtype": "float32", "shape": inputs[0]["shape"], "data": tangent}})["tangents_out"][out]["data"]
        check(status == 200 and close(named(jvp["derivatives"], out)["data"], expected, rel=1e-4, abs_tol=1e-5), f"{kind}: REST jvp equals /v1 jvp")

        status, jac = http("POST", f"/v2/models/{model}/jacobian", {"inputs": oip_in, "wrt": [wrt], "of": [out]})
        expected = v1_model(model, "jacobian", inputs, wrt=[wrt], outputs=[out])["jacobians"][out][wrt]
        block = named(jac["derivatives"], f"{out}/{wrt}")
        check(status == 200 and block["shape"] == expected["shape"] and close(block["data"], expected["data"], rel=1e-4, abs_tol=1e-5),
              f"{kind}: REST jacobian equals /v1 jacobian")

        request = pb.ModelInferRequest(model_name=model)
        for i in inputs:
            request.inputs.add(name=i["name"], datatype="FP32", shape=i["shape"])
            request.raw_input_contents.append(raw_floats(i["data"]))
        response = oip.ModelInfer(request, timeout=TIMEOUT_S)
        check(all(close(floats(response.raw_output_contents[k]), evaluated[o.name]["data"]) for k, o in enumerate(response.outputs)),
              f"{kind}: gRPC ModelInfer equals /v1 evaluate")
        grad = gradient_pb2.GradientRequest(infer=request, wrt=[wrt])
        grad.cotangents.add(name=out, datatype="FP32", shape=[2] + out_shape)
        grad.raw_cotangent_contents.append(raw_floats([v for r in rows for v in r]))
        result = gradients.Vjp(grad, timeout=TIMEOUT_S)
        got = floats(result.raw_derivative_contents[0])
        check(list(result.derivatives[0].shape) == [2] + inputs[0]["shape"] and close(got, named(vjp["derivatives"], wrt)["data"]),
              f"{kind}: gRPC Vjp equals REST vjp")
    channel.close()


def main():
    status, body = http("PUT", f"/v1/models/{MODEL}", {"graph": GRAPH})
    if status != 200:
        raise SystemExit(f"registering the model failed: {status} {body}")
    rest_checks()
    work = tempfile.mkdtemp(prefix="autograd-py-oip-")
    try:
        generate_stubs(work)
        grpc_checks()
        models_dir = os.path.join(work, "models")
        sys.path.insert(0, HERE)
        import onnx_models
        onnx_models.write(models_dir)
        onnx_checks(models_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all python OIP checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
