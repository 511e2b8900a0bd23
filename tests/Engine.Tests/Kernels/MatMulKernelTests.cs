using System.Numerics;
using System.Runtime.Intrinsics;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Kernels;

public class MatMulKernelTests
{
    /// <summary>0, 1, odd sizes, the tile widths' neighbours, and 3 × Vector512 width + 1 (49 for float32, 25 for float64).</summary>
    private static int[] Sizes<T>() where T : unmanaged =>
        [0, 1, 3, 4, 5, 17, 3 * Vector512<T>.Count + 1, 2 * Vector512<T>.Count];

    public static TheoryData<bool, bool> Transposes => new() { { false, false }, { true, false }, { false, true }, { true, true } };

    [Theory]
    [MemberData(nameof(Transposes))]
    public void Float32_MatchesNaive(bool ta, bool tb) => AllSizes<float>(ta, tb, 1e-5);

    [Theory]
    [MemberData(nameof(Transposes))]
    public void Float64_MatchesNaive(bool ta, bool tb) => AllSizes<double>(ta, tb, 1e-12);

    [Theory]
    [MemberData(nameof(Transposes))]
    public void Int64_MatchesNaiveExactly(bool ta, bool tb)
    {
        foreach (int m in new[] { 1, 5, 49 })
            foreach (int n in new[] { 1, 3, 33 })
                foreach (int k in new[] { 0, 2, 9 })
                    Compare<long>(m, n, k, ta, tb, 0);
    }

    /// <summary>Crosses the K and N block edges of the packed panel, with a short row tile at the bottom.</summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void AcrossBlockEdges(bool ta, bool tb)
    {
        Compare<float>(7, MatMulKernels.Nc + 19, MatMulKernels.Kc + 45, ta, tb, 1e-4);
        Compare<double>(9, MatMulKernels.Nc + 3, 2 * MatMulKernels.Kc + 1, ta, tb, 1e-12);
    }

    /// <summary>Large enough to run in parallel: several row blocks (and a ragged last one) on more than one thread.</summary>
    [Theory]
    [MemberData(nameof(Transposes))]
    public void ParallelRowBlocks(bool ta, bool tb)
    {
        int saved = EngineThreads.Count;
        try
        {
            EngineThreads.Count = Environment.ProcessorCount;
            Compare<float>(2 * MatMulKernels.Mc + 13, 70, 301, ta, tb, 1e-4);
            Compare<double>(MatMulKernels.Mc + 5, 97, 260, ta, tb, 1e-12);
            Compare<long>(40, 150, 700, ta, tb, 0);
        }
        finally
        {
            EngineThreads.Count = saved;
        }
    }

    [Fact]
    public void Batched_BroadcastsAndPromotesVectors()
    {
        var rng = new Random(5);
        // a [2, 1, 4, 3] @ b [3, 3, 5] -> [2, 3, 4, 5]
        var a = Values<double>(rng, 2 * 4 * 3);
        var b = Values<double>(rng, 3 * 3 * 5);
        var c = new double[2 * 3 * 4 * 5];
        MatMulKernels.MatMul<double>(a, [2, 1, 4, 3], false, b, [3, 3, 5], false, c);
        var expected = new double[20];
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 3; q++)
            {
                Naive<double>(a.AsSpan(p * 12, 12), false, b.AsSpan(q * 15, 15), false, expected, 4, 5, 3);
                AssertClose(expected, c.AsSpan((p * 3 + q) * 20, 20), 1e-12, $"batch ({p}, {q})");
            }

        // Vectors: [3] @ [3] is a dot; [3] and [4] both transposed is the outer product.
        var dot = new double[1];
        MatMulKernels.MatMul<double>([1, 2, 3], [3], false, [4, 5, 6], [3], false, dot);
        Assert.Equal(32.0, dot[0]);
        var outer = new double[12];
        MatMulKernels.MatMul<double>([1, 2, 3], [3], true, [1, 10, 100, 1000], [4], true, outer);
        Assert.Equal([1.0, 10, 100, 1000, 2, 20, 200, 2000, 3, 30, 300, 3000], outer);
    }

    [Fact]
    public void EmptyBatch_WritesNothing()
    {
        var c = Array.Empty<float>();
        MatMulKernels.MatMul<float>([], [0, 2, 3], false, new float[6], [3, 2], false, c);
    }

    private static void AllSizes<T>(bool ta, bool tb, double tol) where T : unmanaged, INumber<T>
    {
        foreach (int m in Sizes<T>())
            foreach (int n in Sizes<T>())
                foreach (int k in Sizes<T>())
                    Compare<T>(m, n, k, ta, tb, tol);
    }

    private static void Compare<T>(int m, int n, int k, bool ta, bool tb, double tol) where T : unmanaged, INumber<T>
    {
        var rng = new Random(m * 10007 + n * 101 + k);
        var a = Values<T>(rng, m * k);
        var b = Values<T>(rng, k * n);
        var expected = new T[m * n];
        var actual = Enumerable.Repeat(T.CreateChecked(99), m * n).ToArray(); // stale contents must be overwritten
        Naive<T>(a, ta, b, tb, expected, m, n, k);
        MatMulKernels.Gemm<T>(a, ta, b, tb, actual, m, n, k);
        AssertClose(expected, actual, tol * Math.Max(k, 1), $"{typeof(T).Name} m={m} n={n} k={k} ta={ta} tb={tb}");
    }

    private static T[] Values<T>(Random rng, int count) where T : unmanaged, INumber<T> =>
        Enumerable.Range(0, count).Select(_ => typeof(T) == typeof(long)
            ? T.CreateChecked(rng.Next(-9, 10))
            : T.CreateChecked(rng.NextDouble() * 2 - 1)).ToArray();

    /// <summary>The definition, accumulated in double (exact for the small integers used with int64).</summary>
    private static void Naive<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int q = 0; q < k; q++)
                {
                    var x = ta ? a[q * m + i] : a[i * k + q];
                    var y = tb ? b[j * k + q] : b[q * n + j];
                    sum += double.CreateChecked(x) * double.CreateChecked(y);
                }
                c[i * n + j] = T.CreateChecked(sum);
            }
    }

    private static void AssertClose<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, double tol, string what) where T : unmanaged, INumber<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = double.CreateChecked(expected[i]), x = double.CreateChecked(actual[i]);
            Assert.True(Math.Abs(e - x) <= tol * (1 + Math.Abs(e)), $"{what}: element {i} is {x}, expected {e}");
        }
    }
}
