using System.Runtime.InteropServices;

namespace AutogradService.Gpu;

/// <summary>
/// The few cuBLAS entry points the GPU backend uses, bound by hand from the system's libcublas (no wrapper package):
/// handle create/destroy, stream, math mode and the strided-batched SGEMM/DGEMM. cuBLAS is column-major; a row-major
/// product C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so <see cref="RowMajor"/> swaps the operands and
/// no data moves. TF32 tensor-op math is used only when asked: by default float32 products keep full precision.
/// </summary>
public sealed unsafe class Cublas : IDisposable
{
    /// <summary>The libraries tried in order: CUDA 13's first, then CUDA 12's.</summary>
    public static readonly string[] DefaultLibraries = OperatingSystem.IsWindows()
        ? ["cublas64_13.dll", "cublas64_12.dll"]
        : ["libcublas.so.13", "libcublas.so.12"];

    private const int DefaultMath = 0;
    private const int Tf32TensorOpMath = 3;

    private readonly nint _library;
    private readonly nint _handle;
    private readonly delegate* unmanaged<nint, int> _destroy;
    private readonly delegate* unmanaged<nint, nint, int> _setStream;
    private readonly delegate* unmanaged<nint, int, int> _setMathMode;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int> _sgemm;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, double*, nint, int, long, nint, int, long, double*, nint, int, long, int, int> _dgemm;

    private Cublas(nint library, string name)
    {
        _library = library;
        LibraryName = name;
        var create = (delegate* unmanaged<nint*, int>)Export("cublasCreate_v2");
        _destroy = (delegate* unmanaged<nint, int>)Export("cublasDestroy_v2");
        _setStream = (delegate* unmanaged<nint, nint, int>)Export("cublasSetStream_v2");
        _setMathMode = (delegate* unmanaged<nint, int, int>)Export("cublasSetMathMode");
        _sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)Export("cublasSgemmStridedBatched");
        _dgemm = (delegate* unmanaged<nint, int, int, int, int, int, double*, nint, int, long, nint, int, long, double*, nint, int, long, int, int>)Export("cublasDgemmStridedBatched");
        nint handle;
        Check(create(&handle), "cublasCreate_v2");
        _handle = handle;
    }

    /// <summary>The file that loaded (libcublas.so.13 or .so.12), for logs and benchmark reports.</summary>
    public string LibraryName { get; }

    /// <summary>
    /// Loads the first of <paramref name="candidates"/> (default <see cref="DefaultLibraries"/>) and creates a handle,
    /// or says why not: no library found, an entry point missing, or cublasCreate failing (no device, no driver).
    /// </summary>
    public static Cublas? TryLoad(out string report, params string[] candidates)
    {
        if (candidates.Length == 0) candidates = DefaultLibraries;
        foreach (var name in candidates)
        {
            if (!NativeLibrary.TryLoad(name, out var library)) continue;
            try
            {
                var cublas = new Cublas(library, name);
                report = $"cuBLAS loaded from {name}";
                return cublas;
            }
            catch (CublasException e)
            {
                NativeLibrary.Free(library);
                report = $"{name} loaded but is unusable: {e.Message}";
                return null;
            }
        }
        report = $"cuBLAS not found (tried {string.Join(", ", candidates)}); products use the ILGPU kernel";
        return null;
    }

    /// <summary>Runs later calls on a CUDA stream (ILGPU's CudaStream.StreamPtr), so they order with the kernels.</summary>
    public void SetStream(nint stream) => Check(_setStream(_handle, stream), "cublasSetStream_v2");

    /// <summary>TF32 tensor cores for float32 products (about 10 mantissa bits per product), or full float32 math.</summary>
    public void UseTf32(bool enabled) => Check(_setMathMode(_handle, enabled ? Tf32TensorOpMath : DefaultMath), "cublasSetMathMode");

    /// <summary>A batch of row-major products C[i] = op(A[i])·op(B[i]) on device pointers (elements, not bytes, in the strides).</summary>
    public void Sgemm(GemmCall call, nint a, nint b, nint c)
    {
        float alpha = 1, beta = 0;
        Check(_sgemm(_handle, call.TransFirst, call.TransSecond, call.Rows, call.Cols, call.Depth, &alpha, b, call.LdFirst, call.StrideFirst,
            a, call.LdSecond, call.StrideSecond, &beta, c, call.LdC, call.StrideC, call.Batch), "cublasSgemmStridedBatched");
    }

    public void Dgemm(GemmCall call, nint a, nint b, nint c)
    {
        double alpha = 1, beta = 0;
        Check(_dgemm(_handle, call.TransFirst, call.TransSecond, call.Rows, call.Cols, call.Depth, &alpha, b, call.LdFirst, call.StrideFirst,
            a, call.LdSecond, call.StrideSecond, &beta, c, call.LdC, call.StrideC, call.Batch), "cublasDgemmStridedBatched");
    }

    /// <summary>
    /// The column-major call for the row-major batch C = op(A)·op(B), A of rows × cols (before op) and so on. The first
    /// column-major operand is B: row-major B read column-major is Bᵀ, so op stays op and the leading dimension is B's
    /// row length. Strides of 0 share one matrix across the batch.
    /// </summary>
    public static GemmCall RowMajor(int m, int n, int k, bool transposeA, bool transposeB, long strideA, long strideB, int batch) => new()
    {
        TransFirst = transposeB ? 1 : 0,
        TransSecond = transposeA ? 1 : 0,
        Rows = n,
        Cols = m,
        Depth = k,
        LdFirst = transposeB ? k : n,
        StrideFirst = strideB,
        LdSecond = transposeA ? m : k,
        StrideSecond = strideA,
        LdC = n,
        StrideC = (long)m * n,
        Batch = batch,
    };

    public void Dispose()
    {
        _destroy(_handle);
        NativeLibrary.Free(_library);
    }

    private nint Export(string name) => NativeLibrary.TryGetExport(_library, name, out var address)
        ? address
        : throw new CublasException($"entry point {name} missing");

    private static void Check(int status, string call)
    {
        if (status != 0) throw new CublasException($"{call} returned {StatusName(status)} ({status})");
    }

    /// <summary>cublasStatus_t's names, so a failure reads as cuBLAS documents it.</summary>
    public static string StatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "an unknown cuBLAS status",
    };
}

/// <summary>A column-major strided-batched GEMM's arguments, cuBLAS's order: the first operand is the row-major B.</summary>
public struct GemmCall
{
    public int TransFirst, TransSecond;
    public int Rows, Cols, Depth;
    public int LdFirst, LdSecond, LdC;
    public long StrideFirst, StrideSecond, StrideC;
    public int Batch;
}

public sealed class CublasException(string message) : Exception(message);
