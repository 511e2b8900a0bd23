using ILGPU;

namespace AutogradService.Gpu;

/// <summary>Up to eight values of one element type a kernel keeps in registers (a fused region's live values, its literals).</summary>
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

/// <summary>A fused region's inputs (up to eight): each full-shape, read at the element, or a single element, read at 0.</summary>
public struct RegionInputs<T> where T : unmanaged
{
    public ArrayView<T> X0, X1, X2, X3, X4, X5, X6, X7;

    /// <summary>Bit k set: input k is a single element.</summary>
    public int SingleElements;

    public readonly T Get(int k, int i)
    {
        int at = (SingleElements >> k & 1) != 0 ? 0 : i;
        return k switch { 0 => X0[at], 1 => X1[at], 2 => X2[at], 3 => X3[at], 4 => X4[at], 5 => X5[at], 6 => X6[at], _ => X7[at] };
    }

    public void Set(int k, ArrayView<T> view, bool singleElement)
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
        if (singleElement) SingleElements |= 1 << k;
    }
}

/// <summary>
/// A fused region's steps (up to sixteen), one integer each: the kernel code (bits 0-5), binary (bit 6), operands A
/// and B (bits 7-11 and 12-16: 0-7 a register, 8-15 an input, 16-23 a literal) and the register written (bits 17-19).
/// Built by <see cref="RegionCode"/>.
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
    public static void RegionF32(Index1D i, RegionInputs<float> x, ArrayView<float> y, RegionSteps steps, Registers8<float> literals)
    {
        var r = default(Registers8<float>);
        float v = 0;
        for (int k = 0; k < steps.Count; k++)
        {
            int s = steps.Get(k);
            float a = Operand(s >> 7 & 31, i, r, x, literals);
            v = (s & 64) != 0 ? Scalar.Binary(s & 63, a, Operand(s >> 12 & 31, i, r, x, literals)) : Scalar.Unary(s & 63, a);
            r.Set(s >> 17 & 7, v);
        }
        y[i] = v;
    }

    public static void RegionF64(Index1D i, RegionInputs<double> x, ArrayView<double> y, RegionSteps steps, Registers8<double> literals)
    {
        var r = default(Registers8<double>);
        double v = 0;
        for (int k = 0; k < steps.Count; k++)
        {
            int s = steps.Get(k);
            double a = Operand(s >> 7 & 31, i, r, x, literals);
            v = (s & 64) != 0 ? Scalar.Binary(s & 63, a, Operand(s >> 12 & 31, i, r, x, literals)) : Scalar.Unary(s & 63, a);
            r.Set(s >> 17 & 7, v);
        }
        y[i] = v;
    }

    private static T Operand<T>(int operand, int i, Registers8<T> registers, RegionInputs<T> inputs, Registers8<T> literals) where T : unmanaged =>
        operand < 8 ? registers.Get(operand) : operand < 16 ? inputs.Get(operand - 8, i) : literals.Get(operand - 16);
}
