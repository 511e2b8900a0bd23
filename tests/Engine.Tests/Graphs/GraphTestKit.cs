using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>Small builders for graphs in tests, and the chapter's control-flow case (C5/E3) as a graph.</summary>
internal static class GraphTestKit
{
    public static Node N(string op, string[] inputs, string output, Attributes? attrs = null, string? name = null) =>
        new(op, inputs, [output], attrs, name);

    /// <summary>A parameter of any shape unless dimensions are given (use <c>new Parameter(name, dtype, [])</c> for a scalar).</summary>
    public static Parameter P(string name, DType dtype = DType.Float32, params int[] shape) =>
        new(name, dtype, shape.Length > 0 ? shape : null);

    /// <summary>A scalar parameter.</summary>
    public static Parameter S(string name, DType dtype = DType.Float32) => new(name, dtype, []);

    public static Graph G(Parameter[] inputs, Node[] nodes, params string[] outputs) => new(inputs, nodes, outputs);

    /// <summary>
    /// Case C5 (E3 with a vector): <c>b = 2a; while norm(b) &lt; 1000: b = 2b; c = b if sum(b) &gt; 0 else 100*b</c>.
    /// The subgraphs name their input 'b' too, shadowing the enclosing 'b'.
    /// </summary>
    public static Graph C5(int[]? shape = null)
    {
        var cond = G([P("b")], [N("norm", ["b"], "n"), N("lt", ["n", "1000"], "go")], "go");
        var body = G([P("b")], [N("mul", ["2", "b"], "b2")], "b2");
        var then = G([P("b")], [], "b");
        var otherwise = G([P("b")], [N("mul", ["100", "b"], "scaled")], "scaled");
        return G([new Parameter("a", DType.Float32, shape ?? [])],
        [
            N("mul", ["2", "a"], "b0"),
            new Node("while", ["b0"], ["b"], Attributes.Of(("cond", cond), ("body", body)), "loop"),
            N("sum", ["b"], "s"),
            N("gt", ["s", "0"], "positive"),
            new Node("if", ["positive", "b"], ["c"], Attributes.Of(("then", then), ("else", otherwise)), "choose"),
        ], "c");
    }

    public static Dictionary<string, Tensor> Inputs(params (string Name, Tensor Value)[] values) =>
        values.ToDictionary(v => v.Name, v => v.Value);

    /// <summary>Parses a program expected to be refused as <c>invalid_graph</c>, and returns the error.</summary>
    public static EngineException SyntaxError(string program)
    {
        var e = Assert.Throws<EngineException>(() => ProgramParser.Parse(program));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        return e;
    }

    public static EngineException Throws(Action action)
    {
        var e = Assert.Throws<EngineException>(action);
        return e;
    }

    public static void Close(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]}");
    }
}
