using AutogradService.Gpu;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// cuBLAS without a GPU: loading reports clearly when the library is absent or is not cuBLAS, and the row-major to
/// column-major mapping is checked by running the exact call cuBLAS would get through a column-major reference GEMM.
/// </summary>
public class CublasTests
{
    [Fact]
    public void AMissingLibrary_GivesNull_AndSaysWhatWasTried()
    {
        Assert.Null(Cublas.TryLoad(out var report, "libcublas-absent.so.99", "libcublas-absent.so.98"));
        Assert.Equal("cuBLAS not found (tried libcublas-absent.so.99, libcublas-absent.so.98); products use the ILGPU kernel", report);
    }

    [Fact]
    public void ALibraryWithoutCublas_IsRefused_NamingTheMissingEntryPoint()
    {
        Assert.Null(Cublas.TryLoad(out var report, "libc.so.6"));
        Assert.Equal("libc.so.6 loaded but is unusable: entry point cublasCreate_v2 missing", report);
    }

    [Fact]
    public void TheDefaultLibraries_AreCuda13ThenCuda12()
    {
        Assert.Equal(OperatingSystem.IsWindows() ? ["cublas64_13.dll", "cublas64_12.dll"] : new[] { "libcublas.so.13", "libcublas.so.12" },
            Cublas.DefaultLibraries);
        Assert.Equal("CUBLAS_STATUS_ARCH_MISMATCH", Cublas.StatusName(8));
        Assert.Equal("an unknown cuBLAS status", Cublas.StatusName(99));
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(true, true, false)]
    [InlineData(false, false, true)]
    [InlineData(true, true, true)]
    public void TheRowMajorCall_ComputesTheRowMajorProduct(bool transposeA, bool transposeB, bool shareB)
    {
        const int m = 3, n = 4, k = 5, batch = 2;
        var random = new Random(3);
        // Small integers: every product and sum is exact, so the comparison is too.
        var a = Enumerable.Range(0, batch * m * k).Select(_ => (double)random.Next(-9, 10)).ToArray();
        var b = Enumerable.Range(0, (shareB ? 1 : batch) * k * n).Select(_ => (double)random.Next(-9, 10)).ToArray();
        var call = Cublas.RowMajor(m, n, k, transposeA, transposeB, m * k, shareB ? 0 : k * n, batch);
        var c = new double[batch * m * n];
        ColumnMajorGemm(call, b, a, c);

        for (int p = 0; p < batch; p++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int q = 0; q < k; q++)
            {
                double x = transposeA ? a[p * m * k + q * m + i] : a[p * m * k + i * k + q];
                int bb = shareB ? 0 : p * k * n;
                double y = transposeB ? b[bb + j * k + q] : b[bb + q * n + j];
                sum += x * y;
            }
            Assert.Equal(sum, c[p * m * n + i * n + j]);
        }
    }

    /// <summary>cuBLAS's strided-batched GEMM by its definition: column-major, C = op(first)·op(second), alpha 1, beta 0.</summary>
    private static void ColumnMajorGemm(GemmCall call, double[] first, double[] second, double[] c)
    {
        for (int p = 0; p < call.Batch; p++)
        for (int row = 0; row < call.Rows; row++)
        for (int col = 0; col < call.Cols; col++)
        {
            double sum = 0;
            for (int q = 0; q < call.Depth; q++)
            {
                long f = p * call.StrideFirst + (call.TransFirst == 1 ? q + (long)row * call.LdFirst : row + (long)q * call.LdFirst);
                long s = p * call.StrideSecond + (call.TransSecond == 1 ? col + (long)q * call.LdSecond : q + (long)col * call.LdSecond);
                sum += first[f] * second[s];
            }
            c[p * call.StrideC + row + (long)col * call.LdC] = sum;
        }
    }
}
