using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// Casts, arange and uniform fills on the device, each bit for bit what the CPU gives (the uniform stream is counter
/// based, so each element is computed on its own). Normal fills stay on the host copy: the polar method rejects
/// points, so element i depends on every draw before it, and a seed's values are part of the contract.
/// </summary>
public sealed partial class GpuBackend
{
    private Action<Index1D, ArrayView<float>, TypedOutput, int>? _castF32;
    private Action<Index1D, ArrayView<double>, TypedOutput, int>? _castF64;
    private Action<Index1D, ArrayView<long>, TypedOutput, int>? _castI64;
    private Action<Index1D, ArrayView<byte>, TypedOutput, int>? _castU8;
    private Action<Index1D, TypedOutput, int, double, double>? _arange;
    private Action<Index1D, ArrayView<float>, long, double, double, float, float, int>? _uniformF32;
    private Action<Index1D, ArrayView<double>, long, double, double, double, double, int>? _uniformF64;

    public void Cast(Tensor input, Tensor output)
    {
        if (input.DType == output.DType)
        {
            Copy(input, output);
            return;
        }
        if (!Fits(output))
        {
            _host.Cast(input, output);
            return;
        }
        if (output.ElementCount == 0) return;
        lock (Sync)
        {
            var (x, y, n, target) = (In(input), Typed(Out(output)), (int)output.ElementCount, (int)output.DType);
            switch (input.DType)
            {
                case DType.Float32: (_castF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, TypedOutput, int>(Kernels.CastF32))(n, x.Cast<float>(), y, target); break;
                case DType.Float64: (_castF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, TypedOutput, int>(Kernels.CastF64))(n, x.Cast<double>(), y, target); break;
                case DType.Int64: (_castI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, TypedOutput, int>(Kernels.CastI64))(n, x.Cast<long>(), y, target); break;
                default: (_castU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, TypedOutput, int>(Kernels.CastU8))(n, x, y, target); break;
            }
            Accelerator.Synchronize();
        }
    }

    public void Arange(Tensor output, double start, double step)
    {
        if (!Fits(output) || output.DType == DType.Bool)
        {
            _host.Arange(output, start, step); // bool: the host's error
            return;
        }
        if (output.ElementCount == 0) return;
        lock (Sync)
        {
            (_arange ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, TypedOutput, int, double, double>(Kernels.Arange))((int)output.ElementCount, Typed(Out(output)), (int)output.DType, start, step);
            Accelerator.Synchronize();
        }
    }

    public void RandomNormal(Tensor output, long seed, double mean, double std) => _host.RandomNormal(output, seed, mean, std);

    public void RandomUniform(Tensor output, long seed, double low, double high)
    {
        if (!Fits(output) || output.DType is not (DType.Float32 or DType.Float64))
        {
            _host.RandomUniform(output, seed, low, high);
            return;
        }
        if (output.ElementCount == 0) return;
        lock (Sync)
        {
            int n = (int)output.ElementCount;
            if (output.DType == DType.Float32)
            {
                // As the CPU: values that round up to high become the float just below it, when that is not below low.
                float top = (float)high, below = MathF.BitDecrement(top);
                int clamp = high > low && below >= (float)low ? 1 : 0;
                (_uniformF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, long, double, double, float, float, int>(Kernels.UniformF32))(n, Out(output).Cast<float>(), seed, low, high, top, below, clamp);
            }
            else
            {
                double below = Math.BitDecrement(high);
                int clamp = high > low && below >= low ? 1 : 0;
                (_uniformF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, long, double, double, double, double, int>(Kernels.UniformF64))(n, Out(output).Cast<double>(), seed, low, high, high, below, clamp);
            }
            Accelerator.Synchronize();
        }
    }

    /// <summary>The output's bytes as each element type (a cast view's length is the bytes it holds of that type).</summary>
    private static TypedOutput Typed(ArrayView<byte> y) => new() { F32 = y.Cast<float>(), F64 = y.Cast<double>(), I64 = y.Cast<long>(), U8 = y };
}
