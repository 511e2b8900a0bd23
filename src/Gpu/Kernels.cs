using ILGPU;

namespace AutogradService.Gpu;

/// <summary>Up to <see cref="Engine.Tensors.Shape.MaxRank"/> integers passed to a kernel by value (shapes, strides).</summary>
public struct Dims8
{
    public int D0, D1, D2, D3, D4, D5, D6, D7;

    public readonly int Get(int i) => i switch { 0 => D0, 1 => D1, 2 => D2, 3 => D3, 4 => D4, 5 => D5, 6 => D6, _ => D7 };

    public void Set(int i, int value)
    {
        switch (i)
        {
            case 0: D0 = value; break;
            case 1: D1 = value; break;
            case 2: D2 = value; break;
            case 3: D3 = value; break;
            case 4: D4 = value; break;
            case 5: D5 = value; break;
            case 6: D6 = value; break;
            default: D7 = value; break;
        }
    }
}

/// <summary>A broadcasting binary op's layout: the output's dims and each operand's element strides (0 where it broadcasts).</summary>
public struct BroadcastLayout
{
    public int Rank;
    public Dims8 Shape;
    public Dims8 StrideA;
    public Dims8 StrideB;
}

/// <summary>A batch of matrix products: sizes, and each operand's strides for row, column and batch (transposes are strides).</summary>
public struct MatMulLayout
{
    public int M, N, K;
    public int ARow, ACol, ABatch;
    public int BRow, BCol, BBatch;
}

/// <summary>
/// The GPU backend's kernels: a few generic ones cover the op families it runs on the device — map (unary), broadcast
/// zip (arithmetic and comparisons), fill, a deterministic reduce over [outer, r, inner] (one thread per output, the
/// same order every run: no atomics) and matrix products. Op codes are the engine's kernel enums as integers.
/// Every kernel runs on ILGPU's CPU accelerator in the tests and is compiled to PTX without a device.
/// </summary>
public static partial class Kernels
{
    public static void FillF32(Index1D i, ArrayView<float> y, float value) => y[i] = value;

    public static void FillF64(Index1D i, ArrayView<double> y, double value) => y[i] = value;

    public static void FillI64(Index1D i, ArrayView<long> y, long value) => y[i] = value;

    public static void FillU8(Index1D i, ArrayView<byte> y, byte value) => y[i] = value;

    public static void UnaryF32(Index1D i, ArrayView<float> x, ArrayView<float> y, int op) => y[i] = Scalar.Unary(op, x[i]);

    public static void UnaryF64(Index1D i, ArrayView<double> x, ArrayView<double> y, int op) => y[i] = Scalar.Unary(op, x[i]);

    public static void BinaryF32(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Binary(op, a[oa], b[ob]);
    }

    public static void BinaryF64(Index1D i, ArrayView<double> a, ArrayView<double> b, ArrayView<double> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Binary(op, a[oa], b[ob]);
    }

    public static void CompareF32(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<byte> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Compare(op, a[oa], b[ob]) ? (byte)1 : (byte)0;
    }

    public static void CompareF64(Index1D i, ArrayView<double> a, ArrayView<double> b, ArrayView<byte> y, int op, BroadcastLayout l)
    {
        Offsets(i, l, out int oa, out int ob);
        y[i] = Scalar.Compare(op, a[oa], b[ob]) ? (byte)1 : (byte)0;
    }

    /// <summary>Output element i (of outer × inner) combines x[o, 0..r, j] in order: the same bits every run.</summary>
    public static void ReduceF32(Index1D i, ArrayView<float> x, ArrayView<float> y, int op, int r, int inner)
    {
        int o = i / inner, j = i - o * inner;
        int start = o * r * inner + j;
        float acc = x[start];
        for (int k = 1; k < r; k++) acc = Scalar.Combine(op, acc, x[start + k * inner]);
        y[i] = acc;
    }

    public static void ReduceF64(Index1D i, ArrayView<double> x, ArrayView<double> y, int op, int r, int inner)
    {
        int o = i / inner, j = i - o * inner;
        int start = o * r * inner + j;
        double acc = x[start];
        for (int k = 1; k < r; k++) acc = Scalar.Combine(op, acc, x[start + k * inner]);
        y[i] = acc;
    }

    /// <summary>Output element i of a batch of m × n products, its K terms summed in order.</summary>
    public static void MatMulF32(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, MatMulLayout l)
    {
        int mn = l.M * l.N;
        int batch = i / mn, rest = i - batch * mn, row = rest / l.N, col = rest - row * l.N;
        int pa = batch * l.ABatch + row * l.ARow, pb = batch * l.BBatch + col * l.BCol;
        float acc = 0;
        for (int k = 0; k < l.K; k++) acc += a[pa + k * l.ACol] * b[pb + k * l.BRow];
        y[i] = acc;
    }

    public static void MatMulF64(Index1D i, ArrayView<double> a, ArrayView<double> b, ArrayView<double> y, MatMulLayout l)
    {
        int mn = l.M * l.N;
        int batch = i / mn, rest = i - batch * mn, row = rest / l.N, col = rest - row * l.N;
        int pa = batch * l.ABatch + row * l.ARow, pb = batch * l.BBatch + col * l.BCol;
        double acc = 0;
        for (int k = 0; k < l.K; k++) acc += a[pa + k * l.ACol] * b[pb + k * l.BRow];
        y[i] = acc;
    }

    private static void Offsets(int i, BroadcastLayout l, out int oa, out int ob)
    {
        int rest = i;
        oa = 0;
        ob = 0;
        for (int d = l.Rank - 1; d >= 0; d--)
        {
            int n = l.Shape.Get(d);
            int c = rest % n;
            rest /= n;
            oa += c * l.StrideA.Get(d);
            ob += c * l.StrideB.Get(d);
        }
    }

    /// <summary>Every kernel, for loading and for the PTX compile test.</summary>
    public static IReadOnlyList<System.Reflection.MethodInfo> All { get; } = typeof(Kernels)
        .GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(m => m.GetParameters() is { Length: > 0 } p && p[0].ParameterType == typeof(Index1D)).ToArray();
}
