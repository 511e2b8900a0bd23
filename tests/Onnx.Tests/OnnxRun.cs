using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx.Tests;

/// <summary>Runs an imported graph through the engine's own graph functions, as the service does.</summary>
internal static class OnnxRun
{
    public static IReadOnlyList<HostTensor> Evaluate(Graph graph, IReadOnlyList<HostTensor> inputs)
    {
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 2L << 30 });
        var feed = GraphFunctions.Import(scope, Bind(graph, inputs));
        var plan = GraphFunctions.Prepare(graph, feed);
        var result = GraphFunctions.Evaluate(scope, plan, feed);
        return graph.Outputs.Select(o => HostTensor.From(result.Outputs[o])).ToArray();
    }

    public static Dictionary<string, HostTensor> Bind(Graph graph, IReadOnlyList<HostTensor> inputs)
    {
        if (inputs.Count != graph.Inputs.Count)
            throw new InvalidOperationException($"the graph takes {graph.Inputs.Count} inputs, the test gives {inputs.Count}");
        return graph.Inputs.Select((p, i) => (p.Name, inputs[i])).ToDictionary(x => x.Name, x => x.Item2, StringComparer.Ordinal);
    }
}
