using ILGPU;

namespace AutogradService.Gpu;

/// <summary>
/// A strided copy: element i of an iteration shape reads x at BaseX + coords · StrideX and writes y at
/// BaseY + coords · StrideY. Transpose, slice, slice-scatter, broadcast_to and concat are all this one layout.
/// </summary>
public struct CopyLayout
{
    public int Rank;
    public Dims8 Shape;
    public Dims8 StrideX;
    public Dims8 StrideY;
    public int BaseX;
    public int BaseY;
}

/// <summary>Where's three operands broadcast against the output: strides 0 where an operand broadcasts.</summary>
public struct SelectLayout
{
    public int Rank;
    public Dims8 Shape;
    public Dims8 StrideCondition;
    public Dims8 StrideA;
    public Dims8 StrideB;
}

/// <summary>An [outer, n, inner] tensor indexed along its middle axis by <see cref="Count"/> indices (negative count from the end).</summary>
public struct IndexLayout
{
    public int N;
    public int Count;
    public int Inner;
}

/// <summary>
/// Movement, selection, gather and scatter-add. Movement only moves bits, so the kernels come by element size
/// (1, 4 and 8 bytes: bool, float32, float64/int64) and are exact for every dtype. Scatter-add is one thread per output
/// element walking the indices in order — the CPU's order, so the same bits, with no float atomics.
/// </summary>
public static partial class Kernels
{
    public static void CopyU8(Index1D i, ArrayView<byte> x, ArrayView<byte> y, CopyLayout l)
    {
        CopyOffsets(i, l, out int ox, out int oy);
        y[oy] = x[ox];
    }

    public static void CopyI32(Index1D i, ArrayView<int> x, ArrayView<int> y, CopyLayout l)
    {
        CopyOffsets(i, l, out int ox, out int oy);
        y[oy] = x[ox];
    }

    public static void CopyI64(Index1D i, ArrayView<long> x, ArrayView<long> y, CopyLayout l)
    {
        CopyOffsets(i, l, out int ox, out int oy);
        y[oy] = x[ox];
    }

    public static void SelectU8(Index1D i, ArrayView<byte> c, ArrayView<byte> a, ArrayView<byte> b, ArrayView<byte> y, SelectLayout l)
    {
        SelectOffsets(i, l, out int oc, out int oa, out int ob);
        y[i] = c[oc] != 0 ? a[oa] : b[ob];
    }

    public static void SelectI32(Index1D i, ArrayView<byte> c, ArrayView<int> a, ArrayView<int> b, ArrayView<int> y, SelectLayout l)
    {
        SelectOffsets(i, l, out int oc, out int oa, out int ob);
        y[i] = c[oc] != 0 ? a[oa] : b[ob];
    }

    public static void SelectI64(Index1D i, ArrayView<byte> c, ArrayView<long> a, ArrayView<long> b, ArrayView<long> y, SelectLayout l)
    {
        SelectOffsets(i, l, out int oc, out int oa, out int ob);
        y[i] = c[oc] != 0 ? a[oa] : b[ob];
    }

    /// <summary>y[o, j, k] = x[o, indices[j], k]; y is [outer, Count, inner].</summary>
    public static void GatherU8(Index1D i, ArrayView<byte> x, ArrayView<long> indices, ArrayView<byte> y, IndexLayout l) =>
        y[i] = x[GatherSource(i, indices, l)];

    public static void GatherI32(Index1D i, ArrayView<int> x, ArrayView<long> indices, ArrayView<int> y, IndexLayout l) =>
        y[i] = x[GatherSource(i, indices, l)];

    public static void GatherI64(Index1D i, ArrayView<long> x, ArrayView<long> indices, ArrayView<long> y, IndexLayout l) =>
        y[i] = x[GatherSource(i, indices, l)];

    /// <summary>y[o, t, k] = 0 + Σ x[o, j, k] over j with indices[j] = t, in increasing j; y is [outer, N, inner].</summary>
    public static void ScatterAddF32(Index1D i, ArrayView<float> x, ArrayView<long> indices, ArrayView<float> y, IndexLayout l)
    {
        ScatterPosition(i, l, out int o, out int t, out int k);
        float acc = 0;
        for (int j = 0; j < l.Count; j++)
            if (Wrap(indices[j], l.N) == t) acc += x[(o * l.Count + j) * l.Inner + k];
        y[i] = acc;
    }

    public static void ScatterAddF64(Index1D i, ArrayView<double> x, ArrayView<long> indices, ArrayView<double> y, IndexLayout l)
    {
        ScatterPosition(i, l, out int o, out int t, out int k);
        double acc = 0;
        for (int j = 0; j < l.Count; j++)
            if (Wrap(indices[j], l.N) == t) acc += x[(o * l.Count + j) * l.Inner + k];
        y[i] = acc;
    }

    public static void ScatterAddI64(Index1D i, ArrayView<long> x, ArrayView<long> indices, ArrayView<long> y, IndexLayout l)
    {
        ScatterPosition(i, l, out int o, out int t, out int k);
        long acc = 0;
        for (int j = 0; j < l.Count; j++)
            if (Wrap(indices[j], l.N) == t) acc += x[(o * l.Count + j) * l.Inner + k];
        y[i] = acc;
    }

    private static int Wrap(long index, int n) => (int)(index < 0 ? index + n : index);

    private static int GatherSource(int i, ArrayView<long> indices, IndexLayout l)
    {
        int perOuter = l.Count * l.Inner;
        int o = i / perOuter, rest = i - o * perOuter, j = rest / l.Inner, k = rest - j * l.Inner;
        return (o * l.N + Wrap(indices[j], l.N)) * l.Inner + k;
    }

    private static void ScatterPosition(int i, IndexLayout l, out int o, out int t, out int k)
    {
        int perOuter = l.N * l.Inner;
        o = i / perOuter;
        int rest = i - o * perOuter;
        t = rest / l.Inner;
        k = rest - t * l.Inner;
    }

    private static void CopyOffsets(int i, CopyLayout l, out int ox, out int oy)
    {
        int rest = i;
        ox = l.BaseX;
        oy = l.BaseY;
        for (int d = l.Rank - 1; d >= 0; d--)
        {
            int n = l.Shape.Get(d);
            int c = rest % n;
            rest /= n;
            ox += c * l.StrideX.Get(d);
            oy += c * l.StrideY.Get(d);
        }
    }

    private static void SelectOffsets(int i, SelectLayout l, out int oc, out int oa, out int ob)
    {
        int rest = i;
        oc = 0;
        oa = 0;
        ob = 0;
        for (int d = l.Rank - 1; d >= 0; d--)
        {
            int n = l.Shape.Get(d);
            int c = rest % n;
            rest /= n;
            oc += c * l.StrideCondition.Get(d);
            oa += c * l.StrideA.Get(d);
            ob += c * l.StrideB.Get(d);
        }
    }
}
