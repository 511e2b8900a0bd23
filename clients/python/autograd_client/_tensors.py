"""numpy arrays to and from the service's tensor forms (JSON and protobuf), dtype kept."""
import base64
import numbers

import numpy as np

# Wire dtypes and the numpy dtypes they are, little-endian as the contract says.
WIRE_TO_NUMPY = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int64": np.dtype("<i8"),
    "bool": np.dtype("bool"),
}

# Tensors with more elements than this travel as raw bytes (gRPC) or base64 (REST); smaller ones as readable numbers.
INLINE_MAX_ELEMENTS = 64


class TensorSpec:
    """A tensor's type without values, for inspect: ``spec([4])`` or ``spec([2, 3], "float64")``."""

    def __init__(self, shape, dtype="float32"):
        self.shape = [int(d) for d in shape]
        self.dtype = wire_dtype(np.dtype(dtype)) if not isinstance(dtype, str) else dtype

    def __repr__(self):
        return f"TensorSpec({self.shape}, {self.dtype!r})"


def spec(shape, dtype="float32"):
    return TensorSpec(shape, dtype)


def wire_dtype(dtype):
    """The contract's dtype name for a numpy dtype (float64 stays float64; narrower ints widen to int64)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "bool"
    if dtype.kind == "f":
        if dtype.itemsize == 8:
            return "float64"
        if dtype.itemsize <= 4:
            return "float32"
    if dtype.kind in "iu" and (dtype.kind == "i" or dtype.itemsize < 8):
        return "int64"
    raise TypeError(f"the service has no dtype for numpy {dtype} (float32, float64, int64 and bool travel)")


def as_array(value):
    """Any array-like as a numpy array of a wire dtype.

    numpy arrays and numpy scalars keep their dtype (float64 stays float64). Plain Python numbers and lists follow the
    service's (and PyTorch's) default: floats are float32, ints int64, bools bool.
    """
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
    else:
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
    if arr.dtype.kind == "O":
        raise TypeError(f"cannot send {type(value).__name__} as a tensor")
    target = WIRE_TO_NUMPY[wire_dtype(arr.dtype)]
    # np.ascontiguousarray would turn a 0-d array into shape (1,): scalars must stay scalars.
    return np.asarray(arr, dtype=target, order="C")


def _json_number(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    f = float(v)
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    return f


def to_json(value):
    """The contract's JSON tensor: {dtype, shape, data} when small, {dtype, shape, b64} when large."""
    if isinstance(value, TensorSpec):
        return {"dtype": value.dtype, "shape": value.shape}
    arr = as_array(value)
    out = {"dtype": wire_dtype(arr.dtype), "shape": list(arr.shape)}
    if arr.size > INLINE_MAX_ELEMENTS:
        out["b64"] = base64.b64encode(arr.tobytes()).decode("ascii")
    else:
        out["data"] = [_json_number(v) for v in arr.reshape(-1).tolist()]
    return out


def _from_json_number(v):
    if isinstance(v, str):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[v]
    return v


def from_json(obj):
    """A JSON tensor from the service (data or b64) as a numpy array of its dtype and shape."""
    dtype = WIRE_TO_NUMPY[obj.get("dtype", "float32")]
    shape = tuple(obj.get("shape", ()))
    if "b64" in obj:
        arr = np.frombuffer(base64.b64decode(obj["b64"]), dtype=dtype).copy()
    else:
        arr = np.array([_from_json_number(v) for v in obj.get("data", [])], dtype=dtype)
    return arr.reshape(shape)


def to_proto(value, tensor_pb2):
    """A protobuf Tensor: typed repeated field when small, raw little-endian bytes when large."""
    if isinstance(value, TensorSpec):
        return tensor_pb2.Tensor(dtype=_proto_dtype(value.dtype, tensor_pb2), shape=value.shape)
    arr = as_array(value)
    name = wire_dtype(arr.dtype)
    t = tensor_pb2.Tensor(dtype=_proto_dtype(name, tensor_pb2), shape=list(arr.shape))
    if arr.size > INLINE_MAX_ELEMENTS:
        t.raw = arr.tobytes()
    elif arr.size:
        flat = arr.reshape(-1).tolist()
        {"float32": t.float_data, "float64": t.double_data, "int64": t.int64_data, "bool": t.bool_data}[name].extend(flat)
    return t


def _proto_dtype(name, tensor_pb2):
    return {"float32": tensor_pb2.DTYPE_FLOAT32, "float64": tensor_pb2.DTYPE_FLOAT64,
            "int64": tensor_pb2.DTYPE_INT64, "bool": tensor_pb2.DTYPE_BOOL}[name]


def proto_dtype_name(value, tensor_pb2):
    return {tensor_pb2.DTYPE_FLOAT32: "float32", tensor_pb2.DTYPE_FLOAT64: "float64",
            tensor_pb2.DTYPE_INT64: "int64", tensor_pb2.DTYPE_BOOL: "bool"}[value]


def from_proto(t, tensor_pb2):
    """A protobuf Tensor as a numpy array, whichever data field the server filled."""
    dtype = WIRE_TO_NUMPY[proto_dtype_name(t.dtype, tensor_pb2)]
    shape = tuple(t.shape)
    if t.raw:
        arr = np.frombuffer(t.raw, dtype=dtype).copy()
    else:
        field = {np.dtype("<f4"): t.float_data, np.dtype("<f8"): t.double_data,
                 np.dtype("<i8"): t.int64_data, np.dtype("bool"): t.bool_data}[dtype]
        arr = np.array(list(field), dtype=dtype)
    return arr.reshape(shape)
