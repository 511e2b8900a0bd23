"""PyTorch's reading of the models onnx_models.py builds: the same computation written with torch ops from the ONNX
files' own weights, in float64, as an oracle independent of the service for the outputs and their VJPs.

reference(kind, model_path, inputs, output, cotangent) -> (outputs by name, the VJP of `output` with `cotangent` by
the first input).
"""
import math

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _weights(path):
    model = onnx.load(path)
    return {t.name: torch.tensor(numpy_helper.to_array(t), dtype=torch.float64) for t in model.graph.initializer}


def _mlp(w, x):
    a1 = torch.relu(x @ w["W1"] + w["b1"])
    a2 = torch.sigmoid(a1 @ w["W2"].T + w["b2"])
    logits = a2 @ w["W3"] + w["b3"]
    return {"probs": torch.softmax(logits, dim=1), "logits": logits}


def _cnn(w, x):
    h = F.conv2d(x, w["K1"], w["c1"], padding=1)
    h = F.batch_norm(h, w["mean"], w["var"], w["gamma"], w["beta"], training=False, eps=1e-5)
    h = F.max_pool2d(torch.relu(h), 2, 2)
    h = torch.relu(F.conv2d(F.pad(h, (1, 1, 1, 1)), w["K2"], w["c2"]))
    h = F.avg_pool2d(h, 2, 1)
    flat = h.mean(dim=(2, 3))
    return {"logp": torch.log_softmax(flat @ w["W"] + w["b"], dim=1)}


def _transformer(w, x):
    t, d, heads = x.shape[1], x.shape[2], 2
    hd = d // heads
    n1 = F.layer_norm(x, (d,), w["ln1_g"], w["ln1_b"], 1e-5)
    split = lambda m: (n1 @ m).reshape(1, t, heads, hd)
    q, k, v = split(w["Wq"]).permute(0, 2, 1, 3), split(w["Wk"]).permute(0, 2, 3, 1), split(w["Wv"]).permute(0, 2, 1, 3)
    scores = (q @ k) / math.sqrt(hd)
    keep = torch.tril(torch.ones(t, t, dtype=torch.bool))
    attn = torch.softmax(torch.where(keep, scores, torch.tensor(-1e9, dtype=torch.float64)), dim=-1)
    ctx = (attn @ v).permute(0, 2, 1, 3).reshape(1, t, d)
    res1 = x + ctx @ w["Wo"]
    n2 = F.layer_norm(res1, (d,), w["ln2_g"], w["ln2_b"], 1e-5)
    u = n2 @ w["W1"] + w["b1"]
    gelu = u * (1 + torch.erf(u / math.sqrt(2))) * 0.5
    y = res1 + gelu @ w["W2"]
    return {"y": y, "pooled": y.mean(dim=1)}


FORWARD = {"mlp": _mlp, "cnn": _cnn, "transformer": _transformer}


def reference(kind, path, inputs, output, cotangent):
    w = _weights(path)
    first = inputs[0]
    x = torch.tensor(first["data"], dtype=torch.float64).reshape(first["shape"]).requires_grad_(True)
    outputs = FORWARD[kind](w, x)
    seed = torch.tensor(cotangent, dtype=torch.float64).reshape(outputs[output].shape)
    (vjp,) = torch.autograd.grad(outputs[output], x, seed)
    return {k: v.detach().flatten().tolist() for k, v in outputs.items()}, vjp.flatten().tolist()
