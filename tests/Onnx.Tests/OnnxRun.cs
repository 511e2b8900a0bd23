using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Onnx.Tests;

/// <summary>Runs an imported graph through the engine's own graph functions, as the service does.</summary>
internal static class OnnxRun
{
    public static IReadOnlyList<HostTensor> Evaluate(Graph graph, IReadOnlyList<HostTensor> inputs, PlanCache? plans = null)
    {
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 2L << 30 });
        var feed = GraphFunctions.Import(scope, Bind(graph, inputs));
        var plan = GraphFunctions.Prepare(graph, feed, plans);
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

/// <summary>Gradients of imported graphs checked against central finite differences in float64.</summary>
internal static class GradientCheck
{
    /// <summary>
    /// Reverse-mode gradients of Σ wᵢ·outputᵢ (w fixed random weights) by each name in <paramref name="wrt"/> (inputs
    /// or constants of the graph), compared elementwise with central differences.
    /// </summary>
    public static void Check(Graph graph, IReadOnlyDictionary<string, HostTensor> inputs, IReadOnlyList<string> wrt, double tolerance = 1e-6)
    {
        var why = Compare(graph, inputs, wrt, null, int.MaxValue, tolerance);
        Assert.True(why is null, why);
    }

    /// <summary>Null when every checked element agrees, else the first that does not (at most <paramref name="samplesPerInput"/> elements per name).</summary>
    public static string? Compare(Graph graph, IReadOnlyDictionary<string, HostTensor> inputs, IReadOnlyList<string> wrt, PlanCache? plans,
        int samplesPerInput, double tolerance = 1e-6)
    {
        var (lifted, fed) = ConstantInputs.Lift(graph, wrt, inputs);
        var outputs = OnnxRun.Evaluate(lifted, lifted.Inputs.Select(p => fed[p.Name]).ToArray(), plans);
        if (outputs.Any(o => o.DType.IsFloating() && o.ToDoubles().Any(v => !double.IsFinite(v)))) return null;
        var weights = outputs.Select((o, i) => OnnxBuilder.Random(100 + i, o.Shape.ToArray())).ToArray();

        Dictionary<string, HostTensor> analytic;
        using (var scope = new ExecutionScope())
        {
            var feed = GraphFunctions.Import(scope, fed);
            var plan = GraphFunctions.Prepare(lifted, feed, plans);
            var seeds = lifted.Outputs.Select((o, i) => (o, weights[i])).Where(x => x.Item2.DType.IsFloating()).ToDictionary(x => x.o, x => x.Item2);
            var r = GraphFunctions.Gradient(scope, plan, feed, new GradientRequest { Wrt = wrt, Seeds = GraphFunctions.Import(scope, seeds) });
            analytic = r.Gradients.ToDictionary(kv => kv.Key, kv => HostTensor.From(kv.Value));
        }

        double Objective(Dictionary<string, HostTensor> at)
        {
            var outs = OnnxRun.Evaluate(lifted, lifted.Inputs.Select(p => at[p.Name]).ToArray(), plans);
            double sum = 0;
            for (int i = 0; i < outs.Count; i++)
            {
                if (!outs[i].DType.IsFloating()) continue;
                var (o, w) = (outs[i].ToDoubles(), weights[i].ToDoubles());
                for (int j = 0; j < o.Length; j++) sum += o[j] * w[j];
            }
            return sum;
        }

        foreach (var name in wrt)
        {
            var x = fed[name];
            var values = x.ToDoubles();
            var g = analytic[name].ToDoubles();
            int step = Math.Max(1, values.Length / Math.Max(1, Math.Min(samplesPerInput, values.Length)));
            for (int j = 0; j < values.Length; j += step)
            {
                const double h = 1e-6;
                var plus = (double[])values.Clone();
                var minus = (double[])values.Clone();
                plus[j] += h;
                minus[j] -= h;
                var at = new Dictionary<string, HostTensor>(fed) { [name] = HostTensor.FromDoubles(x.DType, x.Shape, plus) };
                double fp = Objective(at);
                at[name] = HostTensor.FromDoubles(x.DType, x.Shape, minus);
                double numeric = (fp - Objective(at)) / (2 * h);
                // A point at the edge of the function's domain (0 ** 1.76 stepped below zero) has no finite difference to compare.
                if (double.IsNaN(numeric)) continue;
                if (!(Math.Abs(numeric - g[j]) <= tolerance * (1 + Math.Abs(numeric))))
                    return $"d/d{name}[{j}]: reverse mode {g[j]:R}, finite differences {numeric:R}";
            }
        }
        return null;
    }
}
