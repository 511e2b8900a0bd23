using System.Buffers;
using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Text.Json;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>
/// Tensors in the JSON forms of the API contract: a number, a nested array (shape inferred), <c>{dtype, shape, data}</c>
/// or <c>{dtype, shape, b64}</c>. NaN and infinities travel as the strings "NaN", "Infinity", "-Infinity".
/// </summary>
public static class TensorJson
{
    /// <summary>Reads a tensor; <paramref name="name"/> names it in errors. Untyped forms default to float32 (bool arrays to bool).</summary>
    public static HostTensor Read(JsonElement json, string name, long maxElements = long.MaxValue)
    {
        // The element's own bytes, read by the fast path; anything it does not take is read (and refused) below.
        var raw = JsonMarshal.GetRawUtf8Value(json);
        var reader = new Utf8JsonReader(raw, TensorReader.Options);
        if (reader.Read() && TensorReader.TryRead(ref reader, maxElements, raw.Length, out var fast)) return fast!;
        return ReadGeneral(json, name, maxElements);
    }

    /// <summary>The general reader: every form, every error worded; what the fast path does not take comes here.</summary>
    internal static HostTensor ReadGeneral(JsonElement json, string name, long maxElements = long.MaxValue)
    {
        try
        {
            return json.ValueKind switch
            {
                JsonValueKind.Number or JsonValueKind.String => ReadScalar(json, name),
                JsonValueKind.True or JsonValueKind.False => HostTensor.FromDoubles(DType.Bool, Shape.Scalar, [json.GetBoolean() ? 1 : 0]),
                JsonValueKind.Array => ReadNested(json, name, maxElements),
                JsonValueKind.Object => ReadObject(json, name, maxElements),
                _ => throw Bad(name, $"a tensor cannot be {json.ValueKind.ToString().ToLowerInvariant()}"),
            };
        }
        catch (EngineException e) when (e.Code == ErrorCodes.InvalidTensor && e.Input is null)
        {
            throw Bad(name, e.Detail);
        }
    }

    private static HostTensor ReadScalar(JsonElement json, string name) =>
        HostTensor.FromDoubles(DType.Float32, Shape.Scalar, [Number(json, name)]);

    private static HostTensor ReadNested(JsonElement json, string name, long maxElements)
    {
        var dims = new List<int>();
        var probe = json;
        while (probe.ValueKind == JsonValueKind.Array)
        {
            dims.Add(probe.GetArrayLength());
            if (dims.Count > Shape.MaxRank) throw Bad(name, $"nesting is deeper than the maximum rank {Shape.MaxRank}");
            if (probe.GetArrayLength() == 0) break;
            probe = probe[0];
        }
        var shape = new Shape(dims.ToArray());
        if (shape.ElementCount > maxElements)
            throw Bad(name, $"{shape.ElementCount} elements is over the limit of {maxElements} per tensor");
        bool isBool = probe.ValueKind is JsonValueKind.True or JsonValueKind.False;
        var values = new double[shape.ElementCount];
        int at = 0;
        Fill(json, 0, dims, values, ref at, isBool, name);
        return HostTensor.FromDoubles(isBool ? DType.Bool : DType.Float32, shape, values);
    }

    private static void Fill(JsonElement json, int depth, List<int> dims, double[] values, ref int at, bool isBool, string name)
    {
        if (depth == dims.Count)
        {
            if (json.ValueKind == JsonValueKind.Array) throw Bad(name, "ragged nested array (deeper in one place than another)");
            values[at++] = isBool
                ? json.ValueKind switch { JsonValueKind.True => 1, JsonValueKind.False => 0, _ => throw Bad(name, "mixes bools and numbers") }
                : Number(json, name);
            return;
        }
        if (json.ValueKind != JsonValueKind.Array || json.GetArrayLength() != dims[depth])
            throw Bad(name, $"ragged nested array: expected {dims[depth]} entries at depth {depth}");
        foreach (var item in json.EnumerateArray()) Fill(item, depth + 1, dims, values, ref at, isBool, name);
    }

    internal static readonly HashSet<string> ObjectFields = ["dtype", "shape", "data", "b64"];

    private static HostTensor ReadObject(JsonElement json, string name, long maxElements)
    {
        foreach (var p in json.EnumerateObject())
        {
            if (!ObjectFields.Contains(p.Name))
                throw Bad(name, $"'{Clip(p.Name)}' is not a tensor field (dtype, shape, data, b64)");
        }
        var dtype = JsonFields.Get(json, "dtype") is { } d
            ? d.ValueKind == JsonValueKind.String ? DTypes.Parse(d.GetString()!) : throw Bad(name, $"dtype must be a string, got {JsonFields.Describe(d)}")
            : DType.Float32;
        Shape? shape = null;
        if (JsonFields.Get(json, "shape") is { } s)
        {
            if (s.ValueKind != JsonValueKind.Array) throw Bad(name, "shape must be an array of integers");
            if (s.GetArrayLength() > Shape.MaxRank) throw Bad(name, $"shape has rank {s.GetArrayLength()}, over the maximum of {Shape.MaxRank}");
            var dims = new long[s.GetArrayLength()];
            int i = 0;
            foreach (var e in s.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out dims[i++]))
                    throw Bad(name, $"bad dimension {Clip(e.GetRawText())} in shape");
            }
            shape = Shape.FromLongs(dims);
        }
        if (shape is { } known && known.ElementCount > maxElements)
            throw Bad(name, $"{known.ElementCount} elements is over the limit of {maxElements} per tensor");

        if (JsonFields.Get(json, "b64") is { } b64)
        {
            if (b64.ValueKind != JsonValueKind.String) throw Bad(name, $"b64 must be a string, got {JsonFields.Describe(b64)}");
            var sh = shape ?? throw Bad(name, "a b64 tensor needs a shape");
            return FromBase64(dtype, sh, b64, name);
        }
        if (JsonFields.Get(json, "data") is not { } data) throw Bad(name, "a tensor object needs data or b64");
        if (data.ValueKind != JsonValueKind.Array)
        {
            var scalar = dtype == DType.Int64 ? new HostTensor(dtype, Shape.Scalar, new[] { Int64(data, name) })
                : HostTensor.FromDoubles(dtype, Shape.Scalar, [dtype == DType.Bool ? BoolOrNumber(data, name) : Number(data, name)]);
            return shape is null || shape.Value.ElementCount == 1 ? WithShape(scalar, shape ?? Shape.Scalar) : throw Bad(name, "one value does not fill the shape");
        }
        // int64 values are read as integers, not through double, so all 64 bits survive.
        Array flat = dtype == DType.Int64 ? Flatten(data, name, maxElements, Int64) : Flatten(data, name, maxElements, BoolOrNumber);
        var finalShape = shape ?? Shape.Vector(flat.Length);
        if (finalShape.ElementCount != flat.Length)
            throw Bad(name, $"{flat.Length} values do not fill shape {finalShape} ({finalShape.ElementCount} elements)");
        return flat is long[] ints ? new HostTensor(dtype, finalShape, ints) : HostTensor.FromDoubles(dtype, finalShape, (double[])flat);
    }

    private static long Int64(JsonElement e, string name) => e.ValueKind switch
    {
        JsonValueKind.Number when e.TryGetInt64(out long l) => l,
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        _ => CheckedInt(Number(e, name), name), // 3.0 or 1e3: whole numbers written as decimals
    };

    private static string Clip(string s) => EngineException.Clip(s);

    private static HostTensor WithShape(HostTensor t, Shape shape) => new(t.DType, shape, t.Data);

    private static long CheckedInt(double v, string name) =>
        v == Math.Floor(v) && Math.Abs(v) <= 9.007199254740992e15 ? (long)v : throw Bad(name, $"{v} is not an int64 value");

    /// <summary>Flat data, or nested data flattened (its nesting is ignored in favour of "shape").</summary>
    private static T[] Flatten<T>(JsonElement data, string name, long maxElements, Func<JsonElement, string, T> read)
    {
        var values = new List<T>();
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var i in e.EnumerateArray()) Walk(i);
                return;
            }
            if (values.Count >= maxElements) throw Bad(name, $"more than {maxElements} elements per tensor");
            values.Add(read(e, name));
        }
        Walk(data);
        return values.ToArray();
    }

    private static double BoolOrNumber(JsonElement e, string name) => e.ValueKind switch
    {
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        _ => Number(e, name),
    };

    private static double Number(JsonElement e, string name)
    {
        if (e.ValueKind == JsonValueKind.Number)
            return e.TryGetDouble(out double d) && double.IsFinite(d) ? d : throw Bad(name, $"{Clip(e.GetRawText())} is out of range for a number (use \"Infinity\")");
        if (e.ValueKind == JsonValueKind.String)
        {
            return e.GetString() switch
            {
                "NaN" => double.NaN,
                "Infinity" or "inf" => double.PositiveInfinity,
                "-Infinity" or "-inf" => double.NegativeInfinity,
                var s => throw Bad(name, $"'{Clip(s!)}' is not a number (NaN and infinities are \"NaN\", \"Infinity\", \"-Infinity\")"),
            };
        }
        throw Bad(name, $"expected a number, got {e.ValueKind.ToString().ToLowerInvariant()}");
    }

    /// <summary>
    /// The general b64 path (the fast one is <see cref="TensorReader"/>): decodes into the tensor's array, sized before
    /// allocating, so a short string cannot claim a large tensor. A string holding JSON escapes (a client that writes
    /// "\/") and bools decode through the JSON reader first.
    /// </summary>
    private static HostTensor FromBase64(DType dtype, Shape shape, JsonElement b64, string name)
    {
        long expected = shape.ElementCount * dtype.SizeOf(); // exact: shapes are held to Shape.MaxElements
        var raw = JsonMarshal.GetRawUtf8Value(b64);
        raw = raw[1..^1]; // the string token's quotes
        if (dtype == DType.Bool || raw.IndexOf((byte)'\\') >= 0)
        {
            byte[] bytes;
            try
            {
                bytes = b64.GetBytesFromBase64();
            }
            catch (FormatException)
            {
                throw Bad(name, "b64 is not valid base64");
            }
            if (bytes.LongLength != expected)
                throw Bad(name, $"{bytes.Length} bytes do not fill shape {shape} of {dtype.WireName()} ({expected} bytes)");
            return HostTensor.FromLittleEndian(dtype, shape, bytes);
        }
        long encoded = (expected + 2) / 3 * 4;
        if (raw.Length != encoded)
            throw Bad(name, $"b64 holds {raw.Length} base64 characters; shape {shape} of {dtype.WireName()} needs {encoded} ({expected} bytes)");
        var tensor = HostTensor.Uninitialized(dtype, shape);
        var status = Base64.DecodeFromUtf8(raw, tensor.WritableBytes, out int consumed, out int written);
        if (status == OperationStatus.InvalidData)
            throw Bad(name, "b64 is not valid base64");
        if (status != OperationStatus.Done || consumed != raw.Length || written != expected)
            throw Bad(name, $"b64 is not base64 that decodes to the {expected} bytes of shape {shape} of {dtype.WireName()}");
        return tensor;
    }

    /// <summary>Writes <c>{dtype, shape, data}</c> (or <c>b64</c> instead of data).</summary>
    public static void Write(Utf8JsonWriter w, HostTensor t, bool base64 = false)
    {
        w.WriteStartObject();
        w.WriteString("dtype", t.DType.WireName());
        w.WriteStartArray("shape");
        foreach (var d in t.Shape.Dims) w.WriteNumberValue(d);
        w.WriteEndArray();
        if (base64)
        {
            w.WriteBase64String("b64", t.LittleEndianBytes);
        }
        else
        {
            w.WritePropertyName("data");
            WriteValues(w, t.Data);
        }
        w.WriteEndObject();
    }

    /// <summary>Elements formatted per raw write: enough to amortise the writer's per-call work, small enough to stay in cache.</summary>
    private const int FormatBatch = 2048;

    /// <summary>
    /// Writes the flat values <c>[start, start + count)</c> of a tensor as a JSON array (NaN and infinities as strings),
    /// each float in its shortest round-trip form. Numbers are formatted from the tensor's array into a pooled
    /// buffer and handed to the writer in batches: the writer treats each batch as one raw value and puts the commas
    /// between batches itself.
    /// </summary>
    public static void WriteValues(Utf8JsonWriter w, Array data, int start = 0, int count = -1)
    {
        if (count < 0) count = data.Length - start;
        w.WriteStartArray();
        if (count >= ParallelFormatMin && FormatLanes > 1 && data is float[] or double[])
        {
            WriteFloatsOnEveryCore(w, data, start, count);
            w.WriteEndArray();
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(FormatBatch * MaxElementChars);
        try
        {
            for (int at = start, end = start + count; at < end; at += FormatBatch)
            {
                int n = Math.Min(FormatBatch, end - at);
                int length = data switch
                {
                    float[] f => Format(f.AsSpan(at, n), buffer),
                    double[] d => Format(d.AsSpan(at, n), buffer),
                    long[] l => Format(l.AsSpan(at, n), buffer),
                    bool[] b => Format(b.AsSpan(at, n), buffer),
                    _ => throw new InvalidOperationException(),
                };
                w.WriteRawValue(buffer.AsSpan(0, length), skipInputValidation: true);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        w.WriteEndArray();
    }

    /// <summary>Floats formatted on every core from this many values on (a large answer's text is nearly all formatting).</summary>
    internal const int ParallelFormatMin = 1 << 15;

    private const int ParallelBatch = 8192;

    private static readonly int FormatLanes = Math.Min(Environment.ProcessorCount, 8);

    /// <summary>
    /// A large float array formatted a round of batches at a time, one batch per core, and written in order: the text
    /// is the same as one thread's, and a request alone on the machine gets its answer in a fraction of the time.
    /// </summary>
    private static void WriteFloatsOnEveryCore(Utf8JsonWriter w, Array data, int start, int count)
    {
        var buffers = new byte[FormatLanes][];
        var lengths = new int[FormatLanes];
        for (int lane = 0; lane < buffers.Length; lane++) buffers[lane] = ArrayPool<byte>.Shared.Rent(ParallelBatch * MaxElementChars);
        try
        {
            int end = start + count;
            for (int round = start; round < end; round += FormatLanes * ParallelBatch)
            {
                int first = round, batches = Math.Min(FormatLanes, (end - round + ParallelBatch - 1) / ParallelBatch);
                Parallel.For(0, batches, lane =>
                {
                    int at = first + lane * ParallelBatch, n = Math.Min(ParallelBatch, end - at);
                    lengths[lane] = data is float[] f ? Format(f.AsSpan(at, n), buffers[lane]) : Format(((double[])data).AsSpan(at, n), buffers[lane]);
                });
                for (int lane = 0; lane < batches; lane++) w.WriteRawValue(buffers[lane].AsSpan(0, lengths[lane]), skipInputValidation: true);
            }
        }
        finally
        {
            foreach (var buffer in buffers) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The longest element text plus its comma: "-2.2250738585072014E-308" is 24 bytes.</summary>
    private const int MaxElementChars = 26;

    private static int Format<T>(ReadOnlySpan<T> values, Span<byte> into) where T : IUtf8SpanFormattable
    {
        int at = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) into[at++] = (byte)',';
            var v = values[i];
            if (typeof(T) == typeof(float) && !float.IsFinite((float)(object)v)
                || typeof(T) == typeof(double) && !double.IsFinite((double)(object)v))
            {
                var text = NonFiniteJson(typeof(T) == typeof(float) ? (float)(object)v : (double)(object)v);
                text.CopyTo(into[at..]);
                at += text.Length;
                continue;
            }
            // The shortest text that parses back to the same value: float's own (the same bytes as its TryFormat,
            // twice as fast), double's default format.
            if (typeof(T) == typeof(float))
            {
                at += ShortestFloat.Format((float)(object)v, into[at..]);
                continue;
            }
            v.TryFormat(into[at..], out int written, default, System.Globalization.CultureInfo.InvariantCulture);
            at += written;
        }
        return at;
    }

    private static int Format(ReadOnlySpan<bool> values, Span<byte> into)
    {
        int at = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) into[at++] = (byte)',';
            var text = values[i] ? "true"u8 : "false"u8;
            text.CopyTo(into[at..]);
            at += text.Length;
        }
        return at;
    }

    private static ReadOnlySpan<byte> NonFiniteJson(double v) => double.IsNaN(v) ? "\"NaN\""u8 : v > 0 ? "\"Infinity\""u8 : "\"-Infinity\""u8;

    private static string NonFinite(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    private static EngineException Bad(string name, string message) => EngineException.InvalidTensor($"tensor '{Clip(name)}': {message}", Clip(name));
}
