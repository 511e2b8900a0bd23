using AutogradService.Engine.Graphs;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

/// <summary>
/// The CPU backend: SIMD kernels from <c>Kernels/Cpu</c> over pooled native memory. Stateless and thread-safe.
/// Split into one partial file per op family, like <see cref="IBackend"/>.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public static CpuBackend Instance { get; } = new();

    public string Name => "cpu";

    public DeviceInfo Describe() => new(Name, "cpu",
        GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, EngineThreads.Count,
        $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores, " +
        $"{(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit")} SIMD");

    Storage IBackend.Allocate(ExecutionScope scope, long bytes) => new HostStorage(scope.Pool, scope.Budget, bytes);

    public void Upload(ReadOnlySpan<byte> source, Tensor output) => source.CopyTo(output.Bytes());

    public long FindOutOfRange(Tensor indices, long bound)
    {
        var values = indices.ReadOnlySpan<long>();
        for (int i = 0; i < values.Length; i++)
            if ((ulong)values[i] >= (ulong)bound) return i;
        return -1;
    }

    void IBackend.RunRegion(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output) =>
        RegionRunner.Forward(scope, region, inputs, output);

    public void Fill(Tensor output, double value)
    {
        switch (output.DType)
        {
            case DType.Float32: ElementwiseKernels.Fill(output.Span<float>(), value); break;
            case DType.Float64: ElementwiseKernels.Fill(output.Span<double>(), value); break;
            case DType.Int64: ElementwiseKernels.Fill(output.Span<long>(), value); break;
            default: output.Span<bool>().Fill(value != 0); break;
        }
    }

    public void Copy(Tensor input, Tensor output) => input.Bytes().CopyTo(output.Bytes());

    public void Cast(Tensor input, Tensor output)
    {
        if (input.DType == output.DType)
        {
            Copy(input, output);
            return;
        }
        switch (input.DType)
        {
            case DType.Float32: CastFrom(input.ReadOnlySpan<float>(), output); break;
            case DType.Float64: CastFrom(input.ReadOnlySpan<double>(), output); break;
            case DType.Int64: CastFrom(input.ReadOnlySpan<long>(), output); break;
            default:
                var b = input.ReadOnlySpan<bool>();
                var asBytes = System.Runtime.InteropServices.MemoryMarshal.Cast<bool, byte>(b);
                CastFrom(asBytes, output);
                break;
        }
    }

    private static void CastFrom<T>(ReadOnlySpan<T> x, Tensor output) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        switch (output.DType)
        {
            case DType.Float32: ElementwiseKernels.Convert(x, output.Span<float>()); break;
            case DType.Float64: ElementwiseKernels.Convert(x, output.Span<double>()); break;
            case DType.Int64:
                var l = output.Span<long>();
                for (int i = 0; i < x.Length; i++) l[i] = T.IsNaN(x[i]) ? 0 : long.CreateSaturating(x[i]);
                break;
            default:
                var o = output.Span<bool>();
                for (int i = 0; i < x.Length; i++) o[i] = x[i] != T.Zero;
                break;
        }
    }
}
