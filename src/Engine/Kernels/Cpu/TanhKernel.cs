using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// tanh in one pass, accurate near zero. TensorPrimitives.Tanh forms e^2x − 1 by subtraction, so near 0 it loses
/// digits: thousands of ulp in double, tanh(0f) = −6e-8 and tanh(+0.0) = −0 (System.Numerics.Tensors 10 and 11).
/// Here |x| &lt; 0.75 takes the [n/n] convergent of Lambert's continued fraction x / (1 + x²/(3 + x²/(5 + …))), whose
/// truncation error there is 4e-9 (float, n = 4) or 2e-19 (double, n = 8) of the value, far below an ulp, and odd,
/// so ±0 stay ±0; larger |x| take 1 − 2/(e^2|x| + 1), which cancels at most one bit there, with x's sign.
/// Every element goes through the vector path (the scalar one serves machines without vectors), so any sub-range of a
/// tensor gives the same bits.
/// </summary>
internal static class TanhKernel
{
    public static void Tanh<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T px = ref MemoryMarshal.GetReference(x);
        ref T py = ref MemoryMarshal.GetReference(y);
        int i = 0, n = x.Length;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                Tanh(Vector512.LoadUnsafe(ref px, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
            if (i < n) Tail(x[i..], y[i..], Vector512<T>.Count, static (s, d) => Tanh(Vector512.Create<T>(s)).CopyTo(d));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
                Tanh(Vector256.LoadUnsafe(ref px, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
            if (i < n) Tail(x[i..], y[i..], Vector256<T>.Count, static (s, d) => Tanh(Vector256.Create<T>(s)).CopyTo(d));
        }
        else
            for (; i < n; i++) y[i] = Tanh(x[i]);
    }

    /// <summary>
    /// The last partial vector through the vector path too (padded with zeros on the stack): every element gets the
    /// same bits whatever range it is computed in, which fused tiles and parallel splits rely on.
    /// </summary>
    private static void Tail<T>(ReadOnlySpan<T> x, Span<T> y, int count, VectorStep<T> step) where T : unmanaged
    {
        Span<T> padded = stackalloc T[count];
        Span<T> result = stackalloc T[count];
        padded.Clear();
        x.CopyTo(padded);
        step(padded, result);
        result[..x.Length].CopyTo(y);
    }

    private delegate void VectorStep<T>(ReadOnlySpan<T> source, Span<T> destination);

    private static T Tanh<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = T.Abs(x);
        if (a < T.CreateTruncating(0.75))
        {
            var z = x * x;
            return x == T.Zero ? x : x - x * (z * CorrectionNumerator(z) / ConvergentDenominator(z));
        }
        var big = T.One - T.CreateTruncating(2) / (T.Exp(a + a) + T.One);
        return T.CopySign(big, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Tanh<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector512.Abs(x);
        var small = Vector512.LessThan(a, Vector512.Create(T.CreateTruncating(0.75)));
        var z = x * x;
        var near = Vector512.ConditionalSelect(Vector512.Equals(x, Vector512<T>.Zero), x, x - x * (z * CorrectionNumerator(z) / ConvergentDenominator(z)));
        var one = Vector512<T>.One;
        var far = one - Vector512.Create(T.CreateTruncating(2)) / (Exp(a + a) + one);
        var sign = Vector512.Create(-T.Zero); // only the sign bit set
        far = Vector512.ConditionalSelect(sign, x, far);
        return Vector512.ConditionalSelect(small, near, far);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Tanh<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector256.Abs(x);
        var small = Vector256.LessThan(a, Vector256.Create(T.CreateTruncating(0.75)));
        var z = x * x;
        var near = Vector256.ConditionalSelect(Vector256.Equals(x, Vector256<T>.Zero), x, x - x * (z * CorrectionNumerator(z) / ConvergentDenominator(z)));
        var one = Vector256<T>.One;
        var far = one - Vector256.Create(T.CreateTruncating(2)) / (Exp(a + a) + one);
        var sign = Vector256.Create(-T.Zero);
        far = Vector256.ConditionalSelect(sign, x, far);
        return Vector256.ConditionalSelect(small, near, far);
    }

    // The convergent P(z)/Q(z) (float n = 4, double n = 8) as 1 − z·S(z)/Q(z) with S = (Q − P)/z: the correction is
    // small (x²/3 at most 0.19), so its rounding hardly reaches the result: within an ulp or two instead of four.
    private static T CorrectionNumerator<T>(T z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? C<T>(14) * z + C<T>(315)
        : ((C<T>(44) * z + C<T>(12870)) * z + C<T>(810810)) * z + C<T>(11486475);

    private static T ConvergentDenominator<T>(T z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? (C<T>(15) * z + C<T>(420)) * z + C<T>(945)
        : (((C<T>(45) * z + C<T>(13860)) * z + C<T>(945945)) * z + C<T>(16216200)) * z + C<T>(34459425);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> CorrectionNumerator<T>(Vector512<T> z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? V512<T>(14) * z + V512<T>(315)
        : ((V512<T>(44) * z + V512<T>(12870)) * z + V512<T>(810810)) * z + V512<T>(11486475);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> ConvergentDenominator<T>(Vector512<T> z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? (V512<T>(15) * z + V512<T>(420)) * z + V512<T>(945)
        : (((V512<T>(45) * z + V512<T>(13860)) * z + V512<T>(945945)) * z + V512<T>(16216200)) * z + V512<T>(34459425);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> CorrectionNumerator<T>(Vector256<T> z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? V256<T>(14) * z + V256<T>(315)
        : ((V256<T>(44) * z + V256<T>(12870)) * z + V256<T>(810810)) * z + V256<T>(11486475);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> ConvergentDenominator<T>(Vector256<T> z) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? (V256<T>(15) * z + V256<T>(420)) * z + V256<T>(945)
        : (((V256<T>(45) * z + V256<T>(13860)) * z + V256<T>(945945)) * z + V256<T>(16216200)) * z + V256<T>(34459425);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Exp<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? Vector512.Exp(x.As<T, float>()).As<float, T>()
        : Vector512.Exp(x.As<T, double>()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Exp<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? Vector256.Exp(x.As<T, float>()).As<float, T>()
        : Vector256.Exp(x.As<T, double>()).As<double, T>();

    private static T C<T>(double value) where T : unmanaged, IFloatingPointIeee754<T> => T.CreateTruncating(value);

    private static Vector512<T> V512<T>(double value) where T : unmanaged, IFloatingPointIeee754<T> => Vector512.Create(T.CreateTruncating(value));

    private static Vector256<T> V256<T>(double value) where T : unmanaged, IFloatingPointIeee754<T> => Vector256.Create(T.CreateTruncating(value));
}
