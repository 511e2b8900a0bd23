using ILGPU.Runtime.Cuda;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Ops;
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

    /// <summary>How far a float output of <paramref name="c"/>'s forward (or its VJP or JVP) may be from the CPU's.</summary>
    internal virtual Bound Allowed(OpCase c, DType dtype, bool forward) => Bound.Exact;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_MatchesTheCpu(string @case)
    {
        foreach (bool narrow in new[] { false, true })
            Compare(@case, narrow, forward: true, (c, scope, _, x) => [c.Run(scope, x)]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Vjp_MatchesTheCpu(string @case) => Compare(@case, narrow: false, forward: false, (c, scope, host, x) =>
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
    public void Jvp_MatchesTheCpu(string @case) => Compare(@case, narrow: false, forward: false, (c, scope, host, x) =>
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
    private void Compare(string @case, bool narrow, bool forward, Func<OpCase, ExecutionScope, ExecutionScope, Tensor[], Tensor[]> body)
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
            var dtype = expected[k].DType;
            var bound = dtype.IsFloating() ? Allowed(reference, dtype, forward) : Bound.Exact;
            bound.AssertHolds(expected[k].ToDoubles(), actual[k].ToDoubles(), dtype, $"{@case} on {Backend.Name}: ");
        }
    }
}

/// <summary>
/// How close a backend's float must be to the CPU's: equal, or within <see cref="Ulps"/> units in the last place of
/// the dtype, or within <see cref="Relative"/> of the element plus the tensor's scale (a sum that cancels to ~0 keeps
/// its terms' error). One rule for the conformance suite and the GPU backend's own tests.
/// </summary>
internal readonly record struct Bound(int Ulps, double Relative)
{
    public static readonly Bound Exact = new(0, 0);

    /// <summary>The backends' rounding for results of several operations: 1e-5 of float32, 1e-12 of float64.</summary>
    public static Bound Rounding(DType dtype) => new(0, dtype == DType.Float32 ? 1e-5 : 1e-12);

    public bool Holds(double want, double got, DType dtype, double scale) =>
        want.Equals(got) || UlpsApart(want, got, dtype) <= Ulps || Math.Abs(want - got) <= Relative * (Math.Max(Math.Abs(want), Math.Abs(got)) + scale);

    /// <summary>Every element of <paramref name="got"/> within the bound of <paramref name="want"/>'s, the scale being want's largest finite magnitude.</summary>
    public void AssertHolds(double[] want, double[] got, DType dtype, string what = "")
    {
        Assert.Equal(want.Length, got.Length);
        double scale = want.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        for (int j = 0; j < want.Length; j++)
            Assert.True(Holds(want[j], got[j], dtype, scale), $"{what}element {j}: {got[j]:R} against the CPU's {want[j]:R} ({this})");
    }

    /// <summary>Units in the last place of <paramref name="dtype"/> between two values (±0 are 0 apart; NaN or a sign change: far).</summary>
    public static long UlpsApart(double a, double b, DType dtype)
    {
        if (a.Equals(b)) return 0;
        if (double.IsNaN(a) || double.IsNaN(b) || (a < 0) != (b < 0)) return long.MaxValue;
        return dtype == DType.Float32
            ? Math.Abs((long)BitConverter.SingleToInt32Bits((float)a) - BitConverter.SingleToInt32Bits((float)b))
            : Math.Abs(BitConverter.DoubleToInt64Bits(a) - BitConverter.DoubleToInt64Bits(b));
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
/// Forwards that move, select, convert or create values are bit for bit; an elementwise op's forward is within 4 ulp
/// (the device's transcendentals against the CPU's SIMD polynomials, each within a few ulp of the true value); sums
/// and products differ by their order (one thread per output, in index order, against the CPU's blocked SIMD sums),
/// and VJPs and JVPs chain several ops, so those allow 1e-5 (float32) and 1e-12 (float64) of the element plus the
/// tensor's scale. Integers and bools are always exact.
/// </summary>
public sealed class GpuBackendConformance : BackendConformance
{
    protected override IBackend Backend => GpuTestDevice.Backend;

    internal override Bound Allowed(OpCase c, DType dtype, bool forward) => forward switch
    {
        true when c.Op.Schema.Category is "movement" or "other" or "creation" || c.Op is WhereOp => Bound.Exact,
        true when c.Op.Step is not null => new Bound(Ulps: 4, Relative: 0),
        _ => Bound.Rounding(dtype),
    };
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
