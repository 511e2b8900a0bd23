"""gRPC transport (grpcio), with the stubs generated from the service's .proto files when the package was built."""
import queue
import threading

import grpc
import numpy as np

from . import _tensors as T
from ._errors import AutogradError

try:
    from ._generated.autograd.v1 import (autodiff_pb2, autodiff_pb2_grpc, graph_pb2, models_pb2, models_pb2_grpc,
                                         sessions_pb2, sessions_pb2_grpc, tensor_pb2)
    from ._generated.autograd_client_rpc import status_pb2
except ImportError as missing:  # a source checkout imported without building: say how to get the stubs
    raise ImportError("autograd_client's gRPC stubs are generated when the package is built: "
                      "pip install ./clients/python (they are never committed)") from missing

_MODES = {"auto": autodiff_pb2.JACOBIAN_MODE_AUTO, "forward": autodiff_pb2.JACOBIAN_MODE_FORWARD,
          "reverse": autodiff_pb2.JACOBIAN_MODE_REVERSE}
_MODE_NAMES = {v: k for k, v in _MODES.items()}


class GrpcTransport:
    name = "grpc"

    def __init__(self, target, timeout, metadata=None, credentials=None):
        # The service is often local: never route through an http_proxy the environment may set.
        options = [("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", -1),
                   ("grpc.max_send_message_length", -1)]
        self._channel = (grpc.secure_channel(target, credentials, options=options) if credentials
                         else grpc.insecure_channel(target, options=options))
        self._timeout = timeout
        self._metadata = list((metadata or {}).items())
        self._autodiff = autodiff_pb2_grpc.AutodiffStub(self._channel)
        self._models = models_pb2_grpc.ModelsStub(self._channel)
        self._sessions = sessions_pb2_grpc.SessionsStub(self._channel)
        self.round_trips = 0
        self.commands_sent = 0

    def close(self):
        self._channel.close()

    def _call(self, method, request):
        self.round_trips += 1
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise error_from_rpc(e) from None

    # Stateless transforms.

    def transform(self, kind, request):
        message, method = {
            "evaluate": (autodiff_pb2.EvaluateRequest, self._autodiff.Evaluate),
            "gradient": (autodiff_pb2.GradientRequest, self._autodiff.Gradient),
            "jvp": (autodiff_pb2.JvpRequest, self._autodiff.Jvp),
            "jacobian": (autodiff_pb2.JacobianRequest, self._autodiff.Jacobian),
            "hessian": (autodiff_pb2.HessianRequest, self._autodiff.Hessian),
        }[kind]
        reply = self._call(method, _request(message, request))
        return _decode(reply)

    def gradient_stream(self, request):
        self.round_trips += 1
        call = self._autodiff.GradientStream(_request(autodiff_pb2.GradientRequest, request), timeout=self._timeout,
                                             metadata=self._metadata)
        try:
            for chunk in call:
                if chunk.HasField("stats"):
                    yield ("stats", _stats(chunk.stats))
                    continue
                t = chunk.tensor
                dtype = T.proto_dtype_name(t.dtype, tensor_pb2)
                yield ("chunk", {"name": t.name, "role": t.role, "dtype": dtype if t.offset == 0 else None,
                                 "shape": list(t.shape) if t.offset == 0 else None, "offset": t.offset,
                                 "array": np.frombuffer(t.data, dtype=T.WIRE_TO_NUMPY[dtype]), "last": t.last})
        except grpc.RpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    def inspect(self, request):
        message = autodiff_pb2.InspectRequest(computation=_computation(request["source"]),
                                              inputs={k: T.to_proto(v, tensor_pb2) for k, v in request.get("inputs", {}).items()})
        reply = self._call(self._autodiff.Inspect, message)
        return {"valid": reply.valid,
                "values": {v.name: (T.proto_dtype_name(v.dtype, tensor_pb2), list(v.shape)) for v in reply.values},
                "flops": reply.flops, "peak_bytes": reply.peak_bytes, "dot": reply.dot, "mermaid": reply.mermaid,
                "peak_bytes_exact": reply.peak_bytes_exact, "peak_bytes_caveat": reply.peak_bytes_caveat or None}

    def ops(self):
        reply = self._call(self._autodiff.ListOps, autodiff_pb2.ListOpsRequest())
        return [{"name": o.name, "category": o.category, "summary": o.summary, "differentiable": o.differentiable,
                 "inputs": [i.name for i in o.inputs], "attributes": [a.name for a in o.attributes],
                 "aliases": list(o.aliases)} for o in reply.ops]

    def devices(self):
        reply = self._call(self._autodiff.ListDevices, autodiff_pb2.ListDevicesRequest())
        return {"devices": [{"name": d.name, "kind": d.kind, "memory_bytes": d.memory_bytes, "units": d.units,
                             "description": d.description} for d in reply.devices],
                "default_device": reply.default_device}

    def put_model(self, name, source):
        kind, value = source
        if kind == "program":
            message = models_pb2.PutModelRequest(name=name, program=value)
        elif kind == "graph":
            message = models_pb2.PutModelRequest(name=name, graph=graph_to_proto(value))
        else:
            raise TypeError("a model is registered from a program or a graph")
        return _model_info(self._call(self._models.Put, message))

    def get_model(self, name):
        return _model_info(self._call(self._models.Get, models_pb2.GetModelRequest(name=name)))

    def list_models(self):
        return [_model_info(m) for m in self._call(self._models.List, models_pb2.ListModelsRequest()).models]

    def delete_model(self, name):
        self._call(self._models.Delete, models_pb2.DeleteModelRequest(name=name))

    # Sessions: the bidirectional stream is the session; one batch is sent whole, then its replies are read.

    def open_session(self, options):
        stream = _SessionStream(self._sessions, self._timeout, self._metadata)
        open_command = sessions_pb2.Command(open=sessions_pb2.SessionOptions(
            gradient_mode=sessions_pb2.GRADIENT_MODE_OVERWRITE if options.get("gradient_mode") == "overwrite"
            else sessions_pb2.GRADIENT_MODE_ACCUMULATE,
            memory_bytes=options.get("memory_bytes") or 0, idle_timeout_ms=options.get("idle_timeout_ms") or 0,
            strict_scalar_seed=bool(options.get("strict_scalar_seed")), detect_anomaly=bool(options.get("detect_anomaly"))))
        # The open command rides along with the first batch: opening costs no round trip of its own.
        stream.opening = open_command
        return stream

    def run_session(self, stream, commands):
        self.round_trips += 1
        self.commands_sent += len(commands)
        messages = [_command_proto(c) for c in commands]
        opening, stream.opening = stream.opening, None
        replies = stream.exchange(([opening] if opening is not None else []) + messages)
        if opening is not None:
            opened, replies = replies[0], replies[1:]
            if opened.HasField("error"):
                stream.close()
                raise _command_error(opened.error, None)
        results = []
        for i, reply in enumerate(replies):
            if reply.HasField("error"):
                return results, _command_error(reply.error, i)
            results.append(T.from_proto(reply.value, tensor_pb2) if reply.HasField("value") else None)
        return results, None

    def close_session(self, stream):
        stream.close()


class _SessionStream:
    """One Sessions.Run call: commands go out through a queue, replies are read in order."""

    def __init__(self, stub, timeout, metadata):
        self._outbox = queue.Queue()
        self._sent = 0
        self._lock = threading.Lock()
        # The stream lives as long as the session; its deadline is the server's idle timeout, not a call timeout.
        self._replies = stub.Run(iter(self._outbox.get, None), metadata=metadata)
        self._closed = False
        self.opening = None

    def exchange(self, commands):
        with self._lock:
            if self._closed:
                raise AutogradError("not_found", "the session is closed")
            for c in commands:
                self._outbox.put(c)
            replies = []
            try:
                for _ in commands:
                    reply = next(self._replies)
                    if reply.command_index != self._sent:
                        raise AutogradError("internal", f"reply {reply.command_index} answers command {self._sent}")
                    self._sent += 1
                    replies.append(reply)
            except grpc.RpcError as e:
                self._closed = True
                raise error_from_rpc(e) from None
            except StopIteration:
                self._closed = True
                raise AutogradError("not_found", "the server ended the session") from None
            return replies

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._outbox.put(None)
            try:
                for _ in self._replies:  # the server ends the stream once ours is closed
                    pass
            except grpc.RpcError:
                pass


def error_from_rpc(e):
    """A grpc.RpcError as AutogradError: the code from ErrorInfo (or the autograd-code trailer), node/op/input from its metadata."""
    trailers = dict(e.trailing_metadata() or ()) if hasattr(e, "trailing_metadata") else {}
    code = trailers.get("autograd-code")
    facts = {}
    details = trailers.get("grpc-status-details-bin")
    if details:
        status = status_pb2.Status.FromString(details)
        for d in status.details:
            if d.type_url.endswith("/google.rpc.ErrorInfo"):
                info = status_pb2.ErrorInfo.FromString(d.value)
                code = code or info.reason
                facts = dict(info.metadata)
    status_code = e.code() if hasattr(e, "code") else None
    if code is None:
        code = {grpc.StatusCode.UNAVAILABLE: "unavailable", grpc.StatusCode.DEADLINE_EXCEEDED: "deadline_exceeded",
                grpc.StatusCode.CANCELLED: "cancelled", grpc.StatusCode.UNAUTHENTICATED: "unauthenticated"}.get(status_code, "internal")
    index = facts.get("command_index")
    return AutogradError(code, (e.details() if hasattr(e, "details") else None) or str(e), node=facts.get("node"),
                         op=facts.get("op"), input=facts.get("input"), status=status_code.name if status_code else None,
                         command_index=int(index) if index is not None else None, trace_id=trailers.get("trace-id"))


def _command_error(error, index):
    return AutogradError(error.code, error.detail, node=error.node or None, op=error.op or None,
                         input=error.input or None, command_index=index)


def _computation(source):
    kind, value = source
    if kind == "program":
        return autodiff_pb2.Computation(program=value)
    if kind == "model":
        return autodiff_pb2.Computation(model=value)
    return autodiff_pb2.Computation(graph=graph_to_proto(value))


def _request(message, request):
    m = message(computation=_computation(request["source"]))
    for key, value in request.items():
        if key == "source" or value is None:
            continue
        if key in ("inputs", "seeds", "tangents", "vector"):
            for k, v in value.items():
                getattr(m, key)[k].CopyFrom(T.to_proto(v, tensor_pb2))
        elif key == "limits":
            m.limits.memory_bytes = int(value.get("memory_bytes") or 0)
            m.limits.timeout_ms = int(value.get("timeout_ms") or 0)
        elif key == "mode":
            m.mode = _MODES[value]
        elif key in ("outputs", "wrt", "intermediates"):
            getattr(m, key).extend(value)
        else:
            setattr(m, key, value)
    return m


def _stats(s):
    return {"forward_ms": s.forward_ms, "backward_ms": s.backward_ms, "peak_bytes": s.peak_bytes,
            "nodes_executed": s.nodes_executed, "device": s.device or "cpu"}


def _tensors(m):
    return {k: T.from_proto(v, tensor_pb2) for k, v in m.items()}


def _decode(reply):
    out = {"outputs": _tensors(reply.outputs)}
    fields = {f.name for f in reply.DESCRIPTOR.fields}
    if "gradients" in fields:
        out["gradients"] = _tensors(reply.gradients)
        out["intermediates"] = {k: (T.from_proto(v.value, tensor_pb2), T.from_proto(v.adjoint, tensor_pb2) if v.HasField("adjoint") else None)
                                for k, v in reply.intermediates.items()}
    if "tangents_out" in fields:
        out["tangents_out"] = _tensors(reply.tangents_out)
    if "jacobians" in fields:
        out["jacobians"] = {o: _tensors(row.by_input) for o, row in reply.jacobians.items()}
        out["mode_used"] = _MODE_NAMES.get(reply.mode_used, "auto")
    if "hessians" in fields:
        out["hessians"] = {o: _tensors(row.by_input) for o, row in reply.hessians.items()}
        out["hvp"] = _tensors(reply.hvp)
    out["stats"] = _stats(reply.stats)
    return out


def _model_info(m):
    return {"name": m.name, "inputs": [{"name": p.name, "dtype": T.proto_dtype_name(p.dtype, tensor_pb2),
                                        "shape": list(p.shape) if p.has_shape else None} for p in m.inputs],
            "outputs": list(m.outputs), "node_count": m.node_count, "flops": m.flops, "peak_bytes": m.peak_bytes}


def graph_to_proto(graph):
    """A graph in the contract's JSON form (a dict) as a protobuf Graph; a Graph message passes through."""
    if isinstance(graph, graph_pb2.Graph):
        return graph
    g = graph_pb2.Graph()
    for p in graph.get("inputs", []):
        if isinstance(p, str):
            g.inputs.add(name=p, dtype=tensor_pb2.DTYPE_FLOAT32)
            continue
        param = g.inputs.add(name=p["name"], dtype=T._proto_dtype(p.get("dtype", "float32"), tensor_pb2))
        if p.get("shape") is not None:
            param.shape.extend(p["shape"])
            param.has_shape = True
    for n in graph.get("nodes", []):
        node = g.nodes.add(op=n["op"], name=n.get("name", ""))
        node.inputs.extend(_literal(i) if not isinstance(i, str) else i for i in n.get("inputs", []))
        node.outputs.extend(n.get("outputs") or ([n["output"]] if "output" in n else []))
        for k, v in (n.get("attrs") or {}).items():
            node.attrs[k].CopyFrom(_attribute(v))
    g.outputs.extend(graph.get("outputs", []))
    for k, v in (graph.get("constants") or {}).items():
        g.constants[k].CopyFrom(T.to_proto(_tensor_value(v), tensor_pb2))
    return g


def _literal(value):
    return repr(float(value)) if not isinstance(value, int) else str(value)


def _tensor_value(v):
    return T.from_json(v) if isinstance(v, dict) else v


def _attribute(v):
    a = graph_pb2.Attribute()
    if isinstance(v, bool):
        a.b = v
    elif isinstance(v, int):
        a.i = v
    elif isinstance(v, float):
        a.f = v
    elif isinstance(v, str):
        a.s = v
    elif isinstance(v, (list, tuple)):
        if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            a.ints.values.extend(v)
        else:
            a.floats.values.extend(float(x) for x in v)
    elif isinstance(v, dict) and ("nodes" in v or "outputs" in v or "graph" in v):
        a.graph.CopyFrom(graph_to_proto(v.get("graph", v)))
    else:
        a.tensor.CopyFrom(T.to_proto(_tensor_value(v.get("tensor", v) if isinstance(v, dict) else v), tensor_pb2))
    return a


def _command_proto(command):
    (kind, args), = command.items()
    pb = sessions_pb2
    if kind == "variable":
        return pb.Command(variable=pb.VariableCommand(name=args["name"], value=T.to_proto(args["value"], tensor_pb2),
                                                      requires_grad=bool(args.get("requires_grad", True))))
    if kind == "constant":
        return pb.Command(constant=pb.ConstantCommand(name=args["name"], value=T.to_proto(args["value"], tensor_pb2)))
    if kind == "apply":
        if "program" in args:
            return pb.Command(apply=pb.ApplyCommand(program=args["program"]))
        apply = pb.ApplyCommand(op=args["op"], inputs=[i if isinstance(i, str) else _literal(i) for i in args["inputs"]],
                                output=args["output"])
        for k, v in (args.get("attrs") or {}).items():
            apply.attrs[k].CopyFrom(_attribute(v))
        return pb.Command(apply=apply)
    if kind == "fetch":
        return pb.Command(fetch=pb.FetchCommand(name=args["name"]))
    if kind == "backward":
        b = pb.BackwardCommand(output=args["output"], retain_graph=bool(args.get("retain_graph")),
                               create_graph=bool(args.get("create_graph")))
        if args.get("seed") is not None:
            b.seed.CopyFrom(T.to_proto(args["seed"], tensor_pb2))
        return pb.Command(backward=b)
    if kind == "grad":
        return pb.Command(grad=pb.GradCommand(name=args["name"], output=args.get("output") or ""))
    if kind == "zero_grad":
        return pb.Command(zero_grad=pb.ZeroGradCommand(names=args.get("names", [])))
    if kind == "detach":
        return pb.Command(detach=pb.DetachCommand(name=args["name"], output=args["output"]))
    if kind == "no_grad":
        return pb.Command(no_grad=pb.NoGradCommand(enabled=bool(args.get("enabled", True))))
    if kind == "release":
        return pb.Command(release=pb.ReleaseCommand(names=args.get("names", [])))
    raise ValueError(f"unknown session command {kind!r}")
