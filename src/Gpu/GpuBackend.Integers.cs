using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// int64 and bool maps, zips and reductions on the device, bit for bit the CPU's (wrapping two's-complement
/// arithmetic, bools as bytes). A kernel not defined for the dtype goes to the host, which refuses it in its words.
/// </summary>
public sealed partial class GpuBackend
{
    private Action<Index1D, ArrayView<long>, ArrayView<long>, int>? _unaryI64;
    private Action<Index1D, ArrayView<byte>, ArrayView<byte>>? _notU8;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, int, BroadcastLayout>? _binaryI64;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<byte>, int, BroadcastLayout>? _compareI64;
    private Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, int, BroadcastLayout>? _logicalU8;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, int, int, int>? _reduceI64;

    private bool TryIntegerUnary(UnaryKernel kernel, Tensor input, Tensor output)
    {
        bool int64 = input.DType == DType.Int64 && Scalar.OnDeviceInt64(kernel);
        bool not = input.DType == DType.Bool && kernel == UnaryKernel.LogicalNot;
        if (!(int64 || not) || !Fits(output)) return false;
        if (output.ElementCount == 0) return true;
        lock (Sync)
        {
            var (x, y, n) = (In(input), Out(output), (int)output.ElementCount);
            if (int64)
                (_unaryI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, int>(Kernels.UnaryI64))(n, x.Cast<long>(), y.Cast<long>(), (int)kernel);
            else
                (_notU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>>(Kernels.NotU8))(n, x, y);
            Accelerator.Synchronize();
        }
        return true;
    }

    private bool TryIntegerBinary(BinaryKernel kernel, Tensor a, Tensor b, Tensor output)
    {
        bool compare = kernel is >= BinaryKernel.Eq and <= BinaryKernel.Ge;
        bool arithmetic = kernel is BinaryKernel.Add or BinaryKernel.Sub or BinaryKernel.Mul or BinaryKernel.Maximum or BinaryKernel.Minimum;
        bool int64 = a.DType == DType.Int64 && (compare || arithmetic);
        bool logical = a.DType == DType.Bool && kernel is BinaryKernel.LogicalAnd or BinaryKernel.LogicalOr or BinaryKernel.Eq or BinaryKernel.Ne;
        if (!(int64 || logical) || !Fits(output)) return false;
        if (output.ElementCount == 0) return true;
        var layout = Broadcast(output.Shape, a.Shape, b.Shape);
        lock (Sync)
        {
            var (x, z, y, n) = (In(a), In(b), Out(output), (int)output.ElementCount);
            if (logical)
                (_logicalU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, int, BroadcastLayout>(Kernels.LogicalU8))(n, x, z, y, (int)kernel, layout);
            else if (compare)
                (_compareI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<byte>, int, BroadcastLayout>(Kernels.CompareI64))(n, x.Cast<long>(), z.Cast<long>(), y, (int)kernel, layout);
            else
                (_binaryI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, int, BroadcastLayout>(Kernels.BinaryI64))(n, x.Cast<long>(), z.Cast<long>(), y.Cast<long>(), (int)kernel, layout);
            Accelerator.Synchronize();
        }
        return true;
    }

    /// <summary>An int64 reduction over [outer, r, inner] (the caller checked the axes are contiguous and nothing is empty).</summary>
    private void ReduceInt64(ReduceKernel kernel, ArrayView<byte> x, ArrayView<byte> y, int n, int r, int inner)
    {
        (_reduceI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, int, int, int>(Kernels.ReduceI64))(n, x.Cast<long>(), y.Cast<long>(), (int)kernel, r, inner);
    }
}
