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
    /// Decodes b64 once, from the request's own UTF-8 bytes straight into the tensor's array: no string, no
    /// intermediate byte array. A string holding JSON escapes (a client that writes "\/") takes the general path.
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
            return FromBytes(dtype, shape, bytes, name);
        }
        // Sized before anything is allocated: a short string cannot claim a large tensor.
        long encoded = (expected + 2) / 3 * 4;
        if (raw.Length != encoded)
            throw Bad(name, $"b64 holds {raw.Length} base64 characters; shape {shape} of {dtype.WireName()} needs {encoded} ({expected} bytes)");
        Array data = dtype switch
        {
            DType.Float32 => new float[shape.ElementCount],
            DType.Float64 => new double[shape.ElementCount],
            _ => new long[shape.ElementCount],
        };
        var destination = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(data), (int)expected);
        var status = Base64.DecodeFromUtf8(raw, destination, out int consumed, out int written);
        if (status == OperationStatus.InvalidData)
            throw Bad(name, "b64 is not valid base64");
        if (status != OperationStatus.Done || consumed != raw.Length || written != expected)
            throw Bad(name, $"b64 is not base64 that decodes to the {expected} bytes of shape {shape} of {dtype.WireName()}");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        return new HostTensor(dtype, shape, data);
    }

    private static HostTensor FromBytes(DType dtype, Shape shape, byte[] bytes, string name)
    {
        long expected = shape.ElementCount * dtype.SizeOf(); // exact: shapes are held to Shape.MaxElements
        if (bytes.LongLength != expected)
            throw Bad(name, $"{bytes.Length} bytes do not fill shape {shape} of {dtype.WireName()} ({expected} bytes)");
        return FromRaw(dtype, shape, bytes);
    }

    /// <summary>Little-endian raw bytes to a tensor (the protobuf <c>raw</c> field and JSON <c>b64</c>).</summary>
    public static HostTensor FromRaw(DType dtype, Shape shape, ReadOnlySpan<byte> bytes)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        Array data = dtype switch
        {
            DType.Float32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            DType.Float64 => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            DType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            _ => BoolsFrom(bytes),
        };
        return new HostTensor(dtype, shape, data);
    }

    private static bool[] BoolsFrom(ReadOnlySpan<byte> bytes)
    {
        var r = new bool[bytes.Length];
        for (int i = 0; i < r.Length; i++) r[i] = bytes[i] != 0;
        return r;
    }

    /// <summary>A tensor's little-endian bytes, copied.</summary>
    public static byte[] ToRaw(HostTensor t) => RawBytes(t).ToArray();

    /// <summary>A tensor's little-endian bytes: a view of its array, no copy (bools, held as .NET bools, become 0/1 bytes).</summary>
    public static ReadOnlySpan<byte> RawBytes(HostTensor t) => t.Data switch
    {
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
        double[] d => MemoryMarshal.AsBytes(d.AsSpan()),
        long[] l => MemoryMarshal.AsBytes(l.AsSpan()),
        bool[] b => Array.ConvertAll(b, v => v ? (byte)1 : (byte)0),
        _ => throw new InvalidOperationException(),
    };

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
            w.WriteBase64String("b64", RawBytes(t));
        }
        else
        {
            w.WriteStartArray("data");
            WriteValues(w, t.Data);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    /// <summary>Writes the flat values of a tensor (NaN and infinities as strings).</summary>
    public static void WriteValues(Utf8JsonWriter w, Array data, int start = 0, int count = -1)
    {
        if (count < 0) count = data.Length - start;
        switch (data)
        {
            case float[] f:
                for (int i = start; i < start + count; i++)
                {
                    if (float.IsFinite(f[i])) w.WriteNumberValue(f[i]);
                    else w.WriteStringValue(NonFinite(f[i]));
                }
                break;
            case double[] d:
                for (int i = start; i < start + count; i++)
                {
                    if (double.IsFinite(d[i])) w.WriteNumberValue(d[i]);
                    else w.WriteStringValue(NonFinite(d[i]));
                }
                break;
            case long[] l:
                for (int i = start; i < start + count; i++) w.WriteNumberValue(l[i]);
                break;
            case bool[] b:
                for (int i = start; i < start + count; i++) w.WriteBooleanValue(b[i]);
                break;
        }
    }

    private static string NonFinite(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    private static EngineException Bad(string name, string message) => EngineException.InvalidTensor($"tensor '{Clip(name)}': {message}", Clip(name));
}
