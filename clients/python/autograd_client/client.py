"""The client: stateless transforms, models, and sessions, over REST or gRPC."""
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from . import _tensors as T
from ._errors import AutogradError


@dataclass(frozen=True)
class Model:
    """A registered model, by name, as the computation of a call: ``client.gradient(Model("f"), ...)``."""
    name: str


@dataclass
class Stats:
    forward_ms: float = 0.0
    backward_ms: float = 0.0
    peak_bytes: int = 0
    nodes_executed: int = 0
    device: str = "cpu"  # where the computation ran (what "auto" chose)


@dataclass
class EvaluateResult:
    outputs: Dict[str, np.ndarray]
    stats: Stats


@dataclass
class GradientResult:
    outputs: Dict[str, np.ndarray]
    gradients: Dict[str, np.ndarray]
    # value name -> (value, adjoint): the chain rule's per-node terms, for the names asked for.
    intermediates: Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]]
    stats: Stats


@dataclass
class JvpResult:
    outputs: Dict[str, np.ndarray]
    tangents_out: Dict[str, np.ndarray]
    stats: Stats


@dataclass
class JacobianResult:
    outputs: Dict[str, np.ndarray]
    # jacobians[output][input] has shape output.shape + input.shape.
    jacobians: Dict[str, Dict[str, np.ndarray]]
    mode_used: str
    stats: Stats


@dataclass
class HessianResult:
    outputs: Dict[str, np.ndarray]
    hessians: Dict[str, Dict[str, np.ndarray]]
    hvp: Dict[str, np.ndarray]
    stats: Stats


@dataclass
class InspectResult:
    valid: bool
    # value name -> (dtype, shape); a shape may hold None (unknown) dimensions or be None (unknown rank).
    values: Dict[str, Tuple[Optional[str], Optional[list]]]
    flops: int
    peak_bytes: int
    dot: str
    mermaid: str
    # False when peak_bytes may be off (loops are counted for one iteration...); peak_bytes_caveat then says why.
    peak_bytes_exact: bool = True
    peak_bytes_caveat: Optional[str] = None


@dataclass
class StreamedTensor:
    """One complete tensor of a streamed gradient: role is "output" or "gradient"."""
    role: str
    name: str
    array: np.ndarray


class GradientStream:
    """Iterates StreamedTensor items as the service sends them; ``stats`` is set once the stream has ended."""

    def __init__(self, chunks):
        self._chunks = chunks
        self.stats = None

    def __iter__(self):
        pending = {}
        for kind, item in self._chunks:
            if kind == "stats":
                self.stats = Stats(**item)
                continue
            key = (item["role"], item["name"])
            if item["offset"] == 0:
                pending[key] = {"dtype": item["dtype"], "shape": item["shape"], "parts": []}
            pending[key]["parts"].append(item["array"])
            if item["last"]:
                t = pending.pop(key)
                flat = np.concatenate(t["parts"]) if len(t["parts"]) > 1 else np.array(t["parts"][0])
                yield StreamedTensor(item["role"], item["name"],
                                     flat.astype(T.WIRE_TO_NUMPY[t["dtype"]], copy=False).reshape(t["shape"]))


def _names(value):
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _tensor_map(value):
    return None if value is None else {k: v for k, v in value.items()}


class Client:
    """A connection to AutogradService.

    ``Client("http://127.0.0.1:8080")`` speaks REST JSON; ``Client("grpc://127.0.0.1:8081")`` (or
    ``Client("127.0.0.1:8081", transport="grpc")``) speaks gRPC. ``api_key`` is sent as ``x-api-key`` when the
    service requires one. Every method raises :class:`AutogradError` on failure.
    """

    def __init__(self, address="http://127.0.0.1:8080", transport=None, timeout=60.0, api_key=None):
        parsed = urllib.parse.urlsplit(address if "://" in address else "//" + address)
        transport = transport or {"grpc": "grpc", "http": "rest", "https": "rest"}.get(parsed.scheme, "rest")
        headers = {"x-api-key": api_key} if api_key else None
        if transport == "grpc":
            from ._grpc import GrpcTransport
            target = parsed.netloc or address
            self._transport = GrpcTransport(target, timeout, metadata=headers)
        elif transport == "rest":
            from ._rest import RestTransport
            url = address if parsed.scheme in ("http", "https") else "http://" + (parsed.netloc or address)
            self._transport = RestTransport(url, timeout, headers=headers)
        else:
            raise ValueError(f"transport must be 'rest' or 'grpc', got {transport!r}")

    @property
    def transport(self):
        """'rest' or 'grpc'."""
        return self._transport.name

    @property
    def round_trips(self):
        """Requests sent so far (each session batch counts once): what batching saves shows here."""
        return self._transport.round_trips

    @property
    def commands_sent(self):
        """Session commands sent so far, over all batches."""
        return self._transport.commands_sent

    def close(self):
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Stateless transforms.

    @staticmethod
    def _source(computation):
        if isinstance(computation, Model):
            return ("model", computation.name)
        if isinstance(computation, str):
            return ("program", computation)
        if isinstance(computation, dict) or hasattr(computation, "SerializeToString"):
            return ("graph", computation)
        raise TypeError("the computation is a program (str), a graph (dict, or a protobuf Graph over gRPC) or a Model(name)")

    def _common(self, computation, inputs, outputs, limits, detect_anomaly, device):
        return {"source": self._source(computation), "inputs": dict(inputs or {}), "outputs": _names(outputs),
                "limits": limits, "detect_anomaly": True if detect_anomaly else None, "device": device}

    def evaluate(self, computation, inputs=None, *, outputs=None, limits=None, detect_anomaly=False, device=None):
        r = self._transport.transform("evaluate", self._common(computation, inputs, outputs, limits, detect_anomaly, device))
        return EvaluateResult(r.get("outputs", {}), Stats(**r.get("stats", {})))

    def gradient(self, computation, inputs=None, wrt=None, *, seeds=None, intermediates=None, outputs=None,
                 limits=None, detect_anomaly=False, device=None):
        request = self._common(computation, inputs, outputs, limits, detect_anomaly, device)
        request.update(wrt=_names(wrt), seeds=_tensor_map(seeds), intermediates=_names(intermediates))
        r = self._transport.transform("gradient", request)
        return GradientResult(r.get("outputs", {}), r.get("gradients", {}), r.get("intermediates", {}), Stats(**r.get("stats", {})))

    def gradient_stream(self, computation, inputs=None, wrt=None, *, seeds=None, outputs=None, limits=None,
                        detect_anomaly=False, device=None):
        """Outputs when the forward pass ends, each gradient as soon as it is final: iterate the result."""
        request = self._common(computation, inputs, outputs, limits, detect_anomaly, device)
        request.update(wrt=_names(wrt), seeds=_tensor_map(seeds))
        return GradientStream(self._transport.gradient_stream(request))

    def jvp(self, computation, inputs=None, tangents=None, *, outputs=None, limits=None, detect_anomaly=False, device=None):
        request = self._common(computation, inputs, outputs, limits, detect_anomaly, device)
        request.update(tangents=_tensor_map(tangents))
        r = self._transport.transform("jvp", request)
        return JvpResult(r.get("outputs", {}), r.get("tangents_out", {}), Stats(**r.get("stats", {})))

    def jacobian(self, computation, inputs=None, wrt=None, *, mode="auto", outputs=None, limits=None,
                 detect_anomaly=False, device=None):
        if mode not in ("auto", "forward", "reverse"):
            raise ValueError(f"mode must be auto, forward or reverse, got {mode!r}")
        request = self._common(computation, inputs, outputs, limits, detect_anomaly, device)
        request.update(wrt=_names(wrt), mode=mode)
        r = self._transport.transform("jacobian", request)
        return JacobianResult(r.get("outputs", {}), r.get("jacobians", {}), r.get("mode_used", "auto"), Stats(**r.get("stats", {})))

    def hessian(self, computation, inputs=None, wrt=None, *, vector=None, outputs=None, limits=None,
                detect_anomaly=False, device=None):
        request = self._common(computation, inputs, outputs, limits, detect_anomaly, device)
        request.update(wrt=_names(wrt), vector=_tensor_map(vector))
        r = self._transport.transform("hessian", request)
        return HessianResult(r.get("outputs", {}), r.get("hessians", {}), r.get("hvp", {}) or {}, Stats(**r.get("stats", {})))

    def inspect(self, computation, inputs=None):
        """Shapes, FLOPs, peak bytes and the graph as DOT and Mermaid. Inputs may be arrays or ``spec(shape, dtype)``."""
        r = self._transport.inspect({"source": self._source(computation), "inputs": dict(inputs or {})})
        return InspectResult(**r)

    def ops(self):
        """Every op the service knows (name, inputs, attributes, whether it is differentiable)."""
        return self._transport.ops()

    def devices(self):
        """The devices the service computes on, ``{"devices": [{name, kind, memory_bytes, units, description}],
        "default_device": ...}``; a request's ``device`` names one of them (or ``auto``)."""
        return self._transport.devices()

    # Models: compile once, run many.

    def put_model(self, name, computation):
        return self._transport.put_model(name, self._source(computation))

    def get_model(self, name):
        return self._transport.get_model(name)

    def list_models(self):
        return self._transport.list_models()

    def delete_model(self, name):
        self._transport.delete_model(name)

    # Sessions.

    def session(self, gradient_mode="accumulate", *, memory_bytes=None, idle_timeout_ms=None, strict_scalar_seed=False,
                detect_anomaly=False):
        """A define-by-run session whose values behave like tensors (see :class:`autograd_client.Session`)."""
        from .session import Session
        return Session(self._transport, {"gradient_mode": gradient_mode, "memory_bytes": memory_bytes,
                                         "idle_timeout_ms": idle_timeout_ms,
                                         "strict_scalar_seed": strict_scalar_seed or None,
                                         "detect_anomaly": detect_anomaly or None})


__all__ = ["Client", "Model", "Stats", "EvaluateResult", "GradientResult", "JvpResult", "JacobianResult",
           "HessianResult", "InspectResult", "StreamedTensor", "GradientStream", "AutogradError"]
