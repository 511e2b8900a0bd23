using AutogradService.Engine.Backends;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using AutogradService.Gpu;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// The GPU backend without a GPU: its storage moves each value at most once each way, its kernels run on ILGPU's CPU
/// accelerator (layouts the op examples do not reach: middle-axis reductions, batched transposed products, broadcasts
/// on both sides), and every kernel compiles to PTX for sm_90 with no device, as a CUDA machine will compile it.
/// </summary>
public class GpuBackendTests
{
    private static ExecutionScope Scope() => new(new ScopeOptions { Backend = GpuTestDevice.Backend });

    private static int Transfers(Tensor t) => ((DeviceStorage)t.Storage).Transfers;

    [Fact]
    public void AValue_IsUploadedOnce_AndDownloadedOnce()
    {
        using var scope = Scope();
        var x = scope.FromArray([1f, 2, 3, 4]);
        Assert.Equal(0, Transfers(x)); // written on the host, not yet needed on the device
        var y = F.Exp(x);
        var z = F.Sin(x);
        Assert.Equal(1, Transfers(x)); // two kernels read it: one upload
        Assert.Equal(0, Transfers(y));
        var w = y * z; // device to device
        Assert.Equal(0, Transfers(y) + Transfers(z));
        var values = w.ToArray<float>();
        Assert.Equal(1, Transfers(w));
        Assert.Equal(new[] { 1f, 2, 3, 4 }.Select(v => MathF.Exp(v) * MathF.Sin(v)).ToArray(), values, new FloatUlps(4));
        Assert.Equal(values, w.ToArray<float>()); // read again: no second download
        Assert.Equal(1, Transfers(w));
    }

    [Fact]
    public void Broadcasts_MiddleAxisReductions_AndBatchedTransposedProducts_MatchTheCpu()
    {
        using var gpu = Scope();
        using var cpu = new ExecutionScope();
        var random = new Random(5);
        double[] Values(int n) => Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var a = Values(2 * 3 * 4);
        var b = Values(3 * 1);
        var m = Values(2 * 5 * 3);
        (Tensor, Tensor) Both(double[] data, params int[] shape) => (gpu.FromSpan<double>(data, shape), cpu.FromSpan<double>(data, shape));
        var (ga, ca) = Both(a, 2, 3, 4);
        var (gb, cb) = Both(b, 3, 1);
        var (gm, cm) = Both(m, 2, 5, 3);
        Assert.Equal((ca * cb).ToDoubles(), (ga * gb).ToDoubles()); // [2,3,4] * [3,1]: both operands broadcast
        Assert.Equal(F.Gt(ca, cb).ToDoubles(), F.Gt(ga, gb).ToDoubles());
        AssertClose(F.Sum(ca, [1]).ToDoubles(), F.Sum(ga, [1]).ToDoubles(), 1e-14);
        Assert.Equal(F.Max(ca, [1, 2]).ToDoubles(), F.Max(ga, [1, 2]).ToDoubles());
        // A batch of products, [2,5,3] @ [2,3,4], then one whose right operand is a transposed view.
        AssertClose(F.MatMul(cm, ca).ToDoubles(), F.MatMul(gm, ga).ToDoubles(), 1e-14);
        var gt = gpu.FromSpan<double>(Values(2 * 4 * 3), [2, 4, 3]);
        var ct = cpu.FromSpan<double>(gt.ToDoubles(), [2, 4, 3]);
        AssertClose(F.MatMul(cm, F.Transpose(ct, [0, 2, 1])).ToDoubles(), F.MatMul(gm, F.Transpose(gt, [0, 2, 1])).ToDoubles(), 1e-14);
    }

    [Fact]
    public void DeviceBuffers_AreReused_InSizeClasses_AndAllGoBackWithTheScope()
    {
        using var backend = GpuBackend.CreateCpuAccelerator(); // its own pool: other tests share the common one
        using (var scope = new ExecutionScope(new ScopeOptions { Backend = backend }))
        {
            var a = scope.Zeros(new Shape(1000), DType.Float64); // 8000 bytes: one size class
            Assert.Equal(BufferPool.CapacityFor(8000), backend.Pool.OutstandingBytes);
            a.Dispose();
            Assert.Equal((0L, BufferPool.CapacityFor(8000)), (backend.Pool.OutstandingBytes, backend.Pool.RetainedBytes));
            var b = scope.Zeros(new Shape(999), DType.Float64); // the same class: the buffer comes back
            Assert.Equal(0, backend.Pool.RetainedBytes);
            Assert.Equal(0.0, b.ToDoubles().Sum());
        }
        Assert.Equal(0, backend.Pool.OutstandingBytes);
    }

    [Fact]
    public void WithoutCuBlas_TheReasonNamesWhatWasTried()
    {
        Assert.Null(Cublas.TryLoad(0, out var reason)); // no CUDA here: the device kernel multiplies instead
        Assert.Contains("libcublas.so.13", reason);
        Assert.Contains("libcublas.so.12", reason);
        Assert.Contains("only used on CUDA", GpuTestDevice.Backend.BlasStatus);
    }

    [Fact]
    public void Describes_ItsAccelerator()
    {
        var info = GpuTestDevice.Backend.Describe();
        Assert.Equal(("gpu", "gpu"), (info.Name, info.Kind));
        Assert.Contains("CPU", info.Description);
        Assert.True(info.Units >= 1);
    }

    public static IEnumerable<object[]> KernelNames => Gpu.Kernels.All.Select(k => new object[] { k.Name });

    /// <summary>The CPU accelerator runs kernels as .NET code and never exercises ILGPU's compiler; this does, for the card the service targets.</summary>
    [Theory]
    [MemberData(nameof(KernelNames))]
    public void EveryKernel_CompilesToPtx_ForSm90_WithoutADevice(string kernel)
    {
        var ptx = GpuTestDevice.CompileToPtx(Gpu.Kernels.All.Single(k => k.Name == kernel));
        Assert.Contains(".entry", ptx);
        Assert.Contains(".target sm_", ptx);
    }

    /// <summary>
    /// The kernels whose values must be the CPU's bits (arange, uniform fills) leave ptxas no multiply and add to
    /// contract into an FMA: their products and sums carry an explicit rounding mode in the PTX.
    /// </summary>
    [Theory]
    [InlineData("Arange")]
    [InlineData("UniformF32")]
    [InlineData("UniformF64")]
    public void BitExactKernels_GivePtxasNoFmaToContract(string kernel)
    {
        var ptx = GpuTestDevice.CompileToPtx(Gpu.Kernels.All.Single(k => k.Name == kernel));
        // The plain forms stay in the PTX behind a constant-false branch (CudaAsm.IsSupported is 1 == 1 there), which
        // ptxas drops.
        Assert.Contains("mul.rn.f64", ptx);
        Assert.Contains("add.rn.f64", ptx);
        Assert.DoesNotContain("fma.", ptx);
    }

    private static void AssertClose(double[] expected, double[] actual, double rtol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= rtol * (1 + Math.Abs(expected[i])), $"element {i}: {actual[i]} against {expected[i]}");
    }

    private sealed class FloatUlps(int ulps) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b)) <= ulps;

        public int GetHashCode(float value) => 0;
    }
}
