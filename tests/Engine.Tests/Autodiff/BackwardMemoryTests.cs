using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Autodiff;

/// <summary>
/// Without create_graph a backward pass frees each cotangent and each rule's temporaries as soon as nothing needs
/// them: peaks stay a few buffers above the forward's, and nothing a caller can see is ever freed.
/// </summary>
public class BackwardMemoryTests
{
    private static Tensor Chain(Tensor x)
    {
        var h = x;
        for (int i = 0; i < 10; i++) h = i % 2 == 0 ? F.Tanh(h) : F.Sin(h) * 0.5;
        return F.Sum(h);
    }

    [Fact]
    public void BackwardPeakStaysAFewBuffersAboveTheForward()
    {
        const int n = 1 << 20;
        const long buffer = 4L * n;
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(n), 1, -2, 2).RequireGrad();
        var loss = Chain(x);
        long afterForward = scope.Budget.InUseBytes;
        var g = ReverseMode.Grad(loss, x);
        long extra = scope.Budget.PeakBytes - afterForward;
        // At tanh: the cotangent in flight, y², 1 - y² and their product (plus scalars); before, every node's were kept.
        Assert.True(extra <= 4 * buffer + 1024, $"backward peak {(double)extra / buffer:F2} buffers above the forward");
        Assert.False(g.IsDisposed);
        Assert.True(scope.Budget.InUseBytes - afterForward <= buffer + 64, "only the gradient outlives the pass");
    }

    [Fact]
    public void SameGradientsAsARecordedBackward()
    {
        // create_graph keeps everything (its cotangents belong to the new graph): the numbers must not differ.
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(1000), 2, -2, 2).RequireGrad();
        var freed = ReverseMode.Grad(Chain(x), x).ToArray<float>();
        var kept = ReverseMode.Grad(Chain(x), x, new BackwardOptions { CreateGraph = true }).ToArray<float>();
        Assert.Equal(kept, freed);
    }

    [Fact]
    public void CotangentsSharedByTwoInputsSurvive()
    {
        // add's rule hands the same cotangent to both inputs; each must still find it.
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 0.5, 1.5, -2.0 }).RequireGrad();
        var a = F.Sin(x);
        var b = F.Exp(x);
        var loss = F.Sum((a + b) * (a + b));
        var g = ReverseMode.Grad(loss, x).ToDoubles();
        for (int i = 0; i < 3; i++)
        {
            double v = new[] { 0.5, 1.5, -2.0 }[i];
            Assert.Equal(2 * (Math.Sin(v) + Math.Exp(v)) * (Math.Cos(v) + Math.Exp(v)), g[i], 12);
        }
    }

    [Fact]
    public void CallerSeedsAndIntermediatesAskedForAreKept()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 1.0, 2.0 }).RequireGrad();
        var h = F.Tanh(x);
        var y = F.Sin(h) * 3.0;
        var seed = scope.FromArray(new[] { 1.0, -1.0 });
        var grads = ReverseMode.Grad([y], [seed], [x, h]);
        Assert.False(seed.IsDisposed);
        Assert.False(grads[0].IsDisposed);
        Assert.False(grads[1].IsDisposed);
        Assert.Equal(3 * Math.Cos(Math.Tanh(1.0)), grads[1].ToDoubles()[0], 12);
    }

    [Fact]
    public void TangentsOfAGradientSurvive()
    {
        // Forward over reverse without create_graph: the gradient's tangent is made by the rules and must outlive them.
        using var scope = new ExecutionScope();
        var x = scope.FromArray(new[] { 0.3, 1.2 }).RequireGrad();
        var (_, tangents) = ForwardMode.Jvp(v => [ReverseMode.Grad(F.Sum(F.Sin(v[0]) * v[0]), v[0])], [x], [scope.FromArray(new[] { 1.0, 1.0 })]);
        var t = tangents[0].ToDoubles();
        Assert.Equal(2 * Math.Cos(0.3) - 0.3 * Math.Sin(0.3), t[0], 12);
        Assert.Equal(2 * Math.Cos(1.2) - 1.2 * Math.Sin(1.2), t[1], 12);
    }

    [Fact]
    public void LeafGradientsAccumulateAcrossBackwardCalls()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool }))
        {
            var x = scope.FromArray(new[] { 1.0, 2.0 }).RequireGrad();
            ReverseMode.Backward(F.Sum(F.Sin(x) * x));
            ReverseMode.Backward(F.Sum(F.Sin(x) * x));
            var g = x.Grad!.ToDoubles();
            Assert.Equal(2 * (Math.Sin(1.0) + Math.Cos(1.0)), g[0], 12);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }
}

/// <summary>A recorded plan run keeps only the values some recorded rule reads (PyTorch's saved tensors).</summary>
public class SavedTensorsPlanTests
{
    private static long GradientPeak(string program, int n, out double[] gradient)
    {
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(n), 3, -1, 1);
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(program), inputs);
        long before = scope.Budget.InUseBytes;
        var result = GraphFunctions.Gradient(scope, plan, inputs);
        gradient = result.Gradients["x"].ToDoubles();
        return scope.Budget.PeakBytes - before;
    }

    [Fact]
    public void ValuesNoRuleReadsAreFreedAfterTheirLastRead()
    {
        // add's rule reads nothing: each sum can go as soon as the next is made (five 4 MB values, two live at a time).
        const int n = 1 << 20;
        long peak = GradientPeak("a = x + 1\nb = a + 2\nc = b + 3\nd = c + 4\ne = d + 5\nz = sum(e)", n, out var g);
        Assert.All(g, v => Assert.Equal(1.0, v));
        Assert.True(peak <= 3 * 4L * n, $"peak {(double)peak / (4L * n):F2} buffers");
    }

    [Fact]
    public void ValuesARuleReadsAreKept()
    {
        // exp's rule reads its output: each exp(..) stays for backward, and the gradient is right.
        const int n = 1000;
        long peak = GradientPeak("a = x * 0.5\nb = exp(a)\nc = exp(b)\nz = sum(c)", n, out var g);
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(n), 3, -1, 1).ToDoubles();
        for (int i = 0; i < n; i += 97)
        {
            double b = Math.Exp(0.5 * x[i]);
            Assert.Equal(Math.Exp(b) * b * 0.5, g[i], 5);
        }
        Assert.True(peak >= 2 * 4L * n, $"peak {peak}");
    }
}
