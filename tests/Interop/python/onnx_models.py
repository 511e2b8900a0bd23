#!/usr/bin/python3
"""Builds the ONNX models the interop clients serve over the Open Inference Protocol: a small MLP, a small CNN and a
transformer block, made with ONNX's own helpers (Debian's python3-onnx), opset 17, float32, fixed weights.

Usage: onnx_models.py OUT_DIR
Writes OUT_DIR/<name>.onnx for each model and OUT_DIR/models.json describing them for clients in any language:
{name: {"file", "inputs": [{"name", "shape", "data"}], "outputs": [...], "differentiate": output, "wrt": input}}.
"""
import json
import os
import sys

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

OPSET = 17
rng = np.random.RandomState(7)


def weight(name, *shape, scale=0.5):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def const(name, values):
    return numpy_helper.from_array(np.asarray(values), name)


def model(name, nodes, inputs, outputs, initializers):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="autograd-interop")
    checker.check_model(m)
    return m


def fp32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def mlp():
    """x[4, 8] -> Gemm -> Relu -> Gemm -> Sigmoid -> Gemm -> Softmax: the classic dense classifier."""
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "W2", "b2"], ["h2"], transB=1),
        helper.make_node("Sigmoid", ["h2"], ["a2"]),
        helper.make_node("Gemm", ["a2", "W3", "b3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    init = [weight("W1", 8, 16), weight("b1", 16), weight("W2", 12, 16), weight("b2", 12), weight("W3", 12, 3), weight("b3", 3)]
    return model("mlp", nodes, [fp32("x", [4, 8])], [fp32("probs", [4, 3]), fp32("logits", [4, 3])], init)


def cnn():
    """x[2, 1, 8, 8] -> Conv -> BatchNormalization -> Relu -> MaxPool -> Pad -> Conv -> AveragePool -> GlobalAveragePool
    -> Flatten -> Gemm -> LogSoftmax."""
    nodes = [
        helper.make_node("Conv", ["x", "K1", "c1"], ["conv1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["conv1", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Pad", ["p1", "pads"], ["padded"], mode="constant"),
        helper.make_node("Conv", ["padded", "K2", "c2"], ["conv2"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv2"], ["r2"]),
        helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["logp"], axis=1),
    ]
    init = [
        weight("K1", 4, 1, 3, 3), weight("c1", 4),
        numpy_helper.from_array(np.array([1.0, 0.8, 1.2, 0.9], np.float32), "gamma"), weight("beta", 4, scale=0.1),
        weight("mean", 4, scale=0.1), numpy_helper.from_array(np.array([1.0, 0.5, 2.0, 1.5], np.float32), "var"),
        const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        weight("K2", 6, 4, 3, 3, scale=0.3), weight("c2", 6), weight("W", 6, 5), weight("b", 5),
    ]
    return model("cnn", nodes, [fp32("x", [2, 1, 8, 8])], [fp32("logp", [2, 5])], init)


def transformer():
    """A pre-norm transformer block on x[1, 4, 8] with two heads: LayerNormalization, Q/K/V projections, heads split
    by Reshape + Transpose, scaled scores with a causal mask (Trilu + Where), Softmax, the output projection and a
    residual; then LayerNormalization, a GELU MLP written with Erf, and a second residual."""
    t, d, heads = 4, 8, 2
    hd = d // heads
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln1_g", "ln1_b"], ["n1"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n1", "Wq"], ["q"]),
        helper.make_node("MatMul", ["n1", "Wk"], ["k"]),
        helper.make_node("MatMul", ["n1", "Wv"], ["v"]),
        helper.make_node("Reshape", ["q", "split_shape"], ["q4"]),
        helper.make_node("Reshape", ["k", "split_shape"], ["k4"]),
        helper.make_node("Reshape", ["v", "split_shape"], ["v4"]),
        helper.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k4"], ["kT"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kT"], ["raw_scores"]),
        helper.make_node("Div", ["raw_scores", "sqrt_hd"], ["scores"]),
        helper.make_node("Trilu", ["ones"], ["causal"], upper=0),
        helper.make_node("Cast", ["causal"], ["keep"], to=TensorProto.BOOL),
        helper.make_node("Where", ["keep", "scores", "minus_big"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "vh"], ["ctx_h"]),
        helper.make_node("Transpose", ["ctx_h"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "Wo"], ["proj"]),
        helper.make_node("Add", ["x", "proj"], ["res1"]),
        helper.make_node("LayerNormalization", ["res1", "ln2_g", "ln2_b"], ["n2"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n2", "W1"], ["u"]),
        helper.make_node("Add", ["u", "b1"], ["ub"]),
        helper.make_node("Div", ["ub", "sqrt2"], ["us"]),
        helper.make_node("Erf", ["us"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["erf1"]),
        helper.make_node("Mul", ["ub", "erf1"], ["gx"]),
        helper.make_node("Mul", ["gx", "half"], ["gelu"]),
        helper.make_node("MatMul", ["gelu", "W2"], ["down"]),
        helper.make_node("Add", ["res1", "down"], ["y"]),
        helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[1], keepdims=0),
    ]
    init = [
        numpy_helper.from_array(np.ones(d, np.float32), "ln1_g"), weight("ln1_b", d, scale=0.1),
        weight("Wq", d, d), weight("Wk", d, d), weight("Wv", d, d), weight("Wo", d, d),
        const("split_shape", np.array([1, t, heads, hd], np.int64)), const("merge_shape", np.array([1, t, d], np.int64)),
        numpy_helper.from_array(np.array(np.sqrt(hd), np.float32), "sqrt_hd"),
        numpy_helper.from_array(np.ones((t, t), np.float32), "ones"),
        numpy_helper.from_array(np.array(-1e9, np.float32), "minus_big"),
        numpy_helper.from_array(np.ones(d, np.float32), "ln2_g"), weight("ln2_b", d, scale=0.1),
        weight("W1", d, 2 * d), weight("b1", 2 * d, scale=0.1), weight("W2", 2 * d, d),
        numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"), numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    return model("transformer", nodes, [fp32("x", [1, t, d])], [fp32("y", [1, t, d]), fp32("pooled", [1, d])], init)


def sample(shape):
    return [round(float(v), 4) for v in rng.standard_normal(int(np.prod(shape)))]


def write(out):
    os.makedirs(out, exist_ok=True)
    description = {}
    for build, differentiate in ((mlp, "probs"), (cnn, "logp"), (transformer, "pooled")):
        m = build()
        name = m.graph.name
        path = os.path.join(out, f"{name}.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        inputs = [{"name": i.name, "shape": [d.dim_value for d in i.type.tensor_type.shape.dim]} for i in m.graph.input]
        for i in inputs:
            i["data"] = sample(i["shape"])
        outputs = [{"name": o.name, "shape": [d.dim_value for d in o.type.tensor_type.shape.dim]} for o in m.graph.output]
        description[name] = {"file": f"{name}.onnx", "inputs": inputs, "outputs": outputs,
                             "differentiate": differentiate, "wrt": inputs[0]["name"]}
    with open(os.path.join(out, "models.json"), "w") as f:
        json.dump(description, f, indent=1)
    print(f"wrote {', '.join(description)} to {out}")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else ".")
