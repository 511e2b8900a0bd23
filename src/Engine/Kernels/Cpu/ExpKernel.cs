using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// float32 e^x evaluated in double (AVX-512) and rounded once: correctly rounded on every input we sampled, where
/// TensorPrimitives' float path is one ulp off on over half of them (exp(0) = 1.0000001), at about 1.7× its time
/// (0.72 vs 0.42 ms per million). Softmax, cross-entropy and logsumexp all go through it.
/// </summary>
internal static class ExpKernel
{
    public static bool IsAccelerated => Vector512.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Exp(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length, i = 0;
        ref float px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float py = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref px, (nuint)i));
            Vector512.Narrow(Vector512.Exp(lo), Vector512.Exp(hi)).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < n; i++) y[i] = (float)Math.Exp(x[i]);
    }
}
