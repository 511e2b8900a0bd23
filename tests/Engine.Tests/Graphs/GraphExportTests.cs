using AutogradService.Engine.Graphs;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

public class GraphExportTests
{
    private const string E5 = "f = log(x ** 2) * sin(x) + 1 / x";

    [Fact]
    public void Dot_ShowsEveryNodeOfE5()
    {
        var dot = GraphExport.ToDot(ProgramParser.Parse(E5));
        Assert.StartsWith("digraph G {", dot);
        Assert.EndsWith("}\n", dot);
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" }) Assert.Contains($"label=\"{op}\\n", dot);
        Assert.Contains("shape=ellipse, label=\"x", dot);        // the input
        Assert.Contains("shape=plaintext, label=\"2\"", dot);    // the literal exponent
        Assert.Contains("label=\"output f", dot);
        Assert.Equal(dot.Count(c => c == '{'), dot.Count(c => c == '}'));
    }

    [Fact]
    public void Mermaid_ShowsEveryNodeOfE5()
    {
        var mermaid = GraphExport.ToMermaid(ProgramParser.Parse(E5));
        Assert.StartsWith("flowchart TD\n", mermaid);
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" }) Assert.Contains($"[\"{op}<br/>", mermaid);
        Assert.Contains("-->|\"x\"|", mermaid);
    }

    [Fact]
    public void TypesComeFromAPlan()
    {
        var g = ProgramParser.Parse(E5);
        var plan = Plan.Build(g, new Dictionary<string, AutogradService.Engine.Tensors.TensorType>
        {
            ["x"] = new(new AutogradService.Engine.Tensors.Shape(4), AutogradService.Engine.Tensors.DType.Float64),
        });
        var dot = GraphExport.ToDot(g, new GraphAnnotations { Plan = plan });
        Assert.Contains("→ f: float64[4]", dot);
        Assert.Contains("x\\nfloat64[4]", dot);
    }

    [Fact]
    public void Subgraphs_AreClusters()
    {
        var g = C5();
        var dot = GraphExport.ToDot(g);
        Assert.Equal(4, dot.Split("subgraph cluster_").Length - 1); // cond, body, then, else
        Assert.Contains("label=\"while loop: body\"", dot);
        Assert.Contains("shape=hexagon", dot);
        Assert.Contains("style=dashed", dot);
        Assert.Equal(dot.Count(c => c == '{'), dot.Count(c => c == '}'));

        var mermaid = GraphExport.ToMermaid(g);
        Assert.Equal(4, mermaid.Split("\n  subgraph ").Length - 1);
        Assert.Equal(mermaid.Split("subgraph ").Length - 1, mermaid.Split("\n  end\n").Length - 1);
        Assert.Contains("{{\"while (loop)", mermaid);
    }

    [Fact]
    public void ControlFlowGraph_AnnotatedWithValuesAndAdjoints()
    {
        using var scope = new ExecutionScope();
        var inputs = Inputs(("a", scope.Scalar(0.5f)));
        var plan = GraphFunctions.Prepare(C5(), inputs);
        var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { AllIntermediates = true });
        Assert.Equal(1024.0, r.Intermediates["b"].Value.ToScalar());
        Assert.Equal(1.0, r.Intermediates["b"].Adjoint.ToScalar());
        Assert.Equal(1024.0, r.Intermediates["b0"].Adjoint.ToScalar());
        Assert.Equal(0.0, r.Intermediates["positive"].Adjoint.ToScalar()); // a bool has no derivative
        var dot = GraphExport.ToDot(plan.Graph, GraphAnnotations.FromGradient(r, plan));
        Assert.Contains("→ b: float32[]\\nvalue 1024\\nadjoint 1", dot);
        Assert.Contains("adjoint 2048", dot); // the input a
    }

    [Fact]
    public void LabelsAreEscaped()
    {
        var g = G([P("x")], [N("cast", ["x"], "y", AutogradService.Engine.Ops.Attributes.Of(("dtype", "float64")), name: "a \"quoted\" <name>")], "y");
        var dot = GraphExport.ToDot(g);
        Assert.Contains("a \\\"quoted\\\" <name>", dot);
        var mermaid = GraphExport.ToMermaid(g);
        Assert.Contains("a #quot;quoted#quot; #lt;name#gt;", mermaid);
    }
}
