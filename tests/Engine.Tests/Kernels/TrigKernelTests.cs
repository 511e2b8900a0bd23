using AutogradService.Engine.Kernels.Cpu;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>
/// The AVX-512 float32 sine and cosine against double-precision Math.Sin/Math.Cos rounded to float: equal or one ulp
/// apart (a double rounding in a rare tie), over random values, values near multiples of π/2, the edge of the fast
/// range, and the special values.
/// </summary>
public class TrigKernelTests
{
    [Fact]
    public void WithinOneUlpOfDoubleRounded()
    {
        if (!TrigKernels.IsAccelerated) return;
        var values = new List<float> { 0f, -0f, 1e-30f, -1e-30f, float.Epsilon, 1e5f, -1e5f, 100001f, 1e30f, -3e38f,
            float.NaN, float.PositiveInfinity, float.NegativeInfinity, MathF.PI, -MathF.PI, MathF.PI / 2, 3 * MathF.PI / 2 };
        for (int k = -2000; k <= 2000; k++)
        {
            float near = (float)(k * Math.PI / 2);
            values.Add(near);
            values.Add(MathF.BitIncrement(near));
            values.Add(MathF.BitDecrement(near));
        }
        var random = new Random(5);
        for (int i = 0; i < 20000; i++) values.Add((float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-6, 6))));
        var x = values.ToArray();
        var sin = new float[x.Length];
        var cos = new float[x.Length];
        TrigKernels.Sin(x, sin);
        TrigKernels.Cos(x, cos);
        for (int i = 0; i < x.Length; i++)
        {
            AssertClose((float)Math.Sin(x[i]), sin[i], x[i], "sin");
            AssertClose((float)Math.Cos(x[i]), cos[i], x[i], "cos");
        }

        // Both at once (what a recorded sin or cos runs) must give the very same bits as each alone.
        var sin2 = new float[x.Length];
        var cos2 = new float[x.Length];
        TrigKernels.SinCos(x, sin2, cos2);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(sin[i]) == BitConverter.SingleToInt32Bits(sin2[i]), $"sincos sin({x[i]:R})");
            Assert.True(BitConverter.SingleToInt32Bits(cos[i]) == BitConverter.SingleToInt32Bits(cos2[i]), $"sincos cos({x[i]:R})");
        }
    }

    private static void AssertClose(float expected, float actual, float x, string f)
    {
        if (float.IsNaN(expected))
        {
            Assert.True(float.IsNaN(actual), $"{f}({x}) = {actual}, expected NaN");
            return;
        }
        bool ok = expected == actual && (expected != 0 || float.IsNegative(expected) == float.IsNegative(actual))
            || MathF.BitIncrement(expected) == actual || MathF.BitDecrement(expected) == actual;
        Assert.True(ok, $"{f}({x:R}) = {actual:R}, expected {expected:R}");
    }
}

/// <summary>float32 exp evaluated in double: correctly rounded (against Math.Exp rounded once) and exact at the special values.</summary>
public class ExpKernelTests
{
    [Fact]
    public void CorrectlyRoundedAndSpecialValuesExact()
    {
        if (!Engine.Kernels.Cpu.ExpKernel.IsAccelerated) return;
        var values = new List<float> { 0f, -0f, 1f, -1f, 88.72f, 88.73f, 100f, -87.3f, -103.9f, -104f, -200f,
            float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, 1e-30f };
        var random = new Random(7);
        for (int i = 0; i < 100_000; i++) values.Add((float)(random.NextDouble() * 200 - 100));
        var x = values.ToArray();
        var y = new float[x.Length];
        Engine.Kernels.Cpu.ExpKernel.Exp(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            float expected = (float)Math.Exp(x[i]);
            Assert.True(expected.Equals(y[i]), $"exp({x[i]:R}) = {y[i]:R}, expected {expected:R}");
        }
        Assert.Equal(1f, y[0]);
    }
}
