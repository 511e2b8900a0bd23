using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx;

/// <summary>
/// If and Loop as the IR's <c>if</c> and <c>while</c>, which the interpreter runs as the values decide, recording the
/// path taken: reverse and forward mode go through them for any trip count.
/// </summary>
internal static partial class OnnxOps
{
    private static void AddControlFlow(Dictionary<string, Converter> t)
    {
        t["If"] = If;
        t["Loop"] = Loop;
    }

    private static Val[] If(NodeContext c)
    {
        var cond = c.In(0);
        var thenGraph = c.GraphAttr("then_branch") ?? throw c.Invalid("needs then_branch");
        var elseGraph = c.GraphAttr("else_branch") ?? throw c.Invalid("needs else_branch");
        // A condition known at import picks its branch now: the other is never built.
        if (cond.IsConst) return c.Importer.Inline(cond.Value!.ToDoubles()[0] != 0 ? thenGraph : elseGraph, c.Scope);

        var (thenIr, thenOut) = c.Importer.Subgraph(thenGraph, c.Scope, null);
        var (elseIr, elseOut) = c.Importer.Subgraph(elseGraph, c.Scope, null);
        if (thenOut.Length != elseOut.Length)
            throw c.Invalid($"then_branch has {thenOut.Length} outputs and else_branch {elseOut.Length}");
        var types = thenOut.Select((v, i) => (v.DType, JoinDims(v.Dims, elseOut[i].Dims))).ToArray();
        return c.Importer.EmitControlFlow(c.Scope, ControlFlow.If, [cond], A(("then", thenIr), ("else", elseIr)), types);
    }

    private static int[]? JoinDims(int[]? a, int[]? b) =>
        a is null || b is null || a.Length != b.Length ? null : a.Select((d, i) => d == b[i] ? d : -1).ToArray();

    /// <summary>
    /// Loop(M, cond, v…) carries (iteration, condition, v…) through a <c>while</c>: its cond graph is
    /// <c>condition and iteration &lt; M</c>, its body the ONNX body plus the count's increment.
    /// </summary>
    private static Val[] Loop(NodeContext c)
    {
        var body = c.GraphAttr("body") ?? throw c.Invalid("needs a body");
        var maxTrips = c.Opt(0);
        var carried = Enumerable.Range(2, Math.Max(c.InputCount - 2, 0)).Select(i => c.In(i)).ToArray();
        int scans = body.Output.Count - 1 - carried.Length;
        if (scans > 0) throw c.Unsupported("with scan outputs is not supported (carry the values instead)");
        if (scans < 0) throw c.Invalid($"the body has {body.Output.Count} outputs for {carried.Length} carried values");

        var iteration = NodeContext.Scalar(0, DType.Int64);
        var condition = c.Opt(1) ?? NodeContext.Const(new HostTensor(DType.Bool, Shape.Scalar, new[] { true }));
        // Carried sizes may change between iterations: the body sees their dtypes and ranks only.
        var bodyInputs = new List<Val> { new(null, DType.Int64, []), new(null, DType.Bool, []) };
        bodyInputs.AddRange(carried.Select(v => new Val(null, v.DType, v.Dims?.Select(_ => -1).ToArray())));
        var (bodyIr, _) = c.Importer.Subgraph(body, c.Scope, bodyInputs);

        var parameters = bodyInputs.Select((v, i) => new Parameter($"~loop{i}", v.DType)).ToList();
        var condGraph = BuildLoopCondition(c, parameters, maxTrips);
        var types = new List<(DType, int[]?)> { (DType.Int64, []), (DType.Bool, []) };
        types.AddRange(carried.Select(v => (v.DType, (int[]?)null)));
        var outs = c.Importer.EmitControlFlow(c.Scope, ControlFlow.While, [iteration, condition, .. carried],
            A(("cond", condGraph), ("body", bodyIr)), types);
        return outs[2..];
    }

    /// <summary>(iteration, condition, v…) → condition [and iteration &lt; M].</summary>
    private static Graph BuildLoopCondition(NodeContext c, List<Parameter> parameters, Val? maxTrips)
    {
        var names = parameters.Select(p => c.Importer.Fresh()).ToArray();
        var inputs = parameters.Select((p, i) => p with { Name = names[i] }).ToList();
        if (maxTrips is null) return new Graph(inputs, [], [names[1]]);
        var limit = c.Importer.Materialize(maxTrips);
        var below = c.Importer.Fresh();
        var result = c.Importer.Fresh();
        return new Graph(inputs,
        [
            new Node("lt", [names[0], limit], [below]),
            new Node("logical_and", [names[1], below], [result]),
        ], [result]);
    }
}
