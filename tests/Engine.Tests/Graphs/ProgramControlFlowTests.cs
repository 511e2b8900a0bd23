using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using AutogradService.Tests.Shared;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// The program language's control flow, functions and framework spellings, starting from the chapter's four
/// <c>f(a)</c> cells (<see cref="SeedCells"/>).
/// </summary>
public class ProgramControlFlowTests
{
    private const string PyTorchCell = SeedCells.PyTorch;

    public static IEnumerable<object[]> Cells() => SeedCells.WithCases();

    private static GradientResult Gradient(ExecutionScope scope, string program, params (string Name, Tensor Value)[] inputs)
    {
        var map = Inputs(inputs);
        return GraphFunctions.Gradient(scope, GraphFunctions.Prepare(ProgramParser.Parse(program), map), map);
    }

    private static double[] Eval(string program, params (string Name, double[] Values)[] inputs)
    {
        using var scope = new ExecutionScope();
        var map = inputs.ToDictionary(i => i.Name, i => i.Values.Length == 1 ? scope.Scalar(i.Values[0], DType.Float64) : scope.FromArray(i.Values));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(ProgramParser.Parse(program), map), map);
        return r.Outputs.Values.Single().ToDoubles();
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void C5_TheSeedCellsRunVerbatim(string cell, double a, double c, double grad)
    {
        using var scope = new ExecutionScope();
        var r = Gradient(scope, cell, ("a", scope.Scalar(a)));
        Assert.Equal(c, r.Outputs["c"].ToScalar(), Math.Abs(c) * 1e-6);
        Assert.Equal(grad, r.Gradients["a"].ToScalar(), grad * 1e-6);
        Assert.Equal(r.Outputs["c"].ToScalar() / a, r.Gradients["a"].ToScalar(), grad * 1e-6); // grad = c / a
    }

    [Fact]
    public void E3_VectorInput_GradientAndJacobianThroughTheLoop()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([0.3f, -0.2f, 0.1f]);
        var r = Gradient(scope, PyTorchCell, ("a", a));
        Assert.Equal([1228.8, -819.2, 409.6], r.Outputs["c"].ToDoubles().Select(v => Math.Round(v, 1)).ToArray());
        Assert.Equal([4096.0, 4096, 4096], r.Gradients["a"].ToDoubles());

        var map = Inputs(("a", a));
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(PyTorchCell), map);
        foreach (var mode in new[] { JacobianMode.Forward, JacobianMode.Reverse })
        {
            var j = GraphFunctions.Jacobian(scope, plan, map, mode: mode).Jacobians["c"]["a"].ToDoubles();
            Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], j);
        }
    }

    [Fact]
    public void TheLoweredGraphHasWhileAndIfNodes_AndVariablesKeepTheirNames()
    {
        var g = ProgramParser.Parse(PyTorchCell);
        Assert.Equal(["a"], g.Inputs.Select(p => p.Name).ToArray());
        Assert.Equal(["c"], g.Outputs);
        Assert.Equal(["mul", "while", "sum", "gt", "if"], g.Nodes.Select(n => n.Op).ToArray());
        var loop = g.Nodes[1];
        Assert.Equal(["b"], loop.Outputs); // the loop's result is b's final value
        var body = loop.Attributes.GetGraph("body");
        Assert.Single(body.Inputs);
        Assert.Equal(["mul"], body.Nodes.Select(n => n.Op).ToArray());
        var cond = loop.Attributes.GetGraph("cond");
        Assert.Equal(["norm", "lt"], cond.Nodes.Select(n => n.Op).ToArray());
        var choose = g.Nodes[4];
        Assert.Equal(["c"], choose.Outputs);
        Assert.Empty(choose.Attributes.GetGraph("then").Inputs); // branches read b from the enclosing graph
    }

    [Fact]
    public void ForwardAndReverseModesAgreeThroughTheLoop_AndTheHessianIsZero()
    {
        using var scope = new ExecutionScope();
        var map = Inputs(("a", scope.Scalar(0.5, DType.Float64)));
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(PyTorchCell), map);
        var jvp = GraphFunctions.Jvp(scope, plan, map, Inputs(("a", scope.Scalar(1.0, DType.Float64))));
        Assert.Equal(2048.0, jvp.Tangents["c"].ToScalar());
        Assert.Equal(0.0, GraphFunctions.Hessian(scope, plan, map).Hessians["a"]["a"].ToScalar()); // c is linear in a
    }

    [Theory]
    [InlineData(-5.0, -1.0)]
    [InlineData(0.5, 0.0)]
    [InlineData(3.0, 9.0)]
    [InlineData(20.0, 10.0)]
    public void ElifChains(double x, double expected)
    {
        const string program = """
            def clip_square(x):
                if x < 0:
                    y = -1 + 0 * x
                elif x < 1:
                    y = 0 * x
                elif x < 10:
                    y = x * x
                else:
                    y = 10 + 0 * x
                return y
            """;
        Assert.Equal(expected, Eval(program, ("x", [x]))[0]);
    }

    [Fact]
    public void NestedLoops_CarryWhatTheyAssign()
    {
        // Sum of i * j for i, j in [0, 3): 0+1+2 times 0+1+2 = 9, built from counters the loops carry.
        const string program = """
            def f(n):
                total = 0 * n
                i = 0 * n
                while i < n:
                    j = 0 * n
                    while j < n:
                        total = total + i * j
                        j = j + 1
                    i = i + 1
                return total
            """;
        Assert.Equal(9.0, Eval(program, ("n", [3.0]))[0]);
    }

    [Fact]
    public void LoopGradientsFlowThroughCarriedAndClosedOverValues()
    {
        // y = x * w^k where the loop multiplies k = 3 times; w is read from outside the loop (not carried).
        const string program = """
            def f(x, w):
                i = 0
                y = x
                while i < 3:
                    y = y * w
                    i += 1
                return y
            """;
        using var scope = new ExecutionScope();
        var r = Gradient(scope, program, ("x", scope.Scalar(2.0, DType.Float64)), ("w", scope.Scalar(1.5, DType.Float64)));
        Assert.Equal(2 * Math.Pow(1.5, 3), r.Outputs["y"].ToScalar(), 12);
        Assert.Equal(Math.Pow(1.5, 3), r.Gradients["x"].ToScalar(), 12);
        Assert.Equal(2 * 3 * Math.Pow(1.5, 2), r.Gradients["w"].ToScalar(), 12);
    }

    [Fact]
    public void TopLevelStatements_MayUseControlFlowToo()
    {
        const string program = """
            b = 2 * a
            while norm(b) < 1000:
                b = 2 * b
            if sum(b) > 0:
                c = b
            else:
                c = 100 * b
            """;
        using var scope = new ExecutionScope();
        var r = Gradient(scope, program, ("a", scope.Scalar(0.5)));
        Assert.Equal(1024.0, r.Outputs["c"].ToScalar());
        Assert.Equal(2048.0, r.Gradients["a"].ToScalar());
    }

    [Theory]
    [InlineData("y = x > 1 and x < 3", 1)]
    [InlineData("y = x < 1 or x > 3", 0)]
    [InlineData("y = not x > 1", 0)]
    [InlineData("y = 1 < x < 3", 1)]          // chained: 1 < x and x < 3
    [InlineData("y = 1 < x < 2", 0)]
    [InlineData("y = x == 2", 1)]
    [InlineData("y = x != 2", 0)]
    [InlineData("y = x >= 2 and x <= 2", 1)]
    public void ComparisonsAndLogic(string program, double expected)
    {
        Assert.Equal(expected, Eval(program, ("x", [2.0]))[0]);
    }

    [Theory]
    [InlineData("y = x.sum()", 10)]
    [InlineData("y = x.exp().log().sum()", 10)]
    [InlineData("y = x.mean(axis=0)", 2.5)]
    [InlineData("y = torch.sum(x, dim=0)", 10)]
    [InlineData("y = tf.reduce_mean(x)", 2.5)]
    [InlineData("y = np.dot(x, x)", 30)]
    [InlineData("y = 2 * torch.dot(x, x)", 60)]
    [InlineData("y = 2 * tf.tensordot(x, x, axes=1)", 60)]
    [InlineData("y = x @ x", 30)]
    [InlineData("y = jnp.linalg.norm(x) ** 2", 30)]
    [InlineData("y = x.detach().sum()", 10)]
    [InlineData("y = tf.stop_gradient(x).sum()", 10)]
    [InlineData("y = jax.lax.stop_gradient(x).sum()", 10)]
    [InlineData("y = x.T.sum()", 10)]
    [InlineData("y = np.multiply(x, x).sum()", 30)]
    [InlineData("y = x.sum() / x.shape[0]", 2.5)]   // a shape is an int64 value
    [InlineData("y = x.sum() / len(x)", 2.5)]
    [InlineData("y = x[0] + x[-1]", 5)]
    [InlineData("y = x.shape[-1] * 1.0", 4)]
    public void FrameworkSpellings(string program, double expected)
    {
        Assert.Equal(expected, Eval(program, ("x", [1.0, 2, 3, 4]))[0], 5);
    }

    [Fact]
    public void C4_DetachAsWritten()
    {
        const string program = """
            y = x * x
            u = y.detach()
            z = u * x
            """;
        using var scope = new ExecutionScope();
        var map = Inputs(("x", scope.FromArray([0f, 1, 2, 3])));
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(program, ["z"]), map);
        var r = GraphFunctions.Gradient(scope, plan, map);
        Assert.Equal([0.0, 1, 4, 9], r.Gradients["x"].ToDoubles()); // x.grad == u
    }

    [Fact]
    public void TupleAssignment_AugmentedAssignment_AndMultipleReturns()
    {
        var g = ProgramParser.Parse("""
            def f(x, y):
                x, y = y, x      # a swap: both right sides first
                x *= 10
                return x, y - 1
            """);
        Assert.Equal(2, g.Outputs.Count);
        Assert.NotEqual("x", g.Outputs[0]); // the input keeps the name x; the new value gets a fresh one
        using var scope = new ExecutionScope();
        var map = Inputs(("x", scope.Scalar(1.0)), ("y", scope.Scalar(2.0)));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(g, map), map);
        Assert.Equal(20.0, r.Outputs[g.Outputs[0]].ToScalar());
        Assert.Equal(0.0, r.Outputs[g.Outputs[1]].ToScalar());
    }

    [Fact]
    public void AReturnedExpressionIsNamedResult_AndImportsAndAnnotationsAreIgnored()
    {
        var g = ProgramParser.Parse("""
            import torch
            from jax import numpy as jnp

            def f(x: torch.Tensor) -> torch.Tensor:
                return 2 * jnp.dot(x, x)
            """);
        Assert.Equal(["result"], g.Outputs);
        Assert.Equal(["x"], g.Inputs.Select(p => p.Name).ToArray());
    }

    [Fact]
    public void UnreadParametersAreStillInputs_WithZeroGradient()
    {
        using var scope = new ExecutionScope();
        var r = Gradient(scope, "def f(x, unused):\n    return x * 3", ("x", scope.Scalar(2.0)), ("unused", scope.Scalar(5.0)));
        Assert.Equal(3.0, r.Gradients["x"].ToScalar());
        Assert.Equal(0.0, r.Gradients["unused"].ToScalar());
    }

    [Fact]
    public void AnIndentedProgramParsesAsWritten()
    {
        Assert.Equal(8.0, Eval("    def f(a):\n        b = a * 2\n        return b * 2\n", ("a", [2.0]))[0]);
    }

    [Fact]
    public void TrueAndFalseAreBoolValues()
    {
        Assert.Equal(1.0, Eval("y = logical_and(x > 0, True)", ("x", [2.0]))[0]);
        Assert.Equal(0.0, Eval("y = logical_or(x < 0, False)", ("x", [2.0]))[0]);
    }

    [Theory]
    [InlineData("def f(a):\n    return b * 2", 2, 12, "name 'b' is not defined")]
    [InlineData("def f():\n    return b * 2", 2, 12, "name 'b' is not defined")]   // nothing to suggest from (fuzz find)
    [InlineData("def f(a):\n    return a.nrom()", 2, 14, "unknown method 'nrom' (did you mean 'norm'?)")]
    [InlineData("y = reduce_summ(x)", 1, 5, "did you mean 'reduce_sum'?")]
    [InlineData("def f(a):\n    while a < 1:\n        t = a * 2\n        a = t\n    return t", 5, 12, "'t' is assigned only inside the while loop at line 2")]
    [InlineData("def f(a):\n    if a > 0:\n        c = a\n    return c", 4, 12, "'c' is assigned on only one side of the if at line 2")]
    [InlineData("def f(a):\n    if a > 0:\n        return a\n    return a", 3, 9, "no early returns")]
    [InlineData("def f(a):\n    for i in range(3):\n        a = a * 2\n    return a", 2, 5, "for loops are not supported; write a while loop")]
    [InlineData("def f(a):\n    while a < 1:\n        break\n    return a", 3, 9, "'break' is not supported")]
    [InlineData("def f(a):\n    b = a\n", 3, 1, "has no 'return'")]
    [InlineData("def f(a):\n    b = a\n  return b", 3, 3, "indentation does not match")]
    [InlineData("def f(a):\n    b = a\n        c = b\n    return c", 3, 9, "unexpected indent")]
    [InlineData("def f(a):\nreturn a", 2, 1, "expected the function's body, indented")]
    [InlineData("def f(a):\n    return a\ny = 2", 3, 1, "nothing may follow the function")]
    [InlineData("y = x\ndef f(a):\n    return a", 2, 1, "statements before 'def'")]
    [InlineData("def f(a, a):\n    return a", 1, 10, "named twice")]
    [InlineData("def f(a):\n    while a < 1\n        a = a * 2\n    return a", 2, 16, "expected ':' after the while condition")]
    [InlineData("def f(a):\n    if a > 0: a = 1\n    return a", 2, 15, "the if block goes on the lines below")]
    [InlineData("y = x[0.5]", 1, 7, "an index must be an integer")]
    [InlineData("y = torch.foo.bar(x)", 1, 11, "unknown module 'foo'")]
    [InlineData("a, b = x", 1, 1, "2 name(s) but 1 value(s)")]
    [InlineData("while x < 1:\n    t = x", 1, 1, "assigns no variable that exists before it")]
    [InlineData("y = tf.tensordot(x, x, axes=2)", 1, 24, "axes=1")]
    public void Errors_PointAtTheLine_WithACaret(string program, int line, int column, string message)
    {
        var e = SyntaxError(program);
        Assert.Contains($"line {line}, column {column}", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Contains("^", e.Message); // the source line is quoted with a caret under the column
    }

    [Fact]
    public void TheCaretSitsUnderTheColumn()
    {
        var e = SyntaxError("y = x\nz = foo(x)");
        var lines = e.Message.Split('\n');
        Assert.Equal("  z = foo(x)", lines[^2]);
        Assert.Equal("      ^", lines[^1]);
    }

    [Fact]
    public void BlocksNestAtMostAsDeepAsSubgraphs()
    {
        string Nested(int depth)
        {
            var lines = new List<string> { "def f(a):" };
            for (int i = 0; i < depth; i++) lines.Add(new string(' ', 4 * (i + 1)) + "if a > 0:");
            lines.Add(new string(' ', 4 * (depth + 1)) + "a = a * 2");
            lines.Add("    return a");
            return string.Join('\n', lines);
        }
        Assert.Equal(4.0, Eval(Nested(GraphLimits.MaxSubgraphDepth), ("a", [2.0]))[0]);
        Assert.Contains("nested more than 16 deep", SyntaxError(Nested(GraphLimits.MaxSubgraphDepth + 1)).Message);
    }

    [Fact]
    public void AShapeErrorNamesTheVariableAndTheProgramLine()
    {
        var g = ProgramParser.Parse("def f(a, b):\n    s = a.sum()\n    c = a @ b\n    return c + s");
        var types = new Dictionary<string, TensorType>
        {
            ["a"] = new(new Shape(3), DType.Float32), ["b"] = new(new Shape(4), DType.Float32),
        };
        var e = Assert.Throws<EngineException>(() => Plan.Build(g, types));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Equal("c", e.Node);
        Assert.Equal(3, e.Facts["line"]);
        Assert.Contains("at program line 3", e.Message);
    }

    [Fact]
    public void ManyParameters_ReadInsideALoop_ParseWithoutQuadraticWork()
    {
        // 60,000 parameters, all read in one loop body: name bookkeeping is hashed, so this is one linear pass.
        var names = Enumerable.Range(0, 60_000).Select(i => $"p{i}").ToArray();
        var program = $"def f({string.Join(", ", names)}):\n    i = 0\n    while i < 1:\n        i = i + concat({string.Join(", ", names)})\n    return i";
        var g = ProgramParser.Parse(program);
        Assert.Equal(60_000, g.Inputs.Count);
        Assert.Single(g.Nodes.Single(n => n.Op == "while").Inputs); // only i is carried; the parameters are read in place
    }

    [Fact]
    public void AMeanWrittenWithShape_HasTheMeansGradient()
    {
        using var scope = new ExecutionScope();
        var r = Gradient(scope, "def mean(x):\n    return x.sum() / x.shape[0]", ("x", scope.FromArray([1f, 2, 3, 4])));
        Assert.Equal(2.5, r.Outputs["result"].ToScalar());
        Assert.Equal([0.25, 0.25, 0.25, 0.25], r.Gradients["x"].ToDoubles());
    }
}
