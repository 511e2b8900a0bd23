using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>A view that only renames the shape (same elements, same order): derivatives are reshapes back and forth.</summary>
public abstract class ShapeViewOp : ViewOp
{
    public override Tensor?[] Vjp(VjpArgs v) => [F.Reshape(v.Grad, v.Inputs[0].Shape)];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? F.Reshape(t, j.Output.Shape) : null;
}

/// <summary><c>squeeze(x, axes=[...])</c>: drops the given size-1 axes, or every size-1 axis when none are given.</summary>
public sealed class SqueezeOp : ShapeViewOp
{
    public static readonly SqueezeOp Instance = new();

    public override OpSchema Schema { get; } = new("squeeze", "movement", "removes size-1 axes (a view)",
        [new OpInput("x")], [new OpAttribute("axes", AttrKind.Ints, false, "size-1 axes to drop (negative counts from the end)", "all size-1 axes")],
        "x's shape without those axes; x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(ExampleInput.F(2, 1, 3, 1)),
        new([ExampleInput.F(1, 2, 1)], Attributes.Of(("axes", new[] { 0 }))),
        new([ExampleInput.F(3, 1)], Attributes.Of(("axes", new[] { -1 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0].Shape;
        var drop = new bool[x.Rank];
        if (attrs.GetAxes("axes") is { } axes)
        {
            foreach (var a in axes)
            {
                if (x.Rank == 0) throw EngineException.InvalidGraph($"squeeze: a scalar has no axis {a}", op: Name);
                int d = x.NormalizeAxis(a, Name);
                if (drop[d]) throw EngineException.InvalidGraph($"squeeze: axes [{string.Join(", ", axes)}] name axis {d} twice", op: Name);
                if (x[d] != 1) throw EngineException.ShapeMismatch($"squeeze: axis {a} of {x} has size {x[d]}, not 1", op: Name);
                drop[d] = true;
            }
        }
        else
        {
            for (int d = 0; d < x.Rank; d++) drop[d] = x[d] == 1;
        }
        var dims = new List<int>(x.Rank);
        for (int d = 0; d < x.Rank; d++) if (!drop[d]) dims.Add(x[d]);
        return new TensorType(new Shape(dims.ToArray()), inputs[0].DType);
    }
}

/// <summary><c>unsqueeze(x, axes=[...])</c> (NumPy's expand_dims): inserts size-1 axes at the given positions of the result.</summary>
public sealed class UnsqueezeOp : ShapeViewOp
{
    public static readonly UnsqueezeOp Instance = new();

    public override OpSchema Schema { get; } = new("unsqueeze", "movement", "inserts size-1 axes (a view)",
        [new OpInput("x")], [new OpAttribute("axes", AttrKind.Ints, true, "positions in the result (negative counts from its end)")],
        "x's shape with ones inserted; x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(2, 3)], Attributes.Of(("axes", new[] { 0 }))),
        new([ExampleInput.F(2, 3)], Attributes.Of(("axes", new[] { -1, 1 }))),
        new([ExampleInput.F()], Attributes.Of(("axes", new[] { 0 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0].Shape;
        var axes = attrs.GetAxes("axes")!;
        int rank = x.Rank + axes.Length;
        if (rank > Shape.MaxRank)
            throw EngineException.InvalidGraph($"unsqueeze: {x} with {axes.Length} new axes has rank {rank}, over {Shape.MaxRank}", op: Name);
        var insert = new bool[rank];
        foreach (var a in axes)
        {
            int d = a < 0 ? a + rank : a;
            if (d < 0 || d >= rank)
                throw EngineException.InvalidGraph($"unsqueeze: axis {a} is out of range for a result of rank {rank}", op: Name);
            if (insert[d]) throw EngineException.InvalidGraph($"unsqueeze: axes [{string.Join(", ", axes)}] name axis {d} twice", op: Name);
            insert[d] = true;
        }
        var dims = new int[rank];
        for (int d = 0, src = 0; d < rank; d++) dims[d] = insert[d] ? 1 : x[src++];
        return new TensorType(new Shape(dims), inputs[0].DType);
    }
}

/// <summary><c>flatten(x, start_axis=0, end_axis=-1)</c>: merges axes start..end (inclusive) into one (a view).</summary>
public sealed class FlattenOp : ShapeViewOp
{
    public static readonly FlattenOp Instance = new();

    public override OpSchema Schema { get; } = new("flatten", "movement", "merges a run of axes into one (a view)",
        [new OpInput("x")],
        [new OpAttribute("start_axis", AttrKind.Int, false, "first axis to merge", "0"),
         new OpAttribute("end_axis", AttrKind.Int, false, "last axis to merge (inclusive)", "-1")],
        "x's shape with dims start..end multiplied together (a scalar becomes [1]); x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(ExampleInput.F(2, 3, 4)),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("start_axis", 1))),
        new([ExampleInput.F(2, 3, 4, 2)], Attributes.Of(("start_axis", 1), ("end_axis", -2))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0].Shape;
        if (x.Rank == 0) return new TensorType(new Shape(1), inputs[0].DType);
        int start = x.NormalizeAxis(attrs.GetAxis("start_axis", 0), Name);
        int end = x.NormalizeAxis(attrs.GetAxis("end_axis", -1), Name);
        if (start > end)
            throw EngineException.InvalidGraph($"flatten: start_axis {start} comes after end_axis {end} for shape {x}", op: Name);
        var dims = new List<int>();
        for (int d = 0; d < start; d++) dims.Add(x[d]);
        int merged = 1;
        for (int d = start; d <= end; d++) merged = checked(merged * x[d]);
        dims.Add(merged);
        for (int d = end + 1; d < x.Rank; d++) dims.Add(x[d]);
        return new TensorType(new Shape(dims.ToArray()), inputs[0].DType);
    }
}

public static class MovementOps
{
    internal static IEnumerable<Op> All =>
    [
        SqueezeOp.Instance, UnsqueezeOp.Instance, FlattenOp.Instance, ConcatOp.Instance, StackOp.Instance,
        SliceOp.Instance, SliceScatterOp.Instance, GatherOp.Instance, ScatterAddOp.Instance,
    ];
}

public static partial class F
{
    /// <summary>Drops the given size-1 axes, or all size-1 axes when none are given.</summary>
    public static Tensor Squeeze(Tensor x, params int[] axes) =>
        Dispatcher.Apply(SqueezeOp.Instance, [x], axes.Length == 0 ? Attributes.Empty : Attributes.Of(("axes", axes)));

    public static Tensor Unsqueeze(Tensor x, params int[] axes) =>
        Dispatcher.Apply(UnsqueezeOp.Instance, [x], Attributes.Of(("axes", axes)));

    public static Tensor Flatten(Tensor x, int startAxis = 0, int endAxis = -1) =>
        Dispatcher.Apply(FlattenOp.Instance, [x], Attributes.Of(("start_axis", startAxis), ("end_axis", endAxis)));
}
