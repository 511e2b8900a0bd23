using System.Numerics;
using System.Numerics.Tensors;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// Data movement. Transpose, slice and its scatter are all one strided copy (each side has its own element strides
/// and base offset), which only needs the element size, so these kernels work on bytes for every dtype.
/// </summary>
internal static unsafe class MovementKernels
{
    /// <summary>
    /// For every index i over <paramref name="dims"/>: dst[dstBase + Σ i_d·dstStrides_d] = src[srcBase + Σ i_d·srcStrides_d]
    /// (offsets in elements of <paramref name="size"/> bytes; strides may be negative). The walks are checked against
    /// the buffers' element counts first.
    /// </summary>
    public static void StridedCopy(byte* src, long srcBase, ReadOnlySpan<long> srcStrides, long srcCount, byte* dst, long dstBase,
        ReadOnlySpan<long> dstStrides, long dstCount, ReadOnlySpan<int> dims, int size)
    {
        KernelBounds.Strided(srcBase, srcStrides, dims, srcCount, "strided copy source");
        KernelBounds.Strided(dstBase, dstStrides, dims, dstCount, "strided copy destination");
        // Drop size-1 dims and merge neighbours that are contiguous on both sides, so the inner run is as long as it can be.
        Span<int> d = stackalloc int[Shape.MaxRank];
        Span<long> ss = stackalloc long[Shape.MaxRank], ds = stackalloc long[Shape.MaxRank];
        int r = 0;
        for (int i = 0; i < dims.Length; i++)
        {
            if (dims[i] == 0) return;
            if (dims[i] == 1) continue;
            if (r > 0 && ss[r - 1] == srcStrides[i] * dims[i] && ds[r - 1] == dstStrides[i] * dims[i])
            {
                d[r - 1] *= dims[i];
                ss[r - 1] = srcStrides[i];
                ds[r - 1] = dstStrides[i];
                continue;
            }
            d[r] = dims[i];
            ss[r] = srcStrides[i];
            ds[r] = dstStrides[i];
            r++;
        }
        if (r == 0)
        {
            Buffer.MemoryCopy(src + srcBase * size, dst + dstBase * size, size, size);
            return;
        }
        // A transpose reads its inner run with a large stride; when another dim is contiguous in the source, copy
        // the two as 32 × 32 blocks so both sides stay in cache. That dim moves next to the inner one.
        int pair = -1;
        if (r >= 2 && Math.Abs(ss[r - 1]) != 1)
            for (int i = r - 2; i >= 0 && pair < 0; i--) if (Math.Abs(ss[i]) == 1) pair = i;
        if (pair >= 0)
        {
            (int dp, long sp, long tp) = (d[pair], ss[pair], ds[pair]);
            for (int i = pair; i < r - 2; i++) (d[i], ss[i], ds[i]) = (d[i + 1], ss[i + 1], ds[i + 1]);
            (d[r - 2], ss[r - 2], ds[r - 2]) = (dp, sp, tp);
        }
        int inner = pair >= 0 ? 2 : 1;
        int n = d[r - 1];
        long si = ss[r - 1], di = ds[r - 1];
        long outer = 1;
        for (int i = 0; i < r - inner; i++) outer *= d[i];
        Span<int> index = stackalloc int[r];
        index.Clear();
        long so = srcBase, dOff = dstBase;
        for (long o = 0; o < outer; o++)
        {
            if (pair >= 0) Block(src + so * size, ss[r - 2], si, dst + dOff * size, ds[r - 2], di, d[r - 2], n, size);
            else Run(src + so * size, si, dst + dOff * size, di, n, size);
            for (int q = r - inner - 1; q >= 0; q--)
            {
                so += ss[q];
                dOff += ds[q];
                if (++index[q] < d[q]) break;
                so -= ss[q] * d[q];
                dOff -= ds[q] * d[q];
                index[q] = 0;
            }
        }
    }

    /// <summary>An n0 × n1 strided copy in square blocks.</summary>
    private static void Block(byte* src, long s0, long s1, byte* dst, long d0, long d1, int n0, int n1, int size)
    {
        const int B = 32;
        for (int i0 = 0; i0 < n0; i0 += B)
        {
            int ie = Math.Min(i0 + B, n0);
            for (int j0 = 0; j0 < n1; j0 += B)
            {
                int len = Math.Min(B, n1 - j0);
                for (int i = i0; i < ie; i++)
                    Run(src + (i * s0 + j0 * s1) * size, s1, dst + (i * d0 + j0 * d1) * size, d1, len, size);
            }
        }
    }

    /// <summary>One strided run of n elements.</summary>
    private static void Run(byte* src, long si, byte* dst, long di, int n, int size)
    {
        if (si == 1 && di == 1)
        {
            long bytes = (long)n * size;
            Buffer.MemoryCopy(src, dst, bytes, bytes);
            return;
        }
        switch (size)
        {
            case 8: { long* s = (long*)src, t = (long*)dst; for (int i = 0; i < n; i++) t[i * di] = s[i * si]; break; }
            case 4: { int* s = (int*)src, t = (int*)dst; for (int i = 0; i < n; i++) t[i * di] = s[i * si]; break; }
            case 1: for (int i = 0; i < n; i++) dst[i * di] = src[i * si]; break;
            default: for (int i = 0; i < n; i++) Buffer.MemoryCopy(src + i * si * size, dst + i * di * size, size, size); break;
        }
    }

    /// <summary>
    /// Joins inputs block by block: for each of <paramref name="outer"/> blocks, input j contributes its next
    /// <c>chunks[j]</c> bytes, in input order.
    /// </summary>
    public static void Concat(ReadOnlySpan<nint> inputs, ReadOnlySpan<long> inputBytes, ReadOnlySpan<long> chunks, long outer, byte* dst, long dstBytes)
    {
        long total = 0;
        for (int j = 0; j < inputs.Length; j++)
        {
            KernelBounds.Require(chunks[j] >= 0 && chunks[j] * outer == inputBytes[j], "concat input size");
            total += chunks[j] * outer;
        }
        KernelBounds.Require(total == dstBytes, "concat output size");
        for (long o = 0; o < outer; o++)
        {
            for (int j = 0; j < inputs.Length; j++)
            {
                long c = chunks[j];
                Buffer.MemoryCopy((byte*)inputs[j] + o * c, dst, c, c);
                dst += c;
            }
        }
    }

    /// <summary>
    /// y[o, j, :] = x[o, indices[j], :] for x seen as [outer, n, inner] (inner in bytes) and y as [outer, J, inner].
    /// Indices are checked first (negative ones count from the end, as in NumPy's take).
    /// </summary>
    public static void Gather(byte* x, long xBytes, long outer, int n, long inner, ReadOnlySpan<long> indices, ReadOnlySpan<int> indexDims,
        int axis, byte* y, long yBytes)
    {
        KernelBounds.Require(outer * n * inner == xBytes && outer * indices.Length * inner == yBytes, "gather sizes");
        Validate(indices, indexDims, n, axis);
        for (long o = 0; o < outer; o++)
        {
            byte* block = x + o * n * inner;
            foreach (var raw in indices)
            {
                long ix = raw < 0 ? raw + n : raw;
                Buffer.MemoryCopy(block + ix * inner, y, inner, inner);
                y += inner;
            }
        }
    }

    /// <summary>
    /// The transpose of <see cref="Gather"/>: y = 0, then y[o, indices[j], :] += x[o, j, :] (repeated indices add up).
    /// </summary>
    public static void ScatterAdd<T>(ReadOnlySpan<T> x, long outer, int n, int inner, ReadOnlySpan<long> indices, ReadOnlySpan<int> indexDims, int axis, Span<T> y)
        where T : unmanaged, INumber<T>
    {
        Validate(indices, indexDims, n, axis);
        y.Clear();
        int count = indices.Length;
        for (long o = 0; o < outer; o++)
        {
            for (int j = 0; j < count; j++)
            {
                long ix = indices[j] < 0 ? indices[j] + n : indices[j];
                var dst = y.Slice((int)((o * n + ix) * inner), inner);
                TensorPrimitives.Add(dst, x.Slice((int)((o * count + j) * inner), inner), dst);
            }
        }
    }

    private static void Validate(ReadOnlySpan<long> indices, ReadOnlySpan<int> indexDims, int n, int axis)
    {
        for (int j = 0; j < indices.Length; j++)
        {
            long ix = indices[j];
            if (ix >= -n && ix < n) continue;
            throw EngineException.InvalidTensor(
                $"indices{Position(j, indexDims)} = {ix} is out of range for axis {axis} of size {n}", input: "indices");
        }
    }

    /// <summary>A flat position as a multi-index, e.g. "[1, 0]".</summary>
    private static string Position(long flat, ReadOnlySpan<int> dims)
    {
        if (dims.Length == 0) return "";
        var index = new long[dims.Length];
        for (int d = dims.Length - 1; d >= 0; d--)
        {
            index[d] = flat % dims[d];
            flat /= dims[d];
        }
        return "[" + string.Join(", ", index) + "]";
    }
}
