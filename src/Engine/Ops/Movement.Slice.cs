using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// A NumPy basic slice resolved against a shape: for every axis the first index read and the step, and the result's
/// shape. The attributes <c>starts</c>, <c>stops</c>, <c>steps</c> and <c>axes</c> are all optional lists of one
/// length; without <c>axes</c> they apply to the leading axes, and axes not named are kept whole. Out-of-range
/// starts and stops clamp as in Python (<c>stops=[-len-1]</c> with a negative step runs to the front).
/// </summary>
internal readonly record struct SliceSpec(int[] Starts, int[] Steps, Shape Shape)
{
    public static readonly OpAttribute[] AttributeSchema =
    [
        new("starts", AttrKind.Ints, false, "first index per axis (negative counts from the end)", "0, or the last index for a negative step"),
        new("stops", AttrKind.Ints, false, "index to stop before, per axis (clamped)", "the end in the step's direction"),
        new("steps", AttrKind.Ints, false, "non-zero step per axis (negative walks backwards)", "1"),
        new("axes", AttrKind.Ints, false, "the axes the lists refer to", "the leading axes"),
    ];

    public static SliceSpec Resolve(Shape x, Attributes attrs, string op)
    {
        long[]? starts = attrs.Has("starts") ? attrs.GetInts("starts") : null;
        long[]? stops = attrs.Has("stops") ? attrs.GetInts("stops") : null;
        long[]? steps = attrs.Has("steps") ? attrs.GetInts("steps") : null;
        int[]? axes = attrs.GetAxes("axes");
        int count = axes?.Length ?? Math.Max(starts?.Length ?? 0, Math.Max(stops?.Length ?? 0, steps?.Length ?? 0));
        foreach (var (name, list) in new[] { ("starts", starts), ("stops", stops), ("steps", steps) })
        {
            if (list is not null && list.Length != count)
                throw EngineException.InvalidGraph($"{op}: {name} has {list.Length} entries but {(axes is null ? "another list has" : "axes has")} {count}", op: op);
        }
        if (count > x.Rank)
            throw EngineException.InvalidGraph($"{op}: {count} axes sliced but x has shape {x}", op: op);

        var starts2 = new int[x.Rank];
        var steps2 = new int[x.Rank];
        var dims = x.ToArray();
        steps2.AsSpan().Fill(1);
        var seen = new bool[x.Rank];
        for (int i = 0; i < count; i++)
        {
            int d = axes is null ? i : x.NormalizeAxis(axes[i], op);
            if (seen[d]) throw EngineException.InvalidGraph($"{op}: axes [{string.Join(", ", axes!)}] name axis {d} twice", op: op);
            seen[d] = true;
            // A step longer than the axis reads at most one element, so clamping it changes nothing and avoids overflow.
            long step = Math.Clamp(steps?[i] ?? 1, -int.MaxValue, int.MaxValue);
            if (step == 0) throw EngineException.InvalidGraph($"{op}: step 0 on axis {d}", op: op);
            long n = x[d], start, stop, len;
            if (step > 0)
            {
                start = Clamp(starts?[i] ?? 0, n, 0, n);
                stop = Clamp(stops?[i] ?? n, n, 0, n);
                len = stop > start ? 1 + (stop - start - 1) / step : 0;
            }
            else
            {
                start = Clamp(starts?[i] ?? n - 1, n, -1, n - 1);
                stop = stops is null ? -1 : Clamp(stops[i], n, -1, n - 1);
                len = start > stop ? 1 + (start - stop - 1) / -step : 0;
            }
            starts2[d] = (int)start;
            steps2[d] = (int)step;
            dims[d] = (int)len;
        }
        return new SliceSpec(starts2, steps2, new Shape(dims));
    }

    /// <summary>Python's rule: a negative index counts from the end, then the result is clamped.</summary>
    private static long Clamp(long index, long n, long low, long high) => Math.Clamp(index < 0 ? index + n : index, low, high);
}

/// <summary><c>slice(x, starts, stops, steps, axes)</c>: NumPy basic slicing, negative indices and steps included; copies.</summary>
public sealed class SliceOp : PrimitiveOp
{
    public static readonly SliceOp Instance = new();

    public override OpSchema Schema { get; } = new("slice", "movement", "a strided sub-box of x (NumPy basic slicing)",
        [new OpInput("x")], SliceSpec.AttributeSchema, "the count of indices taken along each axis; x's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(5, 4)], Attributes.Of(("starts", new[] { 1 }), ("stops", new[] { 4 }))),
        new([ExampleInput.F(5, 4)], Attributes.Of(("steps", new[] { -2 }))),
        new([ExampleInput.F(4, 6)], Attributes.Of(("starts", new[] { 0, 5 }), ("stops", new[] { 4, 0 }), ("steps", new[] { 1, -2 }))),
        new([ExampleInput.F(3, 4)], Attributes.Of(("axes", new[] { -1 }), ("starts", new[] { -3 }), ("stops", new[] { 100 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        return new TensorType(SliceSpec.Resolve(inputs[0].Shape, attrs, Name).Shape, inputs[0].DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        var spec = SliceSpec.Resolve(inputs[0].Shape, attrs, Name);
        scope.Backend.Slice(inputs[0], spec.Starts, spec.Steps, output);
    }

    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public override Tensor?[] Vjp(VjpArgs v) => [F.SliceScatter(v.Grad, v.Inputs[0].Shape, v.Attrs)];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? F.Slice(t, j.Attrs) : null;
}

/// <summary>
/// <c>slice_scatter(source, shape, starts, stops, steps, axes)</c>: zeros of <c>shape</c> with <c>source</c> written
/// where <c>slice</c> with the same attributes would read. It is the transpose of slice (slice's VJP), and slice is
/// its VJP, so derivatives of any order stay within these two ops.
/// </summary>
public sealed class SliceScatterOp : PrimitiveOp
{
    public static readonly SliceScatterOp Instance = new();

    public override OpSchema Schema { get; } = new("slice_scatter", "movement",
        "zeros of a shape with source written into a strided sub-box (the transpose of slice)",
        [new OpInput("source")],
        [new OpAttribute("shape", AttrKind.Ints, true, "the result's shape"), .. SliceSpec.AttributeSchema],
        "the given shape; source's dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(3, 4)], Attributes.Of(("shape", new[] { 5, 4 }), ("starts", new[] { 1 }), ("stops", new[] { 4 }))),
        new([ExampleInput.F(2, 3)], Attributes.Of(("shape", new[] { 4, 6 }), ("starts", new[] { 0, 5 }), ("steps", new[] { 3, -2 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var shape = TargetShape(attrs);
        var spec = SliceSpec.Resolve(shape, attrs, Name);
        if (spec.Shape != inputs[0].Shape)
            throw EngineException.ShapeMismatch($"{Name}: source {inputs[0].Shape} does not match the slice {spec.Shape} of {shape}", op: Name);
        return new TensorType(shape, inputs[0].DType);
    }

    private static Shape TargetShape(Attributes attrs) => attrs.GetShape("shape");

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        var spec = SliceSpec.Resolve(output.Shape, attrs, Name);
        scope.Backend.SliceScatter(inputs[0], spec.Starts, spec.Steps, output);
    }

    public override Tensor?[] Vjp(VjpArgs v) => [F.Slice(v.Grad, WithoutShape(v.Attrs))];

    public override Tensor? Jvp(JvpArgs j) => j.Tangents[0] is { } t ? Dispatcher.Apply(this, [t], j.Attrs) : null;

    private static Attributes WithoutShape(Attributes attrs) => new(attrs.Where(kv => kv.Key != "shape"));
}

public static partial class F
{
    /// <summary>NumPy basic slicing (see <see cref="SliceOp"/>); null lists take their defaults.</summary>
    public static Tensor Slice(Tensor x, int[]? starts = null, int[]? stops = null, int[]? steps = null, int[]? axes = null)
    {
        var attrs = Attributes.Empty;
        if (starts is not null) attrs = attrs.With("starts", starts);
        if (stops is not null) attrs = attrs.With("stops", stops);
        if (steps is not null) attrs = attrs.With("steps", steps);
        if (axes is not null) attrs = attrs.With("axes", axes);
        return Slice(x, attrs);
    }

    public static Tensor Slice(Tensor x, Attributes attrs) => Dispatcher.Apply(SliceOp.Instance, [x], attrs);

    /// <summary><c>x[..., start:stop:step, ...]</c> along one axis.</summary>
    public static Tensor SliceAxis(Tensor x, int axis, int start, int stop, int step = 1) =>
        Slice(x, [start], [stop], [step], [axis]);

    /// <summary>Zeros of <paramref name="shape"/> with <paramref name="source"/> where the slice <paramref name="sliceAttrs"/> reads.</summary>
    public static Tensor SliceScatter(Tensor source, Shape shape, Attributes sliceAttrs) =>
        Dispatcher.Apply(SliceScatterOp.Instance, [source], sliceAttrs.With("shape", shape.ToArray()));
}
