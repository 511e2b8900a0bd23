using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

public class MovementTests
{
    private static double[] Seq(int n) => Enumerable.Range(0, n).Select(i => (double)i).ToArray();

    private static Tensor Input(ExecutionScope scope, int[] shape, int seed) => LinearAlgebraTests.Input(scope, shape, seed);

    [Fact]
    public void Squeeze_Unsqueeze_Flatten_Shapes()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Seq(6), 2, 1, 3, 1);
        Assert.Equal(new Shape(2, 3), F.Squeeze(x).Shape);
        Assert.Equal(new Shape(2, 1, 3), F.Squeeze(x, -1).Shape);
        Assert.Equal(Seq(6), F.Squeeze(x).ToDoubles());

        var y = scope.FromArray(Seq(6), 2, 3);
        Assert.Equal(new Shape(1, 2, 3), F.Unsqueeze(y, 0).Shape);
        Assert.Equal(new Shape(2, 1, 3, 1), F.Unsqueeze(y, -1, 1).Shape);
        Assert.Equal(new Shape(1), F.Unsqueeze(scope.Scalar(3), 0).Shape);

        var z = scope.FromArray(Seq(48), 2, 3, 4, 2);
        Assert.Equal(new Shape(48), F.Flatten(z).Shape);
        Assert.Equal(new Shape(2, 24), F.Flatten(z, 1).Shape);
        Assert.Equal(new Shape(2, 12, 2), F.Flatten(z, 1, -2).Shape);
        Assert.Equal(new Shape(1), F.Flatten(scope.Scalar(1)).Shape);
        Assert.Equal(Seq(48), F.Flatten(z, 1).ToDoubles());
    }

    [Fact]
    public void Concat_JoinsAlongAxis()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([1.0, 2, 3, 4], 2, 2);
        var b = scope.FromArray([5.0, 6], 2, 1);
        var c = F.Concat([a, b], axis: 1);
        Assert.Equal(new Shape(2, 3), c.Shape);
        Assert.Equal([1.0, 2, 5, 3, 4, 6], c.ToDoubles());
        var rows = F.Concat([a, scope.FromArray([7L, 8], 1, 2)]);
        Assert.Equal(DType.Float64, rows.DType);
        Assert.Equal([1.0, 2, 3, 4, 7, 8], rows.ToDoubles());
        Assert.Equal([1.0, 2, 3, 4], F.Concat([a, scope.Zeros(new Shape(0, 2), DType.Float64)]).ToDoubles());
    }

    [Fact]
    public void Stack_JoinsAlongNewAxis()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([1.0, 2, 3]);
        var b = scope.FromArray([4.0, 5, 6]);
        var s0 = F.Stack([a, b]);
        Assert.Equal(new Shape(2, 3), s0.Shape);
        Assert.Equal([1.0, 2, 3, 4, 5, 6], s0.ToDoubles());
        var s1 = F.Stack([a, b], axis: -1);
        Assert.Equal(new Shape(3, 2), s1.Shape);
        Assert.Equal([1.0, 4, 2, 5, 3, 6], s1.ToDoubles());
        var scalars = F.Stack([scope.Scalar(1, DType.Float64), scope.Scalar(2, DType.Float64)]);
        Assert.Equal([1.0, 2], scalars.ToDoubles());
    }

    public static TheoryData<int?, int?, int?, double[]> PythonSlices => new()
    {
        // Expected values from Python: list(range(5))[start:stop:step].
        { null, null, -1, [4, 3, 2, 1, 0] },
        { -2, null, -2, [3, 1] },
        { 4, 0, -1, [4, 3, 2, 1] },
        { 10, -10, -2, [4, 2, 0] },
        { 1, -1, 2, [1, 3] },
        { -100, 2, null, [0, 1] },
        { 3, -6, -1, [3, 2, 1, 0] },
        { -6, 3, null, [0, 1, 2] },
        { 2, 2, null, [] },
        { 4, 1, null, [] },
        { 0, 5, 7, [0] },
        { -1, -6, -7, [4] },
    };

    [Theory]
    [MemberData(nameof(PythonSlices))]
    public void Slice_FollowsPython(int? start, int? stop, int? step, double[] expected)
    {
        using var scope = new ExecutionScope();
        var attrs = Attributes.Empty;
        if (start is { } s) attrs = attrs.With("starts", new[] { s });
        if (stop is { } e) attrs = attrs.With("stops", new[] { e });
        if (step is { } p) attrs = attrs.With("steps", new[] { p });
        var y = F.Slice(scope.FromArray(Seq(5)), attrs);
        Assert.Equal(new Shape(expected.Length), y.Shape);
        Assert.Equal(expected, y.ToDoubles());
    }

    [Fact]
    public void Slice_2D_WithAxesAndNegativeSteps()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Seq(24), 4, 6);
        // x[::-2, 5:0:-2]
        var y = F.Slice(x, starts: [int.MaxValue, 5], stops: [int.MinValue, 0], steps: [-2, -2]);
        Assert.Equal(new Shape(2, 3), y.Shape);
        Assert.Equal([23.0, 21, 19, 11, 9, 7], y.ToDoubles());
        // x[:, -3:] via axes
        var z = F.Slice(x, starts: [-3], axes: [1]);
        Assert.Equal(new Shape(4, 3), z.Shape);
        Assert.Equal([3.0, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23], z.ToDoubles());
        // Other dtypes move as bytes.
        var b = F.Slice(scope.FromArray([true, false, true, true]), steps: [-1]);
        Assert.Equal([1.0, 1, 0, 1], b.ToDoubles());
        var l = F.SliceAxis(scope.FromArray([1L, 2, 3, 4, 5, 6], 2, 3), 1, 1, 3);
        Assert.Equal([2.0, 3, 5, 6], l.ToDoubles());
    }

    [Fact]
    public void SliceScatter_WritesIntoZeros()
    {
        using var scope = new ExecutionScope();
        var src = scope.FromArray([1.0, 2, 3, 4], 2, 2);
        var y = F.SliceScatter(src, new Shape(3, 4), Attributes.Of(("starts", new[] { 2, 3 }), ("steps", new[] { -2, -2 })));
        Assert.Equal([0.0, 4, 0, 3, 0, 0, 0, 0, 0, 2, 0, 1], y.ToDoubles());
    }

    [Fact]
    public void Gather_With2DIndices()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Seq(12), 4, 3);
        var idx = scope.FromArray([0L, 3, 1, 1], 2, 2);
        var y = F.Gather(x, idx);
        Assert.Equal(new Shape(2, 2, 3), y.Shape);
        Assert.Equal([0.0, 1, 2, 9, 10, 11, 3, 4, 5, 3, 4, 5], y.ToDoubles());

        var cols = F.Gather(x, idx, axis: -2);
        Assert.Equal(y.ToDoubles(), cols.ToDoubles());
        var picked = F.Gather(scope.FromArray(Seq(6), 2, 3), scope.FromArray([2L, -3], 2), axis: 1);
        Assert.Equal(new Shape(2, 2), picked.Shape);
        Assert.Equal([2.0, 0, 5, 3], picked.ToDoubles());
        var row = F.Gather(x, scope.FromSpan<long>([2L], []));
        Assert.Equal(new Shape(3), row.Shape);
        Assert.Equal([6.0, 7, 8], row.ToDoubles());
        Assert.Same(GatherOp.Instance, OpRegistry.Default.Get("index_select"));
    }

    [Fact]
    public void ScatterAdd_AddsRepeatedIndices()
    {
        using var scope = new ExecutionScope();
        var src = scope.FromArray([1.0, 2, 3, 4, 5, 6], 3, 2);
        var y = F.ScatterAdd(src, scope.FromArray([1L, 1, -1]), axis: 0, size: 3);
        Assert.Equal(new Shape(3, 2), y.Shape);
        Assert.Equal([0.0, 0, 4, 6, 5, 6], y.ToDoubles());
    }

    [Fact]
    public void Errors_NameWhatIsWrong()
    {
        using var scope = new ExecutionScope();
        var x = scope.Zeros(new Shape(2, 3), DType.Float64);
        var e = Assert.Throws<EngineException>(() => F.Gather(scope.FromArray(Seq(12), 4, 3), scope.FromArray([0L, 1, 7, 2], 2, 2)));
        Assert.Equal(ErrorCodes.InvalidTensor, e.Code);
        Assert.Contains("indices[1, 0] = 7 is out of range for axis 0 of size 4", e.Message);
        Assert.Equal("gather", e.Op);
        Assert.Equal("indices", e.Input);
        e = Assert.Throws<EngineException>(() => F.ScatterAdd(scope.FromArray([1.0, 2]), scope.FromArray([0L, -4]), axis: 0, size: 3));
        Assert.Contains("indices[1] = -4 is out of range for axis 0 of size 3", e.Message);
        e = Assert.Throws<EngineException>(() => F.Gather(x, scope.FromArray([0.0])));
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);

        e = Assert.Throws<EngineException>(() => F.Squeeze(x, 1));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Contains("axis 1 of [2, 3] has size 3", e.Message);
        e = Assert.Throws<EngineException>(() => F.Unsqueeze(x, 3));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.Flatten(x, 1, 0));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);

        e = Assert.Throws<EngineException>(() => F.Concat([x, scope.Zeros(new Shape(3, 3), DType.Float64)], axis: 1));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Contains("[2, 3] and [3, 3] (input 1) differ outside axis 1", e.Message);
        e = Assert.Throws<EngineException>(() => F.Stack([x, scope.Zeros(new Shape(3, 2), DType.Float64)]));
        Assert.Contains("[2, 3] and [3, 2]", e.Message);

        e = Assert.Throws<EngineException>(() => F.Slice(x, steps: [0]));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.Slice(x, starts: [0, 0, 0]));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.Slice(x, starts: [0], stops: [1, 2]));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.SliceScatter(x, new Shape(4, 4), Attributes.Of(("stops", new[] { 3 }))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        e = Assert.Throws<EngineException>(() => F.ScatterAdd(x, scope.FromArray([0L, 1, 2]), axis: 0, size: 4));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
    }

    [Fact]
    public void ViewOps_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Squeeze(x[0]), Input(scope, [2, 1, 3], 1));
        LocalGradCheck.Check(x => F.Unsqueeze(x[0], -1, 0), Input(scope, [2, 3], 2));
        LocalGradCheck.Check(x => F.Flatten(x[0], 1), Input(scope, [2, 3, 2], 3));
    }

    [Fact]
    public void Concat_And_Stack_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Concat(x, axis: 1), Input(scope, [2, 1], 1), Input(scope, [2, 3], 2), Input(scope, [2, 2], 3));
        LocalGradCheck.Check(x => F.Concat(x), Input(scope, [1, 3], 4), Input(scope, [2, 3], 5));
        LocalGradCheck.Check(x => F.Stack(x, axis: 1), Input(scope, [2, 3], 6), Input(scope, [2, 3], 7));
    }

    [Fact]
    public void Slice_And_SliceScatter_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Slice(x[0], starts: [-1, 1], stops: [-6, 4], steps: [-2, 2]), Input(scope, [5, 4], 1));
        LocalGradCheck.Check(x => F.SliceAxis(x[0], 0, 1, 3), Input(scope, [4, 2], 2));
        LocalGradCheck.Check(x => F.SliceScatter(x[0], new Shape(5, 4), Attributes.Of(("starts", new[] { 4, 0 }), ("steps", new[] { -2, 3 }))),
            Input(scope, [3, 2], 3));
    }

    [Fact]
    public void Gather_And_ScatterAdd_Derivatives()
    {
        using var scope = new ExecutionScope();
        var idx = scope.FromArray([0L, 3, 1, 1, -1, 0], 2, 3);
        LocalGradCheck.Check(x => F.Gather(x[0], x[1]), Input(scope, [4, 2], 1), idx);
        LocalGradCheck.Check(x => F.Gather(x[0], x[1], axis: 1), Input(scope, [2, 4], 2), idx);
        LocalGradCheck.Check(x => F.ScatterAdd(x[0], x[1], axis: 1, size: 4), Input(scope, [2, 2, 3, 2], 3), idx);
    }

    [Fact]
    public void Examples_AreValidCalls()
    {
        foreach (var op in MovementOps.All)
            foreach (var example in op.Examples)
                op.InferType(example.Inputs.Select(i => new TensorType(i.Shape, i.DType)).ToArray(), example.Attrs);
    }
}
