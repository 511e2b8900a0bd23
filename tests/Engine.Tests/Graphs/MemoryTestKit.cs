using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>Runs a graph unrecorded in a fresh scope and reports what it measured, for the memory-planning tests.</summary>
internal static class MemoryTestKit
{
    public const int Million = 1 << 20;

    /// <summary>Ten unary ops in a row: each dies at the next, so every one after the first writes over its input.</summary>
    public const string Chain = """
        a = sin(x)
        b = cos(a)
        c = tanh(b)
        d = neg(c)
        e = abs(d)
        f = sigmoid(e)
        g = square(f)
        h = relu(g)
        i = sqrt(h)
        j = exp(i)
        """;

    public sealed record Measured(Dictionary<string, long[]> Values, long Peak, PlanEstimates Estimate);

    /// <summary>
    /// Runs <paramref name="graph"/> unrecorded in a fresh scope (inputs allocated first, as a request does) and
    /// returns the values' bits, the budget's peak and the plan's estimate; checks every buffer went back to the pool.
    /// </summary>
    public static Measured Run(Graph graph, Func<ExecutionScope, Dictionary<string, Tensor>> inputs, bool inPlace = true,
        RunOptions? options = null, Action<ExecutionScope, Dictionary<string, Tensor>, RunResult>? check = null)
    {
        using var pool = new BufferPool();
        Measured result;
        using (var scope = new ExecutionScope(new ScopeOptions { Pool = pool }))
        {
            var feed = inputs(scope);
            var before = feed.ToDictionary(kv => kv.Key, kv => Bits(kv.Value));
            var plan = GraphFunctions.Prepare(graph, feed);
            RunResult run;
            if (inPlace && options is null)
            {
                // The service's evaluate path, exactly.
                var ev = GraphFunctions.Evaluate(scope, plan, feed);
                Assert.Equal(scope.Budget.PeakBytes, ev.Stats.PeakBytes);
                run = new RunResult(ev.Outputs, new Dictionary<string, Tensor>(), ev.Stats.NodesExecuted, 0);
            }
            else
            {
                using (scope.NoGrad())
                    run = Interpreter.Run(scope, plan, feed, (options ?? RunOptions.Default) with { InPlace = inPlace });
            }
            check?.Invoke(scope, feed, run);
            foreach (var (name, bits) in before) Assert.Equal(bits, Bits(feed[name])); // inputs are never written
            var values = new Dictionary<string, long[]>(StringComparer.Ordinal);
            foreach (var (name, t) in run.Outputs.Concat(run.Intermediates)) values[name] = Bits(t);
            result = new Measured(values, scope.Budget.PeakBytes, plan.Estimates);
        }
        Assert.Equal(0, pool.OutstandingBytes);
        return result;
    }

    /// <summary>Every element's exact bits (widened losslessly), so -0 and NaN payloads count as differences.</summary>
    public static long[] Bits(Tensor t) => t.DType switch
    {
        DType.Float32 => t.ToArray<float>().Select(v => (long)BitConverter.SingleToInt32Bits(v)).ToArray(),
        DType.Float64 => t.ToArray<double>().Select(BitConverter.DoubleToInt64Bits).ToArray(),
        DType.Int64 => t.ToArray<long>(),
        _ => t.ToArray<bool>().Select(b => b ? 1L : 0L).ToArray(),
    };

    public static float[] Uniform(int n, int seed, double lo = 0.1, double hi = 0.9)
    {
        var random = new Random(seed);
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)(lo + (hi - lo) * random.NextDouble());
        return data;
    }

    public static Tensor Floats(ExecutionScope scope, int seed, params int[] shape)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        return scope.FromSpan<float>(Uniform(n, seed, -2, 2), shape);
    }
}
