using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// The chapter's cases (d2l-cases.md) through the define-by-run tape: F ops, ReverseMode, ForwardMode, Derivatives.
/// The same cases through the graph IR are in <see cref="ChapterCasesGraphTests"/>.
/// C1 uses sum(x * x) for dot(x, x): dot is added by another branch.
/// </summary>
public class ChapterCasesTapeTests
{
    private static readonly double[] E1Expected = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112];
    private static readonly double[] E6F = [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964];
    private static readonly double[] E6Df = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564];

    private static Tensor E1F(Tensor x) => F.Log(F.Pow(x, 2.0)) * F.Sin(x) + 1.0 / x;

    [Fact]
    public void C1_GradientOfTwiceDot()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = 2.0 * F.Sum(x * x);
        ReverseMode.Backward(y);
        Assert.Equal(28.0, y.ToScalar());
        Assert.Equal([0.0, 4, 8, 12], x.Grad!.ToDoubles());
    }

    [Fact]
    public void C2_AccumulateOverwriteAndZeroGrad()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        ReverseMode.Backward(2.0 * F.Sum(x * x));
        ReverseMode.Backward(F.Sum(x));
        Assert.Equal([1.0, 5, 9, 13], x.Grad!.ToDoubles());

        ReverseMode.ZeroGrad(x);
        ReverseMode.Backward(F.Sum(x));
        Assert.Equal([1.0, 1, 1, 1], x.Grad!.ToDoubles());

        ReverseMode.Backward(2.0 * F.Sum(x * x), options: new BackwardOptions { Mode = GradientMode.Overwrite });
        ReverseMode.Backward(F.Sum(x), options: new BackwardOptions { Mode = GradientMode.Overwrite });
        Assert.Equal([1.0, 1, 1, 1], x.Grad!.ToDoubles());
    }

    [Fact]
    public void C3_NonScalarOutput_SeedOrSumConvention()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = x * x;
        var seeded = ReverseMode.Grad([y], [scope.Full(new Shape(4), 1)], [x], new BackwardOptions { RetainGraph = true })[0];
        Assert.Equal([0.0, 2, 4, 6], seeded.ToDoubles());
        var summed = ReverseMode.Grad([y], null, [x], new BackwardOptions { RetainGraph = true })[0];
        Assert.Equal([0.0, 2, 4, 6], summed.ToDoubles());
        var e = Assert.Throws<EngineException>(() => ReverseMode.Grad([y], null, [x], new BackwardOptions { RequireScalarOutput = true }));
        Assert.Contains("only for scalar outputs", e.Message);
    }

    [Fact]
    public void C4_Detach()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = x * x;
        var u = F.Detach(y);
        var z = u * x;
        ReverseMode.Backward(F.Sum(z));
        Assert.Equal([0.0, 1, 4, 9], x.Grad!.ToDoubles());
        Assert.Equal(u.ToDoubles(), x.Grad!.ToDoubles());

        ReverseMode.ZeroGrad(x);
        ReverseMode.Backward(F.Sum(y));
        Assert.Equal([0.0, 2, 4, 6], x.Grad!.ToDoubles());
    }

    /// <summary>The chapter's f(a), written with the caller's own while and if.</summary>
    private static Tensor C5F(Tensor a)
    {
        var b = 2.0 * a;
        while (F.Norm(b).ToScalar() < 1000) b = 2.0 * b;
        return F.Sum(b).ToScalar() > 0 ? b : 100.0 * b;
    }

    [Theory]
    [InlineData(0.5f, 1024f, 2048f)]
    [InlineData(-0.3f, -122880.0078f, 409600f)]
    [InlineData(1.7f, 1740.8f, 1024f)]
    public void C5_ControlFlow(float a, float c, float grad)
    {
        using var scope = new ExecutionScope();
        var x = scope.Scalar(a).RequireGrad();
        var y = C5F(x);
        ReverseMode.Backward(y);
        Assert.Equal(c, (float)y.ToScalar());
        Assert.Equal(grad, (float)x.Grad!.ToScalar());
        Assert.Equal(y.ToScalar() / a, x.Grad!.ToScalar(), 1e-2);
    }

    [Fact]
    public void E1_SecondDerivative()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0.5, 1, 2, -1.5]).RequireGrad();
        var g = ReverseMode.Grad([E1F(x)], null, [x], new BackwardOptions { CreateGraph = true })[0];
        var h = ReverseMode.Grad([g], null, [x])[0];
        Close(E1Expected, h.ToDoubles(), 1e-12);
    }

    [Fact]
    public void E2_BackwardTwice()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = 2.0 * F.Sum(x * x);
        ReverseMode.Backward(y);
        var e = Assert.Throws<EngineException>(() => ReverseMode.Backward(y));
        Assert.Equal(ErrorCodes.GraphFreed, e.Code);
        Assert.Contains("retain_graph", e.Message);

        ReverseMode.ZeroGrad(x);
        var kept = 2.0 * F.Sum(x * x);
        ReverseMode.Backward(kept, options: new BackwardOptions { RetainGraph = true });
        Assert.Equal([0.0, 4, 8, 12], x.Grad!.ToDoubles());
        ReverseMode.Backward(kept);
        Assert.Equal([0.0, 8, 16, 24], x.Grad!.ToDoubles());
    }

    [Fact]
    public void E3_VectorControlFlow_GradientAndJacobian()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([0.3f, -0.2f, 0.1f]);
        var leaf = scope.FromArray([0.3f, -0.2f, 0.1f]).RequireGrad();
        var c = C5F(leaf);
        Close([1228.8, -819.2, 409.6], c.ToDoubles(), 1e-6);
        ReverseMode.Backward(c);
        Assert.Equal([4096.0, 4096, 4096], leaf.Grad!.ToDoubles());

        double[] eye = [4096, 0, 0, 0, 4096, 0, 0, 0, 4096];
        foreach (var mode in new[] { JacobianMode.Forward, JacobianMode.Reverse })
        {
            var j = Derivatives.Jacobian(xs => [C5F(xs[0])], [a], mode, out var used);
            Assert.Equal(mode, used);
            Assert.Equal(eye, j[0][0].ToDoubles());
        }
    }

    [Fact]
    public void E4_DerivativeOfSinIsCos()
    {
        using var scope = new ExecutionScope();
        var grid = Enumerable.Range(0, 200).Select(i => (float)(-2 * Math.PI + 4 * Math.PI * i / 199)).ToArray();
        var x = scope.FromArray(grid).RequireGrad();
        var g = ReverseMode.Grad(F.Sum(F.Sin(x)), x);
        Close(grid.Select(v => (double)MathF.Cos(v)).ToArray(), g.ToDoubles(), 1e-6);
    }

    [Fact]
    public void E5_DependencyGraphOnTheTape()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0.5, 1, 2, -1.5]).RequireGrad();
        var f = E1F(x);
        var ops = new HashSet<string>();
        var stack = new Stack<TapeNode>([f.GradFn!]);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            ops.Add(node.Op.Name);
            foreach (var input in node.Inputs)
                if (input.GradFn is { } n) stack.Push(n);
        }
        Assert.Superset(new HashSet<string> { "pow", "log", "sin", "mul", "div", "add" }, ops);
    }

    [Fact]
    public void E6_ChainRuleTerms()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0.5, 1, 2, -1.5]).RequireGrad();
        var square = F.Pow(x, 2.0);
        var log = F.Log(square);
        var sin = F.Sin(x);
        var product = log * sin;
        var f = product + 1.0 / x;
        Close(E6F, f.ToDoubles(), 1e-12);
        var grads = ReverseMode.Grad([f], null, [x, product, log, square]);
        Close(E6Df, grads[0].ToDoubles(), 1e-12);
        Assert.Equal([1.0, 1, 1, 1], grads[1].ToDoubles());           // df/d(product)
        Close(sin.ToDoubles(), grads[2].ToDoubles(), 1e-15);           // df/d(log) = sin x
        Close(sin.ToDoubles().Zip(square.ToDoubles(), (s, q) => s / q).ToArray(), grads[3].ToDoubles(), 1e-12);
    }

    [Fact]
    public void E7_ForwardAndReverseAgree()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0.5, 1, 2, -1.5]);
        var (_, tangents) = ForwardMode.Jvp(xs => [E1F(xs[0])], [x], [scope.Full(new Shape(4), 1, DType.Float64)]);
        Close(E6Df, tangents[0].ToDoubles(), 1e-12);
        var leaf = scope.FromArray([0.5, 1, 2, -1.5]).RequireGrad();
        Close(tangents[0].ToDoubles(), ReverseMode.Grad(E1F(leaf), leaf).ToDoubles(), 1e-14);
    }

    [Fact]
    public void E8_JacobianPicksTheCheaperMode()
    {
        using var scope = new ExecutionScope();
        var wide = scope.FromArray([1f, 2]);
        var c = scope.FromArray([1f, 2, 3, 4, 5, 6], 3, 2);
        var forward = Derivatives.Jacobian(xs => [xs[0] * c], [wide], JacobianMode.Auto, out var used);
        Assert.Equal(JacobianMode.Forward, used); // n = 2 < m = 6
        var reverse = Derivatives.Jacobian(xs => [xs[0] * c], [wide], JacobianMode.Reverse, out _);
        Assert.Equal(reverse[0][0].ToDoubles(), forward[0][0].ToDoubles());

        var tall = scope.FromArray([1f, 2, 3, 4]);
        Derivatives.Jacobian(xs => [F.Sum(xs[0] * xs[0])], [tall], JacobianMode.Auto, out used);
        Assert.Equal(JacobianMode.Reverse, used); // n = 4 > m = 1
    }
}
