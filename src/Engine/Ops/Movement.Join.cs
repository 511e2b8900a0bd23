using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary><c>concat(x0, x1, ..., axis=0)</c>: joins tensors of one rank along an existing axis; the VJP slices it apart.</summary>
public sealed class ConcatOp : PrimitiveOp
{
    public static readonly ConcatOp Instance = new();

    public override OpSchema Schema { get; } = new("concat", "movement", "joins tensors along an existing axis",
        [new OpInput("inputs", "one or more tensors, equal in every dim but the axis", Variadic: true, Promoted: true)],
        [new OpAttribute("axis", AttrKind.Int, false, "the axis to join along (negative counts from the end)", "0")],
        "the inputs' shape with the axis dims added up; their promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(2, 3), ExampleInput.F(2, 2)], Attributes.Of(("axis", 1))),
        new([ExampleInput.F(1, 3), ExampleInput.F(2, 3), ExampleInput.F(1, 3)], Attributes.Empty),
        new([ExampleInput.F(2, 2, 3), ExampleInput.F(2, 1, 3)], Attributes.Of(("axis", -2))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        var first = MovementChecks.SameDType(Name, inputs);
        if (first.Shape.Rank == 0)
            throw EngineException.ShapeMismatch($"{Name}: scalars have no axis to join along (use stack)", op: Name);
        int axis = first.Shape.NormalizeAxis(attrs.GetAxis("axis", 0), Name);
        var dims = first.Shape.ToArray();
        long joined = dims[axis];
        for (int i = 1; i < inputs.Length; i++)
        {
            var s = inputs[i].Shape;
            bool fits = s.Rank == first.Shape.Rank;
            for (int d = 0; fits && d < s.Rank; d++) fits = d == axis || s[d] == dims[d];
            if (!fits)
                throw EngineException.ShapeMismatch($"{Name}: {first.Shape} and {s} (input {i}) differ outside axis {axis}", op: Name);
            joined += s[axis];
        }
        // Summed in a long: the joined length may pass int range, which the shape then refuses like any overlarge one.
        if (joined > int.MaxValue)
            throw EngineException.InvalidTensor($"{Name}: the joined axis would have {joined} elements, more than a tensor may have");
        dims[axis] = (int)joined;
        return new TensorType(new Shape(dims), first.DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Concat(inputs, inputs[0].Shape.NormalizeAxis(attrs.GetAxis("axis", 0), Name), output);

    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public override Tensor?[] Vjp(VjpArgs v)
    {
        int axis = v.Inputs[0].Shape.NormalizeAxis(v.Attrs.GetAxis("axis", 0), Name);
        var grads = new Tensor?[v.Inputs.Length];
        int offset = 0;
        for (int i = 0; i < grads.Length; i++)
        {
            int len = v.Inputs[i].Shape[axis];
            if (v.NeedsGrad(i)) grads[i] = F.SliceAxis(v.Grad, axis, offset, offset + len);
            offset += len;
        }
        return grads;
    }

    public override Tensor? Jvp(JvpArgs j) => MovementChecks.JoinTangents(this, j);
}

/// <summary><c>stack(x0, x1, ..., axis=0)</c>: joins same-shaped tensors along a new axis; the VJP slices and squeezes.</summary>
public sealed class StackOp : PrimitiveOp
{
    public static readonly StackOp Instance = new();

    public override OpSchema Schema { get; } = new("stack", "movement", "joins same-shaped tensors along a new axis",
        [new OpInput("inputs", "one or more tensors of one shape", Variadic: true, Promoted: true)],
        [new OpAttribute("axis", AttrKind.Int, false, "position of the new axis in the result (negative counts from its end)", "0")],
        "the inputs' shape with the count inserted at axis; their promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(ExampleInput.F(2, 3), ExampleInput.F(2, 3)),
        new([ExampleInput.F(3), ExampleInput.F(3), ExampleInput.F(3)], Attributes.Of(("axis", -1))),
        new([ExampleInput.F(), ExampleInput.F()], Attributes.Empty),
        new([ExampleInput.F(2, 2), ExampleInput.F(2, 2)], Attributes.Of(("axis", 1))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        var first = MovementChecks.SameDType(Name, inputs);
        for (int i = 1; i < inputs.Length; i++)
            if (inputs[i].Shape != first.Shape)
                throw EngineException.ShapeMismatch($"{Name}: {first.Shape} and {inputs[i].Shape} (input {i}) differ; stack needs one shape", op: Name);
        int axis = Axis(first.Shape, attrs);
        var dims = new List<int>(first.Shape.ToArray());
        dims.Insert(axis, inputs.Length);
        return new TensorType(new Shape(dims.ToArray()), first.DType);
    }

    private int Axis(Shape input, Attributes attrs)
    {
        int rank = input.Rank + 1;
        if (rank > Shape.MaxRank)
            throw EngineException.InvalidGraph($"{Name}: stacking {input} gives rank {rank}, over {Shape.MaxRank}", op: Name);
        long given = attrs.GetInt("axis", 0);
        long axis = given < 0 ? given + rank : given;
        if (axis < 0 || axis >= rank)
            throw EngineException.InvalidGraph($"{Name}: axis {given} is out of range for a result of rank {rank}", op: Name);
        return (int)axis;
    }

    // The kernel joins ElementCount / outer elements per input per outer step, which is exactly stacking.
    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Concat(inputs, Axis(inputs[0].Shape, attrs), output);

    public override Tensor?[] Vjp(VjpArgs v)
    {
        int axis = Axis(v.Inputs[0].Shape, v.Attrs);
        var grads = new Tensor?[v.Inputs.Length];
        for (int i = 0; i < grads.Length; i++)
            if (v.NeedsGrad(i)) grads[i] = F.Reshape(F.SliceAxis(v.Grad, axis, i, i + 1), v.Inputs[i].Shape);
        return grads;
    }

    public override Tensor? Jvp(JvpArgs j) => MovementChecks.JoinTangents(this, j);
}

internal static class MovementChecks
{
    /// <summary>The first input's type, once every input is known to share its dtype.</summary>
    public static TensorType SameDType(string op, ReadOnlySpan<TensorType> inputs)
    {
        if (inputs.Length == 0) throw EngineException.InvalidGraph($"'{op}' needs at least one input", op: op);
        for (int i = 1; i < inputs.Length; i++)
            if (inputs[i].DType != inputs[0].DType)
                throw EngineException.DTypeMismatch($"'{op}' inputs are {inputs[0].DType.WireName()} and {inputs[i].DType.WireName()} (input {i})", op: op);
        return inputs[0];
    }

    /// <summary>The JVP of a join: the same join of the tangents, zeros standing in for inputs without one.</summary>
    public static Tensor? JoinTangents(PrimitiveOp op, JvpArgs j)
    {
        bool any = false;
        foreach (var t in j.Tangents) any |= t is not null;
        if (!any) return null;
        var tangents = new Tensor[j.Inputs.Length];
        for (int i = 0; i < tangents.Length; i++) tangents[i] = j.Tangents[i] ?? F.ZerosLike(j.Inputs[i]);
        return Dispatcher.Apply(op, tangents, j.Attrs);
    }
}

public static partial class F
{
    public static Tensor Concat(Tensor[] inputs, int axis = 0) =>
        Dispatcher.Apply(ConcatOp.Instance, inputs, Attributes.Of(("axis", axis)));

    public static Tensor Stack(Tensor[] inputs, int axis = 0) =>
        Dispatcher.Apply(StackOp.Instance, inputs, Attributes.Of(("axis", axis)));
}
