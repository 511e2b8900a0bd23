using System.Text;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;
using Onnx;
using Xunit.Abstractions;

namespace AutogradService.Onnx.Tests;

/// <summary>
/// ONNX's own test data (Debian's libonnx-testdata, installed by test.sh): every model whose ops all import is run on
/// its reference inputs and compared with its reference outputs at ONNX's tolerances (rtol 1e-3, atol 1e-7).
/// </summary>
public sealed class ConformanceTests(ITestOutputHelper output)
{
    public const string DataRoot = "/usr/share/libonnx-testdata/data";

    /// <summary>Node tests that import but whose reference the engine does not match, each with the reason.</summary>
    private static readonly Dictionary<string, string> KnownDifferences = new(StringComparer.Ordinal)
    {
    };

    [Theory]
    [InlineData("node", 900)]
    [InlineData("pytorch-converted", 50)]
    [InlineData("pytorch-operator", 30)]
    [InlineData("simple", 10)]
    public void SupportedModelsMatchTheirReferences(string suite, int atLeast)
    {
        var report = Run(Path.Combine(DataRoot, suite));
        output.WriteLine(report.Summary(suite));
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, $"onnx-{suite}-conformance.txt"), report.Summary(suite));
        Assert.True(report.Exist >= atLeast, $"expected ONNX's {suite} tests under {DataRoot}/{suite} (apt-get install libonnx-testdata), found {report.Exist}");
        var unexpected = report.Failures.Where(f => !KnownDifferences.ContainsKey(f.Key)).ToArray();
        Assert.True(unexpected.Length == 0, "node tests that import but do not match:\n" + string.Join("\n", unexpected.Select(f => $"{f.Key}: {f.Value}")));
    }

    internal sealed class Report
    {
        public int Exist;
        public int Supported;
        public int Passed;
        public SortedDictionary<string, int> UnsupportedOps { get; } = new(StringComparer.Ordinal);
        public SortedDictionary<string, string> Failures { get; } = new(StringComparer.Ordinal);

        public string Summary(string what)
        {
            var s = new StringBuilder();
            s.AppendLine($"ONNX {what} tests: {Exist} exist, {Supported} supported, {Passed} pass");
            s.AppendLine("unsupported: " + string.Join(", ", UnsupportedOps.Select(kv => $"{kv.Key} ({kv.Value})")));
            foreach (var (name, why) in Failures) s.AppendLine($"FAIL {name}: {why}");
            return s.ToString();
        }
    }

    internal static Report Run(string folder)
    {
        var report = new Report();
        foreach (var dir in Directory.GetDirectories(folder).OrderBy(d => d, StringComparer.Ordinal))
        {
            var modelPath = Path.Combine(dir, "model.onnx");
            if (!File.Exists(modelPath)) continue;
            report.Exist++;
            var name = Path.GetFileName(dir);
            OnnxImport imported;
            try
            {
                imported = OnnxImporter.Import(File.ReadAllBytes(modelPath));
            }
            catch (EngineException e) when (e.Code == ErrorCodes.UnsupportedOp)
            {
                var key = e.Facts.TryGetValue("onnx_op", out var op) ? (string)op : e.Facts.TryGetValue("element_type", out var t) ? $"type {t}" : "?";
                report.UnsupportedOps[key] = report.UnsupportedOps.GetValueOrDefault(key) + 1;
                continue;
            }
            catch (Exception e)
            {
                report.Supported++;
                report.Failures[name] = "import: " + e.Message;
                continue;
            }
            report.Supported++;
            try
            {
                foreach (var set in Directory.GetDirectories(dir, "test_data_set_*"))
                {
                    var inputs = ReadAll(set, "input_");
                    var expected = ReadAll(set, "output_");
                    var actual = OnnxRun.Evaluate(imported.Graph, inputs);
                    if (actual.Count != expected.Count) throw new InvalidOperationException($"{actual.Count} outputs, expected {expected.Count}");
                    for (int i = 0; i < actual.Count; i++)
                        if (Compare(actual[i], expected[i]) is { } why) throw new InvalidOperationException($"output {i}: {why}");
                }
                report.Passed++;
            }
            catch (Exception e)
            {
                report.Failures[name] = e.Message.Length > 300 ? e.Message[..300] : e.Message;
            }
        }
        return report;
    }

    internal static List<HostTensor> ReadAll(string set, string prefix)
    {
        var list = new List<HostTensor>();
        for (int i = 0; File.Exists(Path.Combine(set, $"{prefix}{i}.pb")); i++)
        {
            var proto = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(set, $"{prefix}{i}.pb")));
            list.Add(OnnxTensors.ToHost(proto, $"{prefix}{i}"));
        }
        return list;
    }

    /// <summary>Null when equal within rtol 1e-3, atol 1e-7 (NaN matches NaN), else what differs.</summary>
    internal static string? Compare(HostTensor actual, HostTensor expected)
    {
        if (actual.Shape != expected.Shape) return $"shape {actual.Shape}, expected {expected.Shape}";
        var (a, e) = (actual.ToDoubles(), expected.ToDoubles());
        for (int i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(e[i]) && double.IsNaN(a[i])) continue;
            if (a[i] == e[i]) continue;
            if (!(Math.Abs(a[i] - e[i]) <= 1e-7 + 1e-3 * Math.Abs(e[i])))
                return $"element {i} is {a[i]:R}, expected {e[i]:R}";
        }
        return null;
    }
}
