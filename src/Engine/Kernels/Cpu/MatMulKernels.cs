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
/// <item>tiled: B is packed block by block into a zero-padded panel of at most <see cref="Kc"/> × <see cref="Nc"/>
/// (it stays in L2) and a register tile of 4 rows × 2 vectors (Vector512 where accelerated, else Vector256) runs
/// down it with FMAs, adding into C;</item>
/// <item>narrow (n smaller than a tile, e.g. matrix-vector and dot): each C element is one
/// <see cref="TensorPrimitives.Dot{T}(ReadOnlySpan{T}, ReadOnlySpan{T})"/> of contiguous rows;</item>
/// <item>short (fewer rows than a tile, B not transposed): C rows accumulate a[i,k]·B[k,:] with
/// <see cref="TensorPrimitives.MultiplyAdd{T}(ReadOnlySpan{T}, T, ReadOnlySpan{T}, Span{T})"/>.</item>
/// </list>
/// </summary>
internal static class MatMulKernels
{
    private const int Mr = 4;
    internal const int Kc = 256;
    internal const int Nc = 512;

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

    /// <summary>Copies row i of op(A) into a contiguous buffer (a slice of A when it is not transposed).</summary>
    private static ReadOnlySpan<T> RowOfA<T>(ReadOnlySpan<T> a, bool ta, int m, int k, int i, Span<T> buffer)
    {
        if (!ta) return a.Slice(i * k, k);
        for (int q = 0; q < k; q++) buffer[q] = a[q * m + i];
        return buffer[..k];
    }

    private static void Narrow<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k)
        where T : unmanaged, INumber<T>
    {
        // Columns of op(B) as contiguous rows: B itself when transposed, else gathered once.
        T[]? columns = tb ? null : ArrayPool<T>.Shared.Rent(n * k);
        T[]? row = ta ? ArrayPool<T>.Shared.Rent(k) : null;
        try
        {
            if (columns is not null)
                for (int q = 0; q < k; q++)
                    for (int j = 0; j < n; j++) columns[j * k + q] = b[q * n + j];
            ReadOnlySpan<T> bt = columns is null ? b : columns.AsSpan(0, n * k);
            for (int i = 0; i < m; i++)
            {
                var ai = RowOfA(a, ta, m, k, i, row);
                for (int j = 0; j < n; j++) c[i * n + j] = TensorPrimitives.Dot(ai, bt.Slice(j * k, k));
            }
        }
        finally
        {
            if (columns is not null) ArrayPool<T>.Shared.Return(columns);
            if (row is not null) ArrayPool<T>.Shared.Return(row);
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

    private static void Tiled<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k, int w)
        where T : unmanaged, INumber<T>
    {
        int nr = 2 * w;
        bool wide = w == Vector512<T>.Count && Vector512.IsHardwareAccelerated;
        int ncMax = Math.Min(Nc, RoundUp(n, nr)), kcMax = Math.Min(Kc, k);
        var rented = ArrayPool<T>.Shared.Rent(kcMax * ncMax);
        // Where A(i, q) lives: i * rowStep + q * colStep.
        int rowStep = ta ? 1 : k, colStep = ta ? m : 1;
        try
        {
            var panel = rented.AsSpan(0, kcMax * ncMax);
            for (int n0 = 0; n0 < n; n0 += Nc)
            {
                int nc = Math.Min(Nc, n - n0), ncPad = RoundUp(nc, nr);
                for (int k0 = 0; k0 < k; k0 += Kc)
                {
                    int kc = Math.Min(Kc, k - k0);
                    Pack(b, tb, n, k, k0, kc, n0, nc, ncPad, panel);
                    for (int i0 = 0; i0 < m; i0 += Mr)
                    {
                        var tile = new Tile(i0, Math.Min(Mr, m - i0), k0 * colStep, rowStep, colStep, kc, ncPad);
                        for (int j = 0; j < ncPad; j += nr)
                        {
                            int cols = Math.Min(nr, nc - j);
                            if (wide) Tile512(a, panel, c, n, n0 + j, j, cols, tile);
                            else Tile256(a, panel, c, n, n0 + j, j, cols, tile);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rented);
        }
    }

    /// <summary>panel[q, j] = op(B)[k0 + q, n0 + j] for j &lt; nc, zero up to ncPad.</summary>
    private static void Pack<T>(ReadOnlySpan<T> b, bool tb, int n, int k, int k0, int kc, int n0, int nc, int ncPad, Span<T> panel)
        where T : unmanaged, INumber<T>
    {
        for (int q = 0; q < kc; q++)
        {
            var dst = panel.Slice(q * ncPad, ncPad);
            if (!tb)
            {
                b.Slice((k0 + q) * n + n0, nc).CopyTo(dst);
            }
            else
            {
                for (int j = 0; j < nc; j++) dst[j] = b[(n0 + j) * k + k0 + q];
            }
            dst[nc..].Clear();
        }
    }

    /// <summary>Where one register tile reads A: first row, valid rows, offsets and the panel's extent.</summary>
    private readonly record struct Tile(int Row, int Rows, int ColOffset, int RowStep, int ColStep, int Kc, int PanelWidth)
    {
        /// <summary>Offset of A(row r of the tile, k0); rows past the edge repeat the last valid row (results dropped).</summary>
        public int Start(int r) => Math.Min(Row + r, Row + Rows - 1) * RowStep + ColOffset;
    }

    private static void Tile512<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> panel, Span<T> c, int ldc, int c0, int j, int cols, Tile t)
        where T : unmanaged, INumber<T>
    {
        int w = Vector512<T>.Count;
        ref T pa = ref MemoryMarshal.GetReference(a);
        ref T pb = ref MemoryMarshal.GetReference(panel);
        int a0 = t.Start(0), a1 = t.Start(1), a2 = t.Start(2), a3 = t.Start(3);
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0, p = j, s = 0; q < t.Kc; q++, p += t.PanelWidth, s += t.ColStep)
        {
            var b0 = Vector512.LoadUnsafe(ref pb, (nuint)p);
            var b1 = Vector512.LoadUnsafe(ref pb, (nuint)(p + w));
            var x = Vector512.Create(Unsafe.Add(ref pa, a0 + s));
            c00 = Fma(x, b0, c00);
            c01 = Fma(x, b1, c01);
            x = Vector512.Create(Unsafe.Add(ref pa, a1 + s));
            c10 = Fma(x, b0, c10);
            c11 = Fma(x, b1, c11);
            x = Vector512.Create(Unsafe.Add(ref pa, a2 + s));
            c20 = Fma(x, b0, c20);
            c21 = Fma(x, b1, c21);
            x = Vector512.Create(Unsafe.Add(ref pa, a3 + s));
            c30 = Fma(x, b0, c30);
            c31 = Fma(x, b1, c31);
        }
        Span<T> tile = stackalloc T[Mr * 2 * w];
        c00.CopyTo(tile);
        c01.CopyTo(tile[w..]);
        c10.CopyTo(tile[(2 * w)..]);
        c11.CopyTo(tile[(3 * w)..]);
        c20.CopyTo(tile[(4 * w)..]);
        c21.CopyTo(tile[(5 * w)..]);
        c30.CopyTo(tile[(6 * w)..]);
        c31.CopyTo(tile[(7 * w)..]);
        AddTile(tile, 2 * w, c, ldc, t.Row, t.Rows, c0, cols);
    }

    private static void Tile256<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> panel, Span<T> c, int ldc, int c0, int j, int cols, Tile t)
        where T : unmanaged, INumber<T>
    {
        int w = Vector256<T>.Count;
        ref T pa = ref MemoryMarshal.GetReference(a);
        ref T pb = ref MemoryMarshal.GetReference(panel);
        int a0 = t.Start(0), a1 = t.Start(1), a2 = t.Start(2), a3 = t.Start(3);
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0, p = j, s = 0; q < t.Kc; q++, p += t.PanelWidth, s += t.ColStep)
        {
            var b0 = Vector256.LoadUnsafe(ref pb, (nuint)p);
            var b1 = Vector256.LoadUnsafe(ref pb, (nuint)(p + w));
            var x = Vector256.Create(Unsafe.Add(ref pa, a0 + s));
            c00 = Fma(x, b0, c00);
            c01 = Fma(x, b1, c01);
            x = Vector256.Create(Unsafe.Add(ref pa, a1 + s));
            c10 = Fma(x, b0, c10);
            c11 = Fma(x, b1, c11);
            x = Vector256.Create(Unsafe.Add(ref pa, a2 + s));
            c20 = Fma(x, b0, c20);
            c21 = Fma(x, b1, c21);
            x = Vector256.Create(Unsafe.Add(ref pa, a3 + s));
            c30 = Fma(x, b0, c30);
            c31 = Fma(x, b1, c31);
        }
        Span<T> tile = stackalloc T[Mr * 2 * w];
        c00.CopyTo(tile);
        c01.CopyTo(tile[w..]);
        c10.CopyTo(tile[(2 * w)..]);
        c11.CopyTo(tile[(3 * w)..]);
        c20.CopyTo(tile[(4 * w)..]);
        c21.CopyTo(tile[(5 * w)..]);
        c30.CopyTo(tile[(6 * w)..]);
        c31.CopyTo(tile[(7 * w)..]);
        AddTile(tile, 2 * w, c, ldc, t.Row, t.Rows, c0, cols);
    }

    /// <summary>Adds the valid rows × cols of a register tile into C (later K blocks add onto earlier ones).</summary>
    private static void AddTile<T>(ReadOnlySpan<T> tile, int width, Span<T> c, int ldc, int row, int rows, int c0, int cols)
        where T : unmanaged, INumber<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var dst = c.Slice((row + r) * ldc + c0, cols);
            TensorPrimitives.Add(dst, tile.Slice(r * width, cols), dst);
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
