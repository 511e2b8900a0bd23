using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// Fused elementwise regions: which nodes group, and that a tiled run gives the very bits of the node-by-node run
/// (which shares no tiling code) while holding less memory, and steps aside whenever it can't apply.
/// </summary>
public class ElementwiseRegionTests
{
    // W4's function with a scalar operand, a literal and a division: one region of every node.
    internal const string Chain = "a = x * x\nb = neg(a)\nc = exp(b)\nd = sin(x)\ne = d * c\nf = tanh(x)\ng = e + f\nh = g * s\ny = h / 3";

    private static Tensor Random(ExecutionScope scope, Shape shape, int seed, DType dtype = DType.Float32)
    {
        var t = F.RandomUniform(scope, shape, seed, -3, 3);
        return dtype == DType.Float32 ? t : F.Cast(t, dtype);
    }

    private static (Plan Plan, Dictionary<string, Tensor> Inputs) Prepare(ExecutionScope scope, string program, params (string, Tensor)[] inputs)
    {
        var feed = inputs.ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);
        return (GraphFunctions.Prepare(ProgramParser.Parse(program), feed), feed);
    }

    private static RunResult Run(ExecutionScope scope, Plan plan, Dictionary<string, Tensor> inputs, bool fuse, RunOptions? options = null)
    {
        using var _ = scope.NoGrad();
        return Interpreter.Run(scope, plan, inputs, (options ?? RunOptions.Default) with { Fuse = fuse });
    }

    [Fact]
    public void ChainOfSingleUseValuesIsOneRegion()
    {
        var plan = Plan.Build(ProgramParser.Parse(Chain));
        var regions = plan.Root.Regions!;
        var order = plan.Root.Order;
        int root = Enumerable.Range(0, order.Count).Single(k => regions.RootAt(k) is not null);
        var region = regions.RootAt(root)!;
        Assert.Equal("y", order[root].Outputs[0]);
        Assert.Equal(9, region.Members.Length);
        Assert.Equal(["x", "s"], region.Inputs.Order().Reverse());
        Assert.Equal(8, Enumerable.Range(0, order.Count).Count(regions.IsDeferred));
    }

    [Fact]
    public void ValuesReadTwiceOrKeptLeaveTheRegion()
    {
        // 'a' is read by two nodes and 'b' is an output: each ends a region of its own or none.
        var plan = Plan.Build(ProgramParser.Parse("a = sin(x)\nb = exp(a)\nc = a * 2\nd = tanh(c)", ["b", "d"]));
        var regions = plan.Root.Regions;
        var order = plan.Root.Order;
        var roots = Enumerable.Range(0, order.Count).Where(k => regions?.RootAt(k) is not null).Select(k => order[k].Outputs[0]).ToArray();
        Assert.Equal(["d"], roots); // c -> d; a has two reads, b is kept and has no fusable reader
    }

    [Theory]
    [InlineData(DType.Float32, 1_000_000)]
    [InlineData(DType.Float64, 300_001)]
    [InlineData(DType.Float32, 262_147)]
    public void FusedRunGivesTheSameBitsAsNodeByNode(DType dtype, int n)
    {
        using var scope = new ExecutionScope();
        var x = Random(scope, new Shape(n), 1, dtype);
        var s = Random(scope, new Shape(1, 1), 2, dtype); // rank 2 single element: broadcasts, keeps x's... shape [1, n]
        var (plan, inputs) = Prepare(scope, Chain, ("x", F.Reshape(x, 1, n)), ("s", s));
        var fused = Run(scope, plan, inputs, fuse: true);
        var plain = Run(scope, plan, inputs, fuse: false);
        Assert.Equal(plain.Outputs["y"].Shape, fused.Outputs["y"].Shape);
        Assert.Equal(plain.Outputs["y"].Bytes().ToArray(), fused.Outputs["y"].Bytes().ToArray());
        Assert.Equal(plain.NodesExecuted, fused.NodesExecuted);
    }

    [Fact]
    public void FusedRunHoldsOnlyInputsAndOutput()
    {
        const int n = 1 << 20;
        long Peak(bool fuse)
        {
            using var scope = new ExecutionScope();
            var (plan, inputs) = Prepare(scope, Chain, ("x", Random(scope, new Shape(n), 3)), ("s", scope.Scalar(0.5)));
            long before = scope.Budget.InUseBytes;
            Run(scope, plan, inputs, fuse);
            return scope.Budget.PeakBytes - before;
        }
        long fused = Peak(true), plain = Peak(false);
        Assert.True(fused <= 4L * n + 64, $"fused peak {fused} bytes over the inputs, expected the output's {4L * n}");
        Assert.True(plain >= 2 * 4L * n, $"node by node peak {plain}");
    }

    [Theory]
    [InlineData(Chain, false)]
    [InlineData("a = sin(m)\nb = a * row\ny = exp(b)", true)]
    public void InspectsPeakEstimateMatchesTheRun(string program, bool rows)
    {
        // Fused (only the root's value is charged) and a region that falls back (a row operand): both as measured.
        var measured = MemoryTestKit.Run(ProgramParser.Parse(program), s => rows
            ? new Dictionary<string, Tensor> { ["m"] = Random(s, new Shape(600, 600), 14), ["row"] = Random(s, new Shape(600), 15) }
            : new Dictionary<string, Tensor> { ["x"] = Random(s, new Shape(1 << 20), 16), ["s"] = s.Scalar(2f) });
        Assert.True(measured.Estimate.Complete);
        Assert.Equal(measured.Peak, measured.Estimate.PeakBytes);
    }

    [Fact]
    public void IntermediatesAskedForAreComputedNodeByNode()
    {
        using var scope = new ExecutionScope();
        var x = Random(scope, new Shape(400_000), 4);
        var (plan, inputs) = Prepare(scope, Chain, ("x", x), ("s", scope.Scalar(2f)));
        var run = Run(scope, plan, inputs, fuse: true, new RunOptions { Intermediates = ["c"] });
        var reference = Run(scope, plan, inputs, fuse: false, new RunOptions { Intermediates = ["c"] });
        Assert.Equal(reference.Intermediates["c"].ToArray<float>(), run.Intermediates["c"].ToArray<float>());
        Assert.Equal(reference.Outputs["y"].ToArray<float>(), run.Outputs["y"].ToArray<float>());
    }

    [Fact]
    public void OperandsOfOtherShapesFallBackToNodeByNode()
    {
        using var scope = new ExecutionScope();
        var m = Random(scope, new Shape(600, 600), 5);
        var row = Random(scope, new Shape(600), 6);
        var (plan, inputs) = Prepare(scope, "a = sin(m)\nb = a * row\ny = exp(b)", ("m", m), ("row", row));
        var fused = Run(scope, plan, inputs, fuse: true);
        var plain = Run(scope, plan, inputs, fuse: false);
        Assert.Equal(plain.Outputs["y"].ToArray<float>(), fused.Outputs["y"].ToArray<float>());
    }

    [Fact]
    public void GradientsThroughARegionAreUnchanged()
    {
        using var scope = new ExecutionScope();
        var x = Random(scope, new Shape(300_000), 7);
        var (plan, inputs) = Prepare(scope, Chain + "\nz = sum(y)", ("x", x), ("s", scope.Scalar(1.5f)));
        var grad = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { Outputs = ["z"], Wrt = ["x"] }).Gradients["x"].ToArray<float>();
        var xs = x.ToArray<float>();
        foreach (int i in new[] { 0, 1, 150_000, 299_999 })
        {
            double v = xs[i];
            double expected = 1.5 / 3 * (Math.Cos(v) * Math.Exp(-v * v) - 2 * v * Math.Sin(v) * Math.Exp(-v * v) + 1 - Math.Pow(Math.Tanh(v), 2));
            Assert.Equal(expected, grad[i], 5);
        }
    }

    [Fact]
    public void RegionsInsideLoopBodiesFuseEachTrip()
    {
        var body = GraphTestKit.G([GraphTestKit.P("v"), GraphTestKit.S("i", DType.Int64)],
        [
            GraphTestKit.N("sin", ["v"], "a"), GraphTestKit.N("mul", ["a", "0.5"], "b"), GraphTestKit.N("add", ["b", "v"], "v2"),
            GraphTestKit.N("add", ["i", "1"], "i2"),
        ], "v2", "i2");
        var cond = GraphTestKit.G([GraphTestKit.P("v"), GraphTestKit.S("i", DType.Int64)], [GraphTestKit.N("lt", ["i", "3"], "go")], "go");
        var graph = GraphTestKit.G([GraphTestKit.P("x"), GraphTestKit.S("i0", DType.Int64)],
            [new Node("while", ["x", "i0"], ["y", "n"], Attributes.Of(("cond", cond), ("body", body)), "loop")], "y");
        using var scope = new ExecutionScope();
        var x = Random(scope, new Shape(500_000), 8);
        var inputs = new Dictionary<string, Tensor> { ["x"] = x, ["i0"] = scope.Scalar(0, DType.Int64) };
        var plan = GraphFunctions.Prepare(graph, inputs);
        var fused = Run(scope, plan, inputs, fuse: true).Outputs["y"].ToArray<float>();
        var plain = Run(scope, plan, inputs, fuse: false).Outputs["y"].ToArray<float>();
        Assert.Equal(plain, fused);
    }

    [Fact]
    public void OverTheMemoryLimitFailsCleanly()
    {
        var pool = new BufferPool();
        const int n = 1 << 19;
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool, MemoryLimitBytes = 4L * n + 4096 }))
        {
            var (plan, inputs) = Prepare(scope, Chain, ("x", scope.Full(new Shape(n), 0.25)), ("s", scope.Scalar(1f)));
            var e = Assert.Throws<EngineException>(() => Run(scope, plan, inputs, fuse: true));
            Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }

    [Fact]
    public void CancelledRunStopsAndGivesMemoryBack()
    {
        var pool = new BufferPool();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool }))
        {
            var (plan, inputs) = Prepare(scope, Chain, ("x", scope.Full(new Shape(1 << 20), 0.25)), ("s", scope.Scalar(1f)));
            scope.Cancellation = cancel.Token;
            var e = Assert.Throws<EngineException>(() => Run(scope, plan, inputs, fuse: true));
            Assert.Equal(ErrorCodes.DeadlineExceeded, e.Code);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }
}

/// <summary>Recorded runs: a region is one tape node whose VJP is one tiled pass (or, under create_graph, its ops).</summary>
public class FusedRegionGradientTests
{
    private const string Chain = "a = x * x\nb = neg(a)\nc = exp(b)\nd = sin(x)\ne = d * c\nf = tanh(x)\ng = e + f\nh = g * s\ny = h / 3\nz = sum(y)";

    private static (Tensor[] Grads, long Peak, int Nodes) Gradient(Tensor x, Tensor s, bool fuse, string program = Chain)
    {
        var scope = x.Scope;
        var inputs = new Dictionary<string, Tensor> { ["x"] = x, ["s"] = s };
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(program), inputs);
        long before = scope.Budget.InUseBytes;
        var run = Interpreter.Run(scope, plan, inputs, RunOptions.Default with { Fuse = fuse });
        var z = run.Outputs["z"];
        int nodes = z.GradFn!.Inputs[0].GradFn!.Op.Name == "fused" ? 1 : 0;
        var grads = AutogradService.Engine.Autodiff.ReverseMode.Grad([z], null, [x, s]);
        return (grads, scope.Budget.PeakBytes - before, nodes);
    }

    [Fact]
    public void WithRoomForTheTapeARegionRunsNodeByNode()
    {
        // Fused, backward would recompute every tile's intermediates: only worth it when they don't fit.
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(300_000), 10, -3, 3).RequireGrad();
        Assert.Equal(0, Gradient(x, scope.Scalar(1f).RequireGrad(), fuse: true).Nodes);
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void TiledBackwardGivesTheSameGradients(DType dtype)
    {
        // Too little memory for the nine intermediates (21.6 MB in float64): the region is recorded as one node.
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 300_007L * dtype.SizeOf() * 6 });
        var x = F.Cast(F.RandomUniform(scope, new Shape(300_007), 11, -3, 3), dtype).RequireGrad();
        var s = scope.Scalar(1.25, dtype).RequireGrad();
        var (fused, _, fusedNodes) = Gradient(x, s, fuse: true);
        using var roomy = new ExecutionScope();
        var (plain, _, plainNodes) = Gradient(F.Cast(roomy.FromArray(x.ToDoubles()), dtype).RequireGrad(), roomy.Scalar(1.25, dtype).RequireGrad(), fuse: false);
        Assert.Equal(1, fusedNodes);
        Assert.Equal(0, plainNodes);
        Assert.Equal(plain[0].Bytes().ToArray(), fused[0].Bytes().ToArray());
        // The scalar's gradient is a sum of 300K terms below 1 in size that mostly cancel, added in another order (per
        // tile, in double): equal up to rounding, which scales with the terms' count, not with the small sum.
        double expected = plain[1].ToScalar(), actual = fused[1].ToScalar();
        double tolerance = (dtype == DType.Float32 ? 1e-5 : 1e-12) * 300_007;
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"d/ds: fused {actual:R}, node by node {expected:R}");
    }

    [Fact]
    public void TapeKeepsNoIntermediates()
    {
        const int n = 1 << 20;
        long Peak(bool fuse)
        {
            using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = fuse ? 24L * n : long.MaxValue });
            var x = F.RandomUniform(scope, new Shape(n), 12, -3, 3).RequireGrad();
            return Gradient(x, scope.Scalar(2f).RequireGrad(), fuse).Peak;
        }
        long fused = Peak(true), plain = Peak(false);
        // Fused: the region's output and x's gradient (the sum's cotangent stays one element); node by node: nine more.
        Assert.True(fused <= 2 * 4L * n + 1024, $"fused gradient peak {fused}");
        Assert.True(plain >= 9 * 4L * n, $"node by node gradient peak {plain}");
    }

    [Fact]
    public void AGradientTooBigForTheTapeSucceedsFused()
    {
        const int n = 1 << 19;
        const long limit = 24L * n; // six float32 tensors: x, the output, x's gradient fit; nine intermediates do not
        using (var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = limit }))
        {
            var x = F.RandomUniform(scope, new Shape(n), 19, -3, 3).RequireGrad();
            var e = Assert.Throws<EngineException>(() => Gradient(x, scope.Scalar(1f).RequireGrad(), fuse: false));
            Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        }
        using (var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = limit }))
        {
            var x = F.RandomUniform(scope, new Shape(n), 19, -3, 3).RequireGrad();
            var (grads, _, nodes) = Gradient(x, scope.Scalar(1f).RequireGrad(), fuse: true);
            Assert.Equal(1, nodes);
            double v = x.ToArray<float>()[5];
            double expected = (Math.Cos(v) * Math.Exp(-v * v) - 2 * v * Math.Sin(v) * Math.Exp(-v * v) + 1 - Math.Pow(Math.Tanh(v), 2)) / 3;
            Assert.Equal(expected, grads[0].ToArray<float>()[5], 5);
        }
    }

    [Fact]
    public void SecondDerivativesExpandTheRegion()
    {
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(270_000), 13, -2, 2).RequireGrad();
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var plan = GraphFunctions.Prepare(ProgramParser.Parse("a = sin(x)\nb = a * x\ny = sum(b)"), inputs);
        var y = Interpreter.Run(scope, plan, inputs, new RunOptions { AlwaysFuseRecorded = true }).Outputs["y"];
        Assert.Equal("fused", y.GradFn!.Inputs[0].GradFn!.Op.Name);
        var options = new AutogradService.Engine.Autodiff.BackwardOptions { CreateGraph = true };
        var first = AutogradService.Engine.Autodiff.ReverseMode.Grad(y, x, options);
        var second = AutogradService.Engine.Autodiff.ReverseMode.Grad(F.Sum(first), x).ToArray<float>();
        var xs = x.ToArray<float>();
        foreach (int i in new[] { 0, 7, 135_000, 269_999 })
        {
            double v = xs[i];
            Assert.Equal(2 * Math.Cos(v) - v * Math.Sin(v), second[i], 4);
        }
    }

    [Fact]
    public void ARecordedRegionsValueStaysReadableForLaterRules()
    {
        // y is read again by mul's VJP after the region's last use in the run: the tape must keep it.
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(300_000), 20, -2, 2).RequireGrad();
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var plan = GraphFunctions.Prepare(ProgramParser.Parse("a = sin(x)\nb = a * 2\ny = tanh(b)\nw = y * y\nz = sum(w)"), inputs);
        var z = Interpreter.Run(scope, plan, inputs, new RunOptions { AlwaysFuseRecorded = true }).Outputs["z"];
        var g = AutogradService.Engine.Autodiff.ReverseMode.Grad(z, x).ToArray<float>();
        double v = x.ToArray<float>()[3], t = Math.Tanh(2 * Math.Sin(v));
        Assert.Equal(2 * t * (1 - t * t) * 2 * Math.Cos(v), g[3], 4);
    }

    [Fact]
    public void ForwardModeThroughARegionOpMatchesItsOps()
    {
        // Runs never give a region op tangents (they run its members instead), but its JVP rule must still be right.
        var plan = Plan.Build(ProgramParser.Parse("a = sin(x)\nb = a * x\ny = tanh(b)"));
        var order = plan.Root.Order;
        var region = Enumerable.Range(0, order.Count).Select(k => plan.Root.Regions!.RootAt(k)).Single(r => r is not null)!;
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, new Shape(300_000), 17, -2, 2);
        var t = F.RandomUniform(scope, new Shape(300_000), 18, -1, 1);
        var (_, fused) = AutogradService.Engine.Autodiff.ForwardMode.Jvp(
            xs => [AutogradService.Engine.Autodiff.Dispatcher.Apply(scope, region.Op, xs, Attributes.Empty)], [x], [t]);
        var (_, plain) = AutogradService.Engine.Autodiff.ForwardMode.Jvp(xs => [F.Tanh(F.Sin(xs[0]) * xs[0])], [x], [t]);
        Assert.Equal(plain[0].ToArray<float>(), fused[0].ToArray<float>());
    }

    [Fact]
    public void PooledMemoryReturnsAfterAFusedGradient()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool, MemoryLimitBytes = 24L * 400_000 }))
        {
            var x = scope.Full(new Shape(400_000), 0.5).RequireGrad();
            Gradient(x, scope.Scalar(1f).RequireGrad(), fuse: true);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }
}
