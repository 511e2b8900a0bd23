using System.Numerics;
using System.Runtime.InteropServices;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Below this many elements an elementwise op runs on the calling thread (Parallel.For costs ~µs).</summary>
    private const long ParallelElements = 1 << 17;

    /// <summary>
    /// The same for arithmetic (add, mul...): a pass that only moves bytes gains nothing from a second core while the
    /// data sits in cache, and waking a pool thread costs 0.05-0.2 ms on these VMs (W6's 1M-element multiply: 0.15 ms
    /// on one thread, 0.15-0.19 ms split). Above ~8 MB the second core's memory bandwidth pays.
    /// </summary>
    private const long ParallelArithmeticElements = 1 << 21;

    public void Unary(UnaryKernel kernel, Tensor input, Tensor output)
    {
        if (Split(output.ElementCount, out int chunk) && input.DType is DType.Float32 or DType.Float64)
        {
            // Large tensors: contiguous chunks on up to EngineThreads.Count threads (transcendentals are compute-bound,
            // and two cores also move more bytes per second than one).
            nint x = input.Pointer, y = output.Pointer;
            int n = (int)output.ElementCount;
            bool single = input.DType == DType.Float32;
            Parallel.For(0, (n + chunk - 1) / chunk, EngineThreads.Options(EngineThreads.Count), c =>
            {
                int start = c * chunk, length = Math.Min(chunk, n - start);
                if (single) ElementwiseKernels.Unary(kernel, new ReadOnlySpan<float>((float*)x + start, length), new Span<float>((float*)y + start, length));
                else ElementwiseKernels.Unary(kernel, new ReadOnlySpan<double>((double*)x + start, length), new Span<double>((double*)y + start, length));
            });
            return;
        }
        switch (input.DType)
        {
            case DType.Float32: ElementwiseKernels.Unary(kernel, input.ReadOnlySpan<float>(), output.Span<float>()); break;
            case DType.Float64: ElementwiseKernels.Unary(kernel, input.ReadOnlySpan<double>(), output.Span<double>()); break;
            case DType.Int64: ElementwiseKernels.UnaryInt64(kernel, input.ReadOnlySpan<long>(), output.Span<long>()); break;
            default: ElementwiseKernels.LogicalNot(input.ReadOnlySpan<bool>(), output.Span<bool>()); break;
        }
    }

    public void SinCos(Tensor input, Tensor sin, Tensor cos)
    {
        nint x = input.Pointer, s = sin.Pointer, c = cos.Pointer;
        int n = checked((int)input.ElementCount);
        bool single = input.DType == DType.Float32;
        void Run(int start, int length)
        {
            if (single)
                ElementwiseKernels.SinCos(new ReadOnlySpan<float>((float*)x + start, length), new Span<float>((float*)s + start, length), new Span<float>((float*)c + start, length));
            else
                ElementwiseKernels.SinCos(new ReadOnlySpan<double>((double*)x + start, length), new Span<double>((double*)s + start, length), new Span<double>((double*)c + start, length));
        }
        if (!Split(n, out int chunk))
        {
            Run(0, n);
            return;
        }
        Parallel.For(0, (n + chunk - 1) / chunk, EngineThreads.Options(EngineThreads.Count),
            k => Run(k * chunk, Math.Min(chunk, n - k * chunk)));
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
        // Equal shapes or a single-value operand (most calls): one kernel call, no broadcast plan to build.
        if (Simple(a, b, output, out bool aOne, out bool bOne))
        {
            if (output.ElementCount >= ParallelArithmeticElements && Split(output.ElementCount, out int chunk))
            {
                nint pa = a.Pointer, pb = b.Pointer, py = output.Pointer;
                int count = (int)output.ElementCount;
                bool oneA = aOne, oneB = bOne;
                Parallel.For(0, (count + chunk - 1) / chunk, EngineThreads.Options(EngineThreads.Count), c =>
                {
                    int start = c * chunk, length = Math.Min(chunk, count - start);
                    ElementwiseKernels.Arithmetic(kernel,
                        new ReadOnlySpan<T>((T*)pa + (oneA ? 0 : start), oneA ? 1 : length), oneA,
                        new ReadOnlySpan<T>((T*)pb + (oneB ? 0 : start), oneB ? 1 : length), oneB,
                        new Span<T>((T*)py + start, length));
                });
                return;
            }
            ElementwiseKernels.Arithmetic(kernel, a.ReadOnlySpan<T>(), aOne, b.ReadOnlySpan<T>(), bOne, output.Span<T>());
            return;
        }
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
        if (Simple(a, b, output, out bool aOne, out bool bOne))
        {
            ElementwiseKernels.Predicate(kernel, a.ReadOnlySpan<T>(), aOne, b.ReadOnlySpan<T>(), bOne, output.Span<bool>());
            return;
        }
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

    /// <summary>
    /// True when each input either has the output's shape or holds one value (which then broadcasts as a scalar);
    /// <paramref name="aOne"/>/<paramref name="bOne"/> say which hold one value. Needs a non-empty output.
    /// </summary>
    private static bool Simple(Tensor a, Tensor b, Tensor output, out bool aOne, out bool bOne)
    {
        long n = output.ElementCount;
        aOne = a.ElementCount == 1 && n != 1;
        bOne = b.ElementCount == 1 && n != 1;
        return n > 0 && (aOne || a.Shape == output.Shape) && (bOne || b.Shape == output.Shape);
    }

    /// <summary>Whether an elementwise pass over <paramref name="count"/> elements is worth splitting, and the chunk size.</summary>
    private static bool Split(long count, out int chunk)
    {
        int threads = EngineThreads.Count;
        chunk = 0;
        if (threads < 2 || count < ParallelElements) return false;
        // A few chunks per thread even out uneven progress; multiples of 64 elements keep chunks cache-line aligned.
        chunk = (int)((count / (threads * 4) + 63) / 64 * 64);
        return true;
    }

    private static bool Fits(Tensor input, Tensor output) => input.ElementCount == 1 || input.Shape == output.Shape;

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
        long count = output.ElementCount;
        if (count > 0 && Fits(condition, output) && Fits(a, output) && Fits(b, output))
        {
            // Every operand full-size or a single value: one pass, no broadcast plan.
            ReadOnlySpan<bool> cs = condition.ReadOnlySpan<bool>();
            ReadOnlySpan<T> xs = a.ReadOnlySpan<T>(), zs = b.ReadOnlySpan<T>();
            var ys = output.Span<T>();
            int ci = cs.Length == ys.Length ? 1 : 0, xi = xs.Length == ys.Length ? 1 : 0, zi = zs.Length == ys.Length ? 1 : 0;
            for (int i = 0; i < ys.Length; i++) ys[i] = cs[i * ci] ? xs[i * xi] : zs[i * zi];
            return;
        }
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
