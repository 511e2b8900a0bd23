"""Python client for AutogradService: numpy in and out, over REST JSON or gRPC.

    import numpy as np, autograd_client as ag
    client = ag.Client("http://127.0.0.1:8080")          # or "grpc://127.0.0.1:8081"
    g = client.gradient("y = 2 * dot(x, x)", {"x": np.arange(4.0)}, wrt="x").gradients["x"]   # [0, 4, 8, 12]

Sessions run your own Python control flow on the service, PyTorch style:

    with client.session() as s:
        a = s.tensor(0.5, requires_grad=True)
        b = a * 2
        while b.norm() < 1000:
            b = b * 2
        b.backward()
        print(a.grad.item())                               # 1024.0
"""
from ._errors import AutogradError
from ._tensors import TensorSpec, spec
from .client import (Client, EvaluateResult, GradientResult, GradientStream, HessianResult, InspectResult,
                     JacobianResult, JvpResult, Model, Stats, StreamedTensor)
from .session import Session, Tensor

__version__ = "0.1.0"

__all__ = ["Client", "Model", "Session", "Tensor", "AutogradError", "TensorSpec", "spec", "Stats", "EvaluateResult",
           "GradientResult", "GradientStream", "JvpResult", "JacobianResult", "HessianResult", "InspectResult",
           "StreamedTensor"]
