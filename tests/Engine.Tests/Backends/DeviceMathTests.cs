using AutogradService.Gpu;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>The GPU kernels' transcendentals against .NET's (the C runtime's, within an ulp of correct): ≤ 4 ulp over each function's range, and IEEE's special values.</summary>
public class DeviceMathTests
{
    private static long Ulps(double a, double b) =>
        a.Equals(b) ? 0 : Math.Abs(BitConverter.DoubleToInt64Bits(a) - BitConverter.DoubleToInt64Bits(b));

    private static void Within(Func<double, double> device, Func<double, double> reference, IEnumerable<double> xs, long ulps = 4)
    {
        foreach (var x in xs)
        {
            double got = device(x), want = reference(x);
            Assert.True(Ulps(got, want) <= ulps || Math.Abs(got - want) < 1e-300, $"x = {x:R}: {got:R} against {want:R} ({Ulps(got, want)} ulp)");
        }
    }

    private static IEnumerable<double> Sweep(double lo, double hi, int n = 4001) => Enumerable.Range(0, n).Select(i => lo + (hi - lo) * i / (n - 1));

    private static IEnumerable<double> LogSweep(double lo, double hi, int n = 2001) =>
        Enumerable.Range(0, n).Select(i => Math.Exp(Math.Log(lo) + (Math.Log(hi) - Math.Log(lo)) * i / (n - 1)));

    [Fact]
    public void Exp_Log_AndTheirNearZeroForms()
    {
        Within(DeviceMath.Exp, Math.Exp, Sweep(-708, 709));
        Within(DeviceMath.Exp, Math.Exp, Sweep(-1, 1));
        Within(DeviceMath.Log, Math.Log, LogSweep(1e-320, 1e308));
        Within(DeviceMath.Log, Math.Log, Sweep(0.5, 2));
        // .NET's ExpM1 and LogP1 are exp(x) − 1 and log(1 + x), which cancel near 0: the references go through tanh and atanh.
        Within(DeviceMath.Expm1, x => Math.Abs(x) < 0.3 ? 2 * Math.Tanh(x / 2) / (1 - Math.Tanh(x / 2)) : Math.Exp(x) - 1,
            Sweep(-1e-3, 1e-3).Concat(Sweep(-3, 3)));
        Within(DeviceMath.Log1p, x => 2 * Math.Atanh(x / (2 + x)), Sweep(-1e-3, 1e-3).Concat(Sweep(-0.9, 10)));
    }

    [Fact]
    public void Trigonometry_AndTanh()
    {
        Within(DeviceMath.Sin, Math.Sin, Sweep(-1e4, 1e4, 20001));
        Within(DeviceMath.Cos, Math.Cos, Sweep(-1e4, 1e4, 20001));
        Within(DeviceMath.Tan, Math.Tan, Sweep(-10, 10, 20001).Where(x => Math.Abs(Math.Cos(x)) > 1e-3)); // away from the poles, where 1 ulp of x is many of tan
        Within(DeviceMath.Tanh, Math.Tanh, Sweep(-25, 25, 20001));
        Within(DeviceMath.Sigmoid, x => 1 / (1 + Math.Exp(-x)), Sweep(-30, 30));
    }

    [Fact]
    public void Pow_KeepsTheSignsAndSpecialCases()
    {
        foreach (var (a, b) in new[] { (2.0, 10.0), (-2.0, 3.0), (-2.0, 2.0), (0.5, -3.5), (10.0, -5.0), (1.5, 0.5), (3.0, 40.0) })
            Assert.True(Ulps(DeviceMath.Pow(a, b), Math.Pow(a, b)) <= 16, $"{a}^{b}: {DeviceMath.Pow(a, b):R} against {Math.Pow(a, b):R}");
        Assert.True(double.IsNaN(DeviceMath.Pow(-2, 0.5)));
        Assert.Equal(1, DeviceMath.Pow(double.NaN, 0));
        Assert.Equal(double.PositiveInfinity, DeviceMath.Pow(0, -2));
        Assert.Equal(double.NegativeInfinity, DeviceMath.Pow(-0.0, -3));
        Assert.Equal(0, DeviceMath.Pow(0, 3));
    }

    [Fact]
    public void SpecialValues()
    {
        Assert.Equal(double.PositiveInfinity, DeviceMath.Exp(1000));
        Assert.Equal(0, DeviceMath.Exp(-1000));
        Assert.True(double.IsNaN(DeviceMath.Exp(double.NaN)));
        Assert.Equal(double.NegativeInfinity, DeviceMath.Log(0));
        Assert.True(double.IsNaN(DeviceMath.Log(-1)));
        Assert.Equal(double.PositiveInfinity, DeviceMath.Log(double.PositiveInfinity));
        Assert.True(double.IsNaN(DeviceMath.Sin(double.PositiveInfinity)));
        Assert.Equal(1, DeviceMath.Tanh(100));
        Assert.Equal(-1, DeviceMath.Tanh(-100));
        Assert.Equal(0.0, DeviceMath.Sin(0.0));
    }
}
