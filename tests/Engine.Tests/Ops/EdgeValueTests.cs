using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

/// <summary>Edge values where a naive formula loses digits or gives NaN; expected values are PyTorch's.</summary>
public class EdgeValueTests
{
    [Theory]
    [InlineData("log1p", 1e-9, 1e-9)]
    [InlineData("log1p", 1e-5, 9.99995e-6)]
    [InlineData("expm1", 1e-10, 1e-10)]
    [InlineData("expm1", 1e-3, 0.00100050017)]
    [InlineData("softplus", -20, 2.0611537e-9)]
    public void Float32NearZeroKeepsItsDigits(string op, double x, double expected)
    {
        using var scope = new ExecutionScope();
        var y = Dispatcher.Apply(OpRegistry.Default.Get(op), scope.FromArray([(float)x]));
        Assert.Equal(expected, y.ToDoubles()[0], expected * 1e-6);
    }

    [Theory]
    [InlineData("log1p", 1e-12, 1e-12)]
    [InlineData("softplus", -30, 9.357622968840175e-14)]
    public void Float64NearZeroKeepsItsDigits(string op, double x, double expected)
    {
        using var scope = new ExecutionScope();
        var y = Dispatcher.Apply(OpRegistry.Default.Get(op), scope.FromArray([x]));
        Assert.Equal(expected, y.ToDoubles()[0], expected * 1e-12);
    }

    [Theory]
    [InlineData(new[] { 0.0, 2, 3 }, new[] { 6.0, 0, 0 })]
    [InlineData(new[] { 0.0, 0, 3 }, new[] { 0.0, 0, 0 })]
    [InlineData(new[] { 1.0, 2, 3 }, new[] { 6.0, 3, 2 })]
    public void ProdGradientWithZeros(double[] x, double[] expected)
    {
        using var scope = new ExecutionScope();
        var t = scope.FromArray(x).RequireGrad();
        Assert.Equal(expected, ReverseMode.Grad(F.Prod(t), t).ToDoubles());
        var (_, tangents) = ForwardMode.Jvp(xs => [F.Prod(xs[0])], [t], [scope.FromArray([1.0, 1, 1])]);
        Assert.Equal(expected.Sum(), tangents[0].ToScalar(), 1e-12);
    }

    [Fact]
    public void NormOfZeroVectorHasZeroGradient()
    {
        using var scope = new ExecutionScope();
        var t = scope.FromArray([0.0, 0, 0]).RequireGrad();
        var n = F.Norm(t);
        Assert.Equal(0.0, n.ToScalar());
        Assert.Equal([0.0, 0, 0], ReverseMode.Grad(n, t).ToDoubles());
    }

    [Fact]
    public void PromotionFollowsPyTorch()
    {
        using var scope = new ExecutionScope();
        var f32 = scope.FromArray([1f, 2f]);
        Assert.Equal(DType.Float32, (f32 * scope.Scalar(2, DType.Float64)).DType);
        Assert.Equal(DType.Float64, (f32 * scope.FromArray([2.0, 3.0])).DType);
        Assert.Equal(DType.Float32, (scope.FromArray([1L, 2L]) * scope.Scalar(0.5, DType.Float64)).DType);
        Assert.Equal(DType.Float64, (scope.Scalar(1, DType.Float32) * scope.Scalar(2, DType.Float64)).DType);
    }
}
