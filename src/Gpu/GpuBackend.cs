using AutogradService.Engine;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace AutogradService.Gpu;

/// <summary>
/// The GPU backend on ILGPU: tensors live in device buffers (<see cref="DeviceStorage"/>), inputs are uploaded once,
/// results downloaded when host code reads them. Fill, copy, the map and broadcast-zip families (every dtype),
/// reductions over a contiguous run of axes, matrix products, movement, casts, creation and fused regions run as
/// device kernels (<see cref="Kernels"/>); what is left (normal fills, reductions over scattered axes) runs on the host
/// copy through <see cref="CpuBackend"/>, which the storage's valid flags make correct (a value crosses once each way
/// at most). On a machine without a GPU the same code runs on ILGPU's CPU accelerator,
/// which is how the tests exercise it. One lock orders launches and transfers: the device is one queue.
/// </summary>
public sealed partial class GpuBackend : IBackend, IDisposable
{
    private readonly Context _context;
    private readonly CpuBackend _host = CpuBackend.Instance;
    private readonly Action<Index1D, ArrayView<float>, float> _fillF32;
    private readonly Action<Index1D, ArrayView<double>, double> _fillF64;
    private Action<Index1D, ArrayView<long>, long>? _fillI64;
    private Action<Index1D, ArrayView<byte>, byte>? _fillU8;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> _unaryF32;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, int> _unaryF64;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BroadcastLayout> _binaryF32;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, BroadcastLayout> _binaryF64;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, int, BroadcastLayout> _compareF32;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<byte>, int, BroadcastLayout> _compareF64;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _reduceF32;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, int, int, int> _reduceF64;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout> _matMulF32;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout> _matMulF64;

    private GpuBackend(Context context, Accelerator accelerator)
    {
        _context = context;
        Accelerator = accelerator;
        Pool = new DevicePool(accelerator, Math.Min(accelerator.MemorySize / 4, 1L << 30));
        // Each kernel is compiled once, here, and its launcher kept.
        _fillF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(Kernels.FillF32);
        _fillF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, double>(Kernels.FillF64);
        _unaryF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(Kernels.UnaryF32);
        _unaryF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int>(Kernels.UnaryF64);
        _binaryF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BroadcastLayout>(Kernels.BinaryF32);
        _binaryF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, BroadcastLayout>(Kernels.BinaryF64);
        _compareF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, int, BroadcastLayout>(Kernels.CompareF32);
        _compareF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<byte>, int, BroadcastLayout>(Kernels.CompareF64);
        _reduceF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(Kernels.ReduceF32);
        _reduceF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int, int>(Kernels.ReduceF64);
        _matMulF32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(Kernels.MatMulF32);
        _matMulF64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(Kernels.MatMulF64);
    }

    internal Accelerator Accelerator { get; }

    /// <summary>cuBLAS on a CUDA device (null elsewhere, or when no libcublas loads), and what loading it found.</summary>
    private Cublas? _cublas;

    public string BlasStatus { get; private set; } = "cuBLAS is only used on CUDA devices";

    /// <summary>Device buffers in size classes, kept for reuse up to a quarter of the device's memory (1 GiB at most).</summary>
    internal DevicePool Pool { get; }

    /// <summary>Orders kernel launches and transfers (the device is one queue) across the engine's threads.</summary>
    internal object Sync { get; } = new();

    /// <summary>The first CUDA device, or null on a machine without one (no driver, no device).</summary>
    public static GpuBackend? TryCreateCuda()
    {
        Context? context = null;
        try
        {
            context = Context.Create(builder => builder.Cuda());
            if (context.GetCudaDevices().Count == 0)
            {
                context.Dispose();
                return null;
            }
            var backend = new GpuBackend(context, context.CreateCudaAccelerator(0));
            backend._cublas = Cublas.TryLoad(((CudaStream)backend.Accelerator.DefaultStream).StreamPtr, out var status);
            backend.BlasStatus = status;
            return backend;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            context?.Dispose();
            return null;
        }
    }

    /// <summary>ILGPU's CPU accelerator: every kernel runs as .NET code (slowly) — the GPU code path, without a GPU.</summary>
    public static GpuBackend CreateCpuAccelerator()
    {
        var context = Context.Create(builder => builder.CPU());
        return new GpuBackend(context, context.CreateCPUAccelerator(0));
    }

    public string Name => "gpu";

    public DeviceInfo Describe() => new(Name, "gpu", Accelerator.MemorySize, Accelerator.NumMultiprocessors,
        $"{Accelerator.Name} ({Accelerator.AcceleratorType}, ILGPU)");

    Storage IBackend.Allocate(ExecutionScope scope, long bytes) => new DeviceStorage(this, scope.Budget, bytes);

    /// <summary>Writes the host copy; a kernel that reads the tensor uploads it then.</summary>
    public void Upload(ReadOnlySpan<byte> source, Tensor output) => source.CopyTo(output.Bytes());

    public long FindOutOfRange(Tensor indices, long bound) => _host.FindOutOfRange(indices, bound);

    public void Fill(Tensor output, double value)
    {
        if (output.ElementCount == 0) return;
        if (!Fits(output))
        {
            _host.Fill(output, value);
            return;
        }
        lock (Sync)
        {
            var (y, n) = (Out(output), (int)output.ElementCount);
            switch (output.DType)
            {
                case DType.Float32: _fillF32(n, y.Cast<float>(), (float)value); break;
                case DType.Float64: _fillF64(n, y.Cast<double>(), value); break;
                // The conversions the CPU's fill makes: int64 saturating (NaN is 0), bool "not zero".
                case DType.Int64:
                    (_fillI64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, long>(Kernels.FillI64))(n, y.Cast<long>(), Kernels.SaturatingToInt64(value));
                    break;
                default:
                    (_fillU8 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, byte>(Kernels.FillU8))(n, y, value != 0 ? (byte)1 : (byte)0);
                    break;
            }
            Accelerator.Synchronize();
        }
    }

    public void Copy(Tensor input, Tensor output)
    {
        if (output.ByteCount == 0) return;
        lock (Sync)
        {
            var x = In(input);
            var y = Out(output);
            x.SubView(0, input.ByteCount).CopyTo(Accelerator.DefaultStream, y.SubView(0, output.ByteCount));
            Accelerator.Synchronize();
        }
    }

    public void Unary(UnaryKernel kernel, Tensor input, Tensor output)
    {
        if (input.DType is DType.Int64 or DType.Bool)
        {
            if (!TryIntegerUnary(kernel, input, output)) _host.Unary(kernel, input, output);
            return;
        }
        if (!Fits(output) || input.DType is not (DType.Float32 or DType.Float64) || !Scalar.OnDevice(kernel))
        {
            _host.Unary(kernel, input, output);
            return;
        }
        if (output.ElementCount == 0) return;
        lock (Sync)
        {
            var x = In(input);
            var y = Out(output);
            if (input.DType == DType.Float32) _unaryF32((int)output.ElementCount, x.Cast<float>(), y.Cast<float>(), (int)kernel);
            else _unaryF64((int)output.ElementCount, x.Cast<double>(), y.Cast<double>(), (int)kernel);
            Accelerator.Synchronize();
        }
    }

    public void SinCos(Tensor input, Tensor sin, Tensor cos)
    {
        Unary(UnaryKernel.Sin, input, sin);
        Unary(UnaryKernel.Cos, input, cos);
    }

    public void Binary(BinaryKernel kernel, Tensor a, Tensor b, Tensor output)
    {
        if (a.DType is DType.Int64 or DType.Bool)
        {
            if (!TryIntegerBinary(kernel, a, b, output)) _host.Binary(kernel, a, b, output);
            return;
        }
        bool compare = kernel is >= BinaryKernel.Eq and <= BinaryKernel.Ge;
        bool arithmetic = kernel < BinaryKernel.Eq;
        if (!Fits(output) || a.DType is not (DType.Float32 or DType.Float64) || !(compare || arithmetic))
        {
            _host.Binary(kernel, a, b, output);
            return;
        }
        if (output.ElementCount == 0) return;
        var layout = Broadcast(output.Shape, a.Shape, b.Shape);
        lock (Sync)
        {
            var (x, z, y) = (In(a), In(b), Out(output));
            int n = (int)output.ElementCount;
            switch (a.DType, compare)
            {
                case (DType.Float32, false): _binaryF32(n, x.Cast<float>(), z.Cast<float>(), y.Cast<float>(), (int)kernel, layout); break;
                case (DType.Float64, false): _binaryF64(n, x.Cast<double>(), z.Cast<double>(), y.Cast<double>(), (int)kernel, layout); break;
                case (DType.Float32, true): _compareF32(n, x.Cast<float>(), z.Cast<float>(), y, (int)kernel, layout); break;
                default: _compareF64(n, x.Cast<double>(), z.Cast<double>(), y, (int)kernel, layout); break;
            }
            Accelerator.Synchronize();
        }
    }

    public void Reduce(ReduceKernel kernel, Tensor input, int[] axes, Tensor output)
    {
        bool contiguous = axes[^1] - axes[0] == axes.Length - 1;
        if (!contiguous || !Fits(input) || input.DType is not (DType.Float32 or DType.Float64 or DType.Int64))
        {
            _host.Reduce(kernel, input, axes, output);
            return;
        }
        long outer = 1, r = 1, inner = 1;
        for (int d = 0; d < input.Rank; d++)
        {
            if (d < axes[0]) outer *= input.Shape[d];
            else if (d <= axes[^1]) r *= input.Shape[d];
            else inner *= input.Shape[d];
        }
        if (r == 0 || outer * inner == 0)
        {
            _host.Reduce(kernel, input, axes, output); // an empty reduction's identity is the host's to give
            return;
        }
        lock (Sync)
        {
            var (x, y) = (In(input), Out(output));
            int n = (int)(outer * inner);
            if (input.DType == DType.Float32) _reduceF32(n, x.Cast<float>(), y.Cast<float>(), (int)kernel, (int)r, (int)inner);
            else if (input.DType == DType.Float64) _reduceF64(n, x.Cast<double>(), y.Cast<double>(), (int)kernel, (int)r, (int)inner);
            else ReduceInt64(kernel, x, y, n, (int)r, (int)inner);
            Accelerator.Synchronize();
        }
    }

    public void MatMul(Tensor a, Tensor b, Tensor output, bool transposeA, bool transposeB)
    {
        if (MatMulLayoutOf(a, b, output, transposeA, transposeB) is not { } layout || a.DType is not (DType.Float32 or DType.Float64) || !Fits(output))
        {
            _host.MatMul(a, b, output, transposeA, transposeB);
            return;
        }
        if (output.ElementCount == 0) return;
        if (layout.K == 0)
        {
            Fill(output, 0);
            return;
        }
        lock (Sync)
        {
            var (x, z, y) = (In(a), In(b), Out(output));
            int n = (int)output.ElementCount;
            if (_cublas is not null)
            {
                Blas(a, b, output, layout, transposeA, transposeB);
                return;
            }
            if (TryTiledMatMul(a.DType, x, z, y, layout, n)) { }
            else if (a.DType == DType.Float32) _matMulF32(n, x.Cast<float>(), z.Cast<float>(), y.Cast<float>(), layout);
            else _matMulF64(n, x.Cast<double>(), z.Cast<double>(), y.Cast<double>(), layout);
            Accelerator.Synchronize();
        }
    }

    /// <summary>The product through cuBLAS's strided-batched GEMM, on the device's stream (the caller holds the lock).</summary>
    private unsafe void Blas(Tensor a, Tensor b, Tensor output, MatMulLayout l, bool transposeA, bool transposeB)
    {
        int batch = (int)(output.ElementCount / ((long)l.M * l.N));
        nint pa = ((DeviceStorage)a.Storage).DevicePointer, pb = ((DeviceStorage)b.Storage).DevicePointer, pc = ((DeviceStorage)output.Storage).DevicePointer;
        if (a.DType == DType.Float32)
            _cublas!.Gemm((float*)pa, (float*)pb, (float*)pc, l.M, l.N, l.K, transposeA, transposeB, l.ABatch, l.BBatch, (long)l.M * l.N, batch, allowTf32: output.Scope.AllowTf32);
        else
            _cublas!.Gemm((double*)pa, (double*)pb, (double*)pc, l.M, l.N, l.K, transposeA, transposeB, l.ABatch, l.BBatch, (long)l.M * l.N, batch);
        Accelerator.Synchronize();
    }

    public void Dispose()
    {
        lock (Sync) Pool.Trim();
        _cublas?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }

    private static ArrayView<byte> In(Tensor t) => ((DeviceStorage)t.Storage).Input();

    private static ArrayView<byte> Out(Tensor t) => ((DeviceStorage)t.Storage).Output();

    /// <summary>Kernels index with 32-bit integers: larger tensors run on the host copy.</summary>
    private static bool Fits(Tensor t) => t.ElementCount <= int.MaxValue;

    /// <summary>Each operand's strides against the output's dims, aligned at the right; 0 where it broadcasts.</summary>
    internal static BroadcastLayout Broadcast(Shape output, Shape a, Shape b)
    {
        var layout = new BroadcastLayout { Rank = output.Rank };
        for (int d = 0; d < output.Rank; d++) layout.Shape.Set(d, output[d]);
        Strides(output, a, ref layout.StrideA);
        Strides(output, b, ref layout.StrideB);
        return layout;
    }

    private static void Strides(Shape output, Shape input, ref Dims8 strides)
    {
        int stride = 1;
        for (int d = input.Rank - 1, o = output.Rank - 1; d >= 0; d--, o--)
        {
            strides.Set(o, input[d] == 1 && output[o] != 1 ? 0 : stride);
            stride *= input[d];
        }
    }

    /// <summary>
    /// The layout of a product the device kernel runs: both operands at least matrices, batch dims equal or one operand
    /// a plain matrix shared by the batch; null for rank-1 operands and broadcast batches (the host runs those).
    /// </summary>
    internal static MatMulLayout? MatMulLayoutOf(Tensor a, Tensor b, Tensor output, bool transposeA, bool transposeB)
    {
        if (a.Rank < 2 || b.Rank < 2) return null;
        int rowsA = a.Shape[a.Rank - 2], colsA = a.Shape[a.Rank - 1], rowsB = b.Shape[b.Rank - 2], colsB = b.Shape[b.Rank - 1];
        int m = transposeA ? colsA : rowsA, k = transposeA ? rowsA : colsA, n = transposeB ? rowsB : colsB;
        long batchA = a.ElementCount / Math.Max(1L, (long)rowsA * colsA), batchB = b.ElementCount / Math.Max(1L, (long)rowsB * colsB);
        bool sameBatch = a.Rank == b.Rank && a.Shape.Dims[..^2].SequenceEqual(b.Shape.Dims[..^2]);
        if (!sameBatch && a.Rank > 2 && b.Rank > 2) return null;
        if ((long)m * n * Math.Max(batchA, batchB) != output.ElementCount) return null;
        return new MatMulLayout
        {
            M = m, N = n, K = k,
            ARow = transposeA ? 1 : colsA, ACol = transposeA ? colsA : 1, ABatch = a.Rank == 2 ? 0 : rowsA * colsA,
            BRow = transposeB ? 1 : colsB, BCol = transposeB ? colsB : 1, BBatch = b.Rank == 2 ? 0 : rowsB * colsB,
        };
    }
}
