"""Sessions as tensors: define-by-run over the network.

Every operation on a session's :class:`Tensor` becomes a command that is queued, not sent. The queue goes out as one
batch (one request over REST, one write-then-read over the gRPC stream) only when a value must come back: ``bool()``
of a comparison (``while b.norm() < 1000``), ``.item()``, ``float()``, ``.numpy()``, ``repr``, or ``flush()``. So a
client's own loop costs one round trip per decision it makes, and everything between decisions travels together.
"""
import itertools
import math
import numbers
import threading

import numpy as np

from . import _tensors as T
from ._errors import AutogradError


class Session:
    """A session on the service; use it as a context manager (or call :meth:`close`) to free its memory.

    ``gradient_mode="accumulate"`` is PyTorch's ``.grad`` (adds up until ``zero_grad``); ``"overwrite"`` is
    MXNet/TF/JAX's (each backward replaces).
    """

    def __init__(self, transport, options):
        self._transport = transport
        self._options = options
        self._handle = None
        self._pending = []  # (command dict, callback(result) or None)
        self._names = itertools.count()
        self._lock = threading.RLock()
        self._closed = False
        self._unbound = set()  # names whose command failed or never ran: nothing to release

    # Lifetime.

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending = []
            if self._handle is not None:
                self._transport.close_session(self._handle)
                self._handle = None

    @property
    def closed(self):
        return self._closed

    # Values.

    def tensor(self, value, requires_grad=False, dtype=None, name=None):
        """A value in the session, like ``torch.tensor``: numpy dtypes are kept, Python floats become float32."""
        arr = np.asarray(value, dtype=dtype) if dtype is not None else value
        arr = T.as_array(arr)
        t = Tensor(self, name or self._new_name(), requires_grad=requires_grad, value=arr)
        kind = "variable" if requires_grad else "constant"
        args = {"name": t._name, "value": arr}
        if requires_grad:
            args["requires_grad"] = True
        self._queue({kind: args})
        return t

    def no_grad(self):
        """A context in which applied ops are not recorded (``torch.no_grad()``)."""
        return _NoGrad(self)

    def zero_grad(self, *tensors):
        self._queue({"zero_grad": {"names": [t._name for t in tensors]}})

    def flush(self):
        """Sends every queued command now (one round trip) and fills in the values they fetched."""
        with self._lock:
            if self._closed:
                raise AutogradError("not_found", "the session is closed")
            batch, self._pending = self._pending, []
            if not batch:
                return
            if self._handle is None:
                self._handle = self._transport.open_session(self._options)
            results, error = self._transport.run_session(self._handle, [c for c, _ in batch])
            for (command, callback), result in zip(batch, results):
                if callback is not None:
                    callback(result)
            if error is not None:
                # The failed command bound nothing (and over REST nothing after it ran): never release those names.
                for command, _ in batch[error.command_index or 0:]:
                    (kind, args), = command.items()
                    if kind in ("apply", "grad", "detach"):
                        self._unbound.add(args.get("output"))
                    elif kind in ("variable", "constant"):
                        self._unbound.add(args.get("name"))
                if error.command_index is not None and error.command_index < len(batch):
                    (kind, args), = batch[error.command_index][0].items()
                    error.message = f"{error.message} (in {kind} {_describe(kind, args)})"
                    error.args = (f"{error.code}: {error.message}",)
                raise error

    # Internals used by Tensor.

    def _new_name(self):
        return f"_t{next(self._names)}"

    def _queue(self, command, callback=None):
        if self._closed:
            raise AutogradError("not_found", "the session is closed")
        self._pending.append((command, callback))

    def _release(self, name):
        # Called from Tensor.__del__: never raise, never send; the release rides along with the next batch.
        if self._closed:
            return
        if name in self._unbound:
            self._unbound.discard(name)
        else:
            self._pending.append(({"release": {"names": [name]}}, None))

    def _operand(self, value):
        """A command operand: a tensor, a finite Python number (sent as a literal), else a new constant tensor."""
        if isinstance(value, Tensor):
            if value._session is not self:
                raise ValueError("tensors of different sessions cannot be combined")
            return value
        if isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_)) and np.ndim(value) == 0 \
                and math.isfinite(float(value)) and not isinstance(value, np.generic):
            # A weakly typed literal: a float32 tensor times 2 stays float32, as in PyTorch.
            return value
        return self.tensor(value)

    def _apply(self, op, inputs, attrs=None):
        # The operands stay referenced until the apply is queued: a constant made for a numpy operand would otherwise
        # die at once and queue the release of its name before the command that reads it.
        operands = [self._operand(i) for i in inputs]
        out = Tensor(self, self._new_name())
        args = {"op": op, "inputs": [o._name if isinstance(o, Tensor) else o for o in operands], "output": out._name}
        if attrs:
            args["attrs"] = attrs
        self._queue({"apply": args})
        return out


class _NoGrad:
    def __init__(self, session):
        self._session = session

    def __enter__(self):
        self._session._queue({"no_grad": {"enabled": True}})

    def __exit__(self, *exc):
        if not self._session.closed:
            self._session._queue({"no_grad": {"enabled": False}})


def _describe(kind, args):
    if kind == "apply":
        return f"{args.get('op')}({', '.join(str(i) for i in args.get('inputs', []))}) -> {args.get('output')}"
    return ", ".join(f"{k}={v}" for k, v in args.items() if k in ("name", "output", "names"))


class Tensor:
    """A value living in a session. Arithmetic and methods queue commands; values come back only when asked for."""

    # numpy scalars and arrays defer to our reflected operators (np.float32(2) * t is a session op, not a fetch).
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, session, name, requires_grad=False, value=None):
        self._session = session
        self._name = name
        self._value = value
        self._requires_grad = requires_grad

    def __del__(self):
        try:
            self._session._release(self._name)
        except Exception:  # interpreter shutdown: nothing left to tell
            pass

    # Values back from the service.

    def numpy(self):
        """The value as a numpy array (fetches it if not known yet)."""
        if self._value is None:
            self._session._queue({"fetch": {"name": self._name}}, self._store)
            self._session.flush()
            if self._value is None:
                raise AutogradError("internal", f"no value came back for {self._name}")
        return self._value

    def _store(self, value):
        self._value = value

    def item(self):
        arr = self.numpy()
        if arr.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {arr.shape}")
        return arr.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr.astype(dtype) if dtype is not None else arr

    def __bool__(self):
        arr = self.numpy()
        if arr.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous; use .all() or .any() on .numpy()")
        return bool(arr.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        return int(self.item())

    @property
    def shape(self):
        return self.numpy().shape

    @property
    def dtype(self):
        return self.numpy().dtype

    def __repr__(self):
        if self._session.closed and self._value is None:
            return f"tensor(<{self._name}, session closed>)"
        grad = ", requires_grad=True" if self._requires_grad else ""
        return f"tensor({np.array2string(self.numpy(), separator=', ')}{grad})"

    __hash__ = object.__hash__  # == builds a tensor, so identity stays the hash

    # Autograd.

    @property
    def requires_grad(self):
        return self._requires_grad

    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Queues the backward pass from this value (a seed for non-scalar outputs, as in PyTorch)."""
        args = {"output": self._name}
        if gradient is not None:
            args["seed"] = T.as_array(gradient.numpy() if isinstance(gradient, Tensor) else gradient)
        if retain_graph:
            args["retain_graph"] = True
        if create_graph:
            args["create_graph"] = True
        self._session._queue({"backward": args})

    @property
    def grad(self):
        """This leaf's gradient as of now (a new session value; differentiable after ``create_graph``)."""
        out = Tensor(self._session, self._session._new_name())
        self._session._queue({"grad": {"name": self._name, "output": out._name}}, out._store)
        return out

    def zero_grad(self):
        self._session.zero_grad(self)

    def detach(self):
        out = Tensor(self._session, self._session._new_name())
        self._session._queue({"detach": {"name": self._name, "output": out._name}})
        if self._value is not None:
            out._value = self._value
        return out

    # Operators.

    def _binary(self, op, other, reflected=False):
        if other is None:
            return NotImplemented
        return self._session._apply(op, [other, self] if reflected else [self, other])

    def __add__(self, other): return self._binary("add", other)
    def __radd__(self, other): return self._binary("add", other, True)
    def __sub__(self, other): return self._binary("sub", other)
    def __rsub__(self, other): return self._binary("sub", other, True)
    def __mul__(self, other): return self._binary("mul", other)
    def __rmul__(self, other): return self._binary("mul", other, True)
    def __truediv__(self, other): return self._binary("div", other)
    def __rtruediv__(self, other): return self._binary("div", other, True)
    def __pow__(self, other): return self._binary("pow", other)
    def __rpow__(self, other): return self._binary("pow", other, True)
    def __matmul__(self, other): return self._binary("matmul", other)
    def __rmatmul__(self, other): return self._binary("matmul", other, True)
    def __lt__(self, other): return self._binary("lt", other)
    def __le__(self, other): return self._binary("le", other)
    def __gt__(self, other): return self._binary("gt", other)
    def __ge__(self, other): return self._binary("ge", other)
    def __eq__(self, other): return self._binary("eq", other)
    def __ne__(self, other): return self._binary("ne", other)
    def __neg__(self): return self._session._apply("neg", [self])
    def __pos__(self): return self
    def __abs__(self): return self._session._apply("abs", [self])

    # Methods (the PyTorch names; axes as dim=).

    def _reduce(self, op, dim, keepdim):
        attrs = {}
        if dim is not None:
            attrs["axes"] = [dim] if isinstance(dim, int) else list(dim)
        if keepdim:
            attrs["keepdims"] = True
        return self._session._apply(op, [self], attrs)

    def sum(self, dim=None, keepdim=False): return self._reduce("sum", dim, keepdim)
    def mean(self, dim=None, keepdim=False): return self._reduce("mean", dim, keepdim)
    def prod(self, dim=None, keepdim=False): return self._reduce("prod", dim, keepdim)
    def max(self, dim=None, keepdim=False): return self._reduce("max", dim, keepdim)
    def min(self, dim=None, keepdim=False): return self._reduce("min", dim, keepdim)
    def norm(self): return self._session._apply("norm", [self])
    def dot(self, other): return self._session._apply("dot", [self, other])
    def matmul(self, other): return self._session._apply("matmul", [self, other])
    def exp(self): return self._session._apply("exp", [self])
    def log(self): return self._session._apply("log", [self])
    def sin(self): return self._session._apply("sin", [self])
    def cos(self): return self._session._apply("cos", [self])
    def tan(self): return self._session._apply("tan", [self])
    def tanh(self): return self._session._apply("tanh", [self])
    def sigmoid(self): return self._session._apply("sigmoid", [self])
    def relu(self): return self._session._apply("relu", [self])
    def sqrt(self): return self._session._apply("sqrt", [self])
    def abs(self): return self._session._apply("abs", [self])
    def square(self): return self._session._apply("square", [self])
    def reciprocal(self): return self._session._apply("reciprocal", [self])

    def reshape(self, *shape):
        dims = list(shape[0]) if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else list(shape)
        return self._session._apply("reshape", [self], {"shape": dims})

    def apply(self, op, *others, **attrs):
        """Any op of the service by name (``GET /v1/ops``), this tensor first: ``x.apply("softplus")``."""
        return self._session._apply(op, [self, *others], attrs or None)
