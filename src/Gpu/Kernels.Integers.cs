using ILGPU;

namespace AutogradService.Gpu;

public static partial class Kernels
{
    // int64 and bool maps, zips and reductions: two's-complement arithmetic that wraps (as the CPU's and PyTorch's),
    // bools as bytes 0 or 1.
    public static void UnaryI64(Index1D i, ArrayView<long> x, ArrayView<long> y, int op) => y[i] = Scalar.Unary(op, x[i]);

    public static void NotU8(Index1D i, ArrayView<byte> x, ArrayView<byte> y) => y[i] = x[i] != 0 ? (byte)0 : (byte)1;

    public static void BinaryI64(Index1D i, ArrayView<long> a, ArrayView<long> b, ArrayView<long> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Binary(op, a[oa], b[ob]);
    }

    public static void CompareI64(Index1D i, ArrayView<long> a, ArrayView<long> b, ArrayView<byte> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Compare(op, a[oa], b[ob]) ? (byte)1 : (byte)0;
    }

    /// <summary>and, or, ==, != of bools.</summary>
    public static void LogicalU8(Index1D i, ArrayView<byte> a, ArrayView<byte> b, ArrayView<byte> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Logical(op, a[oa] != 0, b[ob] != 0) ? (byte)1 : (byte)0;
    }

    public static void ReduceI64(Index1D i, ArrayView<long> x, ArrayView<long> y, int op, int r, int inner)
    {
        int o = i / inner, j = i - o * inner;
        int start = o * r * inner + j;
        long acc = x[start];
        for (int k = 1; k < r; k++) acc = Scalar.Combine(op, acc, x[start + k * inner]);
        y[i] = acc;
    }
}
