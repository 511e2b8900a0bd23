using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public sealed partial class CpuBackend
{
    public void Arange(Tensor output, double start, double step)
    {
        switch (output.DType)
        {
            case DType.Float32: CreationKernels.Arange(output.Span<float>(), start, step); break;
            case DType.Float64: CreationKernels.Arange(output.Span<double>(), start, step); break;
            case DType.Int64: CreationKernels.Arange(output.Span<long>(), start, step); break;
            default: throw new NotSupportedException("arange makes numbers, not bool");
        }
    }

    public void RandomNormal(Tensor output, long seed, double mean, double std)
    {
        switch (output.DType)
        {
            case DType.Float32: CreationKernels.Normal(output.Span<float>(), seed, mean, std); break;
            case DType.Float64: CreationKernels.Normal(output.Span<double>(), seed, mean, std); break;
            default: throw new NotSupportedException("random values are float32 or float64");
        }
    }

    public void RandomUniform(Tensor output, long seed, double low, double high)
    {
        switch (output.DType)
        {
            case DType.Float32: CreationKernels.Uniform(output.Span<float>(), seed, low, high); break;
            case DType.Float64: CreationKernels.Uniform(output.Span<double>(), seed, low, high); break;
            default: throw new NotSupportedException("random values are float32 or float64");
        }
    }
}
