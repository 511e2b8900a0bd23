using System.Globalization;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Grpc;
using AutogradService.Api.Json;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>
/// The tensor codecs alone: every float32 and float64 bit-pattern class through JSON numbers (finite values bit for
/// bit, in their shortest round-trip text; NaN and infinities as the strings "NaN", "Infinity", "-Infinity", so a NaN
/// comes back as NaN without its payload), through b64 and through gRPC raw (bit for bit, NaN payloads included);
/// and the fast JSON reader against the general one.
/// </summary>
public sealed class TensorCodecTests
{
    /// <summary>±0, the smallest and largest subnormals, the smallest normal, 1 ± ulp, 0.1, the largest finite, ±∞, and NaNs with payloads.</summary>
    public static readonly uint[] FloatBits =
    [
        0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80800000,
        0x3F800000, 0x3F800001, 0x3F7FFFFF, 0x3DCCCCCD, 0x4B800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
        0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0x7FBFFFFF, 0xFFFFFFFF,
    ];

    public static readonly ulong[] DoubleBits =
    [
        0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x8000000000000001, 0x000FFFFFFFFFFFFF,
        0x0010000000000000, 0x3FF0000000000000, 0x3FF0000000000001, 0x3FB999999999999A, 0x4340000000000001,
        0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000,
        0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000001, 0x7FF0000000000001, 0x7FF7FFFFFFFFFFFF,
    ];

    private static float[] Floats(IEnumerable<uint> bits) => bits.Select(BitConverter.UInt32BitsToSingle).ToArray();

    private static double[] Doubles(IEnumerable<ulong> bits) => bits.Select(BitConverter.UInt64BitsToDouble).ToArray();

    private static string Json(HostTensor t, bool base64)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream)) TensorJson.Write(w, t, base64);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static HostTensor Read(string json, bool general = false)
    {
        using var doc = JsonDocument.Parse(json);
        return general ? TensorJson.ReadGeneral(doc.RootElement, "x") : TensorJson.Read(doc.RootElement, "x");
    }

    /// <summary>Finite values and infinities bit for bit; any NaN as a NaN (JSON has no NaN, the contract's string carries no payload).</summary>
    private static void SameUpToNaNPayload(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i])) Assert.True(float.IsNaN(actual[i]), $"element {i}");
            else Assert.Equal(BitConverter.SingleToUInt32Bits(expected[i]), BitConverter.SingleToUInt32Bits(actual[i]));
        }
    }

    private static void SameUpToNaNPayload(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNaN(expected[i])) Assert.True(double.IsNaN(actual[i]), $"element {i}");
            else Assert.Equal(BitConverter.DoubleToUInt64Bits(expected[i]), BitConverter.DoubleToUInt64Bits(actual[i]));
        }
    }

    [Fact]
    public void Float32_EveryClass_ThroughJsonNumbers()
    {
        var t = HostTensor.Of(Floats(FloatBits));
        string json = Json(t, base64: false);
        SameUpToNaNPayload((float[])t.Data, (float[])Read(json).Data);
        SameUpToNaNPayload((float[])t.Data, (float[])Read(json, general: true).Data);
        Assert.Contains("\"data\":[0,-0,1E-45,-1E-45,", json);
        Assert.Contains(",0.1,", json); // shortest round-trip, not 0.100000001
        Assert.Contains("3.4028235E+38", json);
        Assert.Contains("\"Infinity\",\"-Infinity\",\"NaN\"", json);
    }

    [Fact]
    public void Float64_EveryClass_ThroughJsonNumbers()
    {
        var t = HostTensor.Of(Doubles(DoubleBits));
        string json = Json(t, base64: false);
        SameUpToNaNPayload((double[])t.Data, (double[])Read(json).Data);
        Assert.Contains(",5E-324,", json);
        Assert.Contains(",0.1,", json);
        Assert.Contains("1.7976931348623157E+308", json);
    }

    [Fact]
    public void Float32_RandomBitPatterns_ThroughJsonNumbers_FastAndGeneralAgree()
    {
        var random = new Random(14);
        var values = new float[20_000];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(random.Next() ^ (random.Next(2) << 31));
        var t = new HostTensor(DType.Float32, new Shape(100, 200), values);
        string json = Json(t, base64: false);
        var fast = Read(json);
        Assert.Equal(t.Shape, fast.Shape);
        SameUpToNaNPayload(values, (float[])fast.Data);
        SameUpToNaNPayload(values, (float[])Read(json, general: true).Data);
    }

    /// <summary>
    /// The float32 formatter (Ryu) writes the very bytes float.TryFormat does: every class above, every power of two
    /// and its neighbours, decimal powers' neighbours across the range, and a million random bit patterns. (A run over
    /// every 31st bit pattern, 138M floats, found no difference either.)
    /// </summary>
    [Fact]
    public void ShortestFloat_WritesWhatFloatTryFormatWrites()
    {
        var values = new List<float>(FloatBits.Select(BitConverter.UInt32BitsToSingle));
        for (int e = -149; e <= 127; e++)
        {
            float f = MathF.ScaleB(1f, e);
            values.AddRange([f, MathF.BitIncrement(f), MathF.BitDecrement(f), -f]);
        }
        for (int e = -45; e <= 38; e++)
            foreach (var m in new[] { 1.0, 1.5, 2.5, 5, 9.999999 })
            {
                float f = (float)(m * Math.Pow(10, e));
                values.AddRange([f, MathF.BitIncrement(f), MathF.BitDecrement(f)]);
            }
        var random = new Random(31);
        for (int i = 0; i < 1_000_000; i++) values.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
        Span<byte> want = stackalloc byte[64], got = stackalloc byte[64];
        foreach (var f in values)
        {
            if (!float.IsFinite(f)) continue;
            f.TryFormat(want, out int n, default, CultureInfo.InvariantCulture);
            int m = ShortestFloat.Format(f, got);
            if (!want[..n].SequenceEqual(got[..m]))
                Assert.Fail($"{BitConverter.SingleToUInt32Bits(f):X8}: TryFormat writes {Encoding.ASCII.GetString(want[..n])}, ShortestFloat {Encoding.ASCII.GetString(got[..m])}");
        }
    }

    /// <summary>Large float arrays are formatted on every core: the text is the same as one value after another.</summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void LargeArrays_FormattedOnEveryCore_ReadAsOneThreadWritesThem(DType dtype)
    {
        int n = TensorJson.ParallelFormatMin * 3 + 12345;
        var random = new Random(8);
        var values = Enumerable.Range(0, n).Select(i => i % 1000 == 7 ? double.NaN : i % 1000 == 9 ? double.NegativeInfinity : random.NextDouble() * 2e6 - 1e6).ToArray();
        var tensor = HostTensor.FromDoubles(dtype, Shape.Vector(n), values);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) TensorJson.WriteValues(w, tensor.Data);
        var expected = "[" + string.Join(",", tensor.ToDoubles().Select(v => double.IsNaN(v) ? "\"NaN\"" : double.IsNegativeInfinity(v) ? "\"-Infinity\""
            : dtype == DType.Float32 ? ((float)v).ToString(CultureInfo.InvariantCulture) : v.ToString(CultureInfo.InvariantCulture))) + "]";
        Assert.Equal(expected, Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Float64_RandomBitPatterns_ThroughJsonNumbers()
    {
        var random = new Random(15);
        var values = new double[20_000];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int64BitsToDouble(random.NextInt64() ^ ((long)random.Next(2) << 63));
        var t = HostTensor.Of(values);
        SameUpToNaNPayload(values, (double[])Read(Json(t, base64: false)).Data);
    }

    [Fact]
    public void Int64_AllSixtyFourBits_AndBools_ThroughJsonNumbers()
    {
        var ints = HostTensor.Of([long.MinValue, long.MaxValue, -1, 0, 9_007_199_254_740_993]);
        Assert.Equal((long[])ints.Data, (long[])Read(Json(ints, false)).Data);
        var bools = new HostTensor(DType.Bool, Shape.Vector(3), new[] { true, false, true });
        Assert.Equal((bool[])bools.Data, (bool[])Read(Json(bools, false)).Data);
    }

    [Fact]
    public void EveryClass_ThroughBase64_BitExact_NaNPayloadsIncluded()
    {
        var f = HostTensor.Of(Floats(FloatBits));
        Assert.Equal(FloatBits, ((float[])Read(Json(f, base64: true)).Data).Select(BitConverter.SingleToUInt32Bits));
        var d = HostTensor.Of(Doubles(DoubleBits));
        Assert.Equal(DoubleBits, ((double[])Read(Json(d, base64: true)).Data).Select(BitConverter.DoubleToUInt64Bits));
    }

    /// <summary>An answer's raw bytes are the tensor's own array, wrapped (no copy), and serialize to the same message.</summary>
    [Fact]
    public void GrpcRaw_WrapsTheTensorsBytes_AndSerializesLikeACopy()
    {
        var t = HostTensor.Of(Floats(FloatBits));
        var wrapped = ProtoMapping.ToProto(t);
        Assert.True(System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(wrapped.Raw.Span),
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(t.Data)));
        var copied = wrapped.Clone();
        copied.Raw = Google.Protobuf.ByteString.CopyFrom(t.LittleEndianBytes);
        Assert.Equal(Google.Protobuf.MessageExtensions.ToByteArray(copied), Google.Protobuf.MessageExtensions.ToByteArray(wrapped));
        var streamed = t.LittleEndianMemory.Slice(4, 8);
        Assert.Equal(t.LittleEndianBytes.Slice(4, 8).ToArray(), streamed.ToArray());
    }

    [Fact]
    public void EveryClass_ThroughGrpcRaw_BitExact_NaNPayloadsIncluded()
    {
        var f = HostTensor.Of(Floats(FloatBits));
        var fBack = ProtoMapping.ToEngine(ProtoMapping.ToProto(f), "x");
        Assert.Equal(FloatBits, ((float[])fBack.Data).Select(BitConverter.SingleToUInt32Bits));
        var d = HostTensor.Of(Doubles(DoubleBits));
        var dBack = ProtoMapping.ToEngine(ProtoMapping.ToProto(d), "x");
        Assert.Equal(DoubleBits, ((double[])dBack.Data).Select(BitConverter.DoubleToUInt64Bits));
    }

    [Fact]
    public void ByteCodec_ChecksSizes_AndReadsAnyNonZeroBoolByteAsTrue()
    {
        var e = Assert.Throws<Engine.EngineException>(() => HostTensor.FromLittleEndian(DType.Float32, Shape.Vector(2), new byte[7]));
        Assert.Contains("7 bytes do not fill shape [2] of float32 (8 bytes)", e.Message);
        Assert.Throws<Engine.EngineException>(() => HostTensor.FromLittleEndian(DType.Float64, Shape.Vector(1), new byte[9]));
        var b = HostTensor.FromLittleEndian(DType.Bool, Shape.Vector(3), [0, 2, 255]);
        Assert.Equal([false, true, true], (bool[])b.Data);
        Assert.Equal([0, 1, 1], b.LittleEndianBytes.ToArray());
        Assert.Equal(0, HostTensor.FromLittleEndian(DType.Int64, Shape.Vector(0), []).ByteCount);
    }

    /// <summary>Forms the fast path reads, and forms it hands to the general reader: both must give the same tensor.</summary>
    [Theory]
    [InlineData("3.5")]
    [InlineData("\"-Infinity\"")]
    [InlineData("true")]
    [InlineData("[[1, 2, 3], [4, 5, 6]]")]
    [InlineData("[[[true], [false]]]")]
    [InlineData("[[], []]")]
    [InlineData("[]")]
    [InlineData("[1, \"NaN\", \"inf\", -0.0, 1e-7]")]
    [InlineData("{\"dtype\": \"float64\", \"shape\": [2, 2], \"data\": [1, 2, 3, 4]}")]
    [InlineData("{\"data\": [[1, 2], [3, 4]], \"shape\": [4], \"dtype\": \"float64\"}")]
    [InlineData("{\"shape\": [2, 2], \"data\": [1, 2, 3, 4]}")]
    [InlineData("{\"data\": [1, 2, 3]}")]
    [InlineData("{\"dtype\": \"int64\", \"data\": [9223372036854775807, -9223372036854775808, 3.0, 1e3, true]}")]
    [InlineData("{\"dtype\": \"bool\", \"data\": [0, 2, true, false, \"NaN\"]}")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [], \"data\": 7}")]
    [InlineData("{\"dtype\": \"int64\", \"data\": 7}")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [0], \"data\": []}")]
    [InlineData("{\"b64\": \"AACAPwAAAEA=\", \"shape\": [2]}")]
    [InlineData("{\"shape\": [2], \"b64\": \"AACAPwAAAEA=\", \"dtype\": \"float32\"}")]
    [InlineData("{\"dtype\": \"bool\", \"shape\": [3], \"b64\": \"AQAC\"}")]
    // Numbers the fast path's parser (fast_float) must round exactly as the general reader does: long mantissas, halfway
    // and near-halfway cases, subnormals, the extremes, exponents in every form.
    [InlineData("{\"dtype\": \"float64\", \"data\": [0.1000000000000000055511151231257827021181583404541015625, 9007199254740993, 2.2250738585072011e-308, 4.9406564584124654e-324, 2.4703282292062328e-324, 1.7976931348623157e308, 1E+2, 1e-0, -0]}")]
    [InlineData("[0.30000001192092896, 16777217, 1.00000005960464477539062500001, 3.4028235e38, 1.4e-45, 7e-46, 12345678901234567890123456789]")]
    public void FastAndGeneralReaders_Agree(string json)
    {
        var fast = Read(json);
        var general = Read(json, general: true);
        Assert.Equal(general.DType, fast.DType);
        Assert.Equal(general.Shape, fast.Shape);
        Assert.Equal(Json(general, base64: true), Json(fast, base64: true));
    }

    /// <summary>Every error still comes from the general reader, in its words.</summary>
    [Theory]
    [InlineData("[[1, 2], [3]]", "ragged")]
    [InlineData("[[1, 2], 3]", "ragged")]
    [InlineData("[1, true]", "expected a number")]
    [InlineData("[true, 1]", "mixes bools and numbers")]
    [InlineData("[[[[[[[[[1]]]]]]]]]", "deeper than the maximum rank")]
    [InlineData("[1e999]", "out of range")]
    [InlineData("[\"one\"]", "is not a number")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [3], \"data\": [1, 2]}", "2 values do not fill shape [3]")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [1], \"data\": [1, 2]}", "2 values do not fill shape [1]")]
    [InlineData("{\"dtype\": \"int64\", \"data\": [1.5]}", "is not an int64 value")]
    [InlineData("{\"dtype\": \"int64\", \"data\": [\"NaN\"]}", "is not an int64 value")]
    [InlineData("{\"dtype\": \"float32\", \"data\": [1], \"extra\": 1}", "'extra' is not a tensor field")]
    [InlineData("{\"dtype\": \"float16\", \"data\": [1]}", "unknown dtype")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [2], \"b64\": \"AAAA\"}", "b64 holds 4 base64 characters")]
    [InlineData("{\"dtype\": \"float32\", \"b64\": \"AAAAAA==\"}", "needs a shape")]
    [InlineData("{\"dtype\": \"float32\", \"shape\": [-1], \"data\": []}", "bad dimension -1")]
    public void Errors_AreTheGeneralReadersWords(string json, string expected)
    {
        var e = Assert.Throws<Engine.EngineException>(() => Read(json));
        Assert.Equal(Engine.ErrorCodes.InvalidTensor, e.Code);
        Assert.Contains(expected, e.Message, StringComparison.OrdinalIgnoreCase);
        var general = Assert.Throws<Engine.EngineException>(() => Read(json, general: true));
        Assert.Equal(general.Message, e.Message);
    }

    [Fact]
    public void FastPath_RefusesPastTheElementLimit_WithTheGeneralWords()
    {
        using var doc = JsonDocument.Parse("[1, 2, 3, 4, 5]");
        Assert.Equal(4, TensorJson.Read(JsonDocument.Parse("[1, 2, 3, 4]").RootElement, "x", maxElements: 4).Shape.ElementCount);
        var e = Assert.Throws<Engine.EngineException>(() => TensorJson.Read(doc.RootElement, "x", maxElements: 4));
        Assert.Contains("over the limit of 4", e.Message);
        using var flat = JsonDocument.Parse("{\"data\": [1, 2, 3, 4, 5]}");
        Assert.Contains("more than 4 elements", Assert.Throws<Engine.EngineException>(() => TensorJson.Read(flat.RootElement, "x", maxElements: 4)).Message);
    }

    [Fact]
    public void AShortBodyClaimingALargeShape_AllocatesWhatItHolds_NotWhatItClaims()
    {
        using var doc = JsonDocument.Parse("{\"dtype\": \"float64\", \"shape\": [16000000], \"data\": [1, 2]}");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<Engine.EngineException>(() => TensorJson.Read(doc.RootElement, "x", maxElements: 16L << 20));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("2 values do not fill shape [16000000]", e.Message);
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated for a 2-value body claiming 128 MB");
    }
}
