using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>Elementwise kernels over spans, vectorised through <see cref="TensorPrimitives"/> where it has the op.</summary>
internal static class ElementwiseKernels
{
    public static void Unary<T>(UnaryKernel kernel, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Some TensorPrimitives calls (Sigmoid) refuse empty spans; an empty tensor has nothing to compute.
        if (x.IsEmpty) return;
        switch (kernel)
        {
            case UnaryKernel.Neg: TensorPrimitives.Negate(x, y); break;
            case UnaryKernel.Abs: TensorPrimitives.Abs(x, y); break;
            case UnaryKernel.Exp when typeof(T) == typeof(float) && ExpKernel.IsAccelerated:
                ExpKernel.Exp(Cast<T, float>(x), CastMut<T, float>(y));
                break;
            case UnaryKernel.Exp: TensorPrimitives.Exp(x, y); break;
            case UnaryKernel.Log: TensorPrimitives.Log(x, y); break;
            case UnaryKernel.Log1p: for (int i = 0; i < x.Length; i++) y[i] = Log1p(x[i]); break;
            case UnaryKernel.Expm1: for (int i = 0; i < x.Length; i++) y[i] = Expm1(x[i]); break;
            case UnaryKernel.Sqrt: TensorPrimitives.Sqrt(x, y); break;
            case UnaryKernel.Rsqrt: TensorPrimitives.ReciprocalSqrt(x, y); break;
            case UnaryKernel.Square: TensorPrimitives.Multiply(x, x, y); break;
            case UnaryKernel.Reciprocal: TensorPrimitives.Reciprocal(x, y); break;
            case UnaryKernel.Sin when typeof(T) == typeof(float) && TrigKernels.IsAccelerated:
                TrigKernels.Sin(Cast<T, float>(x), CastMut<T, float>(y));
                break;
            case UnaryKernel.Cos when typeof(T) == typeof(float) && TrigKernels.IsAccelerated:
                TrigKernels.Cos(Cast<T, float>(x), CastMut<T, float>(y));
                break;
            case UnaryKernel.Sin: TensorPrimitives.Sin(x, y); break;
            case UnaryKernel.Cos: TensorPrimitives.Cos(x, y); break;
            case UnaryKernel.Tan: TensorPrimitives.Tan(x, y); break;
            case UnaryKernel.Tanh: TanhKernel.Tanh(x, y); break;
            case UnaryKernel.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case UnaryKernel.Relu: TensorPrimitives.Max(x, T.Zero, y); break;
            case UnaryKernel.Softplus:
                // max(x, 0) + log1p(exp(-|x|)): exact for large |x| where log(1 + exp(x)) overflows.
                for (int i = 0; i < x.Length; i++)
                {
                    var v = x[i];
                    y[i] = T.Max(v, T.Zero) + Log1p(T.Exp(-T.Abs(v)));
                }
                break;
            case UnaryKernel.Sign:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? T.One : x[i] < T.Zero ? -T.One : x[i];
                break;
            case UnaryKernel.Erf:
                for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(Erf(double.CreateTruncating(x[i])));
                break;
            default: throw new NotSupportedException($"unary kernel {kernel} is not defined for floats");
        }
    }

    /// <summary>
    /// log(1 + x) without losing x when it is tiny (Kahan's trick: the rounding error of 1 + x cancels in the ratio).
    /// TensorPrimitives.LogP1 computes log(1 + x) directly, which returns 0 for x = 1e-9 in float32.
    /// </summary>
    internal static T Log1p<T>(T x) where T : IFloatingPointIeee754<T>
    {
        var u = T.One + x;
        if (u == T.One) return x;
        if (T.IsInfinity(u) || u <= T.Zero) return T.Log(u);
        return T.Log(u) * x / (u - T.One);
    }

    /// <summary>
    /// The error function, to a few ulps in double (.NET has none). Uses erf(x) = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) /
    /// (1·3·…·(2n+1)), whose terms are all positive, so nothing cancels; past |x| = 6 erf is ±1 in double.
    /// </summary>
    internal static double Erf(double x)
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
        return Math.CopySign(2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum, x);
    }

    /// <summary>e^x - 1 without losing x when it is tiny (Kahan's companion trick to <see cref="Log1p{T}"/>).</summary>
    internal static T Expm1<T>(T x) where T : IFloatingPointIeee754<T>
    {
        var u = T.Exp(x);
        if (u == T.One) return x;
        var um1 = u - T.One;
        if (um1 == -T.One || T.IsInfinity(u)) return um1;
        return um1 * x / T.Log(u);
    }

    /// <summary>sin x and cos x together: one pass where the AVX-512 float kernel applies, else the two usual kernels.</summary>
    public static void SinCos<T>(ReadOnlySpan<T> x, Span<T> sin, Span<T> cos) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && TrigKernels.IsAccelerated)
        {
            TrigKernels.SinCos(Cast<T, float>(x), CastMut<T, float>(sin), CastMut<T, float>(cos));
            return;
        }
        Unary(UnaryKernel.Sin, x, sin);
        Unary(UnaryKernel.Cos, x, cos);
    }

    public static void UnaryInt64(UnaryKernel kernel, ReadOnlySpan<long> x, Span<long> y)
    {
        switch (kernel)
        {
            case UnaryKernel.Neg: TensorPrimitives.Negate(x, y); break;
            // Two's complement, as PyTorch and NumPy: |long.MinValue| wraps to itself (Math.Abs would throw).
            case UnaryKernel.Abs: for (int i = 0; i < x.Length; i++) y[i] = x[i] < 0 ? unchecked(-x[i]) : x[i]; break;
            case UnaryKernel.Square: TensorPrimitives.Multiply(x, x, y); break;
            case UnaryKernel.Sign: for (int i = 0; i < x.Length; i++) y[i] = Math.Sign(x[i]); break;
            case UnaryKernel.Relu: TensorPrimitives.Max(x, 0L, y); break;
            default: throw new NotSupportedException($"unary kernel {kernel} is not defined for int64");
        }
    }

    public static void LogicalNot(ReadOnlySpan<bool> x, Span<bool> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = !x[i];
    }

    /// <summary>Arithmetic on a block: either operand may be a single broadcast value.</summary>
    public static void Arithmetic<T>(BinaryKernel kernel, ReadOnlySpan<T> a, bool aScalar, ReadOnlySpan<T> b, bool bScalar, Span<T> y)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        if (aScalar && bScalar)
        {
            y.Fill(Scalar(kernel, a[0], b[0]));
            return;
        }
        if (typeof(T) == typeof(float) || typeof(T) == typeof(double))
        {
            if (TryVector(kernel, a, aScalar, b, bScalar, y)) return;
        }
        for (int i = 0; i < y.Length; i++)
            y[i] = Scalar(kernel, a[aScalar ? 0 : i], b[bScalar ? 0 : i]);
    }

    private static bool TryVector<T>(BinaryKernel kernel, ReadOnlySpan<T> a, bool aScalar, ReadOnlySpan<T> b, bool bScalar, Span<T> y)
        where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float))
        {
            Vector(kernel, Cast<T, float>(a), aScalar, Cast<T, float>(b), bScalar, CastMut<T, float>(y));
            return true;
        }
        Vector(kernel, Cast<T, double>(a), aScalar, Cast<T, double>(b), bScalar, CastMut<T, double>(y));
        return true;
    }

    private static void Vector<T>(BinaryKernel kernel, ReadOnlySpan<T> a, bool aScalar, ReadOnlySpan<T> b, bool bScalar, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (kernel, aScalar, bScalar)
        {
            case (BinaryKernel.Add, false, false): TensorPrimitives.Add(a, b, y); break;
            case (BinaryKernel.Add, false, true): TensorPrimitives.Add(a, b[0], y); break;
            case (BinaryKernel.Add, true, false): TensorPrimitives.Add(b, a[0], y); break;
            case (BinaryKernel.Sub, false, false): TensorPrimitives.Subtract(a, b, y); break;
            case (BinaryKernel.Sub, false, true): TensorPrimitives.Subtract(a, b[0], y); break;
            case (BinaryKernel.Sub, true, false): TensorPrimitives.Subtract(a[0], b, y); break;
            case (BinaryKernel.Mul, false, false): TensorPrimitives.Multiply(a, b, y); break;
            case (BinaryKernel.Mul, false, true): TensorPrimitives.Multiply(a, b[0], y); break;
            case (BinaryKernel.Mul, true, false): TensorPrimitives.Multiply(b, a[0], y); break;
            case (BinaryKernel.Div, false, false): TensorPrimitives.Divide(a, b, y); break;
            case (BinaryKernel.Div, false, true): TensorPrimitives.Divide(a, b[0], y); break;
            case (BinaryKernel.Div, true, false): TensorPrimitives.Divide(a[0], b, y); break;
            case (BinaryKernel.Pow, false, false): TensorPrimitives.Pow(a, b, y); break;
            case (BinaryKernel.Pow, false, true): TensorPrimitives.Pow(a, b[0], y); break;
            case (BinaryKernel.Pow, true, false): TensorPrimitives.Pow(a[0], b, y); break;
            case (BinaryKernel.Maximum, false, false): TensorPrimitives.Max(a, b, y); break;
            case (BinaryKernel.Maximum, false, true): TensorPrimitives.Max(a, b[0], y); break;
            case (BinaryKernel.Maximum, true, false): TensorPrimitives.Max(b, a[0], y); break;
            case (BinaryKernel.Minimum, false, false): TensorPrimitives.Min(a, b, y); break;
            case (BinaryKernel.Minimum, false, true): TensorPrimitives.Min(a, b[0], y); break;
            case (BinaryKernel.Minimum, true, false): TensorPrimitives.Min(b, a[0], y); break;
            default: throw new NotSupportedException($"binary kernel {kernel} is not arithmetic");
        }
    }

    private static T Scalar<T>(BinaryKernel kernel, T a, T b) where T : INumber<T> => kernel switch
    {
        BinaryKernel.Add => a + b,
        BinaryKernel.Sub => a - b,
        BinaryKernel.Mul => a * b,
        BinaryKernel.Div => a / b,
        BinaryKernel.Pow => T.CreateTruncating(Math.Pow(double.CreateTruncating(a), double.CreateTruncating(b))),
        BinaryKernel.Maximum => T.IsNaN(a) || T.IsNaN(b) ? a + b : T.Max(a, b),
        BinaryKernel.Minimum => T.IsNaN(a) || T.IsNaN(b) ? a + b : T.Min(a, b),
        _ => throw new NotSupportedException($"binary kernel {kernel} is not arithmetic"),
    };

    /// <summary>Comparisons on a block, writing bool (one loop per comparison, so the test inlines).</summary>
    public static void Predicate<T>(BinaryKernel kernel, ReadOnlySpan<T> a, bool aScalar, ReadOnlySpan<T> b, bool bScalar, Span<bool> y)
        where T : unmanaged, IComparisonOperators<T, T, bool>
    {
        switch (kernel)
        {
            case BinaryKernel.Eq: Compare<T, EqTest<T>>(a, aScalar, b, bScalar, y); break;
            case BinaryKernel.Ne: Compare<T, NeTest<T>>(a, aScalar, b, bScalar, y); break;
            case BinaryKernel.Lt: Compare<T, LtTest<T>>(a, aScalar, b, bScalar, y); break;
            case BinaryKernel.Le: Compare<T, LeTest<T>>(a, aScalar, b, bScalar, y); break;
            case BinaryKernel.Gt: Compare<T, GtTest<T>>(a, aScalar, b, bScalar, y); break;
            case BinaryKernel.Ge: Compare<T, GeTest<T>>(a, aScalar, b, bScalar, y); break;
            default: throw new NotSupportedException($"binary kernel {kernel} is not a comparison");
        }
    }

    private static void Compare<T, TTest>(ReadOnlySpan<T> a, bool aScalar, ReadOnlySpan<T> b, bool bScalar, Span<bool> y)
        where T : unmanaged, IComparisonOperators<T, T, bool>
        where TTest : ITest<T>
    {
        // float32 runs 64 at a time first; the loops below finish the tail (or everything, for other types).
        int start = typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated && y.Length >= 64
            ? CompareFloats<TTest>(Cast<T, float>(a), aScalar, Cast<T, float>(b), bScalar, y)
            : 0;
        if (bScalar && !aScalar)
        {
            var z = b[0];
            for (int i = start; i < y.Length; i++) y[i] = TTest.Test(a[i], z);
        }
        else if (aScalar && !bScalar)
        {
            var x = a[0];
            for (int i = start; i < y.Length; i++) y[i] = TTest.Test(x, b[i]);
        }
        else
        {
            for (int i = start; i < y.Length; i++) y[i] = TTest.Test(a[aScalar ? 0 : i], b[bScalar ? 0 : i]);
        }
    }

    /// <summary>
    /// float32 comparisons 64 at a time: four 16-lane masks narrowed to 64 bytes of 0/1 (ReLU's derivative is
    /// x &gt; 0 on every backward pass). Returns how many elements it wrote: whole groups of 64; the caller does the rest.
    /// </summary>
    private static int CompareFloats<TTest>(ReadOnlySpan<float> a, bool aScalar, ReadOnlySpan<float> b, bool bScalar, Span<bool> y)
        where TTest : IVectorTest
    {
        const int Group = 64;
        int n = y.Length, i = 0;
        var sa = Vector512.Create(a[0]);
        var sb = Vector512.Create(b[0]);
        var one = Vector512<sbyte>.One;
        ref float pa = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a);
        ref float pb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b);
        ref byte py = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(System.Runtime.InteropServices.MemoryMarshal.AsBytes(y));
        for (; i <= n - Group; i += Group)
        {
            var m0 = TTest.Test(aScalar ? sa : Vector512.LoadUnsafe(ref pa, (nuint)i), bScalar ? sb : Vector512.LoadUnsafe(ref pb, (nuint)i));
            var m1 = TTest.Test(aScalar ? sa : Vector512.LoadUnsafe(ref pa, (nuint)(i + 16)), bScalar ? sb : Vector512.LoadUnsafe(ref pb, (nuint)(i + 16)));
            var m2 = TTest.Test(aScalar ? sa : Vector512.LoadUnsafe(ref pa, (nuint)(i + 32)), bScalar ? sb : Vector512.LoadUnsafe(ref pb, (nuint)(i + 32)));
            var m3 = TTest.Test(aScalar ? sa : Vector512.LoadUnsafe(ref pa, (nuint)(i + 48)), bScalar ? sb : Vector512.LoadUnsafe(ref pb, (nuint)(i + 48)));
            var lo = Vector512.Narrow(m0.AsInt32(), m1.AsInt32());
            var hi = Vector512.Narrow(m2.AsInt32(), m3.AsInt32());
            (Vector512.Narrow(lo, hi) & one).AsByte().StoreUnsafe(ref py, (nuint)i);
        }
        return i;
    }

    private interface IVectorTest
    {
        /// <summary>The test on 16 float32 lanes: all ones where true.</summary>
        static abstract Vector512<float> Test(Vector512<float> x, Vector512<float> z);
    }

    private interface ITest<T> : IVectorTest where T : IComparisonOperators<T, T, bool>
    {
        static abstract bool Test(T x, T z);
    }

    private readonly struct EqTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x == z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => Vector512.Equals(x, z);
    }

    private readonly struct NeTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x != z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => ~Vector512.Equals(x, z);
    }

    private readonly struct LtTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x < z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => Vector512.LessThan(x, z);
    }

    private readonly struct LeTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x <= z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => Vector512.LessThanOrEqual(x, z);
    }

    private readonly struct GtTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x > z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => Vector512.GreaterThan(x, z);
    }

    private readonly struct GeTest<T> : ITest<T> where T : IComparisonOperators<T, T, bool>
    {
        public static bool Test(T x, T z) => x >= z;
        public static Vector512<float> Test(Vector512<float> x, Vector512<float> z) => Vector512.GreaterThanOrEqual(x, z);
    }

    public static void Logical(BinaryKernel kernel, ReadOnlySpan<bool> a, bool aScalar, ReadOnlySpan<bool> b, bool bScalar, Span<bool> y)
    {
        for (int i = 0; i < y.Length; i++)
        {
            bool x = a[aScalar ? 0 : i], z = b[bScalar ? 0 : i];
            y[i] = kernel switch
            {
                BinaryKernel.LogicalAnd => x && z,
                BinaryKernel.LogicalOr => x || z,
                BinaryKernel.Eq => x == z,
                BinaryKernel.Ne => x != z,
                _ => throw new NotSupportedException($"binary kernel {kernel} is not defined for bool"),
            };
        }
    }

    public static void Fill<T>(Span<T> y, double value) where T : unmanaged, INumberBase<T> => y.Fill(T.CreateSaturating(value));

    public static void Convert<TFrom, TTo>(ReadOnlySpan<TFrom> x, Span<TTo> y)
        where TFrom : unmanaged, INumberBase<TFrom>
        where TTo : unmanaged, INumberBase<TTo>
    {
        int i = 0;
        if (typeof(TFrom) == typeof(byte) && typeof(TTo) == typeof(float) && Vector512.IsHardwareAccelerated)
            i = BytesToFloats(Cast<TFrom, byte>(x), CastMut<TTo, float>(y));
        for (; i < x.Length; i++) y[i] = TTo.CreateSaturating(x[i]);
    }

    /// <summary>Bytes (bools cast to float: ReLU's mask) to float32, 64 at a time; returns how many it converted.</summary>
    private static int BytesToFloats(ReadOnlySpan<byte> x, Span<float> y)
    {
        int n = x.Length, i = 0;
        ref byte px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float py = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        for (; i <= n - 64; i += 64)
        {
            var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref px, (nuint)i));
            var (a, b) = Vector512.Widen(lo);
            var (c, d) = Vector512.Widen(hi);
            Vector512.ConvertToSingle(a).StoreUnsafe(ref py, (nuint)i);
            Vector512.ConvertToSingle(b).StoreUnsafe(ref py, (nuint)(i + 16));
            Vector512.ConvertToSingle(c).StoreUnsafe(ref py, (nuint)(i + 32));
            Vector512.ConvertToSingle(d).StoreUnsafe(ref py, (nuint)(i + 48));
        }
        return i;
    }

    internal static ReadOnlySpan<TTo> Cast<TFrom, TTo>(ReadOnlySpan<TFrom> s) where TFrom : unmanaged where TTo : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<TFrom, TTo>(s);

    internal static Span<TTo> CastMut<TFrom, TTo>(Span<TFrom> s) where TFrom : unmanaged where TTo : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<TFrom, TTo>(s);
}
