using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using Xunit.Abstractions;

namespace AutogradService.Onnx.Tests;

/// <summary>
/// Derivatives of ONNX's own test models: every node test that imports and whose graph is smooth (no kinks, no
/// comparisons, no casts to integers) is lifted to float64 and its reverse-mode gradient by each float input compared
/// with central finite differences at the test's own inputs.
/// </summary>
public sealed class GradientConformanceTests(ITestOutputHelper output)
{
    /// <summary>Engine ops whose value jumps or whose derivative jumps: finite differences are not an oracle there.</summary>
    private static bool Smooth(Graph g) => g.Nodes.All(n =>
        (OpRegistry.Default.TryGet(n.Op, out var op) ? op.Schema.Smooth && op.Schema.Category is not ("comparison" or "logical") : true)
        && !(n.Op == "cast" && n.Attributes.GetString("dtype", "float32") is "int64" or "bool")
        && n.Attributes.Values.All(a => a.Value is not Graph sub || Smooth(sub)));

    [Fact]
    public void SmoothNodeTestsHaveGradientsThatMatchFiniteDifferences()
    {
        int checkedCount = 0, skipped = 0;
        var failures = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var plans = new PlanCache();
        foreach (var dir in Directory.GetDirectories(Path.Combine(ConformanceTests.DataRoot, "node")).OrderBy(d => d, StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            Graph graph;
            List<HostTensor> inputs;
            try
            {
                graph = OnnxImporter.Import(File.ReadAllBytes(Path.Combine(dir, "model.onnx"))).Graph;
                inputs = ConformanceTests.ReadAll(Path.Combine(dir, "test_data_set_0"), "input_");
            }
            catch (Exception)
            {
                continue; // unsupported: counted by the value conformance run
            }
            var wide = Float64.Graph(graph);
            var fed = Float64.Inputs(wide, inputs);
            var wrt = wide.Inputs.Where(p => fed[p.Name].DType == DType.Float64 && fed[p.Name].Shape.ElementCount > 0).Select(p => p.Name).ToArray();
            if (!Smooth(wide) || wrt.Length == 0 || wide.Inputs.Count != inputs.Count)
            {
                skipped++;
                continue;
            }
            try
            {
                if (GradientCheck.Compare(wide, fed, wrt, plans, samplesPerInput: 6) is { } why) failures[name] = why;
                else checkedCount++;
            }
            catch (EngineException e) when (e.Code == ErrorCodes.NotDifferentiable)
            {
                skipped++;
            }
            catch (Exception e)
            {
                failures[name] = e.Message;
            }
        }
        output.WriteLine($"ONNX node tests with gradients checked against finite differences: {checkedCount} match, {failures.Count} differ, {skipped} skipped (not smooth or no float input)");
        foreach (var (n, why) in failures) output.WriteLine($"DIFFER {n}: {why}");
        Assert.True(checkedCount > 150, $"only {checkedCount} node tests were gradient-checked");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(f => $"{f.Key}: {f.Value}")));
    }
}

/// <summary>A graph and its data in float64 (inputs, constants, casts and creations that said float32).</summary>
internal static class Float64
{
    public static Graph Graph(Graph g) => g with
    {
        Inputs = g.Inputs.Select(p => p.DType == DType.Float32 ? p with { DType = DType.Float64 } : p).ToArray(),
        Constants = g.ConstantValues.ToDictionary(kv => kv.Key, kv => Widen(kv.Value), StringComparer.Ordinal),
        Nodes = g.Nodes.Select(n => n with
        {
            Attrs = n.Attrs is null ? null : new Attributes(n.Attrs.Select(kv => KeyValuePair.Create(kv.Key,
                kv.Value.Value is Graph sub ? AttrValue.Graph(Graph(sub))
                : kv.Key == "dtype" && kv.Value.Value is "float32" ? AttrValue.String("float64")
                : kv.Value))),
        }).ToArray(),
    };

    public static Dictionary<string, HostTensor> Inputs(Graph g, IReadOnlyList<HostTensor> inputs) =>
        g.Inputs.Select((p, i) => (p.Name, i < inputs.Count ? Widen(inputs[i]) : null)).Where(x => x.Item2 is not null)
            .ToDictionary(x => x.Name, x => x.Item2!, StringComparer.Ordinal);

    private static HostTensor Widen(HostTensor t) => t.DType == DType.Float32 ? HostTensor.FromDoubles(DType.Float64, t.Shape, t.ToDoubles()) : t;
}
