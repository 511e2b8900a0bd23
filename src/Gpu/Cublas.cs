using System.Runtime.InteropServices;

namespace AutogradService.Gpu;

/// <summary>
/// cuBLAS, by a small P/Invoke of our own: a handle bound to a CUDA stream and strided-batched GEMM in float32 and
/// float64. Row-major products become cuBLAS's column-major ones by swapping the operands (Cᵀ = Bᵀ·Aᵀ). The library is
/// found by name — libcublas.so.13 (CUDA 13 machines have only it), then .so.12 — and its absence is a normal answer:
/// the backend's own matrix kernel runs instead. TF32 is used only when a caller allows it, so results match the CPU.
/// </summary>
internal sealed unsafe class Cublas : IDisposable
{
    private static readonly string[] Names = ["libcublas.so.13", "libcublas.so.12", "cublas64_13.dll", "cublas64_12.dll"];

    private const int OpN = 0, OpT = 1;
    private const int DefaultMath = 0, Tf32TensorOpMath = 3;

    private readonly nint _handle;
    private readonly delegate* unmanaged<nint, int> _destroy;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, float*, int, long, float*, int, long, float*, float*, int, long, int, int> _sgemm;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, double*, double*, int, long, double*, int, long, double*, double*, int, long, int, int> _dgemm;
    private readonly delegate* unmanaged<nint, int, int> _setMathMode;

    private Cublas(nint library, string name, nint stream)
    {
        Library = name;
        var create = (delegate* unmanaged<nint*, int>)NativeLibrary.GetExport(library, "cublasCreate_v2");
        var setStream = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "cublasSetStream_v2");
        _destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cublasDestroy_v2");
        _setMathMode = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(library, "cublasSetMathMode");
        _sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, float*, int, long, float*, int, long, float*, float*, int, long, int, int>)
            NativeLibrary.GetExport(library, "cublasSgemmStridedBatched");
        _dgemm = (delegate* unmanaged<nint, int, int, int, int, int, double*, double*, int, long, double*, int, long, double*, double*, int, long, int, int>)
            NativeLibrary.GetExport(library, "cublasDgemmStridedBatched");
        nint handle;
        Check(create(&handle), "cublasCreate_v2");
        _handle = handle;
        Check(setStream(_handle, stream), "cublasSetStream_v2");
        Check(_setMathMode(_handle, DefaultMath), "cublasSetMathMode");
    }

    /// <summary>Which library file was loaded (the device check logs it).</summary>
    public string Library { get; }

    /// <summary>The first cuBLAS found, bound to <paramref name="stream"/>; null with the reason when none loads.</summary>
    public static Cublas? TryLoad(nint stream, out string reason)
    {
        foreach (var name in Names)
        {
            if (!NativeLibrary.TryLoad(name, out var library)) continue;
            try
            {
                reason = $"loaded {name}";
                return new Cublas(library, name, stream);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or InvalidOperationException)
            {
                reason = $"{name} did not initialise: {e.Message}";
                return null;
            }
        }
        reason = $"no cuBLAS library found (tried {string.Join(", ", Names)})";
        return null;
    }

    /// <summary>
    /// A batch of row-major products C = op(A)·op(B) of device pointers, A [m, k] (or [k, m] transposed), B [k, n] (or
    /// [n, k]), C [m, n], each batch entry <c>stride*</c> elements from the last (0: one matrix shared by the batch).
    /// </summary>
    public void Gemm(float* a, float* b, float* c, int m, int n, int k, bool transposeA, bool transposeB,
        long strideA, long strideB, long strideC, int batch, bool allowTf32)
    {
        float one = 1, zero = 0;
        Check(_setMathMode(_handle, allowTf32 ? Tf32TensorOpMath : DefaultMath), "cublasSetMathMode");
        // Column-major Cᵀ [n, m] = op(B)ᵀ · op(A)ᵀ: swap the operands, keep each one's own transpose flag.
        Check(_sgemm(_handle, transposeB ? OpT : OpN, transposeA ? OpT : OpN, n, m, k, &one,
            b, transposeB ? k : n, strideB, a, transposeA ? m : k, strideA, &zero, c, n, strideC, batch), "cublasSgemmStridedBatched");
    }

    public void Gemm(double* a, double* b, double* c, int m, int n, int k, bool transposeA, bool transposeB,
        long strideA, long strideB, long strideC, int batch)
    {
        double one = 1, zero = 0;
        Check(_dgemm(_handle, transposeB ? OpT : OpN, transposeA ? OpT : OpN, n, m, k, &one,
            b, transposeB ? k : n, strideB, a, transposeA ? m : k, strideA, &zero, c, n, strideC, batch), "cublasDgemmStridedBatched");
    }

    private static void Check(int status, string call)
    {
        if (status != 0) throw new InvalidOperationException($"{call} failed with cuBLAS status {status}");
    }

    public void Dispose() => _destroy(_handle);
}
