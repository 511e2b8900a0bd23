namespace AutogradService.Gpu;

/// <summary>
/// Transcendentals in plain double arithmetic, for kernels. Without the CUDA toolkit's libdevice, ILGPU's PTX backend
/// has no exp, log or pow at all and maps sin/cos to the approximate hardware instructions; these give the same
/// function on every backend, within a few ulp of the correctly rounded result (float32 kernels evaluate in double and
/// round once). Arguments are reduced exactly enough for the engine's inputs: sin, cos and tan by π/2 in three parts
/// (accurate to |x| ≈ 1e5).
/// </summary>
public static class DeviceMath
{
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double InvLn2 = 1.44269504088896338700e+00;
    private const double PiOver2A = 1.5707963267341256e+00;   // π/2 in three parts, each exact in few bits
    private const double PiOver2B = 6.07710050630396597660e-11;
    private const double PiOver2C = 2.0222662487959506e-21;
    private const double TwoOverPi = 6.36619772367581382433e-01;

    public static double Exp(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x > 709.782712893384) return double.PositiveInfinity;
        if (x < -745.1332191019412) return 0;
        double k = Math.Round(x * InvLn2);
        double r = (x - k * Ln2Hi) - k * Ln2Lo; // |r| ≤ ln2/2
        // e^r by its Taylor series to r^13 (error below 1e-17 relative on |r| ≤ 0.347), Horner form.
        double p = 1.0 / 6227020800;
        p = p * r + 1.0 / 479001600;
        p = p * r + 1.0 / 39916800;
        p = p * r + 1.0 / 3628800;
        p = p * r + 1.0 / 362880;
        p = p * r + 1.0 / 40320;
        p = p * r + 1.0 / 5040;
        p = p * r + 1.0 / 720;
        p = p * r + 1.0 / 120;
        p = p * r + 1.0 / 24;
        p = p * r + 1.0 / 6;
        p = p * r + 0.5;
        p = p * r + 1;
        p = p * r + 1;
        return Scale(p, (int)k);
    }

    /// <summary>e^x − 1, accurate near 0 where e^x − 1 cancels.</summary>
    public static double Expm1(double x)
    {
        if (Math.Abs(x) >= 0.34657359027997264) return Exp(x) - 1; // ln2/2
        double p = 1.0 / 87178291200;
        p = p * x + 1.0 / 6227020800;
        p = p * x + 1.0 / 479001600;
        p = p * x + 1.0 / 39916800;
        p = p * x + 1.0 / 3628800;
        p = p * x + 1.0 / 362880;
        p = p * x + 1.0 / 40320;
        p = p * x + 1.0 / 5040;
        p = p * x + 1.0 / 720;
        p = p * x + 1.0 / 120;
        p = p * x + 1.0 / 24;
        p = p * x + 1.0 / 6;
        p = p * x + 0.5;
        return x + x * x * p;
    }

    public static double Log(double x)
    {
        if (double.IsNaN(x) || x < 0) return double.NaN;
        if (x == 0) return double.NegativeInfinity;
        if (double.IsPositiveInfinity(x)) return x;
        int e = 0;
        if (x < 2.2250738585072014e-308)
        {
            x *= 18014398509481984.0; // 2^54: subnormals become normal
            e = -54;
        }
        long bits = BitConverter.DoubleToInt64Bits(x);
        e += (int)((bits >> 52) & 0x7FF) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L); // [1, 2)
        if (m > 1.4142135623730951)
        {
            m *= 0.5;
            e++;
        }
        // log m = 2 atanh(f), f = (m − 1)/(m + 1), |f| ≤ 0.1716: the odd series to f^27.
        double f = (m - 1) / (m + 1), f2 = f * f;
        double s = 1.0 / 27;
        for (int n = 25; n >= 3; n -= 2) s = s * f2 + 1.0 / n;
        double logM = 2 * f + 2 * f * f2 * s;
        return e * Ln2Hi + (logM + e * Ln2Lo);
    }

    /// <summary>log(1 + x), accurate near 0: the rounding of 1 + x is corrected by its first-order term.</summary>
    public static double Log1p(double x)
    {
        double u = 1 + x;
        if (u == 1) return x;
        if (double.IsPositiveInfinity(u) || u <= 0) return Log(u);
        return Log(u) - ((u - 1) - x) / u;
    }

    public static double Sin(double x)
    {
        if (!double.IsFinite(x)) return double.NaN;
        double r = Reduce(x, out int quadrant);
        return (quadrant & 3) switch
        {
            0 => SinPoly(r),
            1 => CosPoly(r),
            2 => -SinPoly(r),
            _ => -CosPoly(r),
        };
    }

    public static double Cos(double x)
    {
        if (!double.IsFinite(x)) return double.NaN;
        double r = Reduce(x, out int quadrant);
        return (quadrant & 3) switch
        {
            0 => CosPoly(r),
            1 => -SinPoly(r),
            2 => -CosPoly(r),
            _ => SinPoly(r),
        };
    }

    public static double Tan(double x)
    {
        if (!double.IsFinite(x)) return double.NaN;
        double r = Reduce(x, out int quadrant);
        double s = SinPoly(r), c = CosPoly(r);
        return (quadrant & 1) == 0 ? s / c : -c / s;
    }

    public static double Tanh(double x)
    {
        if (double.IsNaN(x)) return x;
        double a = Math.Abs(x);
        if (a > 22) return x > 0 ? 1 : -1;
        double t = Expm1(2 * a);
        double y = t / (t + 2);
        return x < 0 ? -y : y;
    }

    /// <summary>
    /// The error function as the CPU backend computes it: 2/√π e^(−x²) Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)), all terms
    /// positive so nothing cancels, stopped when a term no longer counts; ±1 past |x| = 6.
    /// </summary>
    public static double Erf(double x)
    {
        double a = Math.Abs(x);
        if (double.IsNaN(x)) return x;
        if (a >= 6) return Math.CopySign(1.0, x);
        double x2 = a * a, term = a, sum = a;
        for (int n = 1; n < 400; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term <= sum * 1e-17) break;
        }
        return Math.CopySign(1.1283791670955126 * Exp(-x2) * sum, x); // 2/√π
    }

    public static double Sigmoid(double x) => 1 / (1 + Exp(-x));

    /// <summary>max(x, 0) + log1p(exp(−|x|)), the CPU's form: no overflow for large |x|.</summary>
    public static double Softplus(double x) => double.IsNaN(x) ? x : Math.Max(x, 0) + Log1p(Exp(-Math.Abs(x)));

    /// <summary>aᵇ as exp(b · log a), with IEEE's special cases (negative bases to integer powers keep their sign).</summary>
    public static double Pow(double a, double b)
    {
        if (b == 0 || a == 1) return 1;
        if (double.IsNaN(a) || double.IsNaN(b)) return double.NaN;
        bool integer = Math.Floor(b) == b && Math.Abs(b) < 9007199254740992.0;
        bool odd = integer && Math.Floor(b * 0.5) != b * 0.5; // no floating remainder on every backend
        if (a == 0) return b < 0 ? (odd ? 1 / a : double.PositiveInfinity) : (odd ? a : 0);
        if (a < 0 && !integer) return double.NaN;
        // Small integer powers by squaring (a few roundings); others as exp(b · log |a|).
        double magnitude = integer && Math.Abs(b) <= 1024 ? Powi(Math.Abs(a), (int)Math.Abs(b)) : Exp(b * Log(Math.Abs(a)));
        if (integer && b < 0 && Math.Abs(b) <= 1024) magnitude = 1 / magnitude;
        return a < 0 && odd ? -magnitude : magnitude;
    }

    private static double Powi(double a, int n)
    {
        double result = 1;
        while (n > 0)
        {
            if ((n & 1) == 1) result *= a;
            a *= a;
            n >>= 1;
        }
        return result;
    }

    /// <summary>p · 2^k for any k a double exponent can reach (two steps near the ends of the range).</summary>
    private static double Scale(double p, int k)
    {
        if (k > 1023)
        {
            p *= 8.98846567431158e307; // 2^1023
            k -= 1023;
        }
        else if (k < -1022)
        {
            p *= 2.2250738585072014e-308; // 2^-1022
            k += 1022;
        }
        return p * BitConverter.Int64BitsToDouble((long)(k + 1023) << 52);
    }

    /// <summary>x − q·π/2 for the nearest integer q, in three steps so the subtraction loses nothing.</summary>
    private static double Reduce(double x, out int quadrant)
    {
        double q = Math.Round(x * TwoOverPi);
        quadrant = (int)(long)q;
        return ((x - q * PiOver2A) - q * PiOver2B) - q * PiOver2C;
    }

    // Taylor series on |r| ≤ π/4: the omitted terms are below 1e-18.
    private static double SinPoly(double r)
    {
        double r2 = r * r;
        double p = -1.0 / 121645100408832000;
        p = p * r2 + 1.0 / 355687428096000;
        p = p * r2 - 1.0 / 1307674368000;
        p = p * r2 + 1.0 / 6227020800;
        p = p * r2 - 1.0 / 39916800;
        p = p * r2 + 1.0 / 362880;
        p = p * r2 - 1.0 / 5040;
        p = p * r2 + 1.0 / 120;
        p = p * r2 - 1.0 / 6;
        return r + r * r2 * p;
    }

    private static double CosPoly(double r)
    {
        double r2 = r * r;
        double p = 1.0 / 6402373705728000;
        p = p * r2 - 1.0 / 20922789888000;
        p = p * r2 + 1.0 / 87178291200;
        p = p * r2 - 1.0 / 479001600;
        p = p * r2 + 1.0 / 3628800;
        p = p * r2 - 1.0 / 40320;
        p = p * r2 + 1.0 / 720;
        p = p * r2 - 1.0 / 24;
        p = p * r2 + 0.5;
        return 1 - r2 * p;
    }
}
