using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Kernels.KernelReference;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>Reductions over every subset of axes of small rank-3 shapes (zero-size dimensions included) against naive loops.</summary>
public class ReduceKernelTests
{
    private static readonly int[][] Shapes =
    [
        [2, 3, 4], [3, 1, 5], [1, 4, 1], [1, 1, 1], [5, 2, 3],
        [2, 0, 3], [0, 3, 2], [4, 2, 0],
    ];

    public static IEnumerable<object[]> Kernels() =>
        from k in Enum.GetValues<ReduceKernel>()
        from d in new[] { DType.Float32, DType.Float64, DType.Int64 }
        select new object[] { k, d };

    /// <summary>Every non-empty subset of {0, 1, 2}, sorted (what the backend contract asks for).</summary>
    private static IEnumerable<int[]> Subsets(int rank, bool includeEmpty)
    {
        for (int mask = includeEmpty ? 0 : 1; mask < 1 << rank; mask++)
            yield return Enumerable.Range(0, rank).Where(a => (mask & (1 << a)) != 0).ToArray();
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void KernelMatchesNaiveLoops(ReduceKernel kernel, DType dtype)
    {
        var random = new Random(500 + (int)kernel * 5 + (int)dtype);
        using var scope = new ExecutionScope();
        foreach (var dims in Shapes)
        {
            var shape = new Shape(dims);
            var xs = Values(kernel, dtype, shape.ElementCount, random);
            var x = Make(scope, dtype, shape, xs);
            foreach (var axes in Subsets(3, includeEmpty: false))
            {
                var outShape = ReduceAttrs.Reduced(shape, axes, keepDims: false);
                var output = scope.Allocate(outShape, dtype);
                CpuBackend.Instance.Reduce(kernel, x, axes, output);
                var expected = Naive(kernel, dtype, xs, shape, axes);
                var actual = output.ToDoubles();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < expected.Length; i++)
                    Close(expected[i], actual[i], dtype, $"{kernel} of {shape} over [{string.Join(", ", axes)}], element {i}");
            }
        }
    }

    [Theory]
    [InlineData("sum")]
    [InlineData("max")]
    [InlineData("min")]
    [InlineData("prod")]
    [InlineData("mean")]
    public void OpsReduceOverEveryAxisSubsetWithAndWithoutKeepDims(string name)
    {
        var random = new Random(name.Length);
        var op = OpRegistry.Default.Get(name);
        using var scope = new ExecutionScope();
        foreach (var dims in Shapes)
        {
            var shape = new Shape(dims);
            var xs = Values(ReduceKernel.Prod, DType.Float64, shape.ElementCount, random);
            var x = scope.FromSpan<double>(xs, dims);
            foreach (var axes in Subsets(3, includeEmpty: true))
            {
                // max and min of an empty axis have no value and are refused.
                if (name is "max" or "min" && axes.Any(a => dims[a] == 0)) continue;
                foreach (bool keep in new[] { false, true })
                {
                    var y = Dispatcher.Apply(op, [x], Attributes.Of(("axes", axes), ("keepdims", keep)));
                    Assert.Equal(ReduceAttrs.Reduced(shape, axes, keep), y.Shape);
                    var expected = name == "mean"
                        ? Mean(xs, shape, axes)
                        : Naive(Enum.Parse<ReduceKernel>(name, ignoreCase: true), DType.Float64, xs, shape, axes);
                    var actual = y.ToDoubles();
                    for (int i = 0; i < expected.Length; i++)
                        Close(expected[i], actual[i], DType.Float64, $"{name} of {shape} over [{string.Join(", ", axes)}] keepdims={keep}");
                }
            }
        }
    }

    private static double[] Values(ReduceKernel kernel, DType dtype, long count, Random random)
    {
        var xs = new double[count];
        for (int i = 0; i < xs.Length; i++)
        {
            xs[i] = dtype == DType.Int64
                ? random.Next(-2, 3)
                : kernel == ReduceKernel.Prod ? 0.5 + random.NextDouble() : (random.Next(7) - 3) * 0.75 + random.Next(2) * random.NextDouble();
            xs[i] = Representable(dtype, xs[i]);
        }
        return xs;
    }

    /// <summary>Combines every input element into the output element its kept coordinates name.</summary>
    private static double[] Naive(ReduceKernel kernel, DType dtype, double[] xs, Shape shape, int[] axes)
    {
        var outShape = ReduceAttrs.Reduced(shape, axes, keepDims: false);
        var result = new double[outShape.ElementCount];
        Array.Fill(result, kernel switch
        {
            ReduceKernel.Sum => 0,
            ReduceKernel.Prod => 1,
            ReduceKernel.Max => dtype == DType.Int64 ? long.MinValue : double.NegativeInfinity,
            _ => dtype == DType.Int64 ? long.MaxValue : double.PositiveInfinity,
        });
        for (long i = 0; i < xs.Length; i++)
        {
            long o = OutputIndex(shape, axes, i);
            result[o] = kernel switch
            {
                ReduceKernel.Sum => result[o] + xs[i],
                ReduceKernel.Prod => result[o] * xs[i],
                ReduceKernel.Max => Math.Max(result[o], xs[i]),
                _ => Math.Min(result[o], xs[i]),
            };
        }
        return result;
    }

    private static double[] Mean(double[] xs, Shape shape, int[] axes)
    {
        var sums = Naive(ReduceKernel.Sum, DType.Float64, xs, shape, axes);
        long count = axes.Aggregate(1L, (n, a) => n * shape[a]);
        return sums.Select(s => s / Math.Max(count, 1)).ToArray();
    }

    private static long OutputIndex(Shape shape, int[] axes, long flat)
    {
        long index = 0, stride = 1;
        for (int d = shape.Rank - 1; d >= 0; d--)
        {
            long coord = flat % shape[d];
            flat /= shape[d];
            if (Array.IndexOf(axes, d) >= 0) continue;
            index += coord * stride;
            stride *= shape[d];
        }
        return index;
    }

    [Theory]
    [InlineData(ReduceKernel.Sum)]
    [InlineData(ReduceKernel.Max)]
    [InlineData(ReduceKernel.Min)]
    [InlineData(ReduceKernel.Prod)]
    public void LongWholeReductionsGiveTheSameBitsOnAnyThreadCount(ReduceKernel kernel)
    {
        // 1M + 7 elements: four full blocks and a short one, split or not.
        var random = new Random(11);
        var x = new float[(1 << 20) + 7];
        for (int i = 0; i < x.Length; i++) x[i] = kernel == ReduceKernel.Prod ? 1 + (float)(random.NextDouble() - 0.5) * 1e-6f : (float)(random.NextDouble() * 4 - 2);
        int saved = Engine.Kernels.Cpu.EngineThreads.Count;
        float one, two;
        try
        {
            Engine.Kernels.Cpu.EngineThreads.Count = 1;
            one = Engine.Kernels.Cpu.ReduceKernels.WholeBlocked<float>(kernel, x);
            Engine.Kernels.Cpu.EngineThreads.Count = 2;
            two = Engine.Kernels.Cpu.ReduceKernels.WholeBlocked<float>(kernel, x);
        }
        finally
        {
            Engine.Kernels.Cpu.EngineThreads.Count = saved;
        }
        Assert.Equal(BitConverter.SingleToInt32Bits(one), BitConverter.SingleToInt32Bits(two));
        double expected = kernel switch
        {
            ReduceKernel.Sum => x.Sum(v => (double)v),
            ReduceKernel.Max => x.Max(),
            ReduceKernel.Min => x.Min(),
            _ => x.Aggregate(1.0, (p, v) => p * v),
        };
        // Max and min are exact; a float32 sum is good to ~1e-6 of its terms' size; a product of a million factors
        // near 1 drifts by its own float32 roundings (blocking or not).
        double tolerance = kernel switch
        {
            ReduceKernel.Sum => 1e-6 * x.Sum(v => Math.Abs((double)v)),
            ReduceKernel.Prod => 1e-2,
            _ => 0,
        };
        Assert.True(Math.Abs(one - expected) <= tolerance, $"{kernel}: {one} vs {expected}");
    }
}
