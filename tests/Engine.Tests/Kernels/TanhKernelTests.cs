using AutogradService.Engine.Kernels.Cpu;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>
/// tanh against double-precision Math.Tanh (rounded, for float32): within 3 ulp everywhere, ±0 kept, odd, and bit for
/// bit the same written over its own input. TensorPrimitives.Tanh alone was thousands of ulp off near 0 and gave
/// tanh(0f) = −6e-8.
/// </summary>
public class TanhKernelTests
{
    private static double[] Grid()
    {
        var values = new List<double> { 0, -0.0, 1e-300, -1e-300, 1e-8, 0.74999999, 0.75, -0.75, 0.75000001, 20, -20, 400, double.NaN,
            double.PositiveInfinity, double.NegativeInfinity };
        for (int i = -30000; i <= 30000; i++) values.Add(i * 1e-4);
        var random = new Random(3);
        for (int i = 0; i < 20000; i++) values.Add((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-12, 2)));
        return [.. values];
    }

    [Fact]
    public void Float64_IsWithin3UlpOfMathTanh_AndKeepsTheSignOfZero()
    {
        var x = Grid();
        var y = new double[x.Length];
        TanhKernel.Tanh<double>(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double want = Math.Tanh(x[i]);
            if (want.Equals(y[i])) continue;
            long ulps = Math.Abs(BitConverter.DoubleToInt64Bits(want) - BitConverter.DoubleToInt64Bits(y[i]));
            Assert.True(ulps <= 3 && Math.Sign(want) == Math.Sign(y[i]), $"tanh({x[i]:R}) = {y[i]:R}, Math.Tanh gives {want:R}");
        }
        Assert.True(double.IsNegative(y[1]) && y[1] == 0 && !double.IsNegative(y[0]));
    }

    [Fact]
    public void Float32_IsWithin3UlpOfMathTanhRounded_AndKeepsTheSignOfZero()
    {
        var x = Grid().Select(v => (float)v).ToArray();
        var y = new float[x.Length];
        TanhKernel.Tanh<float>(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            float want = (float)Math.Tanh(x[i]);
            if (want.Equals(y[i])) continue;
            int ulps = Math.Abs(BitConverter.SingleToInt32Bits(want) - BitConverter.SingleToInt32Bits(y[i]));
            Assert.True(ulps <= 3 && Math.Sign(want) == Math.Sign(y[i]), $"tanh({x[i]:R}) = {y[i]:R}, Math.Tanh rounds to {want:R}");
        }
        Assert.Equal(0f, y[0]);
        Assert.True(float.IsNegative(y[1]) && y[1] == 0);
    }

    [Fact]
    public void WrittenOverItsOwnInput_GivesTheSameBits_AndIsOdd()
    {
        var x = Grid().Where(double.IsFinite).Select(v => (float)v).ToArray();
        var apart = new float[x.Length];
        TanhKernel.Tanh<float>(x, apart);
        var negated = new float[x.Length];
        TanhKernel.Tanh<float>(x.Select(v => -v).ToArray(), negated);
        var inPlace = (float[])x.Clone();
        TanhKernel.Tanh<float>(inPlace, inPlace);
        Assert.Equal(apart, inPlace);
        for (int i = 0; i < x.Length; i++) Assert.Equal(-apart[i], negated[i]);
    }
}
