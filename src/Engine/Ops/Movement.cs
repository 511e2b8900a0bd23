using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary><c>reshape(x, shape=[...])</c>: same elements in row-major order, another shape; one -1 is inferred.</summary>
public sealed class ReshapeOp : ViewOp
{
    public static readonly ReshapeOp Instance = new();

    internal override bool TakesBatchedCotangent(TapeNode node, long n) => true;

    internal override Tensor BatchedVjp(TapeNode node, Tensor g, int i, long n) => F.Reshape(g, Derivatives.Batched(n, node.Inputs[i].Shape));

    public override OpSchema Schema { get; } = new("reshape", "movement", "same elements, new shape (a view)",
        [new OpInput("x")], [new OpAttribute("shape", AttrKind.Ints, true, "the new shape; one entry may be -1")],
        "the given shape; x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(2, 6)], Attributes.Of(("shape", new[] { 3, 4 }))),
        new([ExampleInput.F(2, 3, 2)], Attributes.Of(("shape", new[] { -1 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return new TensorType(Resolve(inputs[0].Shape, attrs.GetInts("shape"), Name), inputs[0].DType);
    }

    internal static Shape Resolve(Shape from, long[] spec, string op)
    {
        if (spec.Length > Shape.MaxRank)
            throw EngineException.InvalidGraph($"shape has rank {spec.Length}, over the maximum of {Shape.MaxRank}", op: op);
        var dims = new int[spec.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < spec.Length; i++)
        {
            if (spec[i] == -1)
            {
                if (infer >= 0) throw EngineException.InvalidGraph("only one dimension of a shape may be -1", op: op);
                infer = i;
                continue;
            }
            if (spec[i] < 0 || spec[i] > int.MaxValue)
                throw EngineException.InvalidGraph($"bad dimension {spec[i]} in shape [{string.Join(", ", spec)}]", op: op);
            dims[i] = (int)spec[i];
            // known stays at most MaxElements times one dimension, so it cannot wrap; past the limit no input fits.
            known *= spec[i];
            if (known > Shape.MaxElements)
                throw EngineException.ShapeMismatch($"cannot reshape {from} into [{string.Join(", ", spec)}]", op: op);
        }
        if (infer >= 0)
        {
            if (known == 0 || from.ElementCount % known != 0)
                throw EngineException.ShapeMismatch($"cannot reshape {from} into [{string.Join(", ", spec)}]", op: op);
            dims[infer] = (int)(from.ElementCount / known);
        }
        var shape = new Shape(dims);
        if (shape.ElementCount != from.ElementCount)
            throw EngineException.ShapeMismatch($"cannot reshape {from} ({from.ElementCount} elements) into {shape} ({shape.ElementCount})", op: op);
        return shape;
    }

    public override Tensor?[] Vjp(VjpArgs v) => [F.Reshape(v.Grad, v.Inputs[0].Shape)];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? F.Reshape(t, j.Output.Shape) : null;
}

/// <summary><c>broadcast_to(x, shape=[...])</c>: repeats x along broadcast dimensions; the VJP sums back.</summary>
public sealed class BroadcastToOp : PrimitiveOp
{
    public static readonly BroadcastToOp Instance = new();

    public override OpSchema Schema { get; } = new("broadcast_to", "movement", "x repeated to a larger shape (NumPy rules)",
        [new OpInput("x")], [new OpAttribute("shape", AttrKind.Ints, true, "the target shape")], "the given shape; x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(3)], Attributes.Of(("shape", new[] { 2, 3 }))),
        new([ExampleInput.F(2, 1)], Attributes.Of(("shape", new[] { 3, 2, 4 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var target = attrs.GetShape("shape");
        if (!inputs[0].Shape.BroadcastsTo(target))
            throw EngineException.ShapeMismatch($"cannot broadcast {inputs[0].Shape} to {target}", op: Name);
        return new TensorType(target, inputs[0].DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.BroadcastTo(inputs[0], output);

    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public override Tensor?[] Vjp(VjpArgs v) => [F.SumToShape(v.Grad, v.Inputs[0].Shape)];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? F.BroadcastTo(t, j.Output.Shape) : null;
}

public static partial class F
{
    public static Tensor Reshape(Tensor x, Shape shape) =>
        x.Shape == shape ? x : Dispatcher.Apply(ReshapeOp.Instance, [x], ShapeAttrs.For(shape));

    public static Tensor Reshape(Tensor x, params int[] shape) =>
        Dispatcher.Apply(ReshapeOp.Instance, [x], Attributes.Of(("shape", shape)));

    public static Tensor BroadcastTo(Tensor x, Shape shape) =>
        x.Shape == shape ? x : Dispatcher.Apply(BroadcastToOp.Instance, [x], ShapeAttrs.For(shape));

    /// <summary>
    /// Sums a broadcast result back down to <paramref name="shape"/>: over the leading axes broadcasting added and
    /// the axes where the shape has 1. This is how every gradient returns to its input's shape, in one place.
    /// </summary>
    public static Tensor SumToShape(Tensor x, Shape shape)
    {
        if (x.Shape == shape) return x;
        if (!shape.BroadcastsTo(x.Shape))
            throw EngineException.ShapeMismatch($"cannot sum {x.Shape} down to {shape}");
        int lead = x.Rank - shape.Rank;
        var axes = new List<int>();
        for (int i = 0; i < x.Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && x.Shape[i] != 1)) axes.Add(i);
        var summed = axes.Count == 0 ? x : Sum(x, axes.ToArray(), keepDims: true);
        return Reshape(summed, shape);
    }
}

/// <summary>
/// The <c>{"shape": [...]}</c> attributes of reshape and broadcast_to, cached per shape: every reduction's VJP and
/// every broadcast gradient builds one, and attributes are immutable. Bounded so odd shapes cannot grow it forever.
/// </summary>
internal static class ShapeAttrs
{
    private const int MaxEntries = 4096;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Shape, Attributes> Cache = new();

    public static Attributes For(Shape shape)
    {
        if (Cache.TryGetValue(shape, out var attrs)) return attrs;
        attrs = Attributes.Of(("shape", shape.ToArray()));
        if (Cache.Count < MaxEntries) Cache.TryAdd(shape, attrs);
        return attrs;
    }
}
