using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// Matrix products C = op(A) · op(B) over row-major storage, where op is the identity or a transpose read in place
/// (whole operands are never transposed into copies). Three paths:
/// <list type="bullet">
/// <item>packed (MatMulKernels.Packed.cs): B is packed into <see cref="Kc"/> × <see cref="Nc"/> panels of
/// register-tile-wide strips, A into <see cref="Mc"/> × <see cref="Kc"/> blocks of register-tile-tall strips, and an
/// 8 × 2-vector (Vector512) or 4 × 2-vector (Vector256) FMA micro-kernel streams both; row blocks run in parallel
/// (up to <see cref="EngineThreads.Count"/>) when the product is large enough to pay for it;</item>
/// <item>narrow (n smaller than a tile, e.g. matrix-vector and dot): each C element is one
/// <see cref="TensorPrimitives.Dot{T}(ReadOnlySpan{T}, ReadOnlySpan{T})"/> of contiguous rows;</item>
/// <item>short (fewer rows than a tile, B not transposed): C rows accumulate a[i,k]·B[k,:] with
/// <see cref="TensorPrimitives.MultiplyAdd{T}(ReadOnlySpan{T}, T, ReadOnlySpan{T}, Span{T})"/>.</item>
/// </list>
/// </summary>
internal static unsafe partial class MatMulKernels
{
    private const int Mr = 4;
    internal const int Kc = 256;
    internal const int Nc = 2048;
    internal const int Mc = 128;

    /// <summary>
    /// Batched product with NumPy conventions: leading (batch) dims of a and b broadcast; a rank-1 a is the matrix
    /// [1, k] and a rank-1 b is [k, 1] (before the transpose flags apply). c holds batch × m × n, row-major.
    /// </summary>
    public static void MatMul<T>(ReadOnlySpan<T> a, ReadOnlySpan<int> aDims, bool ta, ReadOnlySpan<T> b, ReadOnlySpan<int> bDims, bool tb, Span<T> c)
        where T : unmanaged, INumber<T>
    {
        int ra = aDims.Length == 1 ? 1 : aDims[^2], ca = aDims[^1];
        int rb = bDims.Length == 1 ? bDims[0] : bDims[^2], cb = bDims.Length == 1 ? 1 : bDims[^1];
        int m = ta ? ca : ra, k = ta ? ra : ca, n = tb ? rb : cb;
        var aBatch = aDims[..Math.Max(aDims.Length - 2, 0)];
        var bBatch = bDims[..Math.Max(bDims.Length - 2, 0)];
        int rank = Math.Max(aBatch.Length, bBatch.Length);
        Span<int> dims = stackalloc int[rank];
        Span<long> aStride = stackalloc long[rank], bStride = stackalloc long[rank];
        long sa = 1, sb = 1, count = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            int ia = i - (rank - aBatch.Length), ib = i - (rank - bBatch.Length);
            int da = ia >= 0 ? aBatch[ia] : 1, db = ib >= 0 ? bBatch[ib] : 1;
            dims[i] = da == 1 ? db : da; // the op checked that they broadcast
            aStride[i] = da == 1 ? 0 : sa;
            bStride[i] = db == 1 ? 0 : sb;
            sa *= da;
            sb *= db;
            count *= dims[i];
        }
        int aSize = ra * ca, bSize = rb * cb, cSize = m * n;
        // Empty products: no per-batch loop, which for a huge batch of empty matrices would spin for nothing.
        if (cSize == 0) return;
        if (k == 0)
        {
            c[..checked((int)(count * cSize))].Clear();
            return;
        }
        Span<int> index = stackalloc int[rank];
        long ao = 0, bo = 0;
        for (long t = 0; t < count; t++)
        {
            Gemm(a.Slice((int)(ao * aSize), aSize), ta, b.Slice((int)(bo * bSize), bSize), tb, c.Slice((int)(t * cSize), cSize), m, n, k);
            for (int d = rank - 1; d >= 0; d--)
            {
                ao += aStride[d];
                bo += bStride[d];
                if (++index[d] < dims[d]) break;
                ao -= aStride[d] * dims[d];
                bo -= bStride[d] * dims[d];
                index[d] = 0;
            }
        }
    }

    /// <summary>C[m, n] = op(A)[m, k] · op(B)[k, n]; A is stored [k, m] when <paramref name="ta"/>, B [n, k] when <paramref name="tb"/>.</summary>
    public static void Gemm<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        // The tiled kernel reads A and B through pointers: their lengths must cover the product's operands.
        KernelBounds.Require(m >= 0 && n >= 0 && k >= 0 && a.Length >= (long)m * k && b.Length >= (long)k * n && c.Length >= (long)m * n,
            "matrix product operand sizes");
        c = c[..(m * n)];
        c.Clear();
        if (m == 0 || n == 0 || k == 0) return;
        int w = VectorWidth<T>();
        if (w == 0 || n < 2 * w) Narrow(a, ta, b, tb, c, m, n, k);
        else if (m < Mr && !tb) Short(a, ta, b, c, m, n, k);
        else Tiled(a, ta, b, tb, c, m, n, k, w);
    }

    /// <summary>Elements per vector of the widest accelerated vector type for T, or 0 when none is.</summary>
    private static int VectorWidth<T>() where T : unmanaged
    {
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported) return Vector512<T>.Count;
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported) return Vector256<T>.Count;
        return 0;
    }

    private static void Narrow<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        if (ta)
        {
            NarrowTransposedA(a, b, tb, c, m, n, k);
            return;
        }
        // Columns of op(B) as contiguous rows: B itself when transposed, else gathered once.
        T[]? columns = tb ? null : ArrayPool<T>.Shared.Rent(n * k);
        try
        {
            if (columns is not null)
                for (int q = 0; q < k; q++)
                    for (int j = 0; j < n; j++) columns[j * k + q] = b[q * n + j];
            ReadOnlySpan<T> bt = columns is null ? b : columns.AsSpan(0, n * k);
            for (int i = 0; i < m; i++)
            {
                var ai = a.Slice(i * k, k);
                for (int j = 0; j < n; j++) c[i * n + j] = TensorPrimitives.Dot(ai, bt.Slice(j * k, k));
            }
        }
        finally
        {
            if (columns is not null) ArrayPool<T>.Shared.Return(columns);
        }
    }

    /// <summary>
    /// op(A) = Aᵀ with A stored [k, m] (the VJP of a matrix-vector product): column j of C is a sum of whole rows of A
    /// scaled by op(B)[q, j], so every read of A is contiguous instead of one strided gather per output row.
    /// </summary>
    private static void NarrowTransposedA<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        T[]? rented = n == 1 ? null : ArrayPool<T>.Shared.Rent(m);
        try
        {
            for (int j = 0; j < n; j++)
            {
                var column = rented is null ? c[..m] : rented.AsSpan(0, m);
                column.Clear();
                for (int q = 0; q < k; q++)
                {
                    var bqj = tb ? b[j * k + q] : b[q * n + j];
                    TensorPrimitives.MultiplyAdd(a.Slice(q * m, m), bqj, column, column);
                }
                if (rented is not null)
                    for (int i = 0; i < m; i++) c[i * n + j] = column[i];
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<T>.Shared.Return(rented);
        }
    }

    private static void Short<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < m; i++)
        {
            var ci = c.Slice(i * n, n);
            for (int q = 0; q < k; q++)
            {
                var aiq = ta ? a[q * m + i] : a[i * k + q];
                TensorPrimitives.MultiplyAdd(b.Slice(q * n, n), aiq, ci, ci);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> acc)
    {
        if (typeof(T) == typeof(float))
            return Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        return x * y + acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma<T>(Vector256<T> x, Vector256<T> y, Vector256<T> acc)
    {
        // Without FMA hardware the fused form is emulated slowly; a separate multiply and add is then faster.
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported && typeof(T) == typeof(float))
            return Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported && typeof(T) == typeof(double))
            return Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        return x * y + acc;
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}
