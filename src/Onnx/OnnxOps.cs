using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx;

/// <summary>
/// Each supported ONNX op (default domain) as engine ops. Converters compose existing engine ops, never state
/// derivatives, and fold what is known at import. This file: elementwise, matrix, reduction and shape ops;
/// OnnxOps.Nn.cs: convolution, pooling, padding and normalization; OnnxOps.ControlFlow.cs: If and Loop.
/// </summary>
internal static partial class OnnxOps
{
    public static IReadOnlyDictionary<string, Converter> Table { get; } = Build();

    /// <summary>The supported op types, for documentation and the conformance report.</summary>
    public static IReadOnlyCollection<string> Supported => (IReadOnlyCollection<string>)Table.Keys;

    private static Dictionary<string, Converter> Build()
    {
        var t = new Dictionary<string, Converter>(StringComparer.Ordinal);
        AddElementwise(t);
        AddMatrix(t);
        AddReductions(t);
        AddShape(t);
        AddNn(t);
        AddIndexing(t);
        AddControlFlow(t);
        return t;
    }

    private static Attributes A(params (string, AttrValue)[] values) => Attributes.Of(values);

    private static Val[] One(Val v) => [v];

    private static void AddElementwise(Dictionary<string, Converter> t)
    {
        foreach (var (onnx, engine) in new[]
        {
            ("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("Exp", "exp"), ("Log", "log"), ("Sqrt", "sqrt"),
            ("Neg", "neg"), ("Abs", "abs"), ("Reciprocal", "reciprocal"), ("Sin", "sin"), ("Cos", "cos"), ("Tan", "tan"),
            ("Erf", "erf"), ("Softplus", "softplus"), ("Sign", "sign"), ("Not", "logical_not"),
        })
            t[onnx] = c => One(c.Emit(engine, c.In(0)));

        foreach (var (onnx, engine) in new[]
        {
            ("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Equal", "eq"), ("Less", "lt"), ("LessOrEqual", "le"),
            ("Greater", "gt"), ("GreaterOrEqual", "ge"), ("And", "logical_and"), ("Or", "logical_or"), ("Xor", "ne"),
        })
            t[onnx] = c => One(c.Emit(engine, c.In(0), Legacy(c, c.In(0), c.In(1))));

        t["Div"] = c =>
        {
            var (a, b) = (c.In(0), Legacy(c, c.In(0), c.In(1)));
            if (a.DType.IsFloating()) return One(c.Emit("div", a, b));
            // Integer division truncates in ONNX; the engine divides floats only, so integers are shape arithmetic.
            if (!a.IsConst || !b.IsConst) throw c.Unsupported("divides integers at run time (only import-time integer division is supported)");
            return One(IntegerBinary(c, a, b, (x, y) => y == 0 ? throw c.Invalid("integer division by zero") : x / y));
        };
        t["Mod"] = c =>
        {
            var (a, b) = (c.In(0), c.In(1));
            if (a.DType.IsFloating() || !a.IsConst || !b.IsConst) throw c.Unsupported("is supported for import-time integers only");
            bool fmod = c.Int("fmod", 0) != 0;
            return One(IntegerBinary(c, a, b, (x, y) =>
            {
                if (y == 0) throw c.Invalid("modulo by zero");
                long r = x % y;
                return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y;
            }));
        };
        t["Pow"] = c =>
        {
            var (x, y) = (c.In(0), c.In(1));
            if (!x.DType.IsFloating()) throw c.Unsupported("raises integers to powers (cast the base to float first)");
            if (y.DType != x.DType) y = Cast(c, y, x.DType);
            return One(c.Emit("pow", x, y));
        };
        t["Where"] = c => One(c.Emit("where", c.In(0), c.In(1), c.In(2)));
        t["Max"] = c => One(c.Present.Aggregate((a, b) => c.Emit("maximum", a, b)));
        t["Min"] = c => One(c.Present.Aggregate((a, b) => c.Emit("minimum", a, b)));
        t["Sum"] = c => One(c.Present.Aggregate((a, b) => c.Emit("add", a, b)));
        t["Mean"] = c =>
        {
            var all = c.Present.ToArray();
            var sum = all.Aggregate((a, b) => c.Emit("add", a, b));
            return One(all.Length == 1 ? sum : c.Emit("div", sum, NodeContext.Scalar(all.Length, sum.DType)));
        };
        t["Clip"] = c =>
        {
            var x = c.In(0);
            Val? min = c.Opset >= 11 ? c.Opt(1) : c.Has("min") ? NodeContext.Scalar(c.Float("min", 0), x.DType) : null;
            Val? max = c.Opset >= 11 ? c.Opt(2) : c.Has("max") ? NodeContext.Scalar(c.Float("max", 0), x.DType) : null;
            if (min is not null) x = c.Emit("maximum", x, min);
            if (max is not null) x = c.Emit("minimum", x, max);
            return One(x);
        };
        t["LeakyRelu"] = c =>
        {
            var x = c.In(0);
            var negative = c.Emit("lt", x, NodeContext.Scalar(0, x.DType));
            return One(c.Emit("where", negative, c.Emit("mul", x, NodeContext.Scalar(c.Float("alpha", 0.01), x.DType)), x));
        };
        t["PRelu"] = c =>
        {
            var (x, slope) = (c.In(0), c.In(1));
            // Before opset 7 a one-axis slope is per channel (axis 1).
            if (c.Opset < 7 && slope.Rank == 1 && c.Rank(x, "its input") > 2) slope = PerChannel(c, slope, x.Rank!.Value);
            var negative = c.Emit("lt", x, NodeContext.Scalar(0, x.DType));
            return One(c.Emit("where", negative, c.Emit("mul", x, slope), x));
        };
        t["Elu"] = c =>
        {
            var x = c.In(0);
            var negative = c.Emit("lt", x, NodeContext.Scalar(0, x.DType));
            var below = c.Emit("mul", c.Emit("expm1", x), NodeContext.Scalar(c.Float("alpha", 1.0), x.DType));
            return One(c.Emit("where", negative, below, x));
        };
        t["Selu"] = c =>
        {
            var x = c.In(0);
            double alpha = c.Float("alpha", 1.67326319217681884765625), gamma = c.Float("gamma", 1.05070102214813232421875);
            var negative = c.Emit("le", x, NodeContext.Scalar(0, x.DType));
            var below = c.Emit("mul", c.Emit("expm1", x), NodeContext.Scalar(alpha, x.DType));
            return One(c.Emit("mul", c.Emit("where", negative, below, x), NodeContext.Scalar(gamma, x.DType)));
        };
        t["HardSigmoid"] = c =>
        {
            var x = c.In(0);
            var linear = c.Emit("add", c.Emit("mul", x, NodeContext.Scalar(c.Float("alpha", 0.2), x.DType)), NodeContext.Scalar(c.Float("beta", 0.5), x.DType));
            return One(c.Emit("minimum", c.Emit("maximum", linear, NodeContext.Scalar(0, x.DType)), NodeContext.Scalar(1, x.DType)));
        };
        t["Softsign"] = c =>
        {
            var x = c.In(0);
            return One(c.Emit("div", x, c.Emit("add", c.Emit("abs", x), NodeContext.Scalar(1, x.DType))));
        };
        t["HardSwish"] = c =>
        {
            var x = c.In(0);
            var gate = c.Emit("add", c.Emit("mul", x, NodeContext.Scalar(1.0 / 6, x.DType)), NodeContext.Scalar(0.5, x.DType));
            gate = c.Emit("minimum", c.Emit("maximum", gate, NodeContext.Scalar(0, x.DType)), NodeContext.Scalar(1, x.DType));
            return One(c.Emit("mul", x, gate));
        };
        t["Celu"] = c =>
        {
            var x = c.In(0);
            double alpha = c.Float("alpha", 1.0);
            var below = c.Emit("mul", c.Emit("expm1", c.Emit("div", x, NodeContext.Scalar(alpha, x.DType))), NodeContext.Scalar(alpha, x.DType));
            return One(c.Emit("add", c.Emit("maximum", x, NodeContext.Scalar(0, x.DType)), c.Emit("minimum", below, NodeContext.Scalar(0, x.DType))));
        };
        t["ThresholdedRelu"] = c =>
        {
            var x = c.In(0);
            var above = c.Emit("gt", x, NodeContext.Scalar(c.Float("alpha", 1.0), x.DType));
            return One(c.Emit("where", above, x, NodeContext.Scalar(0, x.DType)));
        };
        t["Shrink"] = c =>
        {
            var x = c.In(0);
            double bias = c.Float("bias", 0), lambd = c.Float("lambd", 0.5);
            var below = c.Emit("lt", x, NodeContext.Scalar(-lambd, x.DType));
            var above = c.Emit("gt", x, NodeContext.Scalar(lambd, x.DType));
            var inner = c.Emit("where", above, c.Emit("sub", x, NodeContext.Scalar(bias, x.DType)), NodeContext.Scalar(0, x.DType));
            return One(c.Emit("where", below, c.Emit("add", x, NodeContext.Scalar(bias, x.DType)), inner));
        };
        t["Sinh"] = c => One(Hyperbolic(c, "sub"));
        t["Cosh"] = c => One(Hyperbolic(c, "add"));
        t["Identity"] = c => One(c.In(0));
        t["Dropout"] = c =>
        {
            var x = c.In(0);
            if (c.Opt(2) is { } training && (!training.IsConst || c.StaticInts(training, "training_mode")[0] != 0))
                throw c.Unsupported("is supported in inference only (training_mode must be a constant false)");
            if (!c.Wants(1)) return [x];
            c.Reserve(new Shape(c.Dims(x, "its input")).ElementCount, DType.Bool, "the mask");
            var mask = HostTensor.FromDoubles(DType.Bool, new Shape(c.Dims(x, "its input")), Enumerable.Repeat(1.0, (int)new Shape(c.Dims(x, "its input")).ElementCount).ToArray());
            return [x, NodeContext.Const(mask)];
        };
        t["Cast"] = c =>
        {
            var x = c.In(0);
            var to = OnnxTensors.ToDType((int)c.Int("to", 0), $"the target type of Cast '{c.Display}'");
            return One(Cast(c, x, to));
        };
        t["CastLike"] = c => One(Cast(c, c.In(0), c.In(1).DType));
        t["Constant"] = c =>
        {
            if (c.TensorAttr("value") is { } tensor) return One(NodeContext.Const(OnnxTensors.ToHost(tensor, $"the value of Constant '{c.Display}'")));
            if (c.Has("value_float")) return One(NodeContext.Scalar(c.Float("value_float", 0), DType.Float32));
            if (c.Has("value_int")) return One(NodeContext.Scalar(c.Int("value_int", 0), DType.Int64));
            if (c.Floats("value_floats") is { } fs) return One(NodeContext.Const(HostTensor.Of(fs, fs.Length)));
            if (c.Ints("value_ints") is { } ls) return One(NodeContext.Const(HostTensor.Of(ls, ls.Length)));
            throw c.Unsupported("is supported with a value, value_float(s) or value_int(s) attribute only");
        };
    }

    /// <summary>
    /// Before opset 7 a binary op broadcast b only when asked (<c>broadcast=1</c>), aligning it with a's axes from
    /// <c>axis</c> on; trailing ones make that NumPy broadcasting.
    /// </summary>
    private static Val Legacy(NodeContext c, Val a, Val b)
    {
        if (c.Opset >= 7 || c.Int("broadcast", 0) == 0 || !c.Has("axis")) return b;
        int rankA = c.Rank(a, "its first input"), rankB = c.Rank(b, "its second input");
        int axis = c.Axis(c.Int("axis", 0), rankA);
        int trailing = rankA - axis - rankB;
        if (trailing <= 0) return b;
        var shape = c.Dims(b, "its second input").Select(d => (long)d).Concat(Enumerable.Repeat(1L, trailing)).ToArray();
        return c.Emit("reshape", A(("shape", shape)), b);
    }

    /// <summary>(e^x ∓ e^-x) / 2: sinh with "sub", cosh with "add".</summary>
    private static Val Hyperbolic(NodeContext c, string combine)
    {
        var x = c.In(0);
        var sum = c.Emit(combine, c.Emit("exp", x), c.Emit("exp", c.Emit("neg", x)));
        return c.Emit("mul", sum, NodeContext.Scalar(0.5, x.DType));
    }

    internal static Val Cast(NodeContext c, Val x, DType to) =>
        x.DType == to ? x : c.Emit("cast", A(("dtype", to.WireName())), x);

    private static Val IntegerBinary(NodeContext c, Val a, Val b, Func<long, long, long> f)
    {
        var (av, bv) = (c.StaticInts(a, "its first input"), c.StaticInts(b, "its second input"));
        var shape = Shape.Broadcast(new Shape(a.Dims!), new Shape(b.Dims!), c.Node.OpType);
        c.Reserve(shape.ElementCount, DType.Int64, "the result");
        var result = new long[shape.ElementCount];
        var ad = a.Dims!;
        var bd = b.Dims!;
        var index = new int[shape.Rank];
        for (long i = 0; i < result.Length; i++)
        {
            long rem = i;
            for (int d = shape.Rank - 1; d >= 0; d--)
            {
                index[d] = (int)(rem % shape[d]);
                rem /= shape[d];
            }
            result[i] = f(av[Flat(index, ad)], bv[Flat(index, bd)]);
        }
        return NodeContext.Const(new HostTensor(DType.Int64, shape, result));
    }

    /// <summary>The flat position in a tensor of <paramref name="dims"/> that a broadcast index reads.</summary>
    private static long Flat(int[] index, int[] dims)
    {
        long flat = 0;
        int lead = index.Length - dims.Length;
        for (int d = 0; d < dims.Length; d++) flat = flat * dims[d] + (dims[d] == 1 ? 0 : index[lead + d]);
        return flat;
    }

    private static void AddMatrix(Dictionary<string, Converter> t)
    {
        t["MatMul"] = c => One(c.Emit("matmul", c.In(0), c.In(1)));
        t["Gemm"] = c =>
        {
            var (a, b) = (c.In(0), c.In(1));
            var attrs = A(("transpose_a", c.Int("transA", 0) != 0), ("transpose_b", c.Int("transB", 0) != 0));
            var y = c.Emit("matmul", attrs, a, b);
            double alpha = c.Float("alpha", 1), beta = c.Float("beta", 1);
            if (alpha != 1) y = c.Emit("mul", y, NodeContext.Scalar(alpha, y.DType));
            if (c.Opt(2) is { } bias && beta != 0)
                y = c.Emit("add", y, beta == 1 ? bias : c.Emit("mul", bias, NodeContext.Scalar(beta, bias.DType)));
            return One(y);
        };
        t["Transpose"] = c => One(c.Ints("perm") is { } perm ? c.Emit("transpose", A(("perm", perm)), c.In(0)) : c.Emit("transpose", c.In(0)));
        t["Softmax"] = c => One(SoftmaxLike(c, "softmax"));
        t["LogSoftmax"] = c => One(SoftmaxLike(c, "log_softmax"));
    }

    /// <summary>Opset 13 on: over one axis (default -1). Before: over all axes from <c>axis</c> (default 1) on, flattened.</summary>
    private static Val SoftmaxLike(NodeContext c, string op)
    {
        var x = c.In(0);
        if (c.Opset >= 13) return c.Emit(op, A(("axis", c.Int("axis", -1))), x);
        int rank = c.Rank(x, "its input");
        int axis = c.Axis(c.Int("axis", 1), rank);
        if (axis == rank - 1) return c.Emit(op, A(("axis", -1)), x);
        var dims = c.Dims(x, "its input");
        long outer = 1;
        for (int d = 0; d < axis; d++) outer *= dims[d];
        var flat = c.Emit("reshape", A(("shape", new[] { outer, -1L })), x);
        return c.Emit("reshape", A(("shape", dims)), c.Emit(op, A(("axis", 1)), flat));
    }

    private static void AddReductions(Dictionary<string, Converter> t)
    {
        t["ReduceSum"] = c => One(Reduce(c, "sum", axesInput: c.Opset >= 13));
        t["ReduceMean"] = c => One(Reduce(c, "mean", axesInput: c.Opset >= 18));
        t["ReduceMax"] = c => One(Reduce(c, "max", axesInput: c.Opset >= 18));
        t["ReduceMin"] = c => One(Reduce(c, "min", axesInput: c.Opset >= 18));
        t["ReduceProd"] = c => One(Reduce(c, "prod", axesInput: c.Opset >= 18));
        t["ReduceLogSumExp"] = c => One(Reduce(c, "logsumexp", axesInput: c.Opset >= 18));
        t["ReduceSumSquare"] = c => One(Reduce(c, "sum", axesInput: c.Opset >= 18, before: "square"));
        t["ReduceL1"] = c => One(Reduce(c, "sum", axesInput: c.Opset >= 18, before: "abs"));
        t["ReduceL2"] = c => One(c.Emit("sqrt", Reduce(c, "sum", axesInput: c.Opset >= 18, before: "square")));
        t["ReduceLogSum"] = c => One(c.Emit("log", Reduce(c, "sum", axesInput: c.Opset >= 18)));
    }

    private static Val Reduce(NodeContext c, string op, bool axesInput, string? before = null)
    {
        var x = c.In(0);
        long[]? axes = axesInput ? (c.Opt(1) is { } a ? c.StaticInts(a, "the axes") : null) : c.Ints("axes");
        bool keep = c.Int("keepdims", 1) != 0;
        if (axes is { Length: 0 }) axes = null;
        if (axes is null && c.Int("noop_with_empty_axes", 0) != 0) return x;
        if (before is not null) x = c.Emit(before, x);
        var attrs = axes is null ? A(("keepdims", keep)) : A(("axes", axes), ("keepdims", keep));
        return c.Emit(op, attrs, x);
    }

    /// <summary>Shape's start and end attributes, clamped into [0, rank] (end never before start).</summary>
    private static (int Start, int End) ShapeRange(NodeContext c, int rank)
    {
        long start = c.Int("start", 0), end = c.Int("end", rank);
        int s = (int)Math.Clamp(start < 0 ? start + rank : start, 0, rank);
        int e = (int)Math.Clamp(end < 0 ? end + rank : end, 0, rank);
        return (s, Math.Max(s, e));
    }

    /// <summary>
    /// A Reshape target known at import, or one computed at run time of which import knows every size but one
    /// symbolic size (an exported model's batch): that one becomes -1, which the engine infers from the element count.
    /// </summary>
    private static long[] TargetShape(NodeContext c, Val shape)
    {
        if (shape.Value is null && shape.Known is { } known)
        {
            int unknown = Array.FindAll(known, k => k is null).Length;
            if (unknown == 1 && !Array.Exists(known, k => k == -1))
                return Array.ConvertAll(known, k => k ?? -1);
            throw c.Unsupported($"needs the target shape known at import, but {unknown} of its sizes are symbolic (at most one can be inferred); fix the model's symbolic dims at upload");
        }
        return c.StaticInts(shape, "the target shape");
    }

    private static void AddShape(Dictionary<string, Converter> t)
    {
        t["Shape"] = c =>
        {
            var x = c.In(0);
            if (x.Dims is { } partial && Array.Exists(partial, d => d < 0))
            {
                // Symbolic sizes: the shape is read at run time, and import keeps what it knows of it for Reshape.
                int rank = partial.Length;
                var (from, to) = ShapeRange(c, rank);
                var whole = c.Emit("shape", x);
                var slice = from == 0 && to == rank ? whole
                    : c.Emit("gather", A(("axis", 0)), whole, NodeContext.Const(HostTensor.Of(Enumerable.Range(from, to - from).Select(i => (long)i).ToArray(), to - from)));
                slice.Known = partial[from..to].Select(d => d < 0 ? (long?)null : d).ToArray();
                return One(slice);
            }
            var dims = c.Dims(x, "its input").Select(d => (long)d).ToArray();
            var (s, e) = ShapeRange(c, dims.Length);
            var part = dims[s..e];
            return One(NodeContext.Const(HostTensor.Of(part, part.Length)));
        };
        t["Size"] = c => One(NodeContext.Scalar(new Shape(c.Dims(c.In(0), "its input")).ElementCount, DType.Int64));
        t["Reshape"] = c =>
        {
            var x = c.In(0);
            var spec = c.Opset >= 5 ? TargetShape(c, c.In(1)) : c.Ints("shape") ?? throw c.Invalid("needs a shape");
            bool allowZero = c.Int("allowzero", 0) != 0;
            for (int i = 0; i < spec.Length; i++)
            {
                if (spec[i] != 0 || allowZero) continue;
                // 0 copies the input's size there.
                if (x.Dims is not { } dims || i >= dims.Length || dims[i] < 0)
                    throw c.Unsupported("copies an input size (0 in the shape) that is unknown at import");
                spec[i] = dims[i];
            }
            return One(c.Emit("reshape", A(("shape", spec)), x));
        };
        t["Flatten"] = c =>
        {
            var x = c.In(0);
            int rank = c.Rank(x, "its input");
            long axis = c.Int("axis", 1);
            int a = (int)(axis < 0 ? axis + rank : axis);
            if (a < 0 || a > rank) throw c.Invalid($"axis {axis} is out of range for rank {rank}");
            if (a == 0) return One(c.Emit("reshape", A(("shape", new[] { 1L, -1L })), x));
            if (a == rank) return One(c.Emit("unsqueeze", A(("axes", new[] { 1L })), c.Emit("flatten", x)));
            var tail = c.Emit("flatten", A(("start_axis", a), ("end_axis", -1)), x);
            return One(c.Emit("flatten", A(("start_axis", 0), ("end_axis", a - 1)), tail));
        };
        t["Unsqueeze"] = c =>
        {
            var axes = c.Opset >= 13 ? c.StaticInts(c.In(1), "the axes") : c.Ints("axes") ?? throw c.Invalid("needs axes");
            var x = c.In(0);
            var y = c.Emit("unsqueeze", A(("axes", axes)), x);
            if (x.Known is { Length: 1 } known && x.Rank == 0) y.Known = known; // a size, as a one-element vector
            return One(y);
        };
        t["Squeeze"] = c =>
        {
            var axes = c.Opset >= 13 ? (c.Opt(1) is { } a ? c.StaticInts(a, "the axes") : null) : c.Ints("axes");
            return One(axes is null ? c.Emit("squeeze", c.In(0)) : c.Emit("squeeze", A(("axes", axes)), c.In(0)));
        };
        t["Slice"] = c =>
        {
            var x = c.In(0);
            long[] starts, ends;
            long[]? axes, steps = null;
            if (c.Opset >= 10)
            {
                starts = c.StaticInts(c.In(1), "the starts");
                ends = c.StaticInts(c.In(2), "the ends");
                axes = c.Opt(3) is { } a ? c.StaticInts(a, "the axes") : null;
                steps = c.Opt(4) is { } s ? c.StaticInts(s, "the steps") : null;
            }
            else
            {
                starts = c.Ints("starts") ?? throw c.Invalid("needs starts");
                ends = c.Ints("ends") ?? throw c.Invalid("needs ends");
                axes = c.Ints("axes");
            }
            axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            var attrs = new List<(string, AttrValue)> { ("starts", starts), ("stops", ends), ("axes", axes) };
            if (steps is not null) attrs.Add(("steps", steps));
            return One(c.Emit("slice", Attributes.Of(attrs.ToArray()), x));
        };
        t["Split"] = c =>
        {
            var x = c.In(0);
            int rank = c.Rank(x, "its input");
            int axis = c.Axis(c.Int("axis", 0), rank);
            long[]? sizes = c.Opset >= 13 ? (c.Opt(1) is { } s ? c.StaticInts(s, "the split sizes") : null) : c.Ints("split");
            if (sizes is null)
            {
                int n = (int)c.Int("num_outputs", c.OutputCount);
                int length = c.Dims(x, "its input")[axis];
                long chunk = (length + n - 1) / n;
                sizes = Enumerable.Range(0, n).Select(i => Math.Max(0, Math.Min(chunk, length - i * chunk))).ToArray();
            }
            var outs = new Val[sizes.Length];
            long offset = 0;
            for (int i = 0; i < sizes.Length; i++)
            {
                outs[i] = c.Emit("slice", A(("starts", new[] { offset }), ("stops", new[] { offset + sizes[i] }), ("axes", new long[] { axis })), x);
                offset += sizes[i];
            }
            return outs;
        };
        t["Tile"] = c =>
        {
            var x = c.In(0);
            var repeats = c.StaticInts(c.In(1), "the repeats");
            if (repeats.Length != c.Rank(x, "its input")) throw c.Invalid($"repeats has {repeats.Length} entries for rank {x.Rank}");
            for (int axis = 0; axis < repeats.Length; axis++)
            {
                if (repeats[axis] < 0) throw c.Invalid("repeats must not be negative");
                if (repeats[axis] == 1) continue;
                if (repeats[axis] == 0 || repeats[axis] > 4096) throw c.Unsupported($"with {repeats[axis]} repeats is not supported (1 to 4096 are)");
                x = c.Emit("concat", A(("axis", axis)), Enumerable.Repeat(x, (int)repeats[axis]).ToArray());
            }
            return One(x);
        };
        t["DepthToSpace"] = c =>
        {
            var x = c.In(0);
            var d = c.Dims(x, "its input");
            long b = c.Int("blocksize", 0);
            if (d.Length != 4 || b < 1 || d[1] % (b * b) != 0) throw c.Invalid($"needs [N, C, H, W] with C divisible by blocksize² ({b}²)");
            long n = d[0], ch = d[1] / (b * b), h = d[2], w = d[3];
            bool crd = c.Str("mode", "DCR") == "CRD";
            var split = crd ? new[] { n, ch, b, b, h, w } : new[] { n, b, b, ch, h, w };
            var perm = crd ? new long[] { 0, 1, 4, 2, 5, 3 } : new long[] { 0, 3, 4, 1, 5, 2 };
            var moved = c.Emit("transpose", A(("perm", perm)), c.Emit("reshape", A(("shape", split)), x));
            return One(c.Emit("reshape", A(("shape", new[] { n, ch, h * b, w * b })), moved));
        };
        t["SpaceToDepth"] = c =>
        {
            var x = c.In(0);
            var d = c.Dims(x, "its input");
            long b = c.Int("blocksize", 0);
            if (d.Length != 4 || b < 1 || d[2] % b != 0 || d[3] % b != 0) throw c.Invalid($"needs [N, C, H, W] with H and W divisible by blocksize {b}");
            long n = d[0], ch = d[1], h = d[2] / b, w = d[3] / b;
            var split = c.Emit("reshape", A(("shape", new[] { n, ch, h, b, w, b })), x);
            var moved = c.Emit("transpose", A(("perm", new long[] { 0, 3, 5, 1, 2, 4 })), split);
            return One(c.Emit("reshape", A(("shape", new[] { n, ch * b * b, h, w })), moved));
        };
        t["Concat"] = c =>
        {
            var parts = c.Present.ToArray();
            var y = c.Emit("concat", A(("axis", c.Int("axis", 0))), parts);
            // Shape vectors joined: what is known of each stays known.
            if (!y.IsConst && Array.TrueForAll(parts, p => p.Rank == 1 && NodeContext.KnownInts(p) is not null))
                y.Known = parts.SelectMany(p => NodeContext.KnownInts(p)!).ToArray();
            return One(y);
        };
        t["Gather"] = c =>
        {
            var (x, indices) = (c.In(0), c.In(1));
            int rank = c.Rank(x, "its data");
            int axis = c.Axis(c.Int("axis", 0), rank);
            int size = x.Dims![axis];
            if (indices.IsConst && size >= 0)
            {
                // Negative indices count from the end in ONNX; the engine's gather takes them in range only.
                var values = c.StaticInts(indices, "the indices").Select(i => i < 0 ? i + size : i).ToArray();
                indices = NodeContext.Const(new HostTensor(DType.Int64, indices.Value!.Shape, values));
            }
            else if (size >= 0)
            {
                var negative = c.Emit("lt", indices, NodeContext.Scalar(0, DType.Int64));
                indices = c.Emit("where", negative, c.Emit("add", indices, NodeContext.Scalar(size, DType.Int64)), indices);
            }
            var gathered = c.Emit("gather", A(("axis", axis)), x, indices);
            // Picking sizes out of a partly known shape: the picked ones stay known (or stay symbolic).
            if (x.Known is { } known && rank == 1 && indices.IsConst && indices.Value!.Shape.Rank <= 1)
                gathered.Known = Array.ConvertAll((long[])indices.Value.Data, i => known[i]);
            return One(gathered);
        };
        t["Expand"] = c =>
        {
            var x = c.In(0);
            var shape = c.StaticInts(c.In(1), "the target shape");
            var dims = c.Dims(x, "its input");
            var target = Shape.Broadcast(new Shape(dims), new Shape(shape.Select(d => checked((int)d)).ToArray()), "Expand");
            return One(target == new Shape(dims) ? x : c.Emit("broadcast_to", A(("shape", target.ToArray())), x));
        };
        t["ConstantOfShape"] = c =>
        {
            var shape = new Shape(c.StaticInts(c.In(0), "the shape").Select(d => checked((int)d)).ToArray());
            var value = c.TensorAttr("value") is { } v ? OnnxTensors.ToHost(v, "the value of ConstantOfShape") : HostTensor.Scalar(0, DType.Float32);
            if (value.Shape.ElementCount != 1) throw c.Invalid("value must hold one element");
            var fill = value.ToDoubles()[0];
            c.Reserve(shape.ElementCount, value.DType, "the constant");
            return One(NodeContext.Const(HostTensor.FromDoubles(value.DType, shape, Enumerable.Repeat(fill, checked((int)shape.ElementCount)).ToArray())));
        };
        t["Range"] = c =>
        {
            var (start, limit, delta) = (c.In(0), c.In(1), c.In(2));
            double s = c.StaticDoubles(start, "start")[0], l = c.StaticDoubles(limit, "limit")[0], d = c.StaticDoubles(delta, "delta")[0];
            if (d == 0) throw c.Invalid("delta is 0");
            long n = Math.Max((long)Math.Ceiling((l - s) / d), 0);
            if (n > Shape.MaxElements) throw c.Invalid($"the range has {n} elements, more than a tensor may have");
            c.Reserve(n, start.DType, "the range");
            var values = new double[n];
            for (long i = 0; i < n; i++) values[i] = s + i * d;
            return One(NodeContext.Const(HostTensor.FromDoubles(start.DType, Shape.Vector((int)n), values)));
        };
        t["Trilu"] = c =>
        {
            var x = c.In(0);
            var dims = c.Dims(x, "its input");
            if (dims.Length < 2) throw c.Invalid("needs a rank of 2 or more");
            long k = c.Opt(1) is { } kv ? c.StaticInts(kv, "k")[0] : 0;
            bool upper = c.Int("upper", 1) != 0;
            int rows = dims[^2], cols = dims[^1];
            c.Reserve((long)rows * cols, DType.Bool, "the mask");
            var keep = new bool[rows * cols];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    keep[i * cols + j] = upper ? j - i >= k : j - i <= k;
            var mask = NodeContext.Const(new HostTensor(DType.Bool, new Shape(rows, cols), keep));
            return One(c.Emit("where", mask, x, NodeContext.Scalar(0, x.DType)));
        };
    }
}
