using AutogradService.Engine.Backends;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>
/// Tensors past the parallel threshold are split into chunks on several threads: every element must come out exactly as
/// the one-thread kernel computes it (same code per element, so bit for bit), including the ragged last chunk.
/// </summary>
public class ParallelElementwiseTests
{
    private const int Length = (1 << 18) + 77;

    [Theory]
    [InlineData(UnaryKernel.Sin)]
    [InlineData(UnaryKernel.Exp)]
    [InlineData(UnaryKernel.Log1p)]
    [InlineData(UnaryKernel.Tanh)]
    public void UnaryMatchesOneThread(UnaryKernel kernel)
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Values(Length, 1));
        var y = scope.Allocate(x.Shape, DType.Float32);
        WithThreads(() => CpuBackend.Instance.Unary(kernel, x, y));
        var expected = new float[Length];
        ElementwiseKernels.Unary(kernel, x.ReadOnlySpan<float>(), expected);
        Assert.True(expected.AsSpan().SequenceEqual(y.ReadOnlySpan<float>()));
    }

    [Theory]
    [InlineData(BinaryKernel.Mul, false)]
    [InlineData(BinaryKernel.Sub, true)]
    [InlineData(BinaryKernel.Div, false)]
    public void BinaryMatchesOneThread(BinaryKernel kernel, bool scalarFirst)
    {
        using var scope = new ExecutionScope();
        var full = scope.FromArray(Values(Length, 2));
        var other = scope.FromArray(Values(Length, 3));
        var scalar = scope.Scalar(1.5);
        var (a, b) = scalarFirst ? (scalar, full) : (full, other);
        var y = scope.Allocate(full.Shape, DType.Float32);
        WithThreads(() => CpuBackend.Instance.Binary(kernel, a, b, y));
        var expected = new float[Length];
        ElementwiseKernels.Arithmetic(kernel, a.ReadOnlySpan<float>(), scalarFirst, b.ReadOnlySpan<float>(), false, expected);
        Assert.True(expected.AsSpan().SequenceEqual(y.ReadOnlySpan<float>()));
    }

    private static void WithThreads(Action action)
    {
        int saved = EngineThreads.Count;
        try
        {
            EngineThreads.Count = Environment.ProcessorCount;
            action();
        }
        finally
        {
            EngineThreads.Count = saved;
        }
    }

    private static float[] Values(int n, int seed)
    {
        var random = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(random.NextDouble() * 4 - 1);
        return v;
    }
}
