using ILGPU;

namespace AutogradService.Gpu;

/// <summary>Up to eight values of one element type a kernel keeps in registers (a region's literals, its inputs' adjoints).</summary>
public struct Registers8<T> where T : unmanaged
{
    public T R0, R1, R2, R3, R4, R5, R6, R7;

    public readonly T Get(int i) => i switch { 0 => R0, 1 => R1, 2 => R2, 3 => R3, 4 => R4, 5 => R5, 6 => R6, _ => R7 };

    public void Set(int i, T value)
    {
        switch (i)
        {
            case 0: R0 = value; break;
            case 1: R1 = value; break;
            case 2: R2 = value; break;
            case 3: R3 = value; break;
            case 4: R4 = value; break;
            case 5: R5 = value; break;
            case 6: R6 = value; break;
            default: R7 = value; break;
        }
    }
}

/// <summary>Sixteen values in registers: one per step of a fused region (its value, or in backward its adjoint).</summary>
public struct Registers16<T> where T : unmanaged
{
    public Registers8<T> Low, High;

    public readonly T Get(int i) => i < 8 ? Low.Get(i) : High.Get(i - 8);

    public void Set(int i, T value)
    {
        if (i < 8) Low.Set(i, value);
        else High.Set(i - 8, value);
    }
}

/// <summary>
/// Up to eight views of one element type, one per region input: the inputs themselves (bit k of
/// <see cref="SingleElements"/> set: view k is a single element, read at 0), or in backward their gradients.
/// </summary>
public struct RegionViews<T> where T : unmanaged
{
    public ArrayView<T> X0, X1, X2, X3, X4, X5, X6, X7;

    /// <summary>Bit k set: view k holds a single element (inputs), or is not wanted (gradients).</summary>
    public int SingleElements;

    public readonly T Get(int k, int i)
    {
        int at = (SingleElements >> k & 1) != 0 ? 0 : i;
        return k switch { 0 => X0[at], 1 => X1[at], 2 => X2[at], 3 => X3[at], 4 => X4[at], 5 => X5[at], 6 => X6[at], _ => X7[at] };
    }

    public readonly void Store(int k, int i, T value)
    {
        switch (k)
        {
            case 0: X0[i] = value; break;
            case 1: X1[i] = value; break;
            case 2: X2[i] = value; break;
            case 3: X3[i] = value; break;
            case 4: X4[i] = value; break;
            case 5: X5[i] = value; break;
            case 6: X6[i] = value; break;
            default: X7[i] = value; break;
        }
    }

    public void Set(int k, ArrayView<T> view, bool flagged)
    {
        switch (k)
        {
            case 0: X0 = view; break;
            case 1: X1 = view; break;
            case 2: X2 = view; break;
            case 3: X3 = view; break;
            case 4: X4 = view; break;
            case 5: X5 = view; break;
            case 6: X6 = view; break;
            default: X7 = view; break;
        }
        if (flagged) SingleElements |= 1 << k;
    }
}

/// <summary>
/// A fused region's steps (up to sixteen), one integer each: the kernel code (bits 0-5), binary (bit 6), operands A
/// and B (bits 7-11 and 12-16: 0-15 an earlier step's value, 16-23 an input, 24-31 a literal). Step k's value is
/// register k. Built by <see cref="RegionCode"/>.
/// </summary>
public struct RegionSteps
{
    public int Count;
    public int S0, S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14, S15;

    public readonly int Get(int k) => k switch
    {
        0 => S0, 1 => S1, 2 => S2, 3 => S3, 4 => S4, 5 => S5, 6 => S6, 7 => S7,
        8 => S8, 9 => S9, 10 => S10, 11 => S11, 12 => S12, 13 => S13, 14 => S14, _ => S15,
    };

    public void Add(int step)
    {
        switch (Count++)
        {
            case 0: S0 = step; break;
            case 1: S1 = step; break;
            case 2: S2 = step; break;
            case 3: S3 = step; break;
            case 4: S4 = step; break;
            case 5: S5 = step; break;
            case 6: S6 = step; break;
            case 7: S7 = step; break;
            case 8: S8 = step; break;
            case 9: S9 = step; break;
            case 10: S10 = step; break;
            case 11: S11 = step; break;
            case 12: S12 = step; break;
            case 13: S13 = step; break;
            case 14: S14 = step; break;
            default: S15 = step; break;
        }
    }
}

public static partial class Kernels
{
    /// <summary>
    /// A fused elementwise region in one launch: each thread runs the region's steps on its element from registers and
    /// writes only the root, so the region costs one read of its inputs and one write, however many ops it has.
    /// Every thread takes the same branches (one program), so the interpretation costs no divergence.
    /// </summary>
    public static void RegionF32(Index1D i, RegionViews<float> x, ArrayView<float> y, RegionSteps steps, Registers8<float> literals)
    {
        var v = RegionForward(i, x, steps, literals);
        y[i] = v.Get(steps.Count - 1);
    }

    public static void RegionF64(Index1D i, RegionViews<double> x, ArrayView<double> y, RegionSteps steps, Registers8<double> literals)
    {
        var v = RegionForward(i, x, steps, literals);
        y[i] = v.Get(steps.Count - 1);
    }

    /// <summary>
    /// A fused region's VJP in one launch: each thread recomputes its element's step values, then sweeps the steps
    /// backward with the ops' own derivative rules (<see cref="Scalar.UnaryDerivative(int, double, double)"/>,
    /// <see cref="Scalar.BinaryPartials(int, double, double, double, out double, out double)"/>), adding each
    /// operand's share to its adjoint, and writes the wanted inputs' adjoints. <paramref name="dx"/> view k is input k's
    /// gradient (a full-shape input) or its per-element shares (a single element, summed afterwards); flagged: unwanted.
    /// </summary>
    public static void RegionVjpF32(Index1D i, RegionViews<float> x, ArrayView<float> grad, int oneElementGrad, RegionViews<float> dx,
        int inputs, RegionSteps steps, Registers8<float> literals)
    {
        var v = RegionForward(i, x, steps, literals);
        var adjoint = default(Registers16<float>);
        adjoint.Set(steps.Count - 1, grad[oneElementGrad != 0 ? 0 : (int)i]);
        var inputAdjoint = default(Registers8<float>);
        for (int k = steps.Count - 1; k >= 0; k--)
        {
            int s = steps.Get(k);
            int oa = s >> 7 & 31, ob = s >> 12 & 31;
            float g = adjoint.Get(k), a = Operand(oa, i, v, x, literals), da, db = 0;
            if ((s & 64) != 0)
            {
                Scalar.BinaryPartials(s & 63, a, Operand(ob, i, v, x, literals), v.Get(k), g, out da, out db);
            }
            else da = Scalar.UnaryVjp(s & 63, a, v.Get(k), g);
            Accumulate(oa, da, ref adjoint, ref inputAdjoint);
            if ((s & 64) != 0) Accumulate(ob, db, ref adjoint, ref inputAdjoint);
        }
        for (int m = 0; m < inputs; m++)
            if ((dx.SingleElements >> m & 1) == 0) dx.Store(m, i, inputAdjoint.Get(m));
    }

    public static void RegionVjpF64(Index1D i, RegionViews<double> x, ArrayView<double> grad, int oneElementGrad, RegionViews<double> dx,
        int inputs, RegionSteps steps, Registers8<double> literals)
    {
        var v = RegionForward(i, x, steps, literals);
        var adjoint = default(Registers16<double>);
        adjoint.Set(steps.Count - 1, grad[oneElementGrad != 0 ? 0 : (int)i]);
        var inputAdjoint = default(Registers8<double>);
        for (int k = steps.Count - 1; k >= 0; k--)
        {
            int s = steps.Get(k);
            int oa = s >> 7 & 31, ob = s >> 12 & 31;
            double g = adjoint.Get(k), a = Operand(oa, i, v, x, literals), da, db = 0;
            if ((s & 64) != 0)
            {
                Scalar.BinaryPartials(s & 63, a, Operand(ob, i, v, x, literals), v.Get(k), g, out da, out db);
            }
            else da = Scalar.UnaryVjp(s & 63, a, v.Get(k), g);
            Accumulate(oa, da, ref adjoint, ref inputAdjoint);
            if ((s & 64) != 0) Accumulate(ob, db, ref adjoint, ref inputAdjoint);
        }
        for (int m = 0; m < inputs; m++)
            if ((dx.SingleElements >> m & 1) == 0) dx.Store(m, i, inputAdjoint.Get(m));
    }

    /// <summary>Sums of consecutive chunks of <paramref name="chunk"/> elements, in double and in order (a single-element input's gradient).</summary>
    public static void SumChunksF32(Index1D j, ArrayView<float> x, ArrayView<double> sums, int n, int chunk)
    {
        double acc = 0;
        int end = Math.Min(n, (j + 1) * chunk);
        for (int k = j * chunk; k < end; k++) acc += x[k];
        sums[j] = acc;
    }

    public static void SumChunksF64(Index1D j, ArrayView<double> x, ArrayView<double> sums, int n, int chunk)
    {
        double acc = 0;
        int end = Math.Min(n, (j + 1) * chunk);
        for (int k = j * chunk; k < end; k++) acc += x[k];
        sums[j] = acc;
    }

    private static Registers16<float> RegionForward(int i, RegionViews<float> x, RegionSteps steps, Registers8<float> literals)
    {
        var v = default(Registers16<float>);
        for (int k = 0; k < steps.Count; k++)
        {
            int s = steps.Get(k);
            float a = Operand(s >> 7 & 31, i, v, x, literals);
            v.Set(k, (s & 64) != 0 ? Scalar.Binary(s & 63, a, Operand(s >> 12 & 31, i, v, x, literals)) : Scalar.Unary(s & 63, a));
        }
        return v;
    }

    private static Registers16<double> RegionForward(int i, RegionViews<double> x, RegionSteps steps, Registers8<double> literals)
    {
        var v = default(Registers16<double>);
        for (int k = 0; k < steps.Count; k++)
        {
            int s = steps.Get(k);
            double a = Operand(s >> 7 & 31, i, v, x, literals);
            v.Set(k, (s & 64) != 0 ? Scalar.Binary(s & 63, a, Operand(s >> 12 & 31, i, v, x, literals)) : Scalar.Unary(s & 63, a));
        }
        return v;
    }

    private static T Operand<T>(int operand, int i, Registers16<T> values, RegionViews<T> inputs, Registers8<T> literals) where T : unmanaged =>
        operand < 16 ? values.Get(operand) : operand < 24 ? inputs.Get(operand - 16, i) : literals.Get(operand - 24);

    /// <summary>Adds an operand's share of the adjoint: to an earlier step's or an input's; a literal's is dropped.</summary>
    private static void Accumulate(int operand, float share, ref Registers16<float> adjoint, ref Registers8<float> inputAdjoint)
    {
        if (operand < 16) adjoint.Set(operand, adjoint.Get(operand) + share);
        else if (operand < 24) inputAdjoint.Set(operand - 16, inputAdjoint.Get(operand - 16) + share);
    }

    private static void Accumulate(int operand, double share, ref Registers16<double> adjoint, ref Registers8<double> inputAdjoint)
    {
        if (operand < 16) adjoint.Set(operand, adjoint.Get(operand) + share);
        else if (operand < 24) inputAdjoint.Set(operand - 16, inputAdjoint.Get(operand - 16) + share);
    }
}
