using ILGPU.Runtime.Cuda;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;
using AutogradService.Engine.Tests.Ops;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// The backend conformance suite, written once and instantiated per backend (PyTorch's instantiate_device_type_tests,
/// Candle's test_device!): every registered op's forward, VJP and JVP on each of its examples, in float64 and float32,
/// against <see cref="CpuBackend"/> on the same inputs. Exact unless an instance allows rounding
/// (<see cref="Tolerance"/>); a backend without values (meta) is held to the CPU's types.
/// </summary>
public abstract class BackendConformance
{
    public static IEnumerable<object[]> Cases => OpCase.All();

    protected abstract IBackend Backend { get; }

    /// <summary>False for a backend that holds no values: outputs are compared by type only.</summary>
    protected virtual bool HoldsValues => true;

    /// <summary>The relative error allowed for a float output of <paramref name="c"/> (0: bit for bit).</summary>
    private protected virtual double Tolerance(OpCase c, DType dtype) => 0;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_MatchesTheCpu(string @case)
    {
        foreach (bool narrow in new[] { false, true })
            Compare(@case, narrow, (c, scope, _, x) => [c.Run(scope, x)]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Vjp_MatchesTheCpu(string @case) => Compare(@case, narrow: false, (c, scope, host, x) =>
    {
        var diff = Differentiable(c, x);
        if (diff.Length == 0) return [];
        foreach (int i in diff) x[i].RequireGrad();
        var y = c.Run(scope, x);
        if (!y.DType.IsFloating()) return [];
        var w = scope.Import(Cotangent(c, host, y));
        return ReverseMode.Grad([y], [w], diff.Select(i => x[i]).ToArray());
    });

    [Theory]
    [MemberData(nameof(Cases))]
    public void Jvp_MatchesTheCpu(string @case) => Compare(@case, narrow: false, (c, scope, host, x) =>
    {
        var diff = Differentiable(c, x);
        if (diff.Length == 0) return [];
        var tangents = new Tensor?[x.Length];
        foreach (int i in diff) tangents[i] = scope.Import(Cotangent(c, host, x[i]));
        using var noGrad = scope.NoGrad();
        var (_, outTangents) = ForwardMode.Jvp(xs => [c.Run(scope, xs)], x, tangents);
        return outTangents;
    });

    private static int[] Differentiable(OpCase c, Tensor[] x) => Enumerable.Range(0, x.Length).Where(i => c.IsDifferentiable(i, x[i])).ToArray();

    /// <summary>Standard normal values of <paramref name="like"/>'s type, from the case's own stream, in the CPU scope <paramref name="host"/>.</summary>
    private static Tensor Cotangent(OpCase c, ExecutionScope host, Tensor like)
    {
        var d = new double[like.ElementCount];
        for (int k = 0; k < d.Length; k++) d[k] = c.Normal();
        return like.DType == DType.Float32
            ? host.FromSpan<float>(d.Select(v => (float)v).ToArray(), like.Shape.ToArray())
            : host.FromSpan<double>(d, like.Shape.ToArray());
    }

    /// <summary>Runs <paramref name="body"/> on the CPU and on this backend, on the same inputs (and the same random draws after them), and compares.</summary>
    private void Compare(string @case, bool narrow, Func<OpCase, ExecutionScope, ExecutionScope, Tensor[], Tensor[]> body)
    {
        using var cpu = new ExecutionScope();
        using var device = new ExecutionScope(new ScopeOptions { Backend = Backend });
        var reference = OpCase.Parse(@case);
        var onDevice = OpCase.Parse(@case); // the same seed: cotangents drawn after the inputs agree too
        var x = reference.Sample(cpu);
        onDevice.Sample(cpu);
        if (narrow)
        {
            if (!x.Any(t => t.DType == DType.Float64)) return;
            x = x.Select(t => t.DType == DType.Float64 ? cpu.FromSpan<float>(t.ToDoubles().Select(v => (float)v).ToArray(), t.Shape.ToArray()) : t).ToArray();
        }
        var expected = body(reference, cpu, cpu, x);
        var actual = body(onDevice, device, cpu, x.Select(device.Import).ToArray());
        Assert.Equal(expected.Length, actual.Length);
        for (int k = 0; k < expected.Length; k++)
        {
            Assert.Equal(expected[k].Type, actual[k].Type);
            if (!HoldsValues) continue;
            var (want, got) = (expected[k].ToDoubles(), actual[k].ToDoubles());
            double rtol = expected[k].DType.IsFloating() ? Tolerance(reference, expected[k].DType) : 0;
            // Rounding is relative to each element and to the tensor's scale (a sum that cancels to ~0 keeps its terms' error).
            double scale = want.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
            for (int j = 0; j < want.Length; j++)
            {
                bool same = want[j].Equals(got[j]) || Math.Abs(want[j] - got[j]) <= rtol * (Math.Max(Math.Abs(want[j]), Math.Abs(got[j])) + scale);
                Assert.True(same, $"{@case}: element {j} is {got[j]} on {Backend.Name}, {want[j]} on the CPU");
            }
        }
    }
}

/// <summary>The meta backend computes nothing, so its conformance is the CPU's types for every op's forward, VJP and JVP.</summary>
public sealed class MetaBackendConformance : BackendConformance
{
    protected override IBackend Backend => MetaBackend.Instance;
    protected override bool HoldsValues => false;
}

/// <summary>
/// The GPU backend on ILGPU's CPU accelerator: its kernels (and its storage's uploads and downloads) against the CPU.
/// Elementwise results differ from the CPU's SIMD polynomials by a few ulp, and sums by their order (one thread per
/// output, in index order, against the CPU's blocked SIMD sums), so float32 allows 1e-5 and float64 1e-12 relative to
/// the element and the tensor's scale; integers, bools and everything the backend runs on the host copy are exact.
/// </summary>
public sealed class GpuBackendConformance : BackendConformance
{
    protected override IBackend Backend => GpuTestDevice.Backend;

    private protected override double Tolerance(OpCase c, DType dtype) => dtype == DType.Float32 ? 1e-5 : 1e-12;
}

/// <summary>One CPU-accelerator GPU backend for the whole test run (its kernels compile once).</summary>
internal static class GpuTestDevice
{
    private static readonly Lazy<Gpu.GpuBackend> Shared = new(Gpu.GpuBackend.CreateCpuAccelerator);

    public static Gpu.GpuBackend Backend => Shared.Value;

    /// <summary>
    /// A kernel compiled by ILGPU's PTX backend for sm_90 with no device: the compiler the CPU accelerator never runs.
    /// Explicitly grouped kernels (shared memory, barriers) take their group from the launch, the others from ILGPU.
    /// </summary>
    public static string CompileToPtx(System.Reflection.MethodInfo kernel, bool explicitlyGrouped = false)
    {
        using var context = ILGPU.Context.Create(builder => builder.Cuda());
        var arch = new ILGPU.Runtime.Cuda.CudaArchitecture(9, 0);
        using var backend = new ILGPU.Backends.PTX.PTXBackend(context, new ILGPU.Runtime.Cuda.CudaCapabilityContext(arch), arch,
            new ILGPU.Runtime.Cuda.CudaInstructionSet(8, 0), nvvmAPI: null);
        var entry = explicitlyGrouped
            ? ILGPU.Backends.EntryPoints.EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : ILGPU.Backends.EntryPoints.EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        return ((ILGPU.Backends.PTX.PTXCompiledKernel)backend.Compile(entry, new ILGPU.Runtime.KernelSpecialization(null, null))).PTXAssembly;
    }
}
