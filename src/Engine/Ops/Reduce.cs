using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>The <c>axes</c> (default: all) and <c>keepdims</c> (default: false) every reduction takes.</summary>
public static class ReduceAttrs
{
    public static readonly OpAttribute Axes = new("axes", AttrKind.Ints, false, "axes to reduce (negative counts from the end); default all", "all");
    public static readonly OpAttribute KeepDims = new("keepdims", AttrKind.Bool, false, "keep reduced axes as size 1", "false");

    /// <summary>Sorted distinct axes in [0, rank).</summary>
    public static int[] Resolve(Shape shape, Attributes attrs, string op)
    {
        var given = attrs.GetAxes("axes");
        if (given is null) return AllAxes[shape.Rank];
        if (shape.Rank == 0)
        {
            // PyTorch's rule: a scalar may name axis 0 (or -1), and reducing it over that axis leaves it as it is.
            foreach (int axis in given) shape.NormalizeAxis(axis, op);
            return AllAxes[0];
        }
        var axes = new int[given.Length];
        for (int i = 0; i < given.Length; i++) axes[i] = shape.NormalizeAxis(given[i], op);
        Array.Sort(axes);
        for (int i = 1; i < axes.Length; i++)
            if (axes[i] == axes[i - 1])
                throw EngineException.InvalidGraph($"axes [{string.Join(", ", given)}] name an axis twice", op: op);
        return axes;
    }

    /// <summary>[0, rank) for every rank, shared (read-only by convention): a full reduction allocates nothing for its axes.</summary>
    private static readonly int[][] AllAxes = BuildAllAxes();

    private static int[][] BuildAllAxes()
    {
        var all = new int[Shape.MaxRank + 1][];
        for (int r = 0; r <= Shape.MaxRank; r++)
        {
            all[r] = new int[r];
            for (int i = 0; i < r; i++) all[r][i] = i;
        }
        return all;
    }

    public static Shape Reduced(Shape shape, int[] axes, bool keepDims)
    {
        if (!keepDims && axes.Length == shape.Rank) return Shape.Scalar;
        var dims = new int[keepDims ? shape.Rank : shape.Rank - axes.Length];
        for (int i = 0, o = 0; i < shape.Rank; i++)
        {
            if (Array.IndexOf(axes, i) < 0) dims[o++] = shape[i];
            else if (keepDims) dims[o++] = 1;
        }
        return Shape.Own(dims);
    }

    public static readonly IReadOnlyList<OpExample> Examples =
    [
        new([ExampleInput.F(3, 4)], Attributes.Empty),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("axes", new[] { 1 }))),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("axes", new[] { 0, 2 }), ("keepdims", true))),
        new([ExampleInput.F(3, 4)], Attributes.Of(("axes", new[] { -1 }), ("keepdims", true))),
    ];
}

/// <summary>A reduction run by a kernel: sum, prod, max, min.</summary>
public sealed class ReduceOp : PrimitiveOp
{
    private readonly ReduceKernel _kernel;

    internal ReduceOp(string name, ReduceKernel kernel, string summary, bool smooth = true, InputDomain domain = InputDomain.Any)
    {
        _kernel = kernel;
        Schema = new OpSchema(name, "reduction", summary, [new OpInput("x", Domain: domain)], [ReduceAttrs.Axes, ReduceAttrs.KeepDims],
            "x's shape without the reduced axes (or with ones there under keepdims)", true) { Smooth = smooth };
    }

    public override OpSchema Schema { get; }

    // One operation per element reduced.
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => inputs[0].ElementCount;

    public override IReadOnlyList<OpExample> Examples => _kernel == ReduceKernel.Prod
        ? ReduceAttrs.Examples.Select(e => e with { Inputs = [e.Inputs[0] with { Domain = InputDomain.Positive }] }).ToArray()
        : ReduceAttrs.Examples;

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0];
        if (x.DType == DType.Bool)
            throw EngineException.DTypeMismatch($"'{Name}' needs a numeric input, got bool (cast it first)", op: Name);
        var axes = ReduceAttrs.Resolve(x.Shape, attrs, Name);
        if (_kernel is ReduceKernel.Max or ReduceKernel.Min && Array.Exists(axes, a => x.Shape[a] == 0))
            throw EngineException.ShapeMismatch($"'{Name}' of an empty axis has no value (shape {x.Shape})", op: Name);
        return new TensorType(ReduceAttrs.Reduced(x.Shape, axes, attrs.GetBool("keepdims", false)), x.DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        var axes = ReduceAttrs.Resolve(inputs[0].Shape, attrs, Name);
        if (axes.Length == 0) scope.Backend.Copy(inputs[0], output);
        else scope.Backend.Reduce(_kernel, inputs[0], axes, output);
    }

    // A sum's rule only spreads the cotangent back over x's shape; prod, max and min read x and the result.
    internal override bool VjpReadsInput(int input) => _kernel != ReduceKernel.Sum;

    internal override bool VjpReadsOutput => _kernel != ReduceKernel.Sum;

    public override Tensor?[] Vjp(VjpArgs v)
    {
        var x = v.Inputs[0];
        var g = Expand(v.Grad, x, v.Attrs);
        return _kernel switch
        {
            ReduceKernel.Sum => [g],
            ReduceKernel.Prod => [g * ProdOfOthers(x, v.Attrs)],
            _ => [g * ArgShare(x, v.Output, v.Attrs)],
        };
    }

    public override Tensor? Jvp(JvpArgs j)
    {
        if (j.Tangents[0] is not { } t) return null;
        var x = j.Inputs[0];
        return _kernel switch
        {
            ReduceKernel.Sum => F.Sum(t, j.Attrs),
            ReduceKernel.Prod => F.Sum(t * ProdOfOthers(x, j.Attrs), j.Attrs),
            _ => F.Sum(t * ArgShare(x, j.Output, j.Attrs), j.Attrs),
        };
    }

    /// <summary>Puts a reduced value back in x's shape (reshape to keepdims form, then broadcast).</summary>
    private Tensor Expand(Tensor reduced, Tensor x, Attributes attrs)
    {
        // A full reduction's cotangent is one value: returned as it is, it broadcasts wherever it is used (the engine
        // broadcasts it to x's shape only if a consumer needs that).
        if (reduced.Rank == 0) return reduced;
        var axes = ReduceAttrs.Resolve(x.Shape, attrs, Name);
        return F.BroadcastTo(F.Reshape(reduced, ReduceAttrs.Reduced(x.Shape, axes, true)), x.Shape);
    }

    /// <summary>
    /// d prod / d x_i: the product of the other elements. Not y / x, which is NaN at a zero: with one zero in a
    /// group its own entry is the product of the rest and every other entry is 0; with two or more, all are 0.
    /// </summary>
    private Tensor ProdOfOthers(Tensor x, Attributes attrs)
    {
        var keep = attrs.With("keepdims", true);
        var isZero = F.Eq(x, 0.0);
        var nonZero = F.Where(isZero, F.OnesLike(x), x);
        var productOfNonZero = F.BroadcastTo(Dispatcher.Apply(ReduceOps.Prod, [nonZero], keep), x.Shape);
        var zeros = F.BroadcastTo(F.Sum(F.Cast(isZero, x.DType), keep), x.Shape);
        var none = F.ZerosLike(x);
        return F.Where(isZero,
            F.Where(F.Eq(zeros, 1.0), productOfNonZero, none),
            F.Where(F.Eq(zeros, 0.0), productOfNonZero / nonZero, none));
    }

    /// <summary>1/k at each of the k elements that attain the max (min), 0 elsewhere: ties share the gradient.</summary>
    private Tensor ArgShare(Tensor x, Tensor y, Attributes attrs)
    {
        var hits = F.Cast(F.Eq(x, Expand(y, x, attrs)), x.DType);
        var count = F.Sum(hits, attrs.With("keepdims", true));
        return hits / F.BroadcastTo(count, x.Shape);
    }
}

/// <summary><c>mean</c>: sum divided by the number of reduced elements.</summary>
public sealed class MeanOp : CompositeOp
{
    public static readonly MeanOp Instance = new();

    // One operation per element reduced.
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => inputs[0].ElementCount;

    public override OpSchema Schema { get; } = new("mean", "reduction", "arithmetic mean", [new OpInput("x")],
        [ReduceAttrs.Axes, ReduceAttrs.KeepDims], "as sum", true);

    public override IReadOnlyList<OpExample> Examples => ReduceAttrs.Examples;

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        var t = ReduceOps.Sum.InferType(inputs, attrs);
        ExpectFloating(inputs[0]);
        return t;
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        var x = inputs[0];
        InferType([x.Type], attrs);
        long count = ReduceAttrs.Resolve(x.Shape, attrs, Name).Aggregate(1L, (n, a) => n * x.Shape[a]);
        return F.Sum(x, attrs) / Math.Max(count, 1);
    }
}

/// <summary><c>logsumexp</c>: log(sum(exp(x))) computed stably by shifting by the (detached) max.</summary>
public sealed class LogSumExpOp : CompositeOp
{
    public static readonly LogSumExpOp Instance = new();

    // One operation per element reduced.
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => inputs[0].ElementCount;

    public override OpSchema Schema { get; } = new("logsumexp", "reduction", "log(sum(exp(x))), stable", [new OpInput("x")],
        [ReduceAttrs.Axes, ReduceAttrs.KeepDims], "as sum", true);

    public override IReadOnlyList<OpExample> Examples => ReduceAttrs.Examples;

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        var t = ReduceOps.Sum.InferType(inputs, attrs);
        ExpectFloating(inputs[0]);
        return t;
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        var x = inputs[0];
        InferType([x.Type], attrs);
        var keep = attrs.With("keepdims", true);
        // The shift only guards exp against overflow; it cancels mathematically, so no gradient flows through it.
        var shift = F.Detach(F.Max(x, keep));
        shift = F.Where(F.Eq(F.Abs(shift), double.PositiveInfinity), F.ZerosLike(shift), shift);
        var lse = F.Log(F.Sum(F.Exp(x - shift), keep)) + shift;
        return attrs.GetBool("keepdims", false) ? lse : F.Reshape(lse, InferType([x.Type], attrs).Shape);
    }
}

/// <summary><c>norm</c>: the L2 norm by default; <c>ord</c> 1 for L1, <c>inf</c> (any value ≥ 1e300) for L∞.</summary>
public sealed class NormOp : CompositeOp
{
    public static readonly NormOp Instance = new();

    // One operation per element reduced.
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => inputs[0].ElementCount;

    public override OpSchema Schema { get; } = new("norm", "reduction", "vector norm over axes (L2 by default)", [new OpInput("x")],
        [ReduceAttrs.Axes, ReduceAttrs.KeepDims, new OpAttribute("ord", AttrKind.Float, false, "2, 1 or inf", "2")], "as sum", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        .. ReduceAttrs.Examples,
        new([ExampleInput.F(3, 4)], Attributes.Of(("ord", 1.0), ("axes", new[] { 1 }))),
        new([ExampleInput.F(3, 4)], Attributes.Of(("ord", double.PositiveInfinity))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        var t = ReduceOps.Sum.InferType(inputs, attrs);
        ExpectFloating(inputs[0]);
        double ord = attrs.GetFloat("ord", 2);
        if (ord is not (1 or 2) && ord < 1e300)
            throw EngineException.InvalidGraph($"'norm' supports ord 1, 2 or inf, got {ord}", op: Name);
        return t;
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        var x = inputs[0];
        InferType([x.Type], attrs);
        double ord = attrs.GetFloat("ord", 2);
        if (ord == 1) return F.Sum(F.Abs(x), attrs);
        if (ord >= 1e300) return F.Max(F.Abs(x), attrs);
        // sqrt has an infinite slope at 0; the double where keeps the gradient of a zero vector 0 (as PyTorch), not NaN.
        var squares = F.Sum(F.Square(x), attrs);
        var isZero = F.Eq(squares, 0.0);
        var safe = F.Where(isZero, F.OnesLike(squares), squares);
        return F.Where(isZero, F.ZerosLike(squares), F.Sqrt(safe));
    }
}

public static class ReduceOps
{
    public static readonly ReduceOp Sum = new("sum", ReduceKernel.Sum, "sum of elements");
    public static readonly ReduceOp Prod = new("prod", ReduceKernel.Prod, "product of elements", domain: InputDomain.Positive);
    public static readonly ReduceOp Max = new("max", ReduceKernel.Max, "largest element (ties share the gradient)", smooth: false);
    public static readonly ReduceOp Min = new("min", ReduceKernel.Min, "smallest element (ties share the gradient)", smooth: false);

    internal static IEnumerable<Op> All => [Sum, MeanOp.Instance, Max, Min, Prod, LogSumExpOp.Instance, NormOp.Instance];
}

public static partial class F
{
    private static Attributes ReduceArgs(int[]? axes, bool keepDims)
    {
        var attrs = keepDims ? Attributes.Of(("keepdims", true)) : Attributes.Empty;
        return axes is null ? attrs : attrs.With("axes", axes);
    }

    public static Tensor Sum(Tensor x, int[]? axes = null, bool keepDims = false) => Sum(x, ReduceArgs(axes, keepDims));
    public static Tensor Sum(Tensor x, Attributes attrs) => Dispatcher.Apply(ReduceOps.Sum, [x], attrs);
    public static Tensor Mean(Tensor x, int[]? axes = null, bool keepDims = false) => Dispatcher.Apply(MeanOp.Instance, [x], ReduceArgs(axes, keepDims));
    public static Tensor Max(Tensor x, int[]? axes = null, bool keepDims = false) => Max(x, ReduceArgs(axes, keepDims));
    public static Tensor Max(Tensor x, Attributes attrs) => Dispatcher.Apply(ReduceOps.Max, [x], attrs);
    public static Tensor Min(Tensor x, int[]? axes = null, bool keepDims = false) => Dispatcher.Apply(ReduceOps.Min, [x], ReduceArgs(axes, keepDims));
    public static Tensor Prod(Tensor x, int[]? axes = null, bool keepDims = false) => Dispatcher.Apply(ReduceOps.Prod, [x], ReduceArgs(axes, keepDims));
    public static Tensor LogSumExp(Tensor x, int[]? axes = null, bool keepDims = false) => Dispatcher.Apply(LogSumExpOp.Instance, [x], ReduceArgs(axes, keepDims));

    public static Tensor Norm(Tensor x, double ord = 2, int[]? axes = null, bool keepDims = false) =>
        Dispatcher.Apply(NormOp.Instance, [x],
            ord == 2 && axes is null && !keepDims ? WholeL2 : ReduceArgs(axes, keepDims).With("ord", ord));

    /// <summary>The attributes of the common call, the L2 norm of everything (W2 computes one per loop trip).</summary>
    private static readonly Attributes WholeL2 = Attributes.Of(("ord", 2.0));
}
