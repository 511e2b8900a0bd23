using ILGPU;
using ILGPU.Runtime.Cuda;

namespace AutogradService.Gpu;

/// <summary>One output buffer seen as each element type; a kernel writes the one its target code names (a DType as an integer).</summary>
public struct TypedOutput
{
    public ArrayView<float> F32;
    public ArrayView<double> F64;
    public ArrayView<long> I64;
    public ArrayView<byte> U8;

    public readonly void Store(int target, int i, double v)
    {
        switch (target)
        {
            case 0: F32[i] = (float)v; break;
            case 1: F64[i] = v; break;
            case 2: I64[i] = Kernels.SaturatingToInt64(v); break;
            default: U8[i] = v != 0 ? (byte)1 : (byte)0; break;
        }
    }
}

public static partial class Kernels
{
    private const long GoldenGamma = unchecked((long)0x9E37_79B9_7F4A_7C15UL);

    /// <summary>The CPU's conversion to int64: NaN is 0, out-of-range values saturate, the rest truncate toward zero.</summary>
    public static long SaturatingToInt64(double v) =>
        double.IsNaN(v) ? 0 : v >= 9.2233720368547758E18 ? long.MaxValue : v <= -9.2233720368547758E18 ? long.MinValue : (long)v;

    // Casts by source type. float, double and bool (0 or 1) are exact in double, so one store from double serves them;
    // int64 converts straight to each type (through double, a large integer would be rounded twice on its way to float).
    public static void CastF32(Index1D i, ArrayView<float> x, TypedOutput y, int target) => y.Store(target, i, x[i]);

    public static void CastF64(Index1D i, ArrayView<double> x, TypedOutput y, int target) => y.Store(target, i, x[i]);

    public static void CastU8(Index1D i, ArrayView<byte> x, TypedOutput y, int target) => y.Store(target, i, x[i] != 0 ? 1.0 : 0.0);

    public static void CastI64(Index1D i, ArrayView<long> x, TypedOutput y, int target)
    {
        long v = x[i];
        switch (target)
        {
            case 0: y.F32[i] = v; break;
            case 1: y.F64[i] = v; break;
            case 2: y.I64[i] = v; break;
            default: y.U8[i] = v != 0 ? (byte)1 : (byte)0; break;
        }
    }

    /// <summary>start + i·step, rounded and converted as the CPU does it.</summary>
    public static void Arange(Index1D i, TypedOutput y, int target, double start, double step) =>
        y.Store(target, i, RoundedAdd(start, RoundedMul(i, step)));

    /// <summary>
    /// The CPU's uniform stream, element by element: SplitMix64's state after i + 1 steps is seed + (i + 1)·γ, so every
    /// element is computed on its own, bit for bit what the CPU's sequential generator gives. 53 bits scale to
    /// [low, high); a value that rounds up to high becomes the largest value below it.
    /// </summary>
    public static void UniformF32(Index1D i, ArrayView<float> y, long seed, double low, double high, float top, float below, int clamp)
    {
        float v = (float)RoundedAdd(low, RoundedMul(high - low, Unit(seed, i)));
        y[i] = clamp != 0 && v >= top ? below : v;
    }

    public static void UniformF64(Index1D i, ArrayView<double> y, long seed, double low, double high, double top, double below, int clamp)
    {
        double v = RoundedAdd(low, RoundedMul(high - low, Unit(seed, i)));
        y[i] = clamp != 0 && v >= top ? below : v;
    }

    // a·b and a + b each rounded on its own, as the CPU computes them. ILGPU writes plain mul.f64 and add.f64, which
    // ptxas may contract into one FMA (rounded once, a different last bit); the .rn forms it must leave alone.
    private static double RoundedMul(double a, double b)
    {
        if (!CudaAsm.IsSupported) return a * b;
        CudaAsm.Emit("mul.rn.f64 %0, %1, %2;", out double r, a, b);
        return r;
    }

    private static double RoundedAdd(double a, double b)
    {
        if (!CudaAsm.IsSupported) return a + b;
        CudaAsm.Emit("add.rn.f64 %0, %1, %2;", out double r, a, b);
        return r;
    }

    /// <summary>Draw i of SplitMix64 from <paramref name="seed"/>, as a double in [0, 1) on the 2^-53 grid.</summary>
    private static double Unit(long seed, long i)
    {
        ulong z = unchecked((ulong)seed + (ulong)(i + 1) * (ulong)GoldenGamma);
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
