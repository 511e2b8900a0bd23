using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Json;
using AutogradService.Engine.Tensors;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace AutogradService.Codecs.Bench;

/// <summary>
/// One float32 tensor of <see cref="Elements"/> values (uniform in [-1, 1), as W3's weights) through each codec, in
/// and out, as the service runs it: JSON numbers read from a transform body's bytes (<see cref="TensorBodyReader"/>)
/// and written in batches (<see cref="TensorJson.WriteValues"/>), b64 the same way, and the binary framing's copy.
/// The "before" rows are what the service did until the door work (a JsonDocument and GetDouble per element into a
/// double[], then narrowing; Utf8JsonWriter.WriteNumberValue per element) — kept for the comparison only.
/// The MB/s column counts wire bytes (the JSON text, the base64 text, the raw bytes) per second.
/// </summary>
[MemoryDiagnoser]
public class CodecSuite
{
    public const int Elements = 1 << 20;

    private static readonly TensorFieldsToRead Fields = new(new HashSet<string> { "inputs" }, long.MaxValue);
    private HostTensor _tensor = null!;
    private byte[] _jsonBody = null!, _b64Body = null!, _raw = null!;
    private readonly ArrayBufferWriter<byte> _out = new(16 << 20);

    public static ManualConfig Config() => ManualConfig.Create(DefaultConfig.Instance)
        // In process: the suite needs no generated project, whose build outlasts BenchmarkDotNet's timeout on a busy machine.
        .AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance))
        .AddColumn(new ThroughputColumn());

    [GlobalSetup]
    public void Setup()
    {
        _tensor = MakeTensor();
        _jsonBody = Body(false);
        _b64Body = Body(true);
        _raw = _tensor.LittleEndianBytes.ToArray();
    }

    internal static HostTensor MakeTensor()
    {
        var random = new Random(14);
        var values = new float[Elements];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return HostTensor.Of(values);
    }

    private byte[] Body(bool base64)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("inputs");
            w.WritePropertyName("x");
            TensorJson.Write(w, _tensor, base64);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Wire bytes one call of each benchmark moves (for the MB/s column).</summary>
    internal static readonly Dictionary<string, long> WireBytes = ComputeWireBytes();

    private static Dictionary<string, long> ComputeWireBytes()
    {
        var suite = new CodecSuite();
        suite.Setup();
        return new()
        {
            [nameof(JsonNumbersIn)] = suite._jsonBody.Length,
            [nameof(JsonNumbersInBefore)] = suite._jsonBody.Length,
            [nameof(JsonNumbersOut)] = suite._jsonBody.Length,
            [nameof(JsonNumbersOutBefore)] = suite._jsonBody.Length,
            [nameof(Base64In)] = suite._b64Body.Length,
            [nameof(Base64Out)] = suite._b64Body.Length,
            [nameof(BinaryIn)] = suite._raw.Length,
            [nameof(BinaryOut)] = suite._raw.Length,
        };
    }

    [Benchmark]
    public int JsonNumbersIn()
    {
        TensorBodyReader.TryRead(_jsonBody, Fields, out var tensors, out var skeleton, out _);
        ArrayPool<byte>.Shared.Return(skeleton!);
        return tensors!["inputs"]["x"].Data.Length;
    }

    [Benchmark]
    public int JsonNumbersInBefore()
    {
        using var doc = JsonDocument.Parse(_jsonBody);
        var data = doc.RootElement.GetProperty("inputs").GetProperty("x").GetProperty("data");
        var values = new List<double>();
        foreach (var e in data.EnumerateArray()) values.Add(e.GetDouble());
        var doubles = values.ToArray();
        return HostTensor.FromDoubles(DType.Float32, Shape.Vector(doubles.Length), doubles).Data.Length;
    }

    [Benchmark]
    public long JsonNumbersOut()
    {
        _out.ResetWrittenCount();
        using var w = new Utf8JsonWriter(_out);
        TensorJson.Write(w, _tensor);
        w.Flush();
        return w.BytesCommitted;
    }

    [Benchmark]
    public long JsonNumbersOutBefore()
    {
        _out.ResetWrittenCount();
        using var w = new Utf8JsonWriter(_out);
        w.WriteStartArray();
        foreach (float f in (float[])_tensor.Data) w.WriteNumberValue(f);
        w.WriteEndArray();
        w.Flush();
        return w.BytesCommitted;
    }

    [Benchmark]
    public int Base64In()
    {
        TensorBodyReader.TryRead(_b64Body, Fields, out var tensors, out var skeleton, out _);
        ArrayPool<byte>.Shared.Return(skeleton!);
        return tensors!["inputs"]["x"].Data.Length;
    }

    [Benchmark]
    public long Base64Out()
    {
        _out.ResetWrittenCount();
        using var w = new Utf8JsonWriter(_out);
        TensorJson.Write(w, _tensor, base64: true);
        w.Flush();
        return w.BytesCommitted;
    }

    [Benchmark]
    public int BinaryIn() => HostTensor.FromLittleEndian(DType.Float32, Shape.Vector(Elements), _raw).Data.Length;

    [Benchmark]
    public int BinaryOut()
    {
        _out.ResetWrittenCount();
        var bytes = _tensor.LittleEndianBytes;
        bytes.CopyTo(_out.GetSpan(bytes.Length));
        _out.Advance(bytes.Length);
        return _out.WrittenCount;
    }
}

/// <summary>Wire megabytes (10^6 bytes) per second, from each benchmark's mean time.</summary>
public sealed class ThroughputColumn : IColumn
{
    public string Id => "MBps";
    public string ColumnName => "MB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "wire bytes (JSON text, base64 text or raw bytes) per second, in 10^6 bytes";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        long bytes = CodecSuite.WireBytes[benchmarkCase.Descriptor.WorkloadMethod.Name];
        return (bytes / (stats.Mean / 1e9) / 1e6).ToString("F0", CultureInfo.InvariantCulture);
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
