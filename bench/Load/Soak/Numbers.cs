using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AutogradService.Contracts.V1;

namespace AutogradService.Load.Soak;

/// <summary>Random inputs, the tensor encodings of the API (JSON numbers, base64, protobuf), and tolerant comparison.</summary>
public static class Numbers
{
    /// <summary>A random vector of float32 values in [-3, 3], held as doubles so expectations use the exact inputs.</summary>
    public static double[] Vector(Random rng, int length, double away = 0)
    {
        var v = new double[length];
        for (int i = 0; i < length; i++)
        {
            double x;
            do x = (float)(rng.NextDouble() * 6 - 3);
            while (Math.Abs(x) < away);
            v[i] = x;
        }
        return v;
    }

    /// <summary>A JSON tensor: a plain array of float32 values, or the base64 object form.</summary>
    public static string Json(double[] values, bool base64, string dtype = "float32")
    {
        if (!base64)
        {
            var items = values.Select(v => v.ToString("R", CultureInfo.InvariantCulture));
            return dtype == "float32" ? $"[{string.Join(",", items)}]"
                : $"{{\"dtype\":\"{dtype}\",\"shape\":[{values.Length}],\"data\":[{string.Join(",", items)}]}}";
        }
        var bytes = dtype == "float64" ? Raw64(values) : Raw32(values);
        return $"{{\"dtype\":\"{dtype}\",\"shape\":[{values.Length}],\"b64\":\"{Convert.ToBase64String(bytes)}\"}}";
    }

    public static byte[] Raw32(double[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), (float)values[i]);
        return bytes;
    }

    public static byte[] Raw64(double[] values)
    {
        var bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }

    /// <summary>A protobuf float32 tensor, as typed values or raw bytes.</summary>
    public static Tensor Proto32(double[] values, bool raw, long[]? shape = null)
    {
        var t = new Tensor { Dtype = DType.Float32 };
        t.Shape.Add(shape ?? [values.Length]);
        if (raw) t.Raw = Google.Protobuf.ByteString.CopyFrom(Raw32(values));
        else t.FloatData.Add(values.Select(v => (float)v));
        return t;
    }

    public static Tensor Proto64(double[] values, bool raw)
    {
        var t = new Tensor { Dtype = DType.Float64, Shape = { values.Length } };
        if (raw) t.Raw = Google.Protobuf.ByteString.CopyFrom(Raw64(values));
        else t.DoubleData.Add(values);
        return t;
    }

    public static Tensor Scalar32(double value) => new() { Dtype = DType.Float32, FloatData = { (float)value } };

    /// <summary>A response tensor's values ({dtype, shape, data} or {dtype, shape, b64}); NaN and infinities as strings.</summary>
    public static double[] FromJson(JsonElement t)
    {
        string dtype = t.TryGetProperty("dtype", out var d) ? d.GetString() ?? "float32" : "float32";
        if (t.TryGetProperty("b64", out var b64)) return FromRaw(dtype, Convert.FromBase64String(b64.GetString()!));
        var data = t.GetProperty("data");
        return data.EnumerateArray().Select(e => e.ValueKind switch
        {
            JsonValueKind.Number => e.GetDouble(),
            JsonValueKind.True => 1,
            JsonValueKind.False => 0,
            _ => double.Parse(e.GetString()!, CultureInfo.InvariantCulture),
        }).ToArray();
    }

    public static double[] FromProto(Tensor t)
    {
        if (!t.Raw.IsEmpty) return FromRaw(t.Dtype switch { DType.Float64 => "float64", DType.Int64 => "int64", DType.Bool => "bool", _ => "float32" }, t.Raw.ToByteArray());
        if (t.FloatData.Count > 0) return t.FloatData.Select(f => (double)f).ToArray();
        if (t.DoubleData.Count > 0) return t.DoubleData.ToArray();
        if (t.Int64Data.Count > 0) return t.Int64Data.Select(l => (double)l).ToArray();
        return t.BoolData.Select(b => b ? 1.0 : 0.0).ToArray();
    }

    private static double[] FromRaw(string dtype, byte[] bytes) => dtype switch
    {
        "float64" => Enumerable.Range(0, bytes.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(i * 8))).ToArray(),
        "int64" => Enumerable.Range(0, bytes.Length / 8).Select(i => (double)BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8))).ToArray(),
        "bool" => bytes.Select(b => b != 0 ? 1.0 : 0.0).ToArray(),
        _ => Enumerable.Range(0, bytes.Length / 4).Select(i => (double)BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))).ToArray(),
    };

    /// <summary>
    /// Null when <paramref name="got"/> matches <paramref name="expected"/> within a relative tolerance (float32 results
    /// against float64 expectations: 1e-4; float64: 1e-9); otherwise what differed.
    /// </summary>
    public static string? Compare(string what, double[] got, double[] expected, double tolerance = 1e-4)
    {
        if (got.Length != expected.Length) return $"{what}: {got.Length} values, expected {expected.Length}";
        for (int i = 0; i < got.Length; i++)
        {
            double scale = Math.Max(1, Math.Abs(expected[i]));
            if (!(Math.Abs(got[i] - expected[i]) <= tolerance * scale))
                return $"{what}[{i}] = {got[i].ToString("R", CultureInfo.InvariantCulture)}, expected {expected[i].ToString("R", CultureInfo.InvariantCulture)}";
        }
        return null;
    }

    /// <summary>The first mismatch of several comparisons, or null.</summary>
    public static string? First(params string?[] checks) => checks.FirstOrDefault(c => c is not null);

    public static double[] Map(double[] x, Func<double, double> f) => x.Select(f).ToArray();

    /// <summary>A row-major n x n matrix with <paramref name="diagonal"/> on its diagonal.</summary>
    public static double[] Diagonal(double[] diagonal)
    {
        int n = diagonal.Length;
        var m = new double[n * n];
        for (int i = 0; i < n; i++) m[i * n + i] = diagonal[i];
        return m;
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
