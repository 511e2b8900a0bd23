using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx;

/// <summary>
/// Convolution, pooling, padding and normalization, composed from engine ops. A window op gathers every window's
/// elements with one import-time index table (im2col: <c>gather</c> over the flattened spatial axes, out-of-range
/// positions reading one appended pad element), then multiplies (Conv) or reduces (pools). Gather's derivative is
/// scatter_add, so the gradients are the engine's own and exact.
/// </summary>
internal static partial class OnnxOps
{
    private static void AddNn(Dictionary<string, Converter> t)
    {
        t["Conv"] = Conv;
        t["MaxPool"] = c =>
        {
            if (c.Wants(1)) throw c.Unsupported("returns Indices, which is not supported");
            if (c.Int("storage_order", 0) != 0) throw c.Unsupported("with storage_order 1 is not supported");
            var x = c.In(0);
            var w = Windows(c, x, KernelOf(c), double.NegativeInfinity, ceil: c.Int("ceil_mode", 0) != 0);
            return One(c.Emit("reshape", A(("shape", w.OutputShape)), c.Emit("max", A(("axes", new[] { 2 })), w.Columns)));
        };
        t["AveragePool"] = c =>
        {
            var x = c.In(0);
            var w = Windows(c, x, KernelOf(c), 0, ceil: c.Int("ceil_mode", 0) != 0, dilationsAllowed: c.Opset >= 19);
            var sum = c.Emit("sum", A(("axes", new[] { 2 })), w.Columns);
            var counts = c.Int("count_include_pad", 0) != 0 ? w.CountsWithPad : w.Counts;
            var mean = c.Emit("div", sum, NodeContext.Const(HostTensor.FromDoubles(x.DType, Shape.Vector(counts.Length), counts)));
            return One(c.Emit("reshape", A(("shape", w.OutputShape)), mean));
        };
        t["GlobalAveragePool"] = c => One(GlobalPool(c, "mean"));
        t["GlobalMaxPool"] = c => One(GlobalPool(c, "max"));
        t["Pad"] = Pad;
        t["BatchNormalization"] = c =>
        {
            if (c.Int("training_mode", 0) != 0 || c.Wants(1) || c.Wants(2))
                throw c.Unsupported("is supported in inference mode only (training_mode 0, one output)");
            var x = c.In(0);
            int rank = c.Rank(x, "its input");
            double eps = c.Float("epsilon", 1e-5);
            var scale = PerChannel(c, c.In(1), rank);
            var bias = PerChannel(c, c.In(2), rank);
            var mean = PerChannel(c, c.In(3), rank);
            var variance = PerChannel(c, c.In(4), rank);
            var factor = c.Emit("mul", scale, c.Emit("rsqrt", c.Emit("add", variance, NodeContext.Scalar(eps, variance.DType))));
            return One(c.Emit("add", c.Emit("mul", c.Emit("sub", x, mean), factor), bias));
        };
        t["InstanceNormalization"] = c =>
        {
            var x = c.In(0);
            int rank = c.Rank(x, "its input");
            var axes = Enumerable.Range(2, rank - 2).Select(a => (long)a).ToArray();
            var y = Normalize(c, x, axes, c.Float("epsilon", 1e-5), out _, out _);
            return One(c.Emit("add", c.Emit("mul", y, PerChannel(c, c.In(1), rank)), PerChannel(c, c.In(2), rank)));
        };
        t["LayerNormalization"] = c =>
        {
            var x = c.In(0);
            int rank = c.Rank(x, "its input");
            int axis = c.Axis(c.Int("axis", -1), rank);
            var axes = Enumerable.Range(axis, rank - axis).Select(a => (long)a).ToArray();
            var y = Normalize(c, x, axes, c.Float("epsilon", 1e-5), out var mean, out var invStd);
            y = c.Emit("mul", y, c.In(1));
            if (c.Opt(2) is { } bias) y = c.Emit("add", y, bias);
            return [y, mean, invStd];
        };
    }

    /// <summary>(x - mean) / sqrt(var + eps) over <paramref name="axes"/>, with the mean and 1/sqrt(var + eps) kept.</summary>
    private static Val Normalize(NodeContext c, Val x, long[] axes, double eps, out Val mean, out Val invStd)
    {
        var keep = A(("axes", axes), ("keepdims", true));
        mean = c.Emit("mean", keep, x);
        var centered = c.Emit("sub", x, mean);
        var variance = c.Emit("mean", keep, c.Emit("square", centered));
        invStd = c.Emit("rsqrt", c.Emit("add", variance, NodeContext.Scalar(eps, variance.DType)));
        return c.Emit("mul", centered, invStd);
    }

    /// <summary>A per-channel vector [C] shaped [C, 1, …, 1] to broadcast over [N, C, spatial…].</summary>
    private static Val PerChannel(NodeContext c, Val v, int rank)
    {
        var shape = new long[Math.Max(rank - 1, 1)];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        return c.Emit("reshape", A(("shape", shape)), v);
    }

    private static Val GlobalPool(NodeContext c, string op)
    {
        var x = c.In(0);
        int rank = c.Rank(x, "its input");
        var axes = Enumerable.Range(2, rank - 2).Select(a => (long)a).ToArray();
        return axes.Length == 0 ? x : c.Emit(op, A(("axes", axes), ("keepdims", true)), x);
    }

    private static long[] KernelOf(NodeContext c) => c.Ints("kernel_shape") ?? throw c.Invalid("needs kernel_shape");

    private static Val[] Conv(NodeContext c)
    {
        var (x, weight) = (c.In(0), c.In(1));
        var wd = c.Dims(weight, "its weights");
        int groups = (int)c.Int("group", 1);
        var kernel = c.Ints("kernel_shape") ?? wd[2..].Select(d => (long)d).ToArray();
        var w = Windows(c, x, kernel, 0, ceil: false);
        int n = w.InputDims[0], channels = w.InputDims[1], m = wd[0];
        if (groups < 1 || channels % groups != 0 || m % groups != 0 || wd[1] != channels / groups)
            throw c.Invalid($"weights {string.Join("x", wd)} do not fit {channels} input channels in {groups} groups");
        long k = w.WindowSize, l = w.Positions, perGroup = channels / groups * k;
        // [N, C, K, L] → [N, g, C/g·K, L]; weights [M, C/g, k…] → [g, M/g, C/g·K]; their product is [N, g, M/g, L].
        var cols = c.Emit("reshape", A(("shape", new[] { n, groups, perGroup, l })), w.Columns);
        var wm = c.Emit("reshape", A(("shape", new[] { groups, m / groups, perGroup })), weight);
        var y = c.Emit("matmul", wm, cols);
        var shape = w.OutputShape.ToArray();
        shape[1] = m;
        y = c.Emit("reshape", A(("shape", shape)), y);
        if (c.Opt(2) is { } bias) y = c.Emit("add", y, PerChannel(c, bias, shape.Length));
        return [y];
    }

    /// <summary>Every window of x gathered: Columns is [N, C, K, L] (K elements per window, L output positions).</summary>
    private sealed record WindowColumns(Val Columns, int[] InputDims, long[] OutputShape, long WindowSize, long Positions, double[] Counts, double[] CountsWithPad);

    private static WindowColumns Windows(NodeContext c, Val x, long[] kernel, double padValue, bool ceil, bool dilationsAllowed = true)
    {
        var dims = c.Dims(x, "its input");
        int spatial = dims.Length - 2;
        if (spatial < 1 || kernel.Length != spatial) throw c.Invalid($"a {spatial}-d input needs a kernel of {spatial} sizes, got {kernel.Length}");
        var strides = c.Ints("strides") ?? Ones(spatial);
        var dilations = c.Ints("dilations") ?? Ones(spatial);
        if (!dilationsAllowed && dilations.Any(d => d != 1)) throw c.Unsupported("with dilations is not supported at this opset");
        var pads = c.Ints("pads") ?? new long[2 * spatial];
        if (strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw c.Invalid("strides, dilations and pads must match the spatial rank");
        if (kernel.Any(v => v < 1) || strides.Any(v => v < 1) || dilations.Any(v => v < 1) || pads.Any(v => v < 0))
            throw c.Invalid("kernel sizes, strides and dilations must be positive and pads not negative");
        var autoPad = c.Str("auto_pad", "NOTSET");
        var outDims = new long[spatial];
        for (int d = 0; d < spatial; d++)
        {
            long input = dims[d + 2], span = dilations[d] * (kernel[d] - 1) + 1;
            switch (autoPad)
            {
                case "SAME_UPPER" or "SAME_LOWER":
                {
                    outDims[d] = (input + strides[d] - 1) / strides[d];
                    long total = Math.Max((outDims[d] - 1) * strides[d] + span - input, 0);
                    long small = total / 2;
                    (pads[d], pads[d + spatial]) = autoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small);
                    break;
                }
                case "VALID":
                    pads[d] = pads[d + spatial] = 0;
                    outDims[d] = (input - span) / strides[d] + 1;
                    break;
                case "NOTSET" or "":
                {
                    long room = input + pads[d] + pads[d + spatial] - span;
                    outDims[d] = (ceil ? (room + strides[d] - 1) / strides[d] : room / strides[d]) + 1;
                    // A last window that would start past the input and its left pad is dropped (PyTorch's ceil rule).
                    if (ceil && (outDims[d] - 1) * strides[d] >= input + pads[d]) outDims[d]--;
                    break;
                }
                default:
                    throw c.Invalid($"unknown auto_pad '{autoPad}'");
            }
            if (outDims[d] < 1) throw c.Invalid($"the window does not fit spatial axis {d} (size {input})");
        }

        long windowSize = kernel.Aggregate(1L, (a, b) => a * b);
        long positions = outDims.Aggregate(1L, (a, b) => a * b);
        long inputSize = 1;
        for (int d = 0; d < spatial; d++) inputSize *= dims[d + 2];
        if (windowSize * positions * dims[0] * dims[1] > Shape.MaxElements)
            throw c.Unsupported($"would gather {windowSize * positions * dims[0] * dims[1]} window elements, more than a tensor may have");

        c.Reserve(windowSize * positions + 2 * positions + (long)dims[0] * dims[1], DType.Int64, "the window index table");
        var table = new long[windowSize * positions];
        var counts = new double[positions];
        var countsWithPad = new double[positions];
        bool padded = false;
        var o = new long[spatial];
        var q = new long[spatial];
        for (long p = 0; p < positions; p++)
        {
            Unravel(p, outDims, o);
            for (long kk = 0; kk < windowSize; kk++)
            {
                Unravel(kk, kernel, q);
                long flat = 0;
                bool inside = true, insidePad = true;
                for (int d = 0; d < spatial; d++)
                {
                    long pos = o[d] * strides[d] - pads[d] + q[d] * dilations[d];
                    inside &= pos >= 0 && pos < dims[d + 2];
                    insidePad &= pos >= -pads[d] && pos < dims[d + 2] + pads[d + spatial];
                    flat = flat * dims[d + 2] + Math.Clamp(pos, 0, dims[d + 2] - 1);
                }
                table[kk * positions + p] = inside ? flat : inputSize;
                padded |= !inside;
                if (inside) counts[p]++;
                if (insidePad) countsWithPad[p]++;
            }
        }

        var flatX = c.Emit("reshape", A(("shape", new long[] { dims[0], dims[1], inputSize })), x);
        if (padded)
        {
            var fill = HostTensor.FromDoubles(x.DType, new Shape(dims[0], dims[1], 1), Enumerable.Repeat(padValue, dims[0] * dims[1]).ToArray());
            flatX = c.Emit("concat", A(("axis", 2)), flatX, NodeContext.Const(fill));
        }
        var index = NodeContext.Const(new HostTensor(DType.Int64, new Shape((int)windowSize, (int)positions), table));
        var columns = c.Emit("gather", A(("axis", 2)), flatX, index);
        var outputShape = new long[] { dims[0], dims[1] }.Concat(outDims).ToArray();
        return new WindowColumns(columns, dims, outputShape, windowSize, positions, counts, countsWithPad);
    }

    private static long[] Ones(int n) => Enumerable.Repeat(1L, n).ToArray();

    private static void Unravel(long flat, long[] sizes, long[] index)
    {
        for (int d = sizes.Length - 1; d >= 0; d--)
        {
            index[d] = flat % sizes[d];
            flat /= sizes[d];
        }
    }

    /// <summary>Pad, axis by axis: constant mode joins constant slabs, reflect and edge gather mirrored or clamped indices.</summary>
    private static Val[] Pad(NodeContext c)
    {
        var x = c.In(0);
        var dims = c.Dims(x, "its input").ToArray();
        int rank = dims.Length;
        var mode = c.Str("mode", "constant");
        long[] pads;
        double value;
        long[] axes;
        if (c.Opset >= 11)
        {
            pads = c.StaticInts(c.In(1), "the pads");
            value = c.Opt(2) is { } v ? c.StaticDoubles(v, "the constant value")[0] : 0;
            axes = c.Opt(3) is { } a ? c.StaticInts(a, "the axes").Select(ax => (long)c.Axis(ax, rank)).ToArray() : Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        }
        else
        {
            pads = c.Ints("pads") ?? throw c.Invalid("needs pads");
            value = c.Float("value", 0);
            axes = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        }
        if (pads.Length != 2 * axes.Length) throw c.Invalid($"pads has {pads.Length} entries for {axes.Length} axes");
        for (int i = 0; i < axes.Length; i++)
        {
            int axis = (int)axes[i];
            long before = pads[i], after = pads[i + axes.Length];
            if (before < 0 || after < 0)
            {
                long start = Math.Max(-before, 0), stop = dims[axis] - Math.Max(-after, 0);
                x = c.Emit("slice", A(("starts", new[] { start }), ("stops", new[] { stop }), ("axes", new long[] { axis })), x);
                dims[axis] = (int)Math.Max(stop - start, 0);
                before = Math.Max(before, 0);
                after = Math.Max(after, 0);
            }
            if (before == 0 && after == 0) continue;
            if (mode == "constant")
            {
                var parts = new List<Val>();
                long rest = 1;
                for (int d = 0; d < dims.Length; d++) if (d != axis) rest *= dims[d];
                c.Reserve(rest * (before + after), x.DType, "the pad values");
                if (before > 0) parts.Add(Slab(x.DType, dims, axis, before, value));
                parts.Add(x);
                if (after > 0) parts.Add(Slab(x.DType, dims, axis, after, value));
                x = c.Emit("concat", A(("axis", axis)), parts.ToArray());
            }
            else if (mode is "reflect" or "edge")
            {
                long n = dims[axis];
                if (n == 0 || (mode == "reflect" && n == 1 && (before > 0 || after > 0)))
                    throw c.Invalid($"cannot {mode}-pad an axis of size {n}");
                c.Reserve(n + before + after, DType.Int64, "the pad indices");
                var index = new long[n + before + after];
                for (long j = 0; j < index.Length; j++)
                {
                    long pos = j - before;
                    index[j] = mode == "edge" ? Math.Clamp(pos, 0, n - 1) : Reflect(pos, n);
                }
                x = c.Emit("gather", A(("axis", axis)), x, NodeContext.Const(HostTensor.Of(index, index.Length)));
            }
            else
            {
                throw c.Unsupported($"with mode '{mode}' is not supported (constant, reflect and edge are)");
            }
            dims[axis] = (int)(dims[axis] + before + after);
        }
        return [x];
    }

    private static long Reflect(long pos, long n)
    {
        long period = 2 * (n - 1);
        long m = ((pos % period) + period) % period;
        return m < n ? m : period - m;
    }

    private static Val Slab(DType dtype, int[] dims, int axis, long length, double value)
    {
        var shape = (int[])dims.Clone();
        shape[axis] = (int)length;
        var s = new Shape(shape);
        return NodeContext.Const(HostTensor.FromDoubles(dtype, s, Enumerable.Repeat(value, checked((int)s.ElementCount)).ToArray()));
    }
}
