using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using AutogradService.Gpu;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// The tiled GEMM (the product without cuBLAS) on ILGPU's CPU accelerator: shapes that are not multiples of the tile,
/// transposed operands as strides, a batch and a shared right operand, against the one-thread-per-output kernel bit
/// for bit (same summation order) and a plain loop; and compiled to PTX for sm_90 with shared memory and barriers.
/// </summary>
public sealed class GemmKernelTests : IDisposable
{
    // 16 warps of 16 threads: a 16 × 16 tile's group fits (the default CPU device has 16 threads a group).
    private readonly Context _context = Context.Create(builder => builder.CPU(new CPUDevice(16, 16, 1)));
    private readonly Accelerator _accelerator;

    public GemmKernelTests() => _accelerator = _context.CreateCPUAccelerator(0);

    public void Dispose()
    {
        _accelerator.Dispose();
        _context.Dispose();
    }

    [Theory]
    [InlineData(17, 20, 33, 2, false, false, false)]
    [InlineData(5, 3, 40, 1, true, false, false)]
    [InlineData(16, 16, 16, 3, false, true, true)]
    [InlineData(1, 1, 1, 1, true, true, false)]
    [InlineData(3, 2, 0, 1, false, false, false)]
    public void Tiled_MatchesTheOneThreadPerOutputKernel_AndALoop(int m, int n, int k, int batch, bool transposeA, bool transposeB, bool shareB)
    {
        var random = new Random(m * 1000 + n * 10 + k);
        var a = Enumerable.Range(0, batch * m * k).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var b = Enumerable.Range(0, (shareB ? 1 : batch) * k * n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var layout = new MatMulLayout
        {
            M = m, N = n, K = k,
            ARow = transposeA ? 1 : k, ACol = transposeA ? m : 1, ABatch = m * k,
            BRow = transposeB ? 1 : n, BCol = transposeB ? k : 1, BBatch = shareB ? 0 : k * n,
        };
        using var da = _accelerator.Allocate1D(a.Length == 0 ? [0.0] : a);
        using var db = _accelerator.Allocate1D(b.Length == 0 ? [0.0] : b);
        using var tiled = _accelerator.Allocate1D<double>(batch * m * n);
        using var simple = _accelerator.Allocate1D<double>(batch * m * n);
        var tiledKernel = _accelerator.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(GemmKernels.TiledF64);
        tiledKernel(GemmKernels.Config(m, n, batch), da.View, db.View, tiled.View, layout);
        var simpleKernel = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(Gpu.Kernels.MatMulF64);
        simpleKernel(batch * m * n, da.View, db.View, simple.View, layout);
        _accelerator.Synchronize();
        var got = tiled.GetAsArray1D();
        Assert.Equal(simple.GetAsArray1D(), got);

        for (int p = 0; p < batch; p++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int q = 0; q < k; q++)
                sum += a[p * layout.ABatch + i * layout.ARow + q * layout.ACol] * b[p * layout.BBatch + q * layout.BRow + j * layout.BCol];
            Assert.Equal(sum, got[(p * m + i) * n + j]);
        }
    }

    [Fact]
    public void TiledF32_MatchesTheOneThreadPerOutputKernel()
    {
        const int m = 19, n = 7, k = 21;
        var random = new Random(9);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var layout = new MatMulLayout { M = m, N = n, K = k, ARow = k, ACol = 1, BRow = n, BCol = 1 };
        using var da = _accelerator.Allocate1D(a);
        using var db = _accelerator.Allocate1D(b);
        using var tiled = _accelerator.Allocate1D<float>(m * n);
        using var simple = _accelerator.Allocate1D<float>(m * n);
        _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(GemmKernels.TiledF32)(
            GemmKernels.Config(m, n, 1), da.View, db.View, tiled.View, layout);
        _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(Gpu.Kernels.MatMulF32)(
            m * n, da.View, db.View, simple.View, layout);
        _accelerator.Synchronize();
        Assert.Equal(simple.GetAsArray1D(), tiled.GetAsArray1D());
    }

    [Fact]
    public void TheBackend_RunsProductsTiled_WhereAGroupHoldsATile_AndSaysSo()
    {
        using var backend = GpuBackend.CreateCpuAccelerator(new CPUDevice(16, 16, 1));
        Assert.Equal("tiled kernel", backend.ProductEngine);
        Assert.Equal("one thread per output (16 threads a group)", GpuTestDevice.Backend.ProductEngine);
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = backend });
        using var cpu = new ExecutionScope();
        var random = new Random(2);
        var a = Enumerable.Range(0, 2 * 18 * 21).Select(_ => random.NextDouble() - 0.5).ToArray();
        var b = Enumerable.Range(0, 2 * 17 * 21).Select(_ => random.NextDouble() - 0.5).ToArray();
        // [2,18,21] @ [2,17,21]ᵀ: batched, the right operand transposed, no side a multiple of the tile.
        var expected = F.MatMul(cpu.FromSpan<double>(a, [2, 18, 21]), F.Transpose(cpu.FromSpan<double>(b, [2, 17, 21]), [0, 2, 1])).ToDoubles();
        var actual = F.MatMul(gpu.FromSpan<double>(a, [2, 18, 21]), F.Transpose(gpu.FromSpan<double>(b, [2, 17, 21]), [0, 2, 1])).ToDoubles();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-14, $"element {i}: {actual[i]} against {expected[i]}");
    }

    public static IEnumerable<object[]> KernelNames => GemmKernels.All.Select(k => new object[] { k.Name });

    [Theory]
    [MemberData(nameof(KernelNames))]
    public void Tiled_CompilesToPtx_ForSm90_WithoutADevice(string kernel)
    {
        var ptx = GpuTestDevice.CompileToPtx(GemmKernels.All.Single(k => k.Name == kernel), explicitlyGrouped: true);
        Assert.Contains(".shared", ptx);
        Assert.Contains("bar.sync", ptx);
    }
}
