using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

public class ProgramParserTests
{
    private static double[] Eval(string program, params (string Name, double[] Values)[] inputs)
    {
        using var scope = new ExecutionScope();
        var map = inputs.ToDictionary(i => i.Name, i => scope.FromArray(i.Values));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(ProgramParser.Parse(program), map), map);
        return r.Outputs.Values.Single().ToDoubles();
    }

    [Theory]
    [InlineData("y = 1 + 2 * x ** 2", 19)]       // ** over * over +
    [InlineData("y = -x ** 2", -9)]              // unary minus binds looser than **
    [InlineData("y = 2 ** -1 * x", 1.5)]         // the exponent may be negative
    [InlineData("y = 2 ** 3 ** 2 / x", 512.0 / 3)] // ** is right-associative
    [InlineData("y = x - 1 - 1", 1)]             // - is left-associative
    [InlineData("y = 12 / x / 2", 2)]
    [InlineData("y = -(x + 1)", -4)]
    [InlineData("y = --x", 3)]
    [InlineData("y = (x + 1) * (x - 1)", 8)]
    public void Precedence_AndAssociativity(string program, double expected)
    {
        Assert.Equal(expected, Eval(program, ("x", [3.0]))[0], 12);
    }

    [Fact]
    public void ExampleFromTheSpec()
    {
        var g = ProgramParser.Parse("t = sum(x * x)\ny = 2 * t");
        Assert.Equal(["y"], g.Outputs);
        Assert.Equal("x", g.Inputs.Single().Name);
        Assert.True(g.Inputs[0].AnyDType);
        Assert.Null(g.Inputs[0].Shape);
        Assert.Equal(DType.Float32, g.Inputs[0].DType);
        Assert.Equal(["mul", "sum", "mul"], g.Nodes.Select(n => n.Op).ToArray());
        Assert.Equal(["2", "t"], g.Nodes[2].Inputs);
        Assert.Equal(28, Eval("t = sum(x * x)\ny = 2 * t", ("x", [0.0, 1, 2, 3]))[0]);
    }

    [Fact]
    public void KeywordAttributes()
    {
        var g = ProgramParser.Parse("s = sum(x, axes=[0], keepdims=true)\nn = norm(x, ord=inf)\nc = cast(s, dtype=\"float64\")\nr = reshape(x, shape=[-1])", ["c", "n", "r"]);
        var sum = g.Nodes.Single(n => n.Op == "sum").Attributes;
        Assert.Equal([0L], sum.GetInts("axes"));
        Assert.True(sum.GetBool("keepdims"));
        Assert.Equal(double.PositiveInfinity, g.Nodes.Single(n => n.Op == "norm").Attributes.GetFloat("ord"));
        Assert.Equal("float64", g.Nodes.Single(n => n.Op == "cast").Attributes.GetString("dtype"));
        Assert.Equal([-1L], g.Nodes.Single(n => n.Op == "reshape").Attributes.GetInts("shape"));

        var floats = ProgramParser.Parse("y = sum(x, axes=[0, 1.5])").Nodes[0].Attributes["axes"];
        Assert.Equal(AttrKind.Floats, floats.Kind);
        var single = ProgramParser.Parse("y = norm(x, ord=1)").Nodes[0].Attributes["ord"];
        Assert.Equal(AttrKind.Int, single.Kind);

        using var scope = new ExecutionScope();
        var inputs = Inputs(("x", scope.FromArray([1f, 2, 3, 4], 2, 2)));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(g, inputs), inputs);
        Assert.Equal(new Shape(1, 2), r.Outputs["c"].Shape);
        Assert.Equal(DType.Float64, r.Outputs["c"].DType);
        Assert.Equal([4.0, 6], r.Outputs["c"].ToDoubles());
        Assert.Equal(4.0, r.Outputs["n"].ToScalar());
    }

    [Fact]
    public void CommentsBlankLinesAndLineJoiningInsideParentheses()
    {
        const string program = """
            # the chapter's f
            a = log(x ** 2)   # square, then log

            b = sin(
                x)
            f = a * b + 1 / x
            """;
        Assert.Equal(1.0, Eval(program, ("x", [1.0]))[0], 12);
    }

    [Fact]
    public void InputsAreFreeNames_InOrderOfFirstUse()
    {
        var g = ProgramParser.Parse("t = b * a\nu = t + a\nv = u * c");
        Assert.Equal(["b", "a", "c"], g.Inputs.Select(p => p.Name).ToArray());
    }

    [Fact]
    public void OutputsDefaultToTheLastAssignment_OrAsGiven()
    {
        Assert.Equal(["v"], ProgramParser.Parse("u = x + 1\nv = u * 2").Outputs);
        Assert.Equal(["u", "v"], ProgramParser.Parse("u = x + 1\nv = u * 2", ["u", "v"]).Outputs);
    }

    [Fact]
    public void Reassignment_GetsFreshNames()
    {
        var parsed = ProgramParser.ParseProgram("y = x * 2\ny = y + 1\nz = y * y");
        Assert.Equal("y", parsed.Assigned["y"]);
        Assert.Equal(49, Eval("y = x * 2\ny = y + 1\nz = y * y", ("x", [3.0]))[0]);

        // Assigning to an input leaves the input alone: the new value gets a fresh name.
        var shadow = ProgramParser.ParseProgram("x = x + 1");
        Assert.Equal("x", shadow.Graph.Inputs.Single().Name);
        Assert.NotEqual("x", shadow.Assigned["x"]);
        Assert.Equal(4, Eval("x = x + 1", ("x", [3.0]))[0]);
    }

    [Fact]
    public void LiteralAndAliasAssignments()
    {
        var g = ProgramParser.Parse("k = 2\ny = x * k\nz = y");
        Assert.Equal(DType.Float32, g.ConstantValues["k"].DType);
        Assert.Equal("identity", g.Nodes[^1].Op);
        Assert.Equal(6, Eval("k = 2\ny = x * k\nz = y", ("x", [3.0]))[0]);
    }

    [Fact]
    public void MatMulAndPowOperators()
    {
        var g = ProgramParser.Parse("y = a @ b ** 2");
        Assert.Equal(["pow", "matmul"], g.Nodes.Select(n => n.Op).ToArray());
    }

    [Fact]
    public void OpAliasesResolveToTheirOp()
    {
        Assert.Equal("detach", ProgramParser.Parse("y = stop_gradient(x)").Nodes[0].Op);
    }

    [Theory]
    [InlineData("y = (x + 1", 1, 11, "expected ')'")]
    [InlineData("y = x +", 1, 8, "expected a value")]
    [InlineData("y = x\nz = foo(x)", 2, 5, "unknown op 'foo'")]
    [InlineData("3 = x", 1, 1, "expected an assignment")]
    [InlineData("y = sum(x, axes=[0], x)", 1, 22, "positional argument")]
    [InlineData("y = x $ 2", 1, 7, "unexpected character '$'")]
    [InlineData("y = x\nz = 2 2", 2, 7, "unexpected '2'")]
    [InlineData("y = x\n  z = 2", 2, 3, "unexpected indent")]
    [InlineData("y = sum(x, axes=[a])", 1, 18, "attribute value")]
    [InlineData("y = sum(x, axes=[0], axes=[1])", 1, 22, "given twice")]
    [InlineData("y = 'abc", 1, 5, "not closed")]
    [InlineData("y = 2x", 1, 6, "after the number")]
    [InlineData("# nothing", 1, 10, "assigns nothing")]
    [InlineData("y = x y", 1, 7, "unexpected 'y'")]
    public void SyntaxErrors_SayLineAndColumn(string program, int line, int column, string message)
    {
        var e = SyntaxError(program);
        Assert.Contains($"line {line}, column {column}", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ParsedProgramsValidateLikeAnyGraph()
    {
        var e = Assert.Throws<EngineException>(() => GraphValidator.Validate(ProgramParser.Parse("y = logical_and(x, x)"),
            new Dictionary<string, InferredType> { ["x"] = InferredType.From(new TensorType(new Shape(2), DType.Float32)) }));
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);
        Assert.Equal("y", e.Node);
    }
}
