using System.Numerics;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// Arange and the random fills. The random streams are part of the API contract (a seed names its values
/// forever, on every machine), so they use only integer arithmetic and IEEE-exact double operations
/// (+, -, *, /, sqrt): no System.Random, whose algorithm may change, and no Math.Log, whose last bit may differ
/// between C runtimes.
/// </summary>
internal static class CreationKernels
{
    public static void Arange<T>(Span<T> y, double start, double step) where T : unmanaged, INumberBase<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = T.CreateSaturating(start + i * step);
    }

    /// <summary>Uniform samples in [low, high): 53 random bits scaled, then converted (kept below high after rounding).</summary>
    public static void Uniform<T>(Span<T> y, long seed, double low, double high) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new SplitMix64(seed);
        var top = T.CreateSaturating(high);
        var below = T.BitDecrement(top);
        bool clamp = high > low && below >= T.CreateSaturating(low);
        for (int i = 0; i < y.Length; i++)
        {
            var v = T.CreateSaturating(low + (high - low) * rng.NextDouble());
            y[i] = clamp && v >= top ? below : v;
        }
    }

    /// <summary>
    /// Normal samples by the Marsaglia polar method: a point (u, v) uniform in the unit disc gives two independent
    /// standard normals u * sqrt(-2 ln s / s) and v * sqrt(-2 ln s / s), s = u^2 + v^2.
    /// </summary>
    public static void Normal<T>(Span<T> y, long seed, double mean, double std) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new SplitMix64(seed);
        for (int i = 0; i < y.Length; i += 2)
        {
            double u, v, s;
            do
            {
                u = 2 * rng.NextDouble() - 1;
                v = 2 * rng.NextDouble() - 1;
                s = u * u + v * v;
            }
            while (s >= 1 || s == 0);
            double f = Math.Sqrt(-2 * Ln(s) / s);
            y[i] = T.CreateSaturating(mean + std * (u * f));
            if (i + 1 < y.Length) y[i + 1] = T.CreateSaturating(mean + std * (v * f));
        }
    }

    private const double Ln2 = 0.6931471805599453;
    private const double Sqrt2 = 1.4142135623730951;

    /// <summary>1 / (2k + 1) for the atanh series, highest term first.</summary>
    private static readonly double[] AtanhSeries = Enumerable.Range(0, 13).Reverse().Select(k => 1.0 / (2 * k + 1)).ToArray();

    /// <summary>
    /// Natural log of a positive normal double with basic arithmetic only, so every machine gets the same bits:
    /// x = m * 2^e with m in (sqrt(1/2), sqrt(2)], ln m = 2 atanh((m - 1) / (m + 1)), whose series in t^2 <= 0.03
    /// reaches double precision in 13 terms.
    /// </summary>
    internal static double Ln(double x)
    {
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0xF_FFFF_FFFF_FFFFL) | 0x3FF0_0000_0000_0000L);
        if (m > Sqrt2)
        {
            m *= 0.5;
            e++;
        }
        double t = (m - 1) / (m + 1), t2 = t * t, sum = 0;
        foreach (var c in AtanhSeries) sum = sum * t2 + c;
        return 2 * t * sum + e * Ln2;
    }

    /// <summary>SplitMix64 (Steele, Lea and Flood, 2014): a Weyl counter through a fixed 64-bit mixer.</summary>
    internal struct SplitMix64(long seed)
    {
        private ulong _state = unchecked((ulong)seed);

        public ulong Next()
        {
            ulong z = _state += 0x9E37_79B9_7F4A_7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>A double in [0, 1) on the 2^-53 grid.</summary>
        public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
    }
}
