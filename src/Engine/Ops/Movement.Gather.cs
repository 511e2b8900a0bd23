using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// <c>gather(x, indices, axis=0)</c> (alias <c>index_select</c>; NumPy's <c>take</c>): the slices of x along axis
/// picked by int64 indices of any shape; the result's shape is x.shape[:axis] + indices.shape + x.shape[axis+1:].
/// Negative indices count from the end; others out of range are an invalid_tensor error naming the index.
/// </summary>
public sealed class GatherOp : PrimitiveOp
{
    public static readonly GatherOp Instance = new();

    public override OpSchema Schema { get; } = new("gather", "movement", "slices of x along an axis picked by indices",
        [new OpInput("x"), new OpInput("indices", "int64 positions along axis", Differentiable: false, Domain: InputDomain.Index)],
        [new OpAttribute("axis", AttrKind.Int, false, "the axis indexed (negative counts from the end)", "0")],
        "x.shape[:axis] + indices.shape + x.shape[axis+1:]; x's dtype", true) { Aliases = ["index_select"] };

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(4, 3), Index(4, 2, 2)], Attributes.Empty),
        new([ExampleInput.F(2, 5), Index(5, 3)], Attributes.Of(("axis", 1))),
        new([ExampleInput.F(3, 4), Index(3)], Attributes.Of(("axis", -2))),
    ];

    internal static ExampleInput Index(int bound, params int[] shape) => new(new Shape(shape), DType.Int64, InputDomain.Index, bound);

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (x, indices) = (inputs[0], inputs[1]);
        ExpectIndices(Name, indices);
        if (x.Shape.Rank == 0) throw EngineException.ShapeMismatch($"{Name}: a scalar has no axis to index", op: Name);
        int axis = x.Shape.NormalizeAxis(attrs.GetAxis("axis", 0), Name);
        var dims = new List<int>();
        for (int d = 0; d < axis; d++) dims.Add(x.Shape[d]);
        dims.AddRange(indices.Shape.ToArray());
        for (int d = axis + 1; d < x.Shape.Rank; d++) dims.Add(x.Shape[d]);
        if (dims.Count > Shape.MaxRank)
            throw EngineException.InvalidGraph($"{Name}: {x.Shape} indexed by {indices.Shape} has rank {dims.Count}, over {Shape.MaxRank}", op: Name);
        return new TensorType(new Shape(dims.ToArray()), x.DType);
    }

    internal static void ExpectIndices(string op, TensorType indices)
    {
        if (indices.DType != DType.Int64)
            throw EngineException.DTypeMismatch($"{op}: indices must be int64, got {indices.DType.WireName()}", op: op);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        int axis = inputs[0].Shape.NormalizeAxis(attrs.GetAxis("axis", 0), Name);
        try
        {
            scope.Backend.Gather(inputs[0], inputs[1], axis, output);
        }
        catch (EngineException e)
        {
            throw e.At(null, Name); // a bad index is only found by the kernel
        }
    }

    public override Tensor?[] Vjp(VjpArgs v)
    {
        var (x, indices) = (v.Inputs[0], v.Inputs[1]);
        int axis = x.Shape.NormalizeAxis(v.Attrs.GetAxis("axis", 0), Name);
        return [F.ScatterAdd(v.Grad, indices, axis, x.Shape[axis]), null];
    }

    public override Tensor? Jvp(JvpArgs j) =>
        j.Tangents[0] is { } t ? Dispatcher.Apply(this, [t, j.Inputs[1]], j.Attrs) : null;
}

/// <summary>
/// <c>scatter_add(source, indices, axis=0, size=n)</c>: the transpose of gather. The result has source's shape with
/// the indices' dims (at axis) replaced by one axis of length <c>size</c>; it is zero except that each slice of
/// source is added at its index (repeated indices add up). Gather's VJP; its own VJP is gather, so derivatives of
/// any order stay within the two. Unlike PyTorch's <c>scatter_add</c> it starts from zeros and takes NumPy-style
/// take indices (JAX's <c>zeros.at[indices].add(source)</c>).
/// </summary>
public sealed class ScatterAddOp : PrimitiveOp
{
    public static readonly ScatterAddOp Instance = new();

    public override OpSchema Schema { get; } = new("scatter_add", "movement",
        "zeros with source's slices added at indices along an axis (the transpose of gather)",
        [new OpInput("source"), new OpInput("indices", "int64 positions along axis", Differentiable: false, Domain: InputDomain.Index)],
        [new OpAttribute("axis", AttrKind.Int, false, "the axis of the result indexed (negative counts from its end)", "0"),
         new OpAttribute("size", AttrKind.Int, true, "the length of the result along axis")],
        "source.shape[:axis] + [size] + source.shape[axis+indices.rank:]; source's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(2, 2, 3), GatherOp.Index(4, 2, 2)], Attributes.Of(("size", 4))),
        new([ExampleInput.F(2, 3), GatherOp.Index(5, 3)], Attributes.Of(("axis", 1), ("size", 5))),
        new([ExampleInput.F(4), GatherOp.Index(3)], Attributes.Of(("axis", -1), ("size", 3))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (source, indices) = (inputs[0].Shape, inputs[1].Shape);
        GatherOp.ExpectIndices(Name, inputs[1]);
        if (inputs[0].DType == DType.Bool)
            throw EngineException.DTypeMismatch($"{Name}: source must be numeric, got bool (cast first)", op: Name);
        int axis = Axis(source, indices, attrs);
        long size = attrs.GetInt("size");
        if (size < 0 || size > int.MaxValue) throw EngineException.InvalidGraph($"{Name}: bad size {size}", op: Name);
        var dims = new List<int>();
        for (int d = 0; d < axis; d++) dims.Add(source[d]);
        dims.Add((int)size);
        for (int d = axis + indices.Rank; d < source.Rank; d++) dims.Add(source[d]);
        return new TensorType(new Shape(dims.ToArray()), inputs[0].DType);
    }

    /// <summary>The result axis, once source is known to hold the indices' dims there.</summary>
    private int Axis(Shape source, Shape indices, Attributes attrs)
    {
        int rank = source.Rank - indices.Rank + 1;
        if (rank < 1)
            throw EngineException.ShapeMismatch($"{Name}: source {source} has fewer dims than indices {indices}", op: Name);
        long given = attrs.GetInt("axis", 0);
        long axis = given < 0 ? given + rank : given;
        if (axis < 0 || axis >= rank)
            throw EngineException.InvalidGraph($"{Name}: axis {given} is out of range for a result of rank {rank}", op: Name);
        for (int d = 0; d < indices.Rank; d++)
            if (source[(int)axis + d] != indices[d])
                throw EngineException.ShapeMismatch($"{Name}: source {source} does not hold indices {indices} at axis {axis}", op: Name);
        return (int)axis;
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        int axis = Axis(inputs[0].Shape, inputs[1].Shape, attrs);
        try
        {
            scope.Backend.ScatterAdd(inputs[0], inputs[1], axis, output);
        }
        catch (EngineException e)
        {
            throw e.At(null, Name);
        }
    }

    public override Tensor?[] Vjp(VjpArgs v)
    {
        var (source, indices) = (v.Inputs[0], v.Inputs[1]);
        return [F.Gather(v.Grad, indices, Axis(source.Shape, indices.Shape, v.Attrs)), null];
    }

    public override Tensor? Jvp(JvpArgs j) =>
        j.Tangents[0] is { } t ? Dispatcher.Apply(this, [t, j.Inputs[1]], j.Attrs) : null;
}

public static partial class F
{
    /// <summary>x's slices along <paramref name="axis"/> at int64 <paramref name="indices"/> (NumPy's take).</summary>
    public static Tensor Gather(Tensor x, Tensor indices, int axis = 0) =>
        Dispatcher.Apply(GatherOp.Instance, [x, indices], Attributes.Of(("axis", axis)));

    /// <summary>Zeros with <paramref name="source"/>'s slices added at <paramref name="indices"/> along an axis of length <paramref name="size"/>.</summary>
    public static Tensor ScatterAdd(Tensor source, Tensor indices, int axis, int size) =>
        Dispatcher.Apply(ScatterAddOp.Instance, [source, indices], Attributes.Of(("axis", axis), ("size", size)));
}
