using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// The chapter's cases (d2l-cases.md) through the graph IR: programs and graphs with while/if nodes, run by the
/// interpreter, differentiated by the graph transforms. C1 writes dot(x, x) as sum(x * x) (dot comes from another
/// branch; <see cref="C1_WithDotOp_WhenRegistered"/> covers it once it is there).
/// </summary>
public class ChapterCasesGraphTests
{
    /// <summary>The scope each case runs in: the CPU here; a subclass runs every case on another backend.</summary>
    protected virtual ExecutionScope NewScope() => new();

    private const string E1Program = "f = log(x ** 2) * sin(x) + 1 / x";
    private static readonly double[] E1Expected = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112];
    private static readonly double[] E6F = [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964];
    private static readonly double[] E6Df = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564];

    private static (Plan Plan, Dictionary<string, Tensor> Inputs) Prepare(ExecutionScope scope, Graph g, params (string, Tensor)[] inputs)
    {
        var map = Inputs(inputs);
        return (GraphFunctions.Prepare(g, map), map);
    }

    [Fact]
    public void C1_GradientOfTwiceDot()
    {
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, ProgramParser.Parse("t = sum(x * x)\ny = 2 * t"), ("x", scope.FromArray([0f, 1, 2, 3])));
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Assert.Equal(28.0, r.Outputs["y"].ToScalar());
        Assert.Equal([0.0, 4, 8, 12], r.Gradients["x"].ToDoubles());
    }

    [Fact]
    public void C1_WithDotOp_WhenRegistered()
    {
        if (!OpRegistry.Default.TryGet("dot", out _)) return; // dot/matmul arrive from the ops branch
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, ProgramParser.Parse("t = dot(x, x)\ny = 2 * t"), ("x", scope.FromArray([0f, 1, 2, 3])));
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Assert.Equal(28.0, r.Outputs["y"].ToScalar());
        Assert.Equal([0.0, 4, 8, 12], r.Gradients["x"].ToDoubles());
    }

    [Fact]
    public void C2_AccumulateOverwriteAndZeroGrad()
    {
        using var scope = NewScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var types = new Dictionary<string, TensorType> { ["x"] = x.Type };
        var twiceDot = Plan.Build(ProgramParser.Parse("t = sum(x * x)\ny = 2 * t"), types);
        var sum = Plan.Build(ProgramParser.Parse("y = sum(x)"), types);
        Tensor Run(Plan p) => Interpreter.Run(scope, p, Inputs(("x", x))).Outputs["y"];

        ReverseMode.Backward(Run(twiceDot));
        ReverseMode.Backward(Run(sum));
        Assert.Equal([1.0, 5, 9, 13], x.Grad!.ToDoubles()); // PyTorch: accumulate

        ReverseMode.ZeroGrad(x);
        ReverseMode.Backward(Run(sum));
        Assert.Equal([1.0, 1, 1, 1], x.Grad!.ToDoubles());

        var overwrite = new BackwardOptions { Mode = GradientMode.Overwrite };
        ReverseMode.Backward(Run(twiceDot), options: overwrite);
        ReverseMode.Backward(Run(sum), options: overwrite);
        Assert.Equal([1.0, 1, 1, 1], x.Grad!.ToDoubles()); // MXNet/TF/JAX

        // Every stateless gradient call is fresh: overwrite semantics.
        var fresh = GraphFunctions.Gradient(scope, sum, Inputs(("x", scope.FromArray([0f, 1, 2, 3]))));
        Assert.Equal([1.0, 1, 1, 1], fresh.Gradients["x"].ToDoubles());
    }

    [Fact]
    public void C3_NonScalarOutput_SeedOrSumConvention()
    {
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, ProgramParser.Parse("y = x * x"), ("x", scope.FromArray([0f, 1, 2, 3])));
        var seeded = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest
        {
            Seeds = new Dictionary<string, Tensor> { ["y"] = scope.Full(new Shape(4), 1) },
        });
        Assert.Equal([0.0, 2, 4, 6], seeded.Gradients["x"].ToDoubles());
        var summed = GraphFunctions.Gradient(scope, plan, inputs);
        Assert.Equal([0.0, 2, 4, 6], summed.Gradients["x"].ToDoubles());
        var e = Assert.Throws<EngineException>(() => GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { RequireScalarOutput = true }));
        Assert.Contains("only for scalar outputs", e.Message);
    }

    [Fact]
    public void C4_Detach()
    {
        using var scope = NewScope();
        var program = ProgramParser.Parse("y = x * x\nu = detach(y)\nz = u * x\ns = sum(z)\nt = sum(y)", ["s", "t"]);
        var (plan, inputs) = Prepare(scope, program, ("x", scope.FromArray([0f, 1, 2, 3])));
        var first = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { Outputs = ["s"], Intermediates = ["u"] });
        Assert.Equal([0.0, 1, 4, 9], first.Gradients["x"].ToDoubles());
        Assert.Equal([0.0, 1, 4, 9], first.Intermediates["u"].Value.ToDoubles()); // not 3x^2
        var second = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { Outputs = ["t"] });
        Assert.Equal([0.0, 2, 4, 6], second.Gradients["x"].ToDoubles());
    }

    [Theory]
    [InlineData(0.5f, 1024f, 2048f)]
    [InlineData(-0.3f, -122880.0078f, 409600f)]
    [InlineData(1.7f, 1740.8f, 1024f)]
    public void C5_WhileAndIfNodes(float a, float c, float grad)
    {
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, C5(), ("a", scope.Scalar(a)));
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Assert.Equal(c, (float)r.Outputs["c"].ToScalar());
        Assert.Equal(grad, (float)r.Gradients["a"].ToScalar());

        var jvp = GraphFunctions.Jvp(scope, plan, inputs, Inputs(("a", scope.Scalar(1f))));
        Assert.Equal(grad, (float)jvp.Tangents["c"].ToScalar());
    }

    [Fact]
    public void E1_SecondDerivative()
    {
        using var scope = NewScope();
        var program = ProgramParser.Parse(E1Program + "\ns = sum(f)");
        var (plan, inputs) = Prepare(scope, program, ("x", scope.FromArray([0.5, 1, 2, -1.5])));
        Assert.Equal(DType.Float64, plan.ValueTypes["f"].DType); // program inputs keep the caller's dtype

        var hvp = GraphFunctions.HessianVectorProduct(scope, plan, inputs, Inputs(("x", scope.Full(new Shape(4), 1, DType.Float64))));
        Close(E1Expected, hvp.Products["x"].ToDoubles(), 1e-12);

        var h = GraphFunctions.Hessian(scope, plan, inputs).Hessians["x"]["x"];
        Assert.Equal(new Shape(4, 4), h.Shape);
        var values = h.ToDoubles();
        Close(E1Expected, Enumerable.Range(0, 4).Select(i => values[i * 5]).ToArray(), 1e-12);
    }

    [Fact]
    public void E2_BackwardTwice()
    {
        using var scope = NewScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var plan = Plan.Build(ProgramParser.Parse("t = sum(x * x)\ny = 2 * t"), new Dictionary<string, TensorType> { ["x"] = x.Type });

        var y = Interpreter.Run(scope, plan, Inputs(("x", x))).Outputs["y"];
        ReverseMode.Backward(y);
        var e = Assert.Throws<EngineException>(() => ReverseMode.Backward(y));
        Assert.Equal(ErrorCodes.GraphFreed, e.Code);
        Assert.Contains("retain_graph", e.Message);

        ReverseMode.ZeroGrad(x);
        var kept = Interpreter.Run(scope, plan, Inputs(("x", x))).Outputs["y"];
        ReverseMode.Backward(kept, options: new BackwardOptions { RetainGraph = true });
        ReverseMode.Backward(kept);
        Assert.Equal([0.0, 8, 16, 24], x.Grad!.ToDoubles());
    }

    [Fact]
    public void E3_VectorControlFlow_GradientAndJacobian()
    {
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, C5([3]), ("a", scope.FromArray([0.3f, -0.2f, 0.1f])));
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Close([1228.8, -819.2, 409.6], r.Outputs["c"].ToDoubles(), 1e-6);
        Assert.Equal([4096.0, 4096, 4096], r.Gradients["a"].ToDoubles());

        double[] eye = [4096, 0, 0, 0, 4096, 0, 0, 0, 4096];
        foreach (var mode in new[] { JacobianMode.Forward, JacobianMode.Reverse })
        {
            var j = GraphFunctions.Jacobian(scope, plan, inputs, mode: mode);
            Assert.Equal(mode, j.ModeUsed);
            Assert.Equal(new Shape(3, 3), j.Jacobians["c"]["a"].Shape);
            Assert.Equal(eye, j.Jacobians["c"]["a"].ToDoubles());
        }
    }

    [Fact]
    public void E4_DerivativeOfSinIsCos()
    {
        using var scope = NewScope();
        var grid = Enumerable.Range(0, 200).Select(i => (float)(-2 * Math.PI + 4 * Math.PI * i / 199)).ToArray();
        var (plan, inputs) = Prepare(scope, ProgramParser.Parse("y = sin(x)"), ("x", scope.FromArray(grid)));
        var r = GraphFunctions.Gradient(scope, plan, inputs);
        Close(grid.Select(v => (double)MathF.Cos(v)).ToArray(), r.Gradients["x"].ToDoubles(), 1e-6);
        Close(grid.Select(v => (double)MathF.Sin(v)).ToArray(), r.Outputs["y"].ToDoubles(), 1e-6);
    }

    [Fact]
    public void E5_DependencyGraph()
    {
        var g = ProgramParser.Parse(E1Program);
        Assert.Equal(["pow", "log", "sin", "mul", "div", "add"], g.Nodes.Select(n => n.Op).ToArray());
        var dot = GraphExport.ToDot(g);
        var mermaid = GraphExport.ToMermaid(g);
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" })
        {
            Assert.Contains($"label=\"{op}", dot);
            Assert.Contains($"[\"{op}", mermaid);
        }
    }

    [Fact]
    public void E6_ChainRuleTermsPerNode()
    {
        using var scope = NewScope();
        var g = ProgramParser.Parse(E1Program);
        var (plan, inputs) = Prepare(scope, g, ("x", scope.FromArray([0.5, 1, 2, -1.5])));
        var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { AllIntermediates = true });
        Close(E6F, r.Outputs["f"].ToDoubles(), 1e-12);
        Close(E6Df, r.Gradients["x"].ToDoubles(), 1e-12);

        string Value(string op) => g.Nodes.Single(n => n.Op == op).Outputs[0];
        var sin = r.Intermediates[Value("sin")].Value.ToDoubles();
        var square = r.Intermediates[Value("pow")].Value.ToDoubles();
        Assert.Equal([1.0, 1, 1, 1], r.Intermediates["f"].Adjoint.ToDoubles());
        Assert.Equal([1.0, 1, 1, 1], r.Intermediates[Value("div")].Adjoint.ToDoubles());
        Assert.Equal([1.0, 1, 1, 1], r.Intermediates[Value("mul")].Adjoint.ToDoubles());
        Close(sin, r.Intermediates[Value("log")].Adjoint.ToDoubles(), 1e-15);          // d f / d log(x^2) = sin x
        Close(sin.Zip(square, (s, q) => s / q).ToArray(), r.Intermediates[Value("pow")].Adjoint.ToDoubles(), 1e-12);
        Close(E6Df, r.Intermediates["x"].Adjoint.ToDoubles(), 1e-12);

        var annotated = GraphExport.ToDot(g, GraphAnnotations.FromGradient(r, plan));
        Assert.Contains("adjoint [-3.29889, 0.682942, 0.0823954, 0.942912]", annotated);
        Assert.Contains("value [1.33538, 1, 1.76055, -1.47557]", annotated);
    }

    [Fact]
    public void E7_ForwardAndReverseAgree()
    {
        using var scope = NewScope();
        var (plan, inputs) = Prepare(scope, ProgramParser.Parse(E1Program), ("x", scope.FromArray([0.5, 1, 2, -1.5])));
        var jvp = GraphFunctions.Jvp(scope, plan, inputs, Inputs(("x", scope.Full(new Shape(4), 1, DType.Float64))));
        var vjp = GraphFunctions.Gradient(scope, plan, inputs);
        Close(E6Df, jvp.Tangents["f"].ToDoubles(), 1e-12);
        Close(jvp.Tangents["f"].ToDoubles(), vjp.Gradients["x"].ToDoubles(), 1e-14);
        Close(E6F, jvp.Outputs["f"].ToDoubles(), 1e-12);
    }

    [Fact]
    public void E8_JacobianPicksTheCheaperMode()
    {
        using var scope = NewScope();
        var widen = new Graph([P("x", DType.Float32, 2)], [N("mul", ["x", "c"], "y")], ["y"],
            new Dictionary<string, HostTensor> { ["c"] = HostTensor.Of([1f, 2, 3, 4, 5, 6], 3, 2) });
        var (plan, inputs) = Prepare(scope, widen, ("x", scope.FromArray([1f, 2])));
        var auto = GraphFunctions.Jacobian(scope, plan, inputs);
        Assert.Equal(JacobianMode.Forward, auto.ModeUsed); // n = 2 < m = 6: two forward passes
        var reverse = GraphFunctions.Jacobian(scope, plan, inputs, mode: JacobianMode.Reverse);
        Assert.Equal(new Shape(3, 2, 2), auto.Jacobians["y"]["x"].Shape);
        Assert.Equal(reverse.Jacobians["y"]["x"].ToDoubles(), auto.Jacobians["y"]["x"].ToDoubles());

        var (tall, tallInputs) = Prepare(scope, ProgramParser.Parse("s = sum(x * x)"), ("x", scope.FromArray([1f, 2, 3, 4])));
        var r = GraphFunctions.Jacobian(scope, tall, tallInputs);
        Assert.Equal(JacobianMode.Reverse, r.ModeUsed); // n = 4 > m = 1: one backward pass
        Assert.Equal([2.0, 4, 6, 8], r.Jacobians["s"]["x"].ToDoubles());
    }
}

/// <summary>Every chapter case through the graph IR on the GPU backend (ILGPU's CPU accelerator): the same numbers.</summary>
public class ChapterCasesOnTheGpuBackend : ChapterCasesGraphTests
{
    protected override ExecutionScope NewScope() => new(new ScopeOptions { Backend = Backends.GpuTestDevice.Backend });
}
