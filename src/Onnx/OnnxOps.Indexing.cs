using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx;

/// <summary>
/// GatherElements and the losses built on it (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss). GatherElements
/// becomes one gather over the flattened data at flat positions: an import-time table of every position's offset
/// along the other axes plus the index times the axis' stride, so its derivative is gather's (scatter_add).
/// </summary>
internal static partial class OnnxOps
{
    private static void AddIndexing(Dictionary<string, Converter> t)
    {
        t["GatherElements"] = c => One(GatherElements(c, c.In(0), c.In(1), (int)c.Int("axis", 0)));
        t["NegativeLogLikelihoodLoss"] = c => One(NllLoss(c, c.In(0), c.In(1), c.Opt(2)));
        t["SoftmaxCrossEntropyLoss"] = c =>
        {
            var logProb = c.Emit("log_softmax", A(("axis", 1)), c.In(0));
            return [NllLoss(c, logProb, c.In(1), c.Opt(2)), logProb];
        };
    }

    private static Val GatherElements(NodeContext c, Val data, Val indices, long axisAttr)
    {
        var dd = c.Dims(data, "its data");
        var id = c.Dims(indices, "its indices");
        if (dd.Length != id.Length) throw c.Invalid($"data has rank {dd.Length} and indices rank {id.Length}; they must match");
        int axis = c.Axis(axisAttr, dd.Length);
        var strides = new long[dd.Length];
        for (int d = dd.Length - 1, s = 1; d >= 0; s *= dd[d], d--) strides[d] = s;
        var shape = new Shape(id);
        c.Reserve(shape.ElementCount, DType.Int64, "the gather positions");
        var offsets = new long[shape.ElementCount];
        var index = new long[id.Length];
        var sizes = id.Select(v => (long)v).ToArray();
        for (long p = 0; p < offsets.Length; p++)
        {
            Unravel(p, sizes, index);
            long flat = 0;
            for (int d = 0; d < id.Length; d++)
            {
                if (d == axis) continue;
                if (index[d] >= dd[d]) throw c.Invalid($"indices {shape} reach past data {new Shape(dd)} on axis {d}");
                flat += index[d] * strides[d];
            }
            offsets[p] = flat;
        }
        long size = dd[axis];
        var idx = indices.DType == DType.Int64 ? indices : Cast(c, indices, DType.Int64);
        var negative = c.Emit("lt", idx, NodeContext.Scalar(0, DType.Int64));
        idx = c.Emit("where", negative, c.Emit("add", idx, NodeContext.Scalar(size, DType.Int64)), idx);
        var positions = c.Emit("add", NodeContext.Const(new HostTensor(DType.Int64, shape, offsets)), c.Emit("mul", idx, NodeContext.Scalar(strides[axis], DType.Int64)));
        var flatData = c.Emit("reshape", A(("shape", new[] { -1L })), data);
        return c.Emit("gather", A(("axis", 0)), flatData, positions);
    }

    /// <summary>-input[n, target, …] · weight[target], with ignore_index masked out, then mean (weighted), sum or none.</summary>
    private static Val NllLoss(NodeContext c, Val input, Val target, Val? weight)
    {
        var reduction = c.Str("reduction", "mean");
        if (reduction is not ("mean" or "sum" or "none")) throw c.Invalid($"unknown reduction '{reduction}'");
        Val? ignored = null;
        var safeTarget = target;
        if (c.Has("ignore_index"))
        {
            ignored = c.Emit("eq", target, NodeContext.Scalar(c.Int("ignore_index", 0), DType.Int64));
            safeTarget = c.Emit("where", ignored, NodeContext.Scalar(0, DType.Int64), target);
        }
        var picked = c.Emit("squeeze", A(("axes", new[] { 1L })),
            GatherElements(c, input, c.Emit("unsqueeze", A(("axes", new[] { 1L })), safeTarget), 1));
        Val? weights = weight is null ? null : c.Emit("gather", A(("axis", 0)), weight, safeTarget);
        if (ignored is not null)
            weights = c.Emit("where", ignored, NodeContext.Scalar(0, input.DType), weights ?? NodeContext.Scalar(1, input.DType));
        var loss = c.Emit("neg", weights is null ? picked : c.Emit("mul", picked, weights));
        return reduction switch
        {
            "none" => loss,
            "sum" => c.Emit("sum", loss),
            _ when weights is null => c.Emit("mean", loss),
            _ => c.Emit("div", c.Emit("sum", loss), c.Emit("sum", weights)),
        };
    }
}
