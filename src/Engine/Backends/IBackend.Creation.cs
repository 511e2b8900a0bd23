using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

/// <summary>Kernels that make a tensor from nothing but parameters (<c>Ops/Creation.cs</c>).</summary>
public partial interface IBackend
{
    /// <summary>Writes <c>start + i * step</c> (computed in double, then converted) to element i of a vector.</summary>
    void Arange(Tensor output, double start, double step);

    /// <summary>
    /// Fills a float tensor with normal samples from a stream fixed by <paramref name="seed"/>: every backend must
    /// produce the same values as the CPU one (SplitMix64 and the Marsaglia polar method, see CreationKernels).
    /// </summary>
    void RandomNormal(Tensor output, long seed, double mean, double std);

    /// <summary>Fills a float tensor with uniform samples in [low, high) from the stream fixed by <paramref name="seed"/>.</summary>
    void RandomUniform(Tensor output, long seed, double low, double high);
}
