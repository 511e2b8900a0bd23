using System.Numerics;
using System.Numerics.Tensors;
using AutogradService.Engine.Backends;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// Reductions along any axes without copying the input. A contiguous run of reduced axes is seen as
/// [outer, reduced, inner]: inner == 1 reduces contiguous rows (vectorised per row), otherwise whole inner rows are
/// combined (vectorised across the row). Scattered axes fall back to one pass with an index odometer.
/// </summary>
internal static class ReduceKernels
{
    public static void Reduce<T>(ReduceKernel kernel, ReadOnlySpan<T> x, ReadOnlySpan<int> dims, int[] axes, Span<T> y)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        if (x.Length == 0)
        {
            y.Fill(Identity<T>(kernel));
            return;
        }
        bool contiguous = axes[^1] - axes[0] == axes.Length - 1;
        if (contiguous)
        {
            long outer = 1, reduced = 1, inner = 1;
            for (int i = 0; i < dims.Length; i++)
            {
                if (i < axes[0]) outer *= dims[i];
                else if (i <= axes[^1]) reduced *= dims[i];
                else inner *= dims[i];
            }
            int r = (int)reduced, n = (int)inner;
            for (int o = 0; o < outer; o++)
            {
                var block = x.Slice(o * r * n, r * n);
                if (n == 1)
                {
                    y[o] = outer == 1 ? WholeBlocked(kernel, block) : Whole(kernel, block);
                    continue;
                }
                var dst = y.Slice(o * n, n);
                block[..n].CopyTo(dst);
                for (int k = 1; k < r; k++) Combine(kernel, dst, block.Slice(k * n, n));
            }
            return;
        }
        Scattered(kernel, x, dims, axes, y);
    }

    private static void Scattered<T>(ReduceKernel kernel, ReadOnlySpan<T> x, ReadOnlySpan<int> dims, int[] axes, Span<T> y)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        y.Fill(Identity<T>(kernel));
        int rank = dims.Length;
        // Output stride of each input axis (0 for reduced axes).
        Span<long> outStride = stackalloc long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            if (Array.IndexOf(axes, i) >= 0) { outStride[i] = 0; continue; }
            outStride[i] = s;
            s *= dims[i];
        }
        Span<int> index = stackalloc int[rank];
        long offset = 0;
        for (int i = 0; i < x.Length; i++)
        {
            y[(int)offset] = Step(kernel, y[(int)offset], x[i]);
            for (int d = rank - 1; d >= 0; d--)
            {
                offset += outStride[d];
                if (++index[d] < dims[d]) break;
                offset -= outStride[d] * dims[d];
                index[d] = 0;
            }
        }
    }

    /// <summary>Elements per block of a long whole-tensor reduction (a fixed size: the result never depends on threads).</summary>
    internal const int Block = 1 << 18;

    /// <summary>
    /// One value from a whole contiguous tensor. Long ones are reduced in fixed blocks, the blocks' results combined in
    /// order; the blocks run on up to <see cref="EngineThreads.Count"/> threads, each reading what it most likely wrote
    /// itself in the elementwise pass before (W6's sums: 0.09 ms on one thread after a two-thread sin, 0.04 split).
    /// </summary>
    public static T WholeBlocked<T>(ReduceKernel kernel, ReadOnlySpan<T> x) where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        if (x.Length < 2 * Block) return Whole(kernel, x);
        int blocks = (x.Length + Block - 1) / Block;
        Span<T> partial = blocks <= 256 ? stackalloc T[blocks] : new T[blocks];
        if (EngineThreads.Count < 2)
        {
            for (int b = 0; b < blocks; b++) partial[b] = Whole(kernel, x.Slice(b * Block, Math.Min(Block, x.Length - b * Block)));
        }
        else
        {
            var results = new T[blocks];
            unsafe
            {
                fixed (T* p = x)
                {
                    nint start = (nint)p;
                    int length = x.Length;
                    Parallel.For(0, blocks, EngineThreads.Options(EngineThreads.Count), b =>
                        results[b] = Whole(kernel, new ReadOnlySpan<T>((T*)start + (long)b * Block, Math.Min(Block, length - b * Block))));
                }
            }
            results.CopyTo(partial);
        }
        return Whole(kernel, (ReadOnlySpan<T>)partial);
    }

    private static T Whole<T>(ReduceKernel kernel, ReadOnlySpan<T> x) where T : unmanaged, INumber<T>, IMinMaxValue<T> => kernel switch
    {
        ReduceKernel.Sum => TensorPrimitives.Sum(x),
        ReduceKernel.Prod => TensorPrimitives.Product(x),
        ReduceKernel.Max => TensorPrimitives.Max(x),
        ReduceKernel.Min => TensorPrimitives.Min(x),
        _ => throw new NotSupportedException(kernel.ToString()),
    };

    private static void Combine<T>(ReduceKernel kernel, Span<T> acc, ReadOnlySpan<T> row) where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        switch (kernel)
        {
            case ReduceKernel.Sum: TensorPrimitives.Add(acc, row, acc); break;
            case ReduceKernel.Prod: TensorPrimitives.Multiply(acc, row, acc); break;
            case ReduceKernel.Max: TensorPrimitives.Max(acc, row, acc); break;
            case ReduceKernel.Min: TensorPrimitives.Min(acc, row, acc); break;
        }
    }

    private static T Step<T>(ReduceKernel kernel, T acc, T v) where T : INumber<T> => kernel switch
    {
        ReduceKernel.Sum => acc + v,
        ReduceKernel.Prod => acc * v,
        ReduceKernel.Max => T.IsNaN(v) || T.IsNaN(acc) ? acc + v : T.Max(acc, v),
        _ => T.IsNaN(v) || T.IsNaN(acc) ? acc + v : T.Min(acc, v),
    };

    private static T Identity<T>(ReduceKernel kernel) where T : INumber<T>, IMinMaxValue<T> => kernel switch
    {
        ReduceKernel.Sum => T.Zero,
        ReduceKernel.Prod => T.One,
        ReduceKernel.Max => T.CreateSaturating(double.NegativeInfinity),
        _ => T.CreateSaturating(double.PositiveInfinity),
    };
}
