using System.Numerics;
using System.Runtime.InteropServices;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public sealed partial class CpuBackend
{
    public void Unary(UnaryKernel kernel, Tensor input, Tensor output)
    {
        switch (input.DType)
        {
            case DType.Float32: ElementwiseKernels.Unary(kernel, input.ReadOnlySpan<float>(), output.Span<float>()); break;
            case DType.Float64: ElementwiseKernels.Unary(kernel, input.ReadOnlySpan<double>(), output.Span<double>()); break;
            case DType.Int64: ElementwiseKernels.UnaryInt64(kernel, input.ReadOnlySpan<long>(), output.Span<long>()); break;
            default: ElementwiseKernels.LogicalNot(input.ReadOnlySpan<bool>(), output.Span<bool>()); break;
        }
    }

    public void Binary(BinaryKernel kernel, Tensor a, Tensor b, Tensor output)
    {
        bool predicate = kernel >= BinaryKernel.Eq;
        switch (a.DType)
        {
            case DType.Float32 when predicate: Predicate<float>(kernel, a, b, output); break;
            case DType.Float64 when predicate: Predicate<double>(kernel, a, b, output); break;
            case DType.Int64 when predicate: Predicate<long>(kernel, a, b, output); break;
            case DType.Float32: Arithmetic<float>(kernel, a, b, output); break;
            case DType.Float64: Arithmetic<double>(kernel, a, b, output); break;
            case DType.Int64: Arithmetic<long>(kernel, a, b, output); break;
            default: LogicalBlocks(kernel, a, b, output); break;
        }
    }

    private static void Arithmetic<T>(BinaryKernel kernel, Tensor a, Tensor b, Tensor output) where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        var loop = new BroadcastLoop(output.Shape, a.Shape, b.Shape);
        ReadOnlySpan<T> x = a.ReadOnlySpan<T>(), z = b.ReadOnlySpan<T>();
        var y = output.Span<T>();
        int n = loop.BlockLength;
        bool xs = loop.InputIsScalar[0], zs = loop.InputIsScalar[1];
        Span<long> off = stackalloc long[2];
        for (long block = 0; block < loop.BlockCount; block++)
        {
            loop.Offsets(block, off);
            ElementwiseKernels.Arithmetic(kernel, x.Slice((int)off[0], xs ? 1 : n), xs, z.Slice((int)off[1], zs ? 1 : n), zs, y.Slice((int)(block * n), n));
        }
    }

    private static void Predicate<T>(BinaryKernel kernel, Tensor a, Tensor b, Tensor output) where T : unmanaged, IComparisonOperators<T, T, bool>
    {
        var loop = new BroadcastLoop(output.Shape, a.Shape, b.Shape);
        ReadOnlySpan<T> x = a.ReadOnlySpan<T>(), z = b.ReadOnlySpan<T>();
        var y = output.Span<bool>();
        int n = loop.BlockLength;
        bool xs = loop.InputIsScalar[0], zs = loop.InputIsScalar[1];
        Span<long> off = stackalloc long[2];
        for (long block = 0; block < loop.BlockCount; block++)
        {
            loop.Offsets(block, off);
            ElementwiseKernels.Predicate(kernel, x.Slice((int)off[0], xs ? 1 : n), xs, z.Slice((int)off[1], zs ? 1 : n), zs, y.Slice((int)(block * n), n));
        }
    }

    private static void LogicalBlocks(BinaryKernel kernel, Tensor a, Tensor b, Tensor output)
    {
        var loop = new BroadcastLoop(output.Shape, a.Shape, b.Shape);
        ReadOnlySpan<bool> x = a.ReadOnlySpan<bool>(), z = b.ReadOnlySpan<bool>();
        var y = output.Span<bool>();
        int n = loop.BlockLength;
        bool xs = loop.InputIsScalar[0], zs = loop.InputIsScalar[1];
        Span<long> off = stackalloc long[2];
        for (long block = 0; block < loop.BlockCount; block++)
        {
            loop.Offsets(block, off);
            ElementwiseKernels.Logical(kernel, x.Slice((int)off[0], xs ? 1 : n), xs, z.Slice((int)off[1], zs ? 1 : n), zs, y.Slice((int)(block * n), n));
        }
    }

    public void Where(Tensor condition, Tensor a, Tensor b, Tensor output)
    {
        switch (output.DType)
        {
            case DType.Float32: Select<float>(condition, a, b, output); break;
            case DType.Float64: Select<double>(condition, a, b, output); break;
            case DType.Int64: Select<long>(condition, a, b, output); break;
            default: Select<bool>(condition, a, b, output); break;
        }
    }

    private static void Select<T>(Tensor condition, Tensor a, Tensor b, Tensor output) where T : unmanaged
    {
        var loop = new BroadcastLoop(output.Shape, condition.Shape, a.Shape, b.Shape);
        ReadOnlySpan<bool> c = condition.ReadOnlySpan<bool>();
        ReadOnlySpan<T> x = a.ReadOnlySpan<T>(), z = b.ReadOnlySpan<T>();
        var y = output.Span<T>();
        int n = loop.BlockLength;
        var scalar = loop.InputIsScalar;
        Span<long> off = stackalloc long[3];
        for (long block = 0; block < loop.BlockCount; block++)
        {
            loop.Offsets(block, off);
            var dst = y.Slice((int)(block * n), n);
            for (int i = 0; i < n; i++)
            {
                bool pick = c[(int)off[0] + (scalar[0] ? 0 : i)];
                dst[i] = pick ? x[(int)off[1] + (scalar[1] ? 0 : i)] : z[(int)off[2] + (scalar[2] ? 0 : i)];
            }
        }
    }

    public void BroadcastTo(Tensor input, Tensor output)
    {
        int size = input.DType.SizeOf();
        var x = input.Bytes();
        var y = output.Bytes();
        // A single value (the VJP of every full reduction, scalar seeds) is one typed fill, vectorised by the runtime.
        if (input.ElementCount == 1)
        {
            FillWith(x[..size], y, size);
            return;
        }
        var loop = new BroadcastLoop(output.Shape, input.Shape);
        int n = loop.BlockLength;
        bool scalar = loop.InputIsScalar[0];
        Span<long> off = stackalloc long[1];
        for (long block = 0; block < loop.BlockCount; block++)
        {
            loop.Offsets(block, off);
            var dst = y.Slice((int)(block * n * size), n * size);
            var src = x.Slice((int)(off[0] * size), scalar ? size : n * size);
            if (scalar) FillWith(src, dst, size);
            else src.CopyTo(dst);
        }
    }

    /// <summary>Fills <paramref name="dst"/> with copies of the one element in <paramref name="value"/> (size bytes).</summary>
    private static void FillWith(ReadOnlySpan<byte> value, Span<byte> dst, int size)
    {
        switch (size)
        {
            case 1: dst.Fill(value[0]); break;
            case 4: MemoryMarshal.Cast<byte, int>(dst).Fill(MemoryMarshal.Read<int>(value)); break;
            case 8: MemoryMarshal.Cast<byte, long>(dst).Fill(MemoryMarshal.Read<long>(value)); break;
            default:
                for (int i = 0; i < dst.Length; i += size) value.CopyTo(dst.Slice(i, size));
                break;
        }
    }

    public void Reduce(ReduceKernel kernel, Tensor input, int[] axes, Tensor output)
    {
        var dims = input.Shape.Dims;
        switch (input.DType)
        {
            case DType.Float32: ReduceKernels.Reduce(kernel, input.ReadOnlySpan<float>(), dims, axes, output.Span<float>()); break;
            case DType.Float64: ReduceKernels.Reduce(kernel, input.ReadOnlySpan<double>(), dims, axes, output.Span<double>()); break;
            case DType.Int64: ReduceKernels.Reduce(kernel, input.ReadOnlySpan<long>(), dims, axes, output.Span<long>()); break;
            default: throw new NotSupportedException("bool tensors are cast before reducing");
        }
    }
}
