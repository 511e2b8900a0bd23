using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>Naive index arithmetic for checking kernels: no blocking, no vectors, just one element at a time.</summary>
internal static class KernelReference
{
    /// <summary>The flat index in <paramref name="input"/> that output element <paramref name="flat"/> reads under NumPy broadcasting.</summary>
    public static long BroadcastIndex(Shape output, Shape input, long flat)
    {
        long index = 0, stride = 1;
        int offset = output.Rank - input.Rank;
        for (int d = output.Rank - 1; d >= 0; d--)
        {
            long coord = flat % output[d];
            flat /= output[d];
            if (d < offset) continue;
            int size = input[d - offset];
            if (size != 1) index += coord * stride;
            stride *= size;
        }
        return index;
    }

    /// <summary>A tensor of <paramref name="dtype"/> holding <paramref name="values"/> (narrowed as the dtype requires).</summary>
    public static Tensor Make(ExecutionScope scope, DType dtype, Shape shape, double[] values) =>
        HostTensor.FromDoubles(dtype, shape, values).ToTensor(scope);

    /// <summary>Rounds to what a tensor of <paramref name="dtype"/> can hold, so references start from the kernel's inputs.</summary>
    public static double Representable(DType dtype, double v) => dtype switch
    {
        DType.Float32 => (float)v,
        DType.Int64 => Math.Round(v),
        DType.Bool => v != 0 ? 1 : 0,
        _ => v,
    };

    public static double RelTol(DType dtype) => dtype == DType.Float32 ? 4e-6 : 1e-13;

    public static double AbsTol(DType dtype) => dtype == DType.Float32 ? 2e-6 : 1e-14;

    public static void Close(double expected, double actual, DType dtype, string what)
    {
        if (double.IsNaN(expected) && double.IsNaN(actual)) return;
        if (dtype is DType.Int64 or DType.Bool || double.IsInfinity(expected))
        {
            Assert.True(expected == actual, $"{what}: expected {expected:R}, got {actual:R}");
            return;
        }
        Assert.True(Math.Abs(expected - actual) <= AbsTol(dtype) + RelTol(dtype) * Math.Abs(expected),
            $"{what}: expected {expected:R}, got {actual:R}");
    }
}
