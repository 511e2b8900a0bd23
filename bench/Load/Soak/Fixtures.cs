using AutogradService.Contracts.V1;

namespace AutogradService.Load.Soak;

/// <summary>
/// Request parts that are the same for every run: the programs and graphs of the d2l chapter's cases, a counting
/// loop (its trip count is an input, so only a deadline or an iteration limit stops it when that input is huge), and
/// the large over-limit bodies, built once so the driver spends its time sending rather than building.
/// </summary>
public sealed class Fixtures
{
    /// <summary>C1 of the chapter: the gradient of 2 x.x is 4x.</summary>
    public const string C1 = "t = dot(x, x)\ny = 2 * t";

    /// <summary>E6: f(x) = log(x^2) sin(x) + 1/x, with f' = 2 sin(x)/x + log(x^2) cos(x) - 1/x^2.</summary>
    public const string E6 = "f = log(x * x) * sin(x) + 1 / x";

    public Fixtures(string modelName, int maxNodes)
    {
        ModelName = modelName;
        var lines = new List<string> { "a0 = x + 1" };
        for (int i = 1; i <= maxNodes; i++) lines.Add($"a{i} = a{i - 1} + 1");
        TooManyNodesProgram = string.Join("\n", lines);
        var nodes = Enumerable.Range(0, maxNodes + 1)
            .Select(i => $"{{\"op\":\"add\",\"inputs\":[\"{(i == 0 ? "x" : $"a{i - 1}")}\",1],\"outputs\":[\"a{i}\"]}}");
        TooManyNodesRestBody = Numbers.Utf8(
            $"{{\"graph\":{{\"inputs\":[\"x\"],\"nodes\":[{string.Join(",", nodes)}],\"outputs\":[\"a{maxNodes}\"]}},\"inputs\":{{\"x\":1}}}}");
        TooManyNodesProgramRestBody = Numbers.Utf8(
            $"{{\"program\":{System.Text.Json.JsonSerializer.Serialize(TooManyNodesProgram)},\"inputs\":{{\"x\":1}}}}");
        DeepParentheses = "y = " + new string('(', 20_000) + "x" + new string(')', 20_000);
    }

    public string ModelName { get; }
    public string TooManyNodesProgram { get; }
    public byte[] TooManyNodesRestBody { get; }
    public byte[] TooManyNodesProgramRestBody { get; }
    public string DeepParentheses { get; }

    /// <summary>C1 as a JSON graph, with the literal 2 inline as the contract allows.</summary>
    public const string C1GraphJson =
        "{\"inputs\":[{\"name\":\"x\",\"dtype\":\"float32\",\"shape\":[-1]}],\"nodes\":[" +
        "{\"op\":\"dot\",\"inputs\":[\"x\",\"x\"],\"outputs\":[\"t\"]},{\"op\":\"mul\",\"inputs\":[2,\"t\"],\"outputs\":[\"y\"]}],\"outputs\":[\"y\"]}";

    /// <summary>i from i0 while i &lt; n, one per iteration: the output is the count; d i / d i0 = 1.</summary>
    public static string CountingLoopJson(long? maxIterations = null) =>
        "{\"inputs\":[{\"name\":\"i0\",\"shape\":[]},{\"name\":\"n\",\"shape\":[]}],\"nodes\":[{\"op\":\"while\",\"inputs\":[\"i0\",\"n\"]," +
        "\"outputs\":[\"i\",\"n_out\"],\"attrs\":{\"cond\":{\"inputs\":[\"i\",\"n\"],\"nodes\":[{\"op\":\"lt\",\"inputs\":[\"i\",\"n\"],\"outputs\":[\"go\"]}]," +
        "\"outputs\":[\"go\"]},\"body\":{\"inputs\":[\"i\",\"n\"],\"nodes\":[{\"op\":\"add\",\"inputs\":[\"i\",1.0],\"outputs\":[\"i2\"]}]," +
        "\"outputs\":[\"i2\",\"n\"]}" + (maxIterations is { } m ? ",\"max_iterations\":" + m : "") + "}}],\"outputs\":[\"i\"]}";

    /// <summary>C1 as a protobuf graph.</summary>
    public static Graph C1Graph()
    {
        var g = new Graph { Outputs = { "y" } };
        g.Inputs.Add(new Parameter { Name = "x", Dtype = DType.Float32, Shape = { -1 }, HasShape = true });
        g.Nodes.Add(new Node { Op = "dot", Inputs = { "x", "x" }, Outputs = { "t" } });
        g.Constants.Add("two", new Tensor { Dtype = DType.Float32, FloatData = { 2f } });
        g.Nodes.Add(new Node { Op = "mul", Inputs = { "two", "t" }, Outputs = { "y" } });
        return g;
    }

    /// <summary>The counting loop as a protobuf graph.</summary>
    public static Graph CountingLoop(long? maxIterations = null)
    {
        var one = new Tensor { Dtype = DType.Float32, FloatData = { 1f } };
        var cond = new Graph { Inputs = { new Parameter { Name = "i" }, new Parameter { Name = "n" } }, Outputs = { "go" } };
        cond.Nodes.Add(new Node { Op = "lt", Inputs = { "i", "n" }, Outputs = { "go" } });
        var body = new Graph { Inputs = { new Parameter { Name = "i" }, new Parameter { Name = "n" } }, Outputs = { "i2", "n" } };
        body.Constants.Add("one", one);
        body.Nodes.Add(new Node { Op = "add", Inputs = { "i", "one" }, Outputs = { "i2" } });
        var loop = new Node { Op = "while", Inputs = { "i0", "n" }, Outputs = { "i", "n_out" } };
        loop.Attrs.Add("cond", new Contracts.V1.Attribute { Graph = cond });
        loop.Attrs.Add("body", new Contracts.V1.Attribute { Graph = body });
        if (maxIterations is { } m) loop.Attrs.Add("max_iterations", new Contracts.V1.Attribute { I = m });
        var g = new Graph { Outputs = { "i" } };
        g.Inputs.Add(new Parameter { Name = "i0", Dtype = DType.Float32, HasShape = true });
        g.Inputs.Add(new Parameter { Name = "n", Dtype = DType.Float32, HasShape = true });
        g.Nodes.Add(loop);
        return g;
    }
}
