using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AutogradService.Engine.Kernels.Cpu;

internal static unsafe partial class MatMulKernels
{
    /// <summary>Below this many flops a product runs on the calling thread: Parallel.For costs more than it saves.</summary>
    private const long ParallelFlops = 1L << 22;

    [ThreadStatic] private static Scratch? t_packA;
    [ThreadStatic] private static Scratch? t_packB;

    private static void Tiled<T>(ReadOnlySpan<T> a, bool ta, ReadOnlySpan<T> b, bool tb, Span<T> c, int m, int n, int k, int w)
        where T : unmanaged, INumber<T>
    {
        bool wide = w == Vector512<T>.Count && Vector512.IsHardwareAccelerated;
        int mr = wide ? 8 : 4, nr = 2 * w;
        int threads = 2L * m * n * k >= ParallelFlops ? EngineThreads.Count : 1;
        int kcMax = Math.Min(Kc, k), ncMax = Math.Min(Nc, RoundUp(n, nr));
        // Row blocks hold at most Mc rows and are small enough that every thread gets at least one.
        int mc = Math.Min(Mc, RoundUp((m + threads - 1) / threads, mr));
        int blocksM = (m + mc - 1) / mc;
        // Few rows (one row block): each B strip feeds only m / mr micro-kernel calls, so packing B costs as much as
        // it saves; the kernels then read B's rows in place (needs whole strips: n a multiple of nr).
        bool direct = !tb && m <= Mc && n % nr == 0;
        var packB = direct ? null : (T*)(t_packB ??= new Scratch()).Get((long)kcMax * ncMax * sizeof(T));
        fixed (T* pa = a, pb = b, pc = c)
        {
            var job = new Job<T>
            {
                A = pa, B = pb, C = pc, M = m, N = n, K = k, Ta = ta, Mr = mr, Nr = nr, Mc = mc, Wide = wide, PackB = packB,
                Direct = direct,
            };
            for (int n0 = 0; n0 < n; n0 += Nc)
            {
                int nc = Math.Min(Nc, n - n0), panels = (nc + nr - 1) / nr;
                for (int k0 = 0; k0 < k; k0 += Kc)
                {
                    int kc = Math.Min(Kc, k - k0);
                    if (!direct) PackPanels(pb, tb, n, k, k0, kc, n0, nc, nr, packB);
                    job.N0 = n0;
                    job.Nc = nc;
                    job.K0 = k0;
                    job.Kc = kc;
                    job.Panels = panels;
                    // Few row blocks (a short, wide product): split the column strips between threads as well.
                    job.ChunksN = blocksM >= threads ? 1 : Math.Min(panels, (threads + blocksM - 1) / blocksM);
                    int items = blocksM * job.ChunksN;
                    if (threads > 1 && items > 1)
                        Parallel.For(0, items, EngineThreads.Options(threads), job.Run);
                    else
                        for (int i = 0; i < items; i++) job.Run(i);
                }
            }
        }
    }

    /// <summary>One (row block, column chunk) of the current K × N panel: packs its A block and runs the micro-kernels.</summary>
    private sealed class Job<T> where T : unmanaged, INumber<T>
    {
        public T* A, B, C, PackB;
        public int M, N, K, Mr, Nr, Mc, N0, Nc, K0, Kc, Panels, ChunksN;
        public bool Ta, Wide, Direct;

        public void Run(int item)
        {
            int i0 = item / ChunksN * Mc, chunk = item % ChunksN;
            int rows = Math.Min(Mc, M - i0);
            int p0 = Panels * chunk / ChunksN, p1 = Panels * (chunk + 1) / ChunksN;
            int strips = (rows + Mr - 1) / Mr;
            var packA = (T*)(t_packA ??= new Scratch()).Get((long)strips * Mr * Kc * sizeof(T));
            PackStrips(A, Ta, M, K, i0, rows, K0, Kc, Mr, packA);
            for (int p = p0; p < p1; p++)
            {
                int j = p * Nr, cols = Math.Min(Nr, Nc - j);
                T* bp = Direct ? B + (long)K0 * N + N0 + j : PackB + (long)p * Kc * Nr;
                int ldb = Direct ? N : Nr;
                for (int s = 0; s < strips; s++)
                {
                    int r = s * Mr;
                    T* cp = C + (long)(i0 + r) * N + N0 + j;
                    T* ap = packA + (long)s * Mr * Kc;
                    if (Wide)
                    {
                        if (Direct) Kernel8x2Direct(ap, bp, N, Kc, cp, N, Math.Min(Mr, rows - r), cols);
                        else Kernel8x2Packed(ap, bp, Kc, cp, N, Math.Min(Mr, rows - r), cols);
                    }
                    else Kernel4x2(ap, bp, ldb, Kc, cp, N, Math.Min(Mr, rows - r), cols);
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [i0, i0 + rows) × columns [k0, k0 + kc) of op(A) into strips of <paramref name="mr"/> rows, each
    /// laid out column by column (strip[q * mr + r]), zero-padded past the last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackStrips<T>(T* a, bool ta, int m, int k, int i0, int rows, int k0, int kc, int mr, T* dst)
        where T : unmanaged, INumber<T>
    {
        for (int s = 0; s < rows; s += mr)
        {
            int valid = Math.Min(mr, rows - s);
            T* strip = dst + (long)s * kc;
            if (ta)
            {
                // A is stored [k, m]: each column of the strip is a contiguous run of a row of A.
                if (valid == 8 && mr == 8)
                {
                    // A whole strip: one constant-size block copy per column (vector moves).
                    T* src = a + (long)k0 * m + i0 + s;
                    for (int q = 0; q < kc; q++, src += m)
                        Unsafe.CopyBlockUnaligned(strip + q * 8, src, (uint)(8 * sizeof(T)));
                    continue;
                }
                for (int q = 0; q < kc; q++)
                {
                    T* src = a + (long)(k0 + q) * m + i0 + s;
                    T* d = strip + q * mr;
                    int r = 0;
                    for (; r < valid; r++) d[r] = src[r];
                    for (; r < mr; r++) d[r] = T.Zero;
                }
            }
            else if (valid == 8 && mr == 8)
            {
                // A whole strip: each step writes one strip column (eight neighbours) instead of one strided element.
                T* s0 = a + (long)(i0 + s) * k + k0;
                T* s1 = s0 + k, s2 = s1 + k, s3 = s2 + k, s4 = s3 + k, s5 = s4 + k, s6 = s5 + k, s7 = s6 + k;
                T* d = strip;
                for (int q = 0; q < kc; q++, d += 8)
                {
                    d[0] = s0[q];
                    d[1] = s1[q];
                    d[2] = s2[q];
                    d[3] = s3[q];
                    d[4] = s4[q];
                    d[5] = s5[q];
                    d[6] = s6[q];
                    d[7] = s7[q];
                }
            }
            else
            {
                for (int r = 0; r < mr; r++)
                {
                    if (r >= valid)
                    {
                        for (int q = 0; q < kc; q++) strip[q * mr + r] = T.Zero;
                        continue;
                    }
                    T* src = a + (long)(i0 + s + r) * k + k0;
                    for (int q = 0; q < kc; q++) strip[q * mr + r] = src[q];
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [k0, k0 + kc) × columns [n0, n0 + nc) of op(B) into strips of <paramref name="nr"/> columns, each
    /// laid out row by row (strip[q * nr + j]), zero-padded past the last column.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanels<T>(T* b, bool tb, int n, int k, int k0, int kc, int n0, int nc, int nr, T* dst)
        where T : unmanaged, INumber<T>
    {
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            int valid = Math.Min(nr, nc - j0);
            T* strip = dst + (long)j0 * kc;
            if (!tb)
            {
                for (int q = 0; q < kc; q++)
                {
                    var row = new Span<T>(strip + q * nr, nr);
                    new ReadOnlySpan<T>(b + (long)(k0 + q) * n + n0 + j0, valid).CopyTo(row);
                    row[valid..].Clear();
                }
            }
            else
            {
                // B is stored [n, k]: each column of op(B) is a contiguous run of a row of B. Eight columns at a time, so
                // each step writes eight neighbouring elements of one strip row instead of one.
                int j = 0;
                for (; j + 8 <= valid; j += 8)
                {
                    T* s0 = b + (long)(n0 + j0 + j) * k + k0;
                    T* s1 = s0 + k, s2 = s1 + k, s3 = s2 + k, s4 = s3 + k, s5 = s4 + k, s6 = s5 + k, s7 = s6 + k;
                    T* d = strip + j;
                    for (int q = 0; q < kc; q++, d += nr)
                    {
                        d[0] = s0[q];
                        d[1] = s1[q];
                        d[2] = s2[q];
                        d[3] = s3[q];
                        d[4] = s4[q];
                        d[5] = s5[q];
                        d[6] = s6[q];
                        d[7] = s7[q];
                    }
                }
                for (; j < nr; j++)
                {
                    if (j >= valid)
                    {
                        for (int q = 0; q < kc; q++) strip[q * nr + j] = T.Zero;
                        continue;
                    }
                    T* src = b + (long)(n0 + j0 + j) * k + k0;
                    for (int q = 0; q < kc; q++) strip[q * nr + j] = src[q];
                }
            }
        }
    }

    // Two entry points so the packed kernel keeps its constant B stride (a variable one measured ~8% slower there).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x2Packed<T>(T* a, T* b, int kc, T* c, int ldc, int rows, int cols) where T : unmanaged, INumber<T> =>
        Kernel8x2(a, b, 2 * Vector512<T>.Count, kc, c, ldc, rows, cols);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x2Direct<T>(T* a, T* b, int ldb, int kc, T* c, int ldc, int rows, int cols) where T : unmanaged, INumber<T> =>
        Kernel8x2(a, b, ldb, kc, c, ldc, rows, cols);

    /// <summary>
    /// C[8 × 2w] += packed A strip · B strip, over kc steps (16 accumulators in registers); B's rows are
    /// <paramref name="ldb"/> apart (2w when packed, n when read in place).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel8x2<T>(T* a, T* b, int ldb, int kc, T* c, int ldc, int rows, int cols) where T : unmanaged, INumber<T>
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<T> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int q = 0; q < kc; q++, a += 8, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + w);
            var x = Vector512.Create(a[0]);
            c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Fma(x, b0, c60); c61 = Fma(x, b1, c61);
            x = Vector512.Create(a[7]);
            c70 = Fma(x, b0, c70); c71 = Fma(x, b1, c71);
        }
        if (rows == 8 && cols == 2 * w)
        {
            AddRow(c, w, c00, c01); AddRow(c + ldc, w, c10, c11); AddRow(c + 2 * ldc, w, c20, c21); AddRow(c + 3 * ldc, w, c30, c31);
            AddRow(c + 4 * ldc, w, c40, c41); AddRow(c + 5 * ldc, w, c50, c51); AddRow(c + 6 * ldc, w, c60, c61); AddRow(c + 7 * ldc, w, c70, c71);
            return;
        }
        T* tile = stackalloc T[16 * w];
        c00.Store(tile); c01.Store(tile + w); c10.Store(tile + 2 * w); c11.Store(tile + 3 * w);
        c20.Store(tile + 4 * w); c21.Store(tile + 5 * w); c30.Store(tile + 6 * w); c31.Store(tile + 7 * w);
        c40.Store(tile + 8 * w); c41.Store(tile + 9 * w); c50.Store(tile + 10 * w); c51.Store(tile + 11 * w);
        c60.Store(tile + 12 * w); c61.Store(tile + 13 * w); c70.Store(tile + 14 * w); c71.Store(tile + 15 * w);
        AddEdge(tile, 2 * w, c, ldc, rows, cols);
    }

    /// <summary>C[4 × 2w] += packed A strip · B strip (rows <paramref name="ldb"/> apart) with Vector256 (fits the 16 registers of AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x2<T>(T* a, T* b, int ldb, int kc, T* c, int ldc, int rows, int cols) where T : unmanaged, INumber<T>
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0; q < kc; q++, a += 4, b += ldb)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + w);
            var x = Vector256.Create(a[0]);
            c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
        }
        T* tile = stackalloc T[8 * w];
        c00.Store(tile); c01.Store(tile + w); c10.Store(tile + 2 * w); c11.Store(tile + 3 * w);
        c20.Store(tile + 4 * w); c21.Store(tile + 5 * w); c30.Store(tile + 6 * w); c31.Store(tile + 7 * w);
        AddEdge(tile, 2 * w, c, ldc, rows, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow<T>(T* c, int w, Vector512<T> lo, Vector512<T> hi) where T : unmanaged
    {
        (Vector512.Load(c) + lo).Store(c);
        (Vector512.Load(c + w) + hi).Store(c + w);
    }

    /// <summary>Adds the valid rows × cols of a register tile into C (edges of the matrix).</summary>
    private static void AddEdge<T>(T* tile, int width, T* c, int ldc, int rows, int cols) where T : unmanaged, INumber<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T* dst = c + (long)r * ldc;
            T* src = tile + r * width;
            for (int j = 0; j < cols; j++) dst[j] += src[j];
        }
    }

    /// <summary>A per-thread packing buffer in aligned native memory, grown on demand and freed with its thread.</summary>
    private sealed class Scratch
    {
        private nint _pointer;
        private long _bytes;

        public void* Get(long bytes)
        {
            if (bytes > _bytes)
            {
                if (_pointer != 0) NativeMemory.AlignedFree((void*)_pointer);
                _pointer = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);
                _bytes = bytes;
            }
            return (void*)_pointer;
        }

        ~Scratch()
        {
            if (_pointer != 0) NativeMemory.AlignedFree((void*)_pointer);
        }
    }
}
