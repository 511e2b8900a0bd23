using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace AutogradService.Gpu;

/// <summary>
/// Where a matrix product runs without cuBLAS: the tiled shared-memory kernel where a group holds a 16 × 16 tile, else
/// the one-thread-per-output kernel (ILGPU's default CPU device has 16 threads a group). Both sum K in order.
/// </summary>
public sealed partial class GpuBackend
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>? _tiledF32;
    private Action<KernelConfig, ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>? _tiledF64;

    /// <summary>ILGPU's CPU accelerator on a chosen simulated device (a group of 256 threads runs the tiled product).</summary>
    public static GpuBackend CreateCpuAccelerator(CPUDevice device)
    {
        var context = Context.Create(builder => builder.CPU(device));
        return new GpuBackend(context, context.CreateCPUAccelerator(0));
    }

    /// <summary>What runs products here: cuBLAS, the tiled kernel, or one thread per output.</summary>
    public string ProductEngine => _cublas is not null ? "cuBLAS"
        : Tiles ? "tiled kernel"
        : $"one thread per output ({Accelerator.MaxNumThreadsPerGroup} threads a group)";

    private bool Tiles => Accelerator.MaxNumThreadsPerGroup >= GemmKernels.Tile * GemmKernels.Tile;

    /// <summary>Runs the product by the tiled kernel where it fits (the caller holds the lock); false leaves it to the simple kernel.</summary>
    private bool TryTiledMatMul(DType dtype, ArrayView<byte> a, ArrayView<byte> b, ArrayView<byte> y, MatMulLayout l, long count)
    {
        if (!Tiles) return false;
        var config = GemmKernels.Config(l.M, l.N, (int)(count / ((long)l.M * l.N)));
        if (dtype == DType.Float32)
            (_tiledF32 ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(GemmKernels.TiledF32))(
                config, a.Cast<float>(), b.Cast<float>(), y.Cast<float>(), l);
        else
            (_tiledF64 ??= Accelerator.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(GemmKernels.TiledF64))(
                config, a.Cast<double>(), b.Cast<double>(), y.Cast<double>(), l);
        return true;
    }
}
