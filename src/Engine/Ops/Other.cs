using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// An op whose output is its input's storage seen under another shape (reshape, identity, detach...): no copy,
/// since tensors never change after they are written.
/// </summary>
public abstract class ViewOp : PrimitiveOp
{
    // Their rules move the cotangent by shapes alone.
    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    // A view moves no data and computes nothing.
    public override long? Flops(IReadOnlyList<Graphs.InferredType> inputs, Graphs.InferredType output, Attributes attrs) => 0;

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        throw new InvalidOperationException("view ops are applied by the dispatcher without a kernel");
}

/// <summary><c>identity(x)</c>: the same values, a new name; gradients pass through.</summary>
public sealed class IdentityOp : ViewOp
{
    public static readonly IdentityOp Instance = new();

    public override OpSchema Schema { get; } = new("identity", "other", "x unchanged", [new OpInput("x")], [], "same as x", true);

    public override IReadOnlyList<OpExample> Examples => [new(ExampleInput.F(2, 3))];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return inputs[0];
    }

    public override Tensor?[] Vjp(VjpArgs v) => [v.Grad];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0];
}

/// <summary><c>detach(x)</c> (stop_gradient): the same values with no history, so no gradient flows back (case C4).</summary>
public sealed class DetachOp : ViewOp
{
    public static readonly DetachOp Instance = new();

    public override OpSchema Schema { get; } = new("detach", "other", "x's values, cut from the graph (no gradient flows back)",
        [new OpInput("x", Differentiable: false)], [], "same as x", false) { Aliases = ["stop_gradient"] };

    public override IReadOnlyList<OpExample> Examples => [new(ExampleInput.F(2, 3))];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return inputs[0];
    }
}

/// <summary><c>cast(x, dtype=...)</c>: converts the element type; differentiable between float types.</summary>
public sealed class CastOp : PrimitiveOp
{
    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public static readonly CastOp Instance = new();

    public override OpSchema Schema { get; } = new("cast", "other", "converts x to another dtype",
        [new OpInput("x")], [new OpAttribute("dtype", AttrKind.String, true, "float32, float64, int64 or bool")],
        "shape of x; the dtype asked for", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(2, 3)], Attributes.Of(("dtype", "float32"))),
        new([ExampleInput.F(2, 3)], Attributes.Of(("dtype", "float64"))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return new TensorType(inputs[0].Shape, DTypes.Parse(attrs.GetString("dtype")));
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Cast(inputs[0], output);

    // Only float-to-float casts are recorded (the dispatcher skips non-float outputs); the grad goes back in x's dtype.
    public override Tensor?[] Vjp(VjpArgs v) => [v.Inputs[0].DType.IsFloating() ? F.Cast(v.Grad, v.Inputs[0].DType) : null];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? F.Cast(t, j.Output.DType) : null;
}

/// <summary>
/// <c>shape(x)</c>: x's dimensions as an int64 vector (a program's <c>x.shape</c>, <c>len(x)</c>). It reads only x's
/// type, so it has no derivative and never blocks one: the sizes it gives are constants of the run.
/// </summary>
public sealed class ShapeOp : PrimitiveOp
{
    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public static readonly ShapeOp Instance = new();

    public override OpSchema Schema { get; } = new("shape", "other", "x's dimensions as an int64 vector",
        [new OpInput("x", Differentiable: false)], [], "int64 [rank of x]", false);

    public override IReadOnlyList<OpExample> Examples => [new(ExampleInput.F(2, 3)), new(ExampleInput.F())];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return new TensorType(Shape.Vector(inputs[0].Shape.Rank), DType.Int64);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        Span<long> dims = stackalloc long[inputs[0].Rank];
        for (int i = 0; i < dims.Length; i++) dims[i] = inputs[0].Shape[i];
        scope.Backend.Upload(System.Runtime.InteropServices.MemoryMarshal.AsBytes(dims), output);
    }
}

public static partial class F
{
    public static Tensor Identity(Tensor x) => Dispatcher.Apply(IdentityOp.Instance, x);

    public static Tensor Detach(Tensor x) => Dispatcher.Apply(DetachOp.Instance, x);

    public static Tensor Cast(Tensor x, DType dtype) =>
        x.DType == dtype ? x : Dispatcher.Apply(CastOp.Instance, [x], Attributes.Of(("dtype", dtype.WireName())));

    /// <summary>A constant (unrecorded) tensor of zeros shaped and typed like <paramref name="x"/>.</summary>
    public static Tensor ZerosLike(Tensor x) => x.Scope.Zeros(x.Shape, x.DType);

    /// <summary>A constant (unrecorded) tensor of ones shaped and typed like <paramref name="x"/>.</summary>
    public static Tensor OnesLike(Tensor x) => x.Scope.Full(x.Shape, 1.0, x.DType);
}
