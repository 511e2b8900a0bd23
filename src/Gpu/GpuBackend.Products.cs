using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace AutogradService.Gpu;

/// <summary>
/// Where a matrix product runs: cuBLAS on a CUDA device when libcublas loads (full float32 math: TF32 only if
/// <see cref="UseTf32"/>), else the tiled shared-memory kernel where a group holds a 16 × 16 tile, else the
/// one-thread-per-output kernel (ILGPU's default CPU device, 16 threads a group).
/// </summary>
public sealed partial class GpuBackend
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>? _tiledF32;
    private Action<KernelConfig, ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>? _tiledF64;
    private Cublas? _cublas;
    private string? _productEngine;

    /// <summary>ILGPU's CPU accelerator on a chosen simulated device (a group of 256 threads runs the tiled product).</summary>
    public static GpuBackend CreateCpuAccelerator(CPUDevice device)
    {
        var context = Context.Create(builder => builder.CPU(device));
        return new GpuBackend(context, context.CreateCPUAccelerator(0));
    }

    /// <summary>TF32 tensor cores for float32 products through cuBLAS (off by default: about 10 mantissa bits per product).</summary>
    public bool UseTf32 { get; init; }

    /// <summary>What runs products here: "cuBLAS loaded from …", "tiled kernel (…)" or "one thread per output (…)".</summary>
    public string ProductEngine
    {
        get
        {
            lock (Sync) return ChooseProductEngine();
        }
    }

    private string ChooseProductEngine()
    {
        if (_productEngine is not null) return _productEngine;
        string? report = null;
        if (Accelerator is CudaAccelerator cuda)
        {
            _cublas = Cublas.TryLoad(out report);
            _cublas?.SetStream(((CudaStream)cuda.DefaultStream).StreamPtr);
            _cublas?.UseTf32(UseTf32);
        }
        _productEngine = _cublas is not null ? report!
            : Accelerator.MaxNumThreadsPerGroup >= GemmKernels.Tile * GemmKernels.Tile ? $"tiled kernel ({report ?? "no CUDA device"})"
            : $"one thread per output ({Accelerator.MaxNumThreadsPerGroup} threads a group)";
        return _productEngine;
    }

    /// <summary>Runs the product by cuBLAS or the tiled kernel (the caller holds the lock); false leaves it to the simple kernel.</summary>
    private bool TryFasterMatMul(Tensor ta, Tensor tb, Tensor output, ArrayView<byte> a, ArrayView<byte> b, ArrayView<byte> y,
        MatMulLayout l, bool transposeA, bool transposeB, long count)
    {
        ChooseProductEngine();
        var dtype = ta.DType;
        int batch = (int)(count / ((long)l.M * l.N));
        if (_cublas is not null)
        {
            var call = Cublas.RowMajor(l.M, l.N, l.K, transposeA, transposeB, l.ABatch, l.BBatch, batch);
            if (dtype == DType.Float32) _cublas.Sgemm(call, Address(ta), Address(tb), Address(output));
            else _cublas.Dgemm(call, Address(ta), Address(tb), Address(output));
            return true;
        }
        if (Accelerator.MaxNumThreadsPerGroup < GemmKernels.Tile * GemmKernels.Tile) return false;
        var config = GemmKernels.Config(l.M, l.N, batch);
        if (dtype == DType.Float32)
            (_tiledF32 ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(GemmKernels.TiledF32))(
                config, a.Cast<float>(), b.Cast<float>(), y.Cast<float>(), l);
        else
            (_tiledF64 ??= Accelerator.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(GemmKernels.TiledF64))(
                config, a.Cast<double>(), b.Cast<double>(), y.Cast<double>(), l);
        return true;
    }

    private static nint Address(Tensor t) => ((DeviceStorage)t.Storage).DeviceAddress;

    private void DisposeProducts() => _cublas?.Dispose();
}
