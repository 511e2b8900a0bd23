using AutogradService.Engine.Backends;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// Casts, arange, uniform fills and erf as device kernels (on ILGPU's CPU accelerator): bit for bit the CPU's values
/// for every dtype pair and the values at the edges (NaN, ±∞, ±0, subnormals, the int64 extremes), the uniform stream
/// element by element from its counter, and erf within the transcendentals' few ulp.
/// </summary>
public class GpuCreationTests
{
    private static IBackend Gpu => GpuTestDevice.Backend;

    private static readonly DType[] All = [DType.Float32, DType.Float64, DType.Int64, DType.Bool];

    private static readonly double[] Edges =
    [
        0, -0.0, 1, -1, 0.5, -2.75, 1e-310, -4.9e-324, 1.5e-45, 3.4e38, 3.5e38, -1e300, double.MaxValue, double.NaN,
        double.PositiveInfinity, double.NegativeInfinity, 9.2233720368547758E18, -9.2233720368547758E18, 1e19, 123456789.987,
    ];

    private static readonly long[] Integers = [0, 1, -1, 7, long.MaxValue, long.MinValue, (1L << 53) + 1, (1L << 24) + 1, -(1L << 60) - 3];

    /// <summary>The same values on a backend, in a dtype (made on the CPU first, then copied over as bytes).</summary>
    private static Tensor Source(ExecutionScope scope, DType dtype)
    {
        using var cpu = new ExecutionScope();
        var t = dtype switch
        {
            DType.Int64 => cpu.FromSpan<long>(Integers),
            DType.Bool => cpu.FromSpan<bool>([true, false, true, true, false]),
            DType.Float32 => cpu.FromSpan<float>(Edges.Select(v => (float)v).ToArray()),
            _ => cpu.FromSpan<double>(Edges),
        };
        return scope.Import(t);
    }

    public static TheoryData<DType, DType> Pairs()
    {
        var data = new TheoryData<DType, DType>();
        foreach (var from in All)
            foreach (var to in All)
                if (from != to) data.Add(from, to);
        return data;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Casts_GiveTheCpusBits(DType from, DType to)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var want = F.Cast(Source(cpu, from), to);
        var got = F.Cast(Source(gpu, from), to);
        Assert.Equal(want.Type, got.Type);
        Assert.Equal(want.Bytes().ToArray(), got.Bytes().ToArray());
    }

    [Theory]
    [InlineData(DType.Float32, 0.0, 0.1, 1000)]
    [InlineData(DType.Float64, -3.5, 0.7, 1000)]
    [InlineData(DType.Int64, 10.0, -3.0, 50)]
    [InlineData(DType.Int64, 0.5, 0.25, 20)]
    public void Arange_GivesTheCpusBits(DType dtype, double start, double step, int n)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var (want, got) = (cpu.Allocate(new Shape(n), dtype), gpu.Allocate(new Shape(n), dtype));
        CpuBackend.Instance.Arange(want, start, step);
        Gpu.Arange(got, start, step);
        Assert.Equal(want.Bytes().ToArray(), got.Bytes().ToArray());
    }

    [Theory]
    [InlineData(DType.Float32, 0L, 0.0, 1.0)]
    [InlineData(DType.Float32, -17L, -3.0, 3.0)]
    [InlineData(DType.Float64, long.MaxValue, 0.0, 1.0)]
    [InlineData(DType.Float64, 42L, -1e-300, 1e-300)]
    [InlineData(DType.Float32, 5L, 1.0, 1.0000001)] // a range one float wide: values that round up to high are clamped below it
    [InlineData(DType.Float32, 6L, 2.0, 2.0)]
    public void UniformFills_AreTheCpusStream_ElementByElement(DType dtype, long seed, double low, double high)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var (want, got) = (cpu.Allocate(new Shape(3001), dtype), gpu.Allocate(new Shape(3001), dtype));
        CpuBackend.Instance.RandomUniform(want, seed, low, high);
        Gpu.RandomUniform(got, seed, low, high);
        Assert.Equal(want.Bytes().ToArray(), got.Bytes().ToArray());
    }

    [Fact]
    public void Erf_IsWithinAFewUlpOfTheCpus()
    {
        var x = Enumerable.Range(0, 2001).Select(i => -7 + i * 0.007).Concat([0.0, -0.0, 1e-300, double.NaN, 6, -6, 5.999]).ToArray();
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var want = F.Erf(cpu.FromSpan<double>(x)).ToArray<double>();
        var got = F.Erf(gpu.FromSpan<double>(x)).ToArray<double>();
        for (int i = 0; i < x.Length; i++)
            Assert.True(Bound.UlpsApart(want[i], got[i], DType.Float64) <= 4, $"erf({x[i]}): {got[i]} on the GPU backend, {want[i]} on the CPU");
    }

    /// <summary>
    /// Every unary kernel the device computes, over a dense grid of its domain (4,001 points), float32 and float64:
    /// within 4 ulp of the CPU's kernel (the conformance suite holds elementwise forwards to the same bound, on the
    /// op examples' few values).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void EveryUnaryKernel_IsWithin4Ulp_OfTheCpus_OverItsDomain(DType dtype)
    {
        foreach (var kernel in Enum.GetValues<UnaryKernel>().Where(AutogradService.Gpu.Scalar.OnDevice))
        {
            var (low, high) = kernel switch
            {
                UnaryKernel.Log or UnaryKernel.Sqrt or UnaryKernel.Rsqrt => (1e-6, 1e4),
                UnaryKernel.Log1p => (-0.999, 1e3),
                UnaryKernel.Exp or UnaryKernel.Expm1 => (-80.0, 80.0),
                _ => (-20.0, 20.0),
            };
            var x = Enumerable.Range(0, 4001).Select(i => low + (high - low) * i / 4000).ToArray();
            using var cpu = new ExecutionScope();
            using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
            Tensor Input(ExecutionScope scope) => F.Cast(scope.FromSpan<double>(x), dtype);
            var (a, b) = (Input(cpu), Input(gpu));
            var (want, got) = (cpu.Allocate(a.Type), gpu.Allocate(b.Type));
            CpuBackend.Instance.Unary(kernel, a, want);
            Gpu.Unary(kernel, b, got);
            var (w, g, inputs) = (want.ToDoubles(), got.ToDoubles(), a.ToDoubles());
            for (int i = 0; i < w.Length; i++)
                Assert.True(Bound.UlpsApart(w[i], g[i], dtype) <= 4, $"{kernel}({inputs[i]}) in {dtype}: {g[i]} on the GPU backend, {w[i]} on the CPU");
        }
    }
}
