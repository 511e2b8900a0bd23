using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// Movement (transpose, slice, slice-scatter, broadcast_to, concat), where, gather and scatter-add on the device, for
/// every dtype: one strided-copy kernel family by element size covers the movement ops. Each kernel is compiled the
/// first time it is needed and its launcher kept. Index checks read the indices on the host first; an out-of-range
/// index goes to <see cref="Engine.Backends.CpuBackend"/>, whose error is the engine's.
/// </summary>
public sealed partial class GpuBackend
{
    private Action<Index1D, ArrayView<byte>, ArrayView<byte>, CopyLayout>? _copyU8;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, CopyLayout>? _copyI32;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, CopyLayout>? _copyI64;
    private Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, SelectLayout>? _selectU8;
    private Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<int>, SelectLayout>? _selectI32;
    private Action<Index1D, ArrayView<byte>, ArrayView<long>, ArrayView<long>, ArrayView<long>, SelectLayout>? _selectI64;
    private Action<Index1D, ArrayView<byte>, ArrayView<long>, ArrayView<byte>, IndexLayout>? _gatherU8;
    private Action<Index1D, ArrayView<int>, ArrayView<long>, ArrayView<int>, IndexLayout>? _gatherI32;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, IndexLayout>? _gatherI64;
    private Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, IndexLayout>? _scatterAddF32;
    private Action<Index1D, ArrayView<double>, ArrayView<long>, ArrayView<double>, IndexLayout>? _scatterAddF64;
    private Action<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, IndexLayout>? _scatterAddI64;

    public void Transpose(Tensor input, int[] perm, Tensor output)
    {
        if (!Fits(input))
        {
            _host.Transpose(input, perm, output);
            return;
        }
        var inStrides = input.Shape.Strides();
        var layout = Iterate(output.Shape);
        for (int d = 0; d < perm.Length; d++) layout.StrideX.Set(d, (int)inStrides[perm[d]]);
        SetContiguous(output.Shape, ref layout.StrideY);
        lock (Sync) CopyLocked(input, output, layout, output.ElementCount);
    }

    public void Slice(Tensor input, int[] starts, int[] steps, Tensor output)
    {
        if (!Fits(input))
        {
            _host.Slice(input, starts, steps, output);
            return;
        }
        var layout = Iterate(output.Shape);
        layout.BaseX = Stepped(input.Shape, starts, steps, ref layout.StrideX);
        SetContiguous(output.Shape, ref layout.StrideY);
        lock (Sync) CopyLocked(input, output, layout, output.ElementCount);
    }

    public void SliceScatter(Tensor source, int[] starts, int[] steps, Tensor output)
    {
        if (!Fits(output))
        {
            _host.SliceScatter(source, starts, steps, output);
            return;
        }
        var layout = Iterate(source.Shape);
        SetContiguous(source.Shape, ref layout.StrideX);
        layout.BaseY = Stepped(output.Shape, starts, steps, ref layout.StrideY);
        lock (Sync)
        {
            Zero(output);
            CopyLocked(source, output, layout, source.ElementCount);
        }
    }

    public void BroadcastTo(Tensor input, Tensor output)
    {
        if (!Fits(output))
        {
            _host.BroadcastTo(input, output);
            return;
        }
        var layout = Iterate(output.Shape);
        Strides(output.Shape, input.Shape, ref layout.StrideX);
        SetContiguous(output.Shape, ref layout.StrideY);
        lock (Sync) CopyLocked(input, output, layout, output.ElementCount);
    }

    public void Concat(ReadOnlySpan<Tensor> inputs, int axis, Tensor output)
    {
        if (!Fits(output))
        {
            _host.Concat(inputs, axis, output);
            return;
        }
        // As on the CPU: each input is [outer, its share] and the output [outer, every share in turn], which also
        // serves stack (inputs one rank below the output).
        long outer = 1;
        for (int d = 0; d < axis; d++) outer *= output.Shape[d];
        if (outer == 0 || output.ElementCount == 0) return;
        int total = (int)(output.ElementCount / outer);
        lock (Sync)
        {
            int offset = 0;
            foreach (var input in inputs)
            {
                int share = (int)(input.ElementCount / outer);
                var layout = new CopyLayout { Rank = 2, BaseY = offset };
                layout.Shape.Set(0, (int)outer);
                layout.Shape.Set(1, share);
                layout.StrideX.Set(0, share);
                layout.StrideX.Set(1, 1);
                layout.StrideY.Set(0, total);
                layout.StrideY.Set(1, 1);
                CopyLocked(input, output, layout, input.ElementCount);
                offset += share;
            }
        }
    }

    public void Where(Tensor condition, Tensor a, Tensor b, Tensor output)
    {
        if (!Fits(output))
        {
            _host.Where(condition, a, b, output);
            return;
        }
        int n = (int)output.ElementCount;
        if (n == 0) return;
        var layout = new SelectLayout { Rank = output.Rank };
        for (int d = 0; d < output.Rank; d++) layout.Shape.Set(d, output.Shape[d]);
        Strides(output.Shape, condition.Shape, ref layout.StrideCondition);
        Strides(output.Shape, a.Shape, ref layout.StrideA);
        Strides(output.Shape, b.Shape, ref layout.StrideB);
        lock (Sync)
        {
            var (c, x, z, y) = (In(condition), In(a), In(b), Out(output));
            switch (output.DType.SizeOf())
            {
                case 1:
                    (_selectU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, SelectLayout>(Kernels.SelectU8))(n, c, x, z, y, layout);
                    break;
                case 4:
                    (_selectI32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<int>, SelectLayout>(Kernels.SelectI32))(n, c, x.Cast<int>(), z.Cast<int>(), y.Cast<int>(), layout);
                    break;
                default:
                    (_selectI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<long>, ArrayView<long>, ArrayView<long>, SelectLayout>(Kernels.SelectI64))(n, c, x.Cast<long>(), z.Cast<long>(), y.Cast<long>(), layout);
                    break;
            }
            Accelerator.Synchronize();
        }
    }

    public void Gather(Tensor input, Tensor indices, int axis, Tensor output)
    {
        var (outer, n, inner) = AroundAxis(input.Shape, axis);
        if (!Fits(input) || !Fits(output) || !InRange(indices, n))
        {
            _host.Gather(input, indices, axis, output);
            return;
        }
        int count = (int)output.ElementCount;
        if (count == 0) return;
        var layout = new IndexLayout { N = n, Count = (int)indices.ElementCount, Inner = (int)inner };
        lock (Sync)
        {
            var (x, ix, y) = (In(input), In(indices).Cast<long>(), Out(output));
            switch (input.DType.SizeOf())
            {
                case 1:
                    (_gatherU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<long>, ArrayView<byte>, IndexLayout>(Kernels.GatherU8))(count, x, ix, y, layout);
                    break;
                case 4:
                    (_gatherI32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<long>, ArrayView<int>, IndexLayout>(Kernels.GatherI32))(count, x.Cast<int>(), ix, y.Cast<int>(), layout);
                    break;
                default:
                    (_gatherI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, IndexLayout>(Kernels.GatherI64))(count, x.Cast<long>(), ix, y.Cast<long>(), layout);
                    break;
            }
            Accelerator.Synchronize();
        }
    }

    public void ScatterAdd(Tensor source, Tensor indices, int axis, Tensor output)
    {
        var (outer, n, inner) = AroundAxis(output.Shape, axis);
        if (!Fits(source) || !Fits(output) || source.DType is DType.Bool || !InRange(indices, n))
        {
            _host.ScatterAdd(source, indices, axis, output);
            return;
        }
        int count = (int)output.ElementCount;
        if (count == 0) return;
        lock (Sync)
        {
            if (source.ElementCount == 0)
            {
                Zero(output);
                return;
            }
            var layout = new IndexLayout { N = n, Count = (int)indices.ElementCount, Inner = (int)inner };
            var (x, ix, y) = (In(source), In(indices).Cast<long>(), Out(output));
            switch (source.DType)
            {
                case DType.Float32:
                    (_scatterAddF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, IndexLayout>(Kernels.ScatterAddF32))(count, x.Cast<float>(), ix, y.Cast<float>(), layout);
                    break;
                case DType.Float64:
                    (_scatterAddF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<long>, ArrayView<double>, IndexLayout>(Kernels.ScatterAddF64))(count, x.Cast<double>(), ix, y.Cast<double>(), layout);
                    break;
                default:
                    (_scatterAddI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, ArrayView<long>, IndexLayout>(Kernels.ScatterAddI64))(count, x.Cast<long>(), ix, y.Cast<long>(), layout);
                    break;
            }
            Accelerator.Synchronize();
        }
    }

    /// <summary>Runs the strided copy for <paramref name="count"/> iteration elements (the caller holds the lock).</summary>
    private void CopyLocked(Tensor input, Tensor output, CopyLayout layout, long count)
    {
        if (count == 0) return;
        var (x, y) = (In(input), Out(output));
        switch (input.DType.SizeOf())
        {
            case 1:
                (_copyU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, CopyLayout>(Kernels.CopyU8))((int)count, x, y, layout);
                break;
            case 4:
                (_copyI32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, CopyLayout>(Kernels.CopyI32))((int)count, x.Cast<int>(), y.Cast<int>(), layout);
                break;
            default:
                (_copyI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>, CopyLayout>(Kernels.CopyI64))((int)count, x.Cast<long>(), y.Cast<long>(), layout);
                break;
        }
        Accelerator.Synchronize();
    }

    /// <summary>Zeroes a tensor's device bytes (the caller holds the lock).</summary>
    private void Zero(Tensor output)
    {
        if (output.ByteCount == 0) return;
        Out(output).SubView(0, output.ByteCount).MemSetToZero(Accelerator.DefaultStream);
        Accelerator.Synchronize();
    }

    /// <summary>Whether every index lies in [-n, n): reads the indices on the host (they are small and often there already).</summary>
    private static bool InRange(Tensor indices, int n)
    {
        foreach (long ix in indices.ReadOnlySpan<long>())
            if (ix < -n || ix >= n) return false;
        return true;
    }

    private static CopyLayout Iterate(Shape shape)
    {
        var layout = new CopyLayout { Rank = shape.Rank };
        for (int d = 0; d < shape.Rank; d++) layout.Shape.Set(d, shape[d]);
        return layout;
    }

    private static void SetContiguous(Shape shape, ref Dims8 strides)
    {
        var s = shape.Strides();
        for (int d = 0; d < s.Length; d++) strides.Set(d, (int)s[d]);
    }

    /// <summary>A slice's element strides in <paramref name="strides"/> and the offset of its first element.</summary>
    private static int Stepped(Shape shape, int[] starts, int[] steps, ref Dims8 strides)
    {
        var s = shape.Strides();
        long start = 0;
        for (int d = 0; d < s.Length; d++)
        {
            start += starts[d] * s[d];
            strides.Set(d, (int)(s[d] * steps[d]));
        }
        return (int)start;
    }

    private static (long Outer, int N, long Inner) AroundAxis(Shape shape, int axis)
    {
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Rank; d++) inner *= shape[d];
        return (outer, shape[axis], inner);
    }
}
