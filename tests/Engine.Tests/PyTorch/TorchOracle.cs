using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AutogradService.Engine.Tensors;
using Xunit.Abstractions;

namespace AutogradService.Engine.Tests.PyTorch;

/// <summary>One input of a differential case: its data, and whether the gradient is taken with respect to it.</summary>
internal sealed record CaseInput(string Name, Shape Shape, DType DType, double[] Data, bool Wrt);

/// <summary>One step of a program: an op applied to value names (string) or number literals (double).</summary>
internal sealed record CaseStep(string Op, object[] Inputs, SortedDictionary<string, object> Attrs, string Output)
{
    public override string ToString()
    {
        var args = string.Join(", ", Inputs.Select(i => i is double d ? d.ToString("R", CultureInfo.InvariantCulture) : i.ToString()));
        var attrs = Attrs.Count == 0 ? "" : "; " + string.Join(", ", Attrs.Select(kv => $"{kv.Key}={Show(kv.Value)}"));
        return $"{Output} = {Op}({args}{attrs})";
    }

    internal static string Show(object v) => v switch
    {
        long[] l => "[" + string.Join(", ", l) + "]",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => v.ToString() ?? "",
    };
}

/// <summary>A program the engine and PyTorch both run, with the engine's results once it has run.</summary>
internal sealed class DiffCase(string id, DType dtype)
{
    public string Id { get; } = id;
    public DType DType { get; } = dtype;
    public List<CaseInput> Inputs { get; } = [];
    public List<CaseStep> Steps { get; } = [];
    public string Output { get; set; } = "";

    /// <summary>1: gradients of sum(output); 2: gradients of sum(first-order gradient), per input.</summary>
    public int Order { get; init; } = 1;

    public IEnumerable<CaseInput> Wrt => Inputs.Where(i => i.Wrt);

    public Result? Engine { get; set; }

    public string Describe(Dictionary<string, string>? shapes = null)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"case {Id} ({DType.WireName()}{(Order == 2 ? ", second order" : "")})\n");
        foreach (var i in Inputs)
            sb.Append(CultureInfo.InvariantCulture, $"  input {i.Name}: {i.DType.WireName()}{i.Shape}{(i.Wrt ? " (wrt)" : " (constant)")}\n");
        foreach (var s in Steps)
        {
            sb.Append("  ").Append(s);
            if (shapes is not null && shapes.TryGetValue(s.Output, out var shape)) sb.Append("  -> ").Append(shape);
            sb.Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"  output {Output}; gradients of sum({Output}) w.r.t. [{string.Join(", ", Wrt.Select(w => w.Name))}]\n");
        return sb.ToString();
    }
}

/// <summary>A tensor as either side reports it.</summary>
internal sealed record TensorResult(int[] Shape, string DType, double[] Data)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>What one side computed: the output value and one gradient per wrt input, or an error.</summary>
internal sealed record Result(TensorResult? Value, TensorResult[] Grads, string? Error);

/// <summary>
/// Runs <c>torch_oracle.py</c> under Debian's <c>/usr/bin/python3</c> on a batch of cases, in one process.
/// Where Python or torch is missing the test fails, except on a developer machine with AUTOGRAD_SKIP_TORCH=1
/// (CI, marked by the CI variable, always fails: it installs torch in .ci/run).
/// </summary>
internal static class TorchOracle
{
    public const string Python = "/usr/bin/python3";

    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "PyTorch", "torch_oracle.py");

    /// <summary>The oracle's results by case id, or null when torch is unavailable and skipping is allowed.</summary>
    public static Dictionary<string, Result>? Run(IReadOnlyList<DiffCase> cases, ITestOutputHelper log)
    {
        if (!File.Exists(Python)) return Unavailable($"{Python} does not exist", log);
        Assert.True(File.Exists(ScriptPath), $"the oracle script is missing from the test output: {ScriptPath}");

        var psi = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
        };
        psi.ArgumentList.Add(ScriptPath);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        psi.Environment["PYTHONHASHSEED"] = "0";

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(Serialize(cases));
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill();
            Assert.Fail("the PyTorch oracle did not finish within 120 s");
        }
        if (process.ExitCode == 3) return Unavailable(stderr.Result.Trim(), log);
        Assert.True(process.ExitCode == 0, $"the PyTorch oracle failed (exit {process.ExitCode}):\n{stderr.Result}");

        using var doc = JsonDocument.Parse(stdout.Result);
        log.WriteLine($"PyTorch {doc.RootElement.GetProperty("torch").GetString()} evaluated {cases.Count} case(s)");
        var results = new Dictionary<string, Result>();
        foreach (var r in doc.RootElement.GetProperty("results").EnumerateArray())
        {
            var id = r.GetProperty("id").GetString()!;
            results[id] = r.GetProperty("ok").GetBoolean()
                ? new Result(ReadTensor(r.GetProperty("value")), r.GetProperty("grads").EnumerateArray().Select(ReadTensor).ToArray(), null)
                : new Result(null, [], r.GetProperty("error").GetString());
        }
        return results;
    }

    private static Dictionary<string, Result>? Unavailable(string reason, ITestOutputHelper log)
    {
        string message = $"PyTorch is not available: {reason}";
        if (Environment.GetEnvironmentVariable("CI") is not (null or "" or "0" or "false" or "False"))
            Assert.Fail($"{message}. CI must run the differential tests: .ci/run installs python3-torch.");
        if (Environment.GetEnvironmentVariable("AUTOGRAD_SKIP_TORCH") == "1")
        {
            log.WriteLine($"{message}; skipped because AUTOGRAD_SKIP_TORCH=1.");
            return null;
        }
        Assert.Fail($"{message}. Install python3-torch (apt), or set AUTOGRAD_SKIP_TORCH=1 to skip on a developer machine.");
        return null;
    }

    public static string Serialize(IReadOnlyList<DiffCase> cases)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteStartArray("cases");
            foreach (var c in cases) WriteCase(w, c);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteCase(Utf8JsonWriter w, DiffCase c)
    {
        w.WriteStartObject();
        w.WriteString("id", c.Id);
        w.WriteString("dtype", c.DType.WireName());
        w.WriteNumber("order", c.Order);
        w.WriteStartObject("inputs");
        foreach (var i in c.Inputs)
        {
            w.WriteStartObject(i.Name);
            w.WriteString("dtype", i.DType.WireName());
            w.WriteStartArray("shape");
            foreach (var d in i.Shape.Dims) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteStartArray("data");
            foreach (var v in i.Data) WriteNumber(w, v);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartArray("steps");
        foreach (var s in c.Steps)
        {
            w.WriteStartObject();
            w.WriteString("op", s.Op);
            w.WriteStartArray("inputs");
            foreach (var input in s.Inputs)
            {
                if (input is double d) WriteNumber(w, d);
                else w.WriteStringValue((string)input);
            }
            w.WriteEndArray();
            w.WriteStartObject("attrs");
            foreach (var (k, v) in s.Attrs) WriteAttr(w, k, v);
            w.WriteEndObject();
            w.WriteString("output", s.Output);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("output", c.Output);
        w.WriteStartArray("wrt");
        foreach (var i in c.Wrt) w.WriteStringValue(i.Name);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteAttr(Utf8JsonWriter w, string name, object value)
    {
        w.WritePropertyName(name);
        switch (value)
        {
            case long l: w.WriteNumberValue(l); break;
            case double d: WriteNumber(w, d); break;
            case bool b: w.WriteBooleanValue(b); break;
            case string s: w.WriteStringValue(s); break;
            case long[] list:
                w.WriteStartArray();
                foreach (var l in list) w.WriteNumberValue(l);
                w.WriteEndArray();
                break;
            default: throw new ArgumentException($"attribute '{name}' has an unsupported type {value.GetType().Name}");
        }
    }

    private static void WriteNumber(Utf8JsonWriter w, double v)
    {
        if (double.IsNaN(v)) w.WriteStringValue("NaN");
        else if (double.IsInfinity(v)) w.WriteStringValue(v > 0 ? "Infinity" : "-Infinity");
        else w.WriteNumberValue(v);
    }

    private static TensorResult ReadTensor(JsonElement e)
    {
        var shape = e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        var data = e.GetProperty("data").EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String
            ? v.GetString() switch { "NaN" => double.NaN, "Infinity" => double.PositiveInfinity, _ => double.NegativeInfinity }
            : v.GetDouble()).ToArray();
        return new TensorResult(shape, e.GetProperty("dtype").GetString()!, data);
    }
}
