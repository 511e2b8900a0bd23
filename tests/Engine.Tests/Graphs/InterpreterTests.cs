using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

public class InterpreterTests
{
    /// <summary>
    /// Outer loop i = 0, 1, 2 (an int64 counter from a constant); its body runs an inner loop i + 1 times, doubling
    /// y each time. The inner cond reads the outer body's 'limit' by closure, and the inner while is listed before
    /// the node computing 'limit', so ordering has to come from the closure dependency. Total: 1 + 2 + 3 = 6
    /// doublings, y = 64 x.
    /// </summary>
    private static Graph NestedLoops(long? innerMax = null)
    {
        var innerCond = G([new Parameter("j", DType.Int64, []), P("v")], [N("lt", ["j", "limit"], "go")], "go");
        var innerBody = G([new Parameter("j", DType.Int64, []), P("v")], [N("add", ["j", "1"], "j2"), N("mul", ["v", "2"], "v2")], "j2", "v2");
        var innerAttrs = Attributes.Of(("cond", innerCond), ("body", innerBody));
        if (innerMax is { } m) innerAttrs = innerAttrs.With("max_iterations", m);
        var outerBody = new Graph([new Parameter("i", DType.Int64, []), P("y")],
        [
            new Node("while", ["zero", "y"], ["jn", "y2"], innerAttrs, "inner"),
            N("add", ["i", "1"], "limit"),
            N("identity", ["limit"], "i2"),
        ], ["i2", "y2"], new Dictionary<string, HostTensor> { ["zero"] = HostTensor.Of([0L], []) });
        var outerCond = G([new Parameter("i", DType.Int64, []), P("y")], [N("lt", ["i", "3"], "go")], "go");
        return new Graph([S("x")],
            [new Node("while", ["i0", "x"], ["i", "y"], Attributes.Of(("cond", outerCond), ("body", outerBody)), "outer")],
            ["y", "i"], new Dictionary<string, HostTensor> { ["i0"] = HostTensor.Of([0L], []) });
    }

    [Fact]
    public void NestedLoops_ValueGradientJvpAndJacobian()
    {
        using var scope = new ExecutionScope();
        var inputs = Inputs(("x", scope.Scalar(1.5f)));
        var plan = GraphFunctions.Prepare(NestedLoops(), inputs);
        Assert.Equal(DType.Int64, plan.ValueTypes["i"].DType);

        var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { Outputs = ["y"] });
        Assert.Equal(96.0, r.Outputs["y"].ToScalar());
        Assert.Equal(64.0, r.Gradients["x"].ToScalar());

        var ev = GraphFunctions.Evaluate(scope, plan, inputs);
        Assert.Equal(3.0, ev.Outputs["i"].ToScalar());
        Assert.Equal(DType.Int64, ev.Outputs["i"].DType); // '1' next to an int64 stays int64

        var jvp = GraphFunctions.Jvp(scope, plan, inputs, Inputs(("x", scope.Scalar(1f))), ["y"]);
        Assert.Equal(64.0, jvp.Tangents["y"].ToScalar());

        foreach (var mode in new[] { JacobianMode.Forward, JacobianMode.Reverse })
            Assert.Equal(64.0, GraphFunctions.Jacobian(scope, plan, inputs, mode: mode, outputs: ["y"]).Jacobians["y"]["x"].ToScalar());

        // Second order through nested loops: y = 64x is linear.
        var h = GraphFunctions.Hessian(scope, plan, inputs, output: "y");
        Assert.Equal(0.0, h.Hessians["x"]["x"].ToScalar());
    }

    [Fact]
    public void IterationLimit_FromTheNode()
    {
        using var scope = new ExecutionScope();
        var inputs = Inputs(("x", scope.Scalar(1.5f)));
        var plan = GraphFunctions.Prepare(NestedLoops(innerMax: 2), inputs); // the third outer pass needs 3
        var e = Assert.Throws<EngineException>(() => GraphFunctions.Evaluate(scope, plan, inputs));
        Assert.Equal(ErrorCodes.IterationLimitExceeded, e.Code);
        Assert.Equal("outer/body/inner", e.Node);
        Assert.Equal("while", e.Op);
        Assert.Equal(2L, e.Facts["max_iterations"]);

        var exact = GraphFunctions.Prepare(NestedLoops(innerMax: 3), inputs); // exactly at the limit is fine
        Assert.Equal(96.0, GraphFunctions.Evaluate(scope, exact, inputs).Outputs["y"].ToScalar());
    }

    private static Graph Forever(long? max = null)
    {
        var cond = G([P("v")], [N("gt", ["v", "-1"], "go")], "go");
        var body = G([P("v")], [N("add", ["v", "1"], "w")], "w");
        var attrs = Attributes.Of(("cond", cond), ("body", body));
        if (max is { } m) attrs = attrs.With("max_iterations", m);
        return G([S("x")], [new Node("while", ["x"], ["y"], attrs, "spin")], "y");
    }

    [Fact]
    public void IterationLimit_FromTheScope()
    {
        using var scope = new ExecutionScope(new ScopeOptions { MaxLoopIterations = 5 });
        var inputs = Inputs(("x", scope.Scalar(0f)));
        var plan = GraphFunctions.Prepare(Forever(max: 1000), inputs);
        var e = Assert.Throws<EngineException>(() => GraphFunctions.Evaluate(scope, plan, inputs));
        Assert.Equal(ErrorCodes.IterationLimitExceeded, e.Code);
        Assert.Equal("spin", e.Node);
        Assert.Equal(5L, e.Facts["max_iterations"]);
        Assert.Equal("server", e.Facts["limit_source"]);
    }

    [Fact]
    public void Cancellation_BeforeAndDuringALoop()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        using (var scope = new ExecutionScope(new ScopeOptions { Cancellation = cancelled.Token }))
        {
            var inputs = Inputs(("x", scope.Scalar(0f)));
            var plan = GraphFunctions.Prepare(Forever(), inputs);
            Assert.Equal(ErrorCodes.DeadlineExceeded, Assert.Throws<EngineException>(() => GraphFunctions.Evaluate(scope, plan, inputs)).Code);
        }

        using var later = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        using (var scope = new ExecutionScope(new ScopeOptions { Cancellation = later.Token, MaxLoopIterations = long.MaxValue }))
        {
            var inputs = Inputs(("x", scope.Scalar(0f)));
            var plan = GraphFunctions.Prepare(Forever(), inputs);
            var e = Assert.Throws<EngineException>(() => GraphFunctions.Evaluate(scope, plan, inputs));
            Assert.Equal(ErrorCodes.DeadlineExceeded, e.Code);
            Assert.True(scope.LiveTensorCount < 16, $"{scope.LiveTensorCount} tensors still live: loop values were not freed");
        }
    }

    [Fact]
    public void Evaluate_FreesLoopValues_SoLongLoopsRunInBoundedMemory()
    {
        // 2000 iterations of a 4 KB value would need 8 MB if nothing were freed; the budget allows 64 KB.
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 64 * 1024 });
        var cond = G([S("i"), P("v")], [N("lt", ["i", "2000"], "go")], "go");
        var body = G([S("i"), P("v")], [N("add", ["i", "1"], "i2"), N("mul", ["v", "1.0001"], "v2")], "i2", "v2");
        var g = G([S("i"), P("x", DType.Float32, 1000)],
            [new Node("while", ["i", "x"], ["n", "y"], Attributes.Of(("cond", cond), ("body", body)))], "y");
        var inputs = Inputs(("i", scope.Scalar(0f)), ("x", scope.Full(new Shape(1000), 1)));
        var plan = GraphFunctions.Prepare(g, inputs);
        var r = GraphFunctions.Evaluate(scope, plan, inputs);
        Assert.Equal(Math.Pow(1.0001, 2000), r.Outputs["y"].ToDoubles()[0], 1e-3);
        Assert.True(r.Stats.PeakBytes < 64 * 1024);
    }

    [Fact]
    public void WeakLiterals_FollowTheirSiblingsDType()
    {
        using var scope = new ExecutionScope();
        var g = ProgramParser.Parse("y = x * 0.1 + 1");
        var inputs = Inputs(("x", scope.FromArray([1.0, 2.0])));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(g, inputs), inputs);
        Assert.Equal(DType.Float64, r.Outputs["y"].DType);
        Assert.Equal([1.1, 1.2], r.Outputs["y"].ToDoubles()); // exact in float64: 0.1 was never rounded to float32

        var ints = Inputs(("x", scope.FromArray([1L, 2L])));
        var ri = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(ProgramParser.Parse("y = x * 3 + 1"), ints), ints);
        Assert.Equal(DType.Int64, ri.Outputs["y"].DType);
        var rf = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(ProgramParser.Parse("y = x * 0.5"), ints), ints);
        Assert.Equal(DType.Float32, rf.Outputs["y"].DType);
    }

    [Fact]
    public void Constants_OutputSubsets_AndIntermediates()
    {
        using var scope = new ExecutionScope();
        var g = new Graph([P("x", DType.Float32, 2)], [N("mul", ["x", "w"], "y"), N("sum", ["y"], "s"), N("sin", ["x"], "unused")], ["s"],
            new Dictionary<string, HostTensor> { ["w"] = HostTensor.Of([3f, 4f], 2) });
        var inputs = Inputs(("x", scope.FromArray([1f, 2f])));
        var plan = GraphFunctions.Prepare(g, inputs);
        var run = Interpreter.Run(scope, plan, inputs, new RunOptions { Intermediates = ["y", "w"] });
        Assert.Equal(11.0, run.Outputs["s"].ToScalar());
        Assert.Equal([3.0, 8], run.Intermediates["y"].ToDoubles());
        Assert.Equal([3.0, 4], run.Intermediates["w"].ToDoubles());
        Assert.Equal(2, run.NodesExecuted); // 'unused' is not needed

        var only = Interpreter.Run(scope, plan, inputs, new RunOptions { Outputs = ["unused"] });
        Assert.Equal(Math.Sin(2), only.Outputs["unused"].ToDoubles()[1], 1e-6);
        Assert.Equal(1, only.NodesExecuted);

        var e = Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan, inputs, new RunOptions { Outputs = ["nope"] }));
        Assert.Equal("nope", e.Input);
    }

    [Fact]
    public void Inputs_AreChecked()
    {
        using var scope = new ExecutionScope();
        var g = G([P("x", DType.Float32, 2)], [N("sin", ["x"], "y")], "y");
        var plan = Plan.Build(g);
        Assert.Equal("x", Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan, Inputs())).Input);
        Assert.Equal(ErrorCodes.ShapeMismatch,
            Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan, Inputs(("x", scope.FromArray([1f, 2, 3]))))).Code);
        Assert.Equal(ErrorCodes.DTypeMismatch,
            Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan, Inputs(("x", scope.FromArray([1.0, 2]))))).Code);
        Assert.Equal("z", Assert.Throws<EngineException>(() =>
            Interpreter.Run(scope, plan, Inputs(("x", scope.FromArray([1f, 2])), ("z", scope.Scalar(1))))).Input);
    }

    [Fact]
    public void Gradient_NotDifferentiableForIntegerInputs_AndZerosForUnusedOnes()
    {
        using var scope = new ExecutionScope();
        var g = G([P("x", DType.Float32, 2), P("k", DType.Int64, 2), P("u", DType.Float32, 2)], [N("sin", ["x"], "y")], "y");
        var inputs = Inputs(("x", scope.FromArray([1f, 2])), ("k", scope.FromArray([1L, 2L])), ("u", scope.FromArray([1f, 2])));
        var plan = GraphFunctions.Prepare(g, inputs);
        var e = Assert.Throws<EngineException>(() => GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { Wrt = ["k"] }));
        Assert.Equal(ErrorCodes.NotDifferentiable, e.Code);
        Assert.Equal("k", e.Input);

        var streamed = new List<string>();
        var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { OnGradientReady = (name, _) => streamed.Add(name) });
        Assert.Equal(["x", "u"], r.Gradients.Keys.ToArray()); // every float input by default
        Assert.Equal([0.0, 0], r.Gradients["u"].ToDoubles());
        Assert.Equal(["x", "u"], streamed);
    }

    [Fact]
    public void If_DifferentiatesOnlyTheBranchTaken_AndReadsClosures()
    {
        using var scope = new ExecutionScope();
        var then = G([P("v")], [N("mul", ["v", "k"], "w")], "w");     // reads k from outside
        var otherwise = G([P("v")], [N("neg", ["v"], "w")], "w");
        var g = G([S("x"), S("k"), new Parameter("p", DType.Bool, [])],
            [new Node("if", ["p", "x"], ["y"], Attributes.Of(("then", then), ("else", otherwise)))], "y");
        foreach (var (p, value, dx, dk) in new[] { (true, 6.0, 3.0, 2.0), (false, -2.0, -1.0, 0.0) })
        {
            var inputs = Inputs(("x", scope.Scalar(2f)), ("k", scope.Scalar(3f)), ("p", scope.FromSpan<bool>([p], [])));
            var r = GraphFunctions.Gradient(scope, GraphFunctions.Prepare(g, inputs), inputs);
            Assert.Equal(value, r.Outputs["y"].ToScalar());
            Assert.Equal(dx, r.Gradients["x"].ToScalar());
            Assert.Equal(dk, r.Gradients["k"].ToScalar());
        }
    }

    [Fact]
    public void While_WithZeroIterations_ReturnsItsInputs()
    {
        using var scope = new ExecutionScope();
        var inputs = Inputs(("a", scope.Scalar(1000f)));
        var plan = GraphFunctions.Prepare(C5(), inputs); // norm(2000) >= 1000 at once: no iteration
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Assert.Equal(2000.0, r.Outputs["c"].ToScalar());
        Assert.Equal(2.0, r.Gradients["a"].ToScalar());
    }

    [Fact]
    public void RuntimeLoopShapes_MayChange()
    {
        using var scope = new ExecutionScope();
        // v grows from a scalar to [3] by broadcasting against a closure value, then keeps its shape.
        var cond = G([P("v")], [N("sum", ["v"], "s"), N("lt", ["s", "100"], "go")], "go");
        var body = G([P("v")], [N("add", ["v", "ones"], "w")], "w");
        var g = G([S("x"), P("ones", DType.Float32, 3)], [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)))], "y");
        var inputs = Inputs(("x", scope.Scalar(0f)), ("ones", scope.Full(new Shape(3), 1)));
        var r = GraphFunctions.Gradient(scope, GraphFunctions.Prepare(g, inputs), inputs);
        Assert.Equal([34.0, 34, 34], r.Outputs["y"].ToDoubles());
        Assert.Equal(3.0, r.Gradients["x"].ToScalar()); // the scalar was broadcast into three elements
        Assert.Equal([34.0, 34, 34], r.Gradients["ones"].ToDoubles());
    }
}
