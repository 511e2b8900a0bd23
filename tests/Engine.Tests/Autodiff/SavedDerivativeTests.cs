using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Autodiff;

/// <summary>
/// A recorded sin or cos computes its partner in the same pass and backward reads it instead of recomputing it. These
/// check it changes no number: against the same derivatives computed with recording off at forward time (so nothing is
/// saved), through several orders, with retained graphs, released gradients and tight memory budgets.
/// </summary>
public class SavedDerivativeTests
{
    private static readonly double[] Values = [-3.1, -1.0, -0.0, 0.0, 0.5, 1.5707964, 2.0, 3.0, 1e5, 40000.5, -7.25, 0.001, 12.5, -100.0, 2.5, 9.0, -0.3];

    /// <summary>The n-th derivative of sum(f(x)) by repeated create_graph gradients.</summary>
    private static double[] NthDerivative(ExecutionScope scope, Func<Tensor, Tensor> f, int n, DType dtype)
    {
        var x = scope.FromArray(Values.Select(v => v).ToArray()).RequireGrad(false);
        if (dtype == DType.Float32) x = F.Cast(x, DType.Float32);
        x.RequireGrad();
        var y = F.Sum(f(x));
        Tensor g = y;
        for (int k = 1; k <= n; k++)
        {
            var grad = ReverseMode.Grad(F.Sum(g), x, new BackwardOptions { CreateGraph = k < n });
            g = grad;
        }
        return g.ToDoubles();
    }

    /// <summary>The same with every forward op run unrecorded first and then differentiated symbolically by hand.</summary>
    private static double Expected(string f, int n, double x)
    {
        // d^n/dx^n sin = sin(x + nπ/2), cos = cos(x + nπ/2); computed as the cycle to avoid rounding π.
        double s = Math.Sin(x), c = Math.Cos(x);
        double[] sinCycle = [s, c, -s, -c], cosCycle = [c, -s, -c, s];
        return f == "sin" ? sinCycle[n % 4] : cosCycle[n % 4];
    }

    [Theory]
    [InlineData("sin", DType.Float64)]
    [InlineData("cos", DType.Float64)]
    [InlineData("sin", DType.Float32)]
    [InlineData("cos", DType.Float32)]
    public void DerivativesUpToFourthOrderMatchClosedForms(string name, DType dtype)
    {
        Func<Tensor, Tensor> f = name == "sin" ? F.Sin : F.Cos;
        for (int n = 1; n <= 4; n++)
        {
            using var scope = new ExecutionScope();
            var got = NthDerivative(scope, f, n, dtype);
            for (int i = 0; i < Values.Length; i++)
            {
                double x = dtype == DType.Float32 ? (float)Values[i] : Values[i];
                double want = Expected(name, n, x);
                if (dtype == DType.Float32) want = (float)Expected(name, n, x);
                double tol = dtype == DType.Float32 ? 1e-6 * Math.Max(1, Math.Abs(want)) : 1e-15;
                Assert.True(Math.Abs(got[i] - want) <= tol, $"d^{n}/dx^{n} {name}({x}) = {got[i]}, expected {want}");
            }
        }
    }

    [Fact]
    public void SavedAndRecomputedGiveTheSameBits()
    {
        var data = new float[100_003];
        var random = new Random(3);
        for (int i = 0; i < data.Length; i++) data[i] = (float)(random.NextDouble() * 20 - 10);

        using var scope = new ExecutionScope();
        var x = scope.FromArray(data).RequireGrad();
        // Recorded: the forward saves cos x; first and second derivatives read saved values.
        var y = F.Sin(x);
        Assert.NotNull(y.GradFn!.Saved);
        var first = ReverseMode.Grad(F.Sum(y), x, new BackwardOptions { CreateGraph = true });
        var second = ReverseMode.Grad(F.Sum(first), x);

        // Unrecorded: plain kernels.
        using var off = scope.NoGrad();
        var sin = F.Sin(x).ToArray<float>();
        var cos = F.Cos(x).ToArray<float>();
        Assert.Equal(sin, y.ToArray<float>());
        Assert.Equal(cos, first.ToArray<float>());
        Assert.Equal(sin.Select(v => -v).ToArray(), second.ToArray<float>());
    }

    [Fact]
    public void RetainedGraphGivesTheSameGradientTwice()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 0.5, 1.0, 2.0 }).RequireGrad();
        var loss = F.Sum(F.Cos(x) * x);
        var a = ReverseMode.Grad(loss, x, new BackwardOptions { RetainGraph = true }).ToDoubles();
        var b = ReverseMode.Grad(loss, x).ToDoubles();
        Assert.Equal(a, b);
        for (int i = 0; i < 3; i++)
        {
            double v = new[] { 0.5, 1.0, 2.0 }[i];
            Assert.Equal(Math.Cos(v) - v * Math.Sin(v), a[i], 14);
        }
    }

    [Fact]
    public void ReleasedGradientIsRecomputedNotRead()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 0.25, -1.5 }).RequireGrad();
        var loss = F.Sum(F.Sin(x));
        // The first gradient is the saved cos x itself (the seed is a constant one): disposing it must not break a
        // second pass over the retained graph.
        var first = ReverseMode.Grad(loss, x, new BackwardOptions { RetainGraph = true });
        first.Dispose();
        var again = ReverseMode.Grad(loss, x).ToDoubles();
        Assert.Equal(Math.Cos(0.25), again[0], 15);
        Assert.Equal(Math.Cos(-1.5), again[1], 15);
    }

    [Fact]
    public void NoRoomForThePartnerFallsBackToRecomputing()
    {
        const int n = 1000;
        // Room for x, sin x and the sum, and for cos x in backward, but not for x, sin x and cos x at once plus more.
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = n * 8 * 2 + 64 });
        var x = scope.Full(new Shape(n), 0.5, DType.Float64).RequireGrad();
        var y = F.Sin(x);
        Assert.Null(y.GradFn!.Saved);
        var loss = F.Sum(y);
        y.Dispose();
        var g = ReverseMode.Grad(loss, x);
        Assert.Equal(Math.Cos(0.5), g.ToDoubles()[0], 15);
    }

    [Fact]
    public void UnrecordedForwardSavesNothing()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 1.0f, 2.0f });
        var before = scope.Budget.InUseBytes;
        var y = F.Sin(x);
        Assert.Null(y.GradFn);
        Assert.Equal(before + 8, scope.Budget.InUseBytes);
    }

    [Fact]
    public void ForwardOverReverseStillPushesTangents()
    {
        // A tangent on x makes the VJP recompute cos x through the dispatcher, which pushes the tangent along.
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 0.3, 1.2 }).RequireGrad();
        var (_, tangent) = ForwardMode.Jvp(v => [ReverseMode.Grad(F.Sum(F.Sin(v[0])), v[0], new BackwardOptions { CreateGraph = true })],
            [x], [scope.FromArray(new[] { 1.0, 1.0 })]);
        var t = tangent[0]!.ToDoubles();
        Assert.Equal(-Math.Sin(0.3), t[0], 14);
        Assert.Equal(-Math.Sin(1.2), t[1], 14);
    }

    [Fact]
    public void PooledMemoryReturnsAfterScope()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool }))
        {
            var x = scope.Full(new Shape(300_000), 0.7, DType.Float32).RequireGrad();
            var first = ReverseMode.Grad(F.Sum(F.Cos(x)), x, new BackwardOptions { CreateGraph = true });
            _ = ReverseMode.Grad(F.Sum(first), x);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }
}
