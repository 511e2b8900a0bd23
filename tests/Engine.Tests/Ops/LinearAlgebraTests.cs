using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

public class LinearAlgebraTests
{
    private static double[] Seq(int n, double scale = 1, double offset = 0) =>
        Enumerable.Range(0, n).Select(i => offset + scale * i).ToArray();

    private static double[] Rand(int n, int seed) { var r = new Random(seed); return Enumerable.Range(0, n).Select(_ => r.NextDouble() * 2 - 1).ToArray(); }

    [Fact]
    public void Dot_IsTheInnerProduct()
    {
        using var scope = new ExecutionScope();
        var y = F.Dot(scope.FromArray([1.0, 2, 3]), scope.FromArray([4.0, -5, 6]));
        Assert.Equal(0, y.Rank);
        Assert.Equal(12.0, y.ToScalar());
    }

    [Fact]
    public void Dot_C1_TwiceDotGradient()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = 2.0 * F.Dot(x, x);
        ReverseMode.Backward(y);
        Assert.Equal(28.0, y.ToScalar());
        Assert.Equal([0.0, 4, 8, 12], x.Grad!.ToDoubles());
    }

    [Fact]
    public void MatMul_2D_MatchesHandComputed()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([1.0, 2, 3, 4, 5, 6], 2, 3);
        var b = scope.FromArray([7.0, 8, 9, 10, 11, 12], 3, 2);
        var c = F.MatMul(a, b);
        Assert.Equal(new Shape(2, 2), c.Shape);
        Assert.Equal([58.0, 64, 139, 154], c.ToDoubles());
    }

    [Fact]
    public void MatMul_TransposeFlags_MatchExplicitTransposes()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray(Rand(12, 1), 4, 3);
        var b = scope.FromArray(Rand(20, 2), 5, 4);
        var viaFlags = F.MatMul(a, b, transposeA: true, transposeB: true);
        var explicitly = F.MatMul(F.Transpose(a), F.Transpose(b));
        Assert.Equal(new Shape(3, 5), viaFlags.Shape);
        LocalGradCheck.AssertClose(explicitly.ToDoubles(), viaFlags.ToDoubles(), "matmul(aᵀ, bᵀ)", 1e-12);
    }

    [Fact]
    public void MatMul_VectorsArePromotedAndSqueezed()
    {
        using var scope = new ExecutionScope();
        var m = scope.FromArray([1.0, 2, 3, 4, 5, 6], 2, 3);
        var v3 = scope.FromArray([1.0, 0, -1]);
        var v2 = scope.FromArray([2.0, -1]);
        var mv = F.MatMul(m, v3);
        Assert.Equal(new Shape(2), mv.Shape);
        Assert.Equal([-2.0, -2], mv.ToDoubles());
        var vm = F.MatMul(v2, m);
        Assert.Equal(new Shape(3), vm.Shape);
        Assert.Equal([-2.0, -1, 0], vm.ToDoubles());
        var vv = F.MatMul(v3, v3);
        Assert.Equal(Shape.Scalar, vv.Shape);
        Assert.Equal(2.0, vv.ToScalar());
        var batched = F.MatMul(scope.FromArray(Seq(12), 2, 2, 3), v3);
        Assert.Equal(new Shape(2, 2), batched.Shape);
        Assert.Equal([-2.0, -2, -2, -2], batched.ToDoubles());
    }

    [Fact]
    public void MatMul_BroadcastsBatchDims()
    {
        using var scope = new ExecutionScope();
        double[] a = Rand(2 * 1 * 2 * 3, 3), b = Rand(3 * 3 * 2, 4);
        var c = F.MatMul(scope.FromArray(a, 2, 1, 2, 3), scope.FromArray(b, 3, 3, 2));
        Assert.Equal(new Shape(2, 3, 2, 2), c.Shape);
        var actual = c.ToDoubles();
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 3; q++)
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++)
                    {
                        double sum = 0;
                        for (int k = 0; k < 3; k++) sum += a[p * 6 + i * 3 + k] * b[q * 6 + k * 2 + j];
                        Assert.Equal(sum, actual[((p * 3 + q) * 2 + i) * 2 + j], 12);
                    }
    }

    [Fact]
    public void MatMul_Float32AndInt64()
    {
        using var scope = new ExecutionScope();
        var f = F.MatMul(scope.FromArray([1f, 2, 3, 4], 2, 2), scope.FromArray([1f, 1, 0, 1], 2, 2));
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal([1.0, 3, 3, 7], f.ToDoubles());
        var l = F.MatMul(scope.FromArray([1L, 2, 3, 4], 2, 2), scope.FromArray([5L, 6], 2));
        Assert.Equal(DType.Int64, l.DType);
        Assert.Equal([17.0, 39], l.ToDoubles());
        var promoted = F.MatMul(scope.FromArray([1L, 2], 1, 2), scope.FromArray([0.5, 0.25], 2, 1));
        Assert.Equal(DType.Float64, promoted.DType);
        Assert.Equal(1.0, promoted.ToScalar());
    }

    [Fact]
    public void Outer_IsTheProductTable()
    {
        using var scope = new ExecutionScope();
        var o = F.Outer(scope.FromArray([1.0, 2, 3]), scope.FromArray([10.0, -1]));
        Assert.Equal(new Shape(3, 2), o.Shape);
        Assert.Equal([10.0, -1, 20, -2, 30, -3], o.ToDoubles());
    }

    [Fact]
    public void Transpose_DefaultReversesAndPermMoves()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Seq(6), 2, 3);
        var t = F.Transpose(x);
        Assert.Equal(new Shape(3, 2), t.Shape);
        Assert.Equal([0.0, 3, 1, 4, 2, 5], t.ToDoubles());

        var y = scope.FromArray(Seq(24), 2, 3, 4);
        var p = F.Transpose(y, 2, 0, 1);
        Assert.Equal(new Shape(4, 2, 3), p.Shape);
        var values = p.ToDoubles();
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 2; j++)
                for (int k = 0; k < 3; k++)
                    Assert.Equal(j * 12 + k * 4 + i, values[(i * 2 + j) * 3 + k]);
        Assert.Same(TransposeOp.Instance, OpRegistry.Default.Get("permute"));
    }

    [Theory]
    [InlineData(new[] { 3, 40, 70 }, new[] { 2, 0, 1 })]
    [InlineData(new[] { 3, 40, 70 }, new[] { 0, 2, 1 })]
    [InlineData(new[] { 2, 33, 1, 65 }, new[] { 3, 2, 0, 1 })]
    [InlineData(new[] { 5, 1, 7 }, new[] { 1, 0, 2 })]
    public void Transpose_MatchesNaiveForEveryDType(int[] shape, int[] perm)
    {
        using var scope = new ExecutionScope();
        int count = (int)new Shape(shape).ElementCount;
        var values = Seq(count, 1, 1);
        var inputs = new[]
        {
            scope.FromSpan<double>(values, shape),
            scope.FromSpan<float>(values.Select(v => (float)v).ToArray(), shape),
            scope.FromSpan<long>(values.Select(v => (long)v).ToArray(), shape),
            scope.FromSpan<bool>(values.Select(v => v % 3 == 0).ToArray(), shape),
        };
        var inStrides = new Shape(shape).Strides();
        foreach (var x in inputs)
        {
            var source = x.ToDoubles();
            var y = F.Transpose(x, perm);
            var outShape = y.Shape;
            var actual = y.ToDoubles();
            var index = new int[shape.Length];
            for (int flat = 0; flat < count; flat++)
            {
                long rest = flat, offset = 0;
                for (int d = shape.Length - 1; d >= 0; d--)
                {
                    index[d] = (int)(rest % outShape[d]);
                    rest /= outShape[d];
                    offset += index[d] * inStrides[perm[d]];
                }
                Assert.Equal(source[offset], actual[flat]);
            }
        }
    }

    [Fact]
    public void ShapeErrors_NameBothShapes()
    {
        using var scope = new ExecutionScope();
        var e = Assert.Throws<EngineException>(() => F.MatMul(scope.Zeros(new Shape(2, 3)), scope.Zeros(new Shape(4, 5))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Contains("[2, 3] @ [4, 5]: inner dims 3 and 4 differ", e.Message);
        Assert.Equal("matmul", e.Op);

        e = Assert.Throws<EngineException>(() => F.MatMul(scope.Zeros(new Shape(2, 2, 3)), scope.Zeros(new Shape(3, 3, 1))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Contains("batch dims [2] and [3]", e.Message);

        e = Assert.Throws<EngineException>(() => F.MatMul(scope.Scalar(1), scope.Zeros(new Shape(3))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);

        e = Assert.Throws<EngineException>(() => F.Dot(scope.Zeros(new Shape(3)), scope.Zeros(new Shape(4))));
        Assert.Contains("[3] · [4]: lengths 3 and 4 differ", e.Message);
        e = Assert.Throws<EngineException>(() => F.Dot(scope.Zeros(new Shape(3, 1)), scope.Zeros(new Shape(3))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        e = Assert.Throws<EngineException>(() => F.Outer(scope.Zeros(new Shape(3, 1)), scope.Zeros(new Shape(3))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);

        e = Assert.Throws<EngineException>(() => F.Transpose(scope.Zeros(new Shape(2, 3)), 0, 0));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.Transpose(scope.Zeros(new Shape(2, 3)), 1, 0, 2));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        e = Assert.Throws<EngineException>(() => F.MatMul(scope.FromArray([true, false], 1, 2), scope.FromArray([true, false], 2, 1)));
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);
    }

    public static TheoryData<string, int[], int[], bool, bool> MatMulCases => new()
    {
        { "2d", [2, 3], [3, 4], false, false },
        { "vector @ matrix", [3], [3, 2], false, false },
        { "matrix @ vector", [2, 3], [3], false, false },
        { "vector @ vector", [3], [3], false, false },
        { "broadcast batch", [2, 1, 2, 3], [3, 3, 2], false, false },
        { "batch @ vector", [2, 3, 4], [4], false, false },
        { "vector @ batch", [3], [2, 3, 2], false, false },
        { "transpose_a", [3, 2], [3, 4], true, false },
        { "transpose_b batched", [2, 2, 3], [4, 3], false, true },
        { "both transposed", [3, 2], [2, 4, 3], true, true },
    };

    [Theory]
    [MemberData(nameof(MatMulCases))]
    public void MatMul_Derivatives(string name, int[] a, int[] b, bool ta, bool tb)
    {
        _ = name;
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.MatMul(x[0], x[1], ta, tb), Input(scope, a, 1), Input(scope, b, 2));
    }

    [Fact]
    public void Dot_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Dot(x[0], x[1]), Input(scope, [4], 1), Input(scope, [4], 2));
    }

    [Fact]
    public void Outer_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Outer(x[0], x[1]), Input(scope, [3], 1), Input(scope, [2], 2));
    }

    [Fact]
    public void Transpose_Derivatives()
    {
        using var scope = new ExecutionScope();
        LocalGradCheck.Check(x => F.Transpose(x[0]), Input(scope, [2, 3], 1));
        LocalGradCheck.Check(x => F.Transpose(x[0], 2, 0, 1), Input(scope, [2, 3, 4], 2));
    }

    [Fact]
    public void Examples_AreValidCalls()
    {
        using var scope = new ExecutionScope();
        foreach (var op in LinearAlgebraOps.All)
            foreach (var example in op.Examples)
                op.InferType(example.Inputs.Select(i => new TensorType(i.Shape, i.DType)).ToArray(), example.Attrs);
    }

    internal static Tensor Input(ExecutionScope scope, int[] shape, int seed) =>
        scope.FromSpan<double>(Rand((int)new Shape(shape).ElementCount, seed), shape);
}
