using System.Runtime.CompilerServices;
using AutogradService.Engine;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// Fused elementwise regions as one kernel launch each way: the plan's region compiled once into steps
/// (<see cref="RegionCode"/>) that <see cref="Kernels.RegionF32"/> interprets per element from registers, and whose
/// VJP <see cref="Kernels.RegionVjpF32"/> computes in the same launch shape (recompute, then a backward sweep). A
/// region the kernels cannot take runs member by member.
/// </summary>
public sealed partial class GpuBackend
{
    private const int ChunkSum = 4096;

    private Action<Index1D, RegionViews<float>, ArrayView<float>, RegionSteps, Registers8<float>>? _regionF32;
    private Action<Index1D, RegionViews<double>, ArrayView<double>, RegionSteps, Registers8<double>>? _regionF64;
    private Action<Index1D, RegionViews<float>, ArrayView<float>, int, RegionViews<float>, int, RegionSteps, Registers8<float>>? _regionVjpF32;
    private Action<Index1D, RegionViews<double>, ArrayView<double>, int, RegionViews<double>, int, RegionSteps, Registers8<double>>? _regionVjpF64;
    private Action<Index1D, ArrayView<float>, ArrayView<double>, int, int>? _sumChunksF32;
    private Action<Index1D, ArrayView<double>, ArrayView<double>, int, int>? _sumChunksF64;

    /// <summary>Each program's compiled steps (or why not: null), kept as long as the plan holds its region.</summary>
    private readonly ConditionalWeakTable<RegionProgram, StrongBox<RegionSteps?>> _regionSteps = new();

    /// <summary>Region launches so far, forward and backward (tests read them).</summary>
    internal int FusedLaunches { get; private set; }

    internal int FusedVjpLaunches { get; private set; }

    private RegionSteps? Steps(ElementwiseRegion region) => _regionSteps.GetValue(region.Program, p => new(RegionCode.Compile(p))).Value;

    /// <summary>A recorded run fuses every region the kernels take: forward and VJP are then one launch each, against one per op and per tile.</summary>
    bool IBackend.FusesRecorded(ElementwiseRegion region) => Steps(region) is not null;

    /// <summary>
    /// A fused region: one launch when its program compiles; else member by member on whole tensors in a scope of
    /// its own (its operands and intermediates, like the CPU's tiles, are not the request's), then the root copied
    /// into <paramref name="output"/>.
    /// </summary>
    void IBackend.RunRegion(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        if (Fits(output) && output.DType is DType.Float32 or DType.Float64 && Steps(region) is { } steps)
        {
            if (output.ElementCount > 0) Launch(region.Program, steps, inputs, output);
            return;
        }
        using var members = RegionRunner.TileScope(scope, 1, record: false);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < inputs.Length; i++)
        {
            var input = members.Allocate(inputs[i].Shape, inputs[i].DType); // the members' scope holds its operands too
            Copy(inputs[i], input);
            values[region.Inputs[i]] = input;
        }
        var literals = new Dictionary<double, Tensor>();
        var root = region.ApplyMembers(members, values, v => literals.TryGetValue(v, out var t) ? t : literals[v] = members.Scalar(v, output.DType));
        Copy(root, output);
    }

    /// <summary>
    /// The region's VJP in one launch: every needed full-shape input's gradient written directly; a single-element
    /// input's per-element shares written to a scratch buffer, summed in double by chunks on the device and the
    /// chunks on the host, in order. Null (the members' rules then run tile by tile) when the program does not compile.
    /// </summary>
    Tensor?[]? IBackend.RunRegionVjp(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output, Tensor grad, bool[] needs)
    {
        if (!Fits(output) || output.DType is not (DType.Float32 or DType.Float64) || Steps(region) is not { } steps) return null;
        var program = region.Program;
        int n = (int)output.ElementCount;
        var result = new Tensor?[inputs.Length];
        using var scratch = RegionRunner.TileScope(scope, 1, record: false);
        var shares = new Tensor?[inputs.Length];
        try
        {
            for (int m = 0; m < inputs.Length; m++)
            {
                if (!needs[m]) continue;
                if (inputs[m].ElementCount == 1) shares[m] = scratch.Allocate(output.Type);
                else result[m] = scope.Allocate(inputs[m].Type);
            }
            if (n > 0) LaunchVjp(program, steps, inputs, grad, grad.ElementCount != output.ElementCount, result, shares, n);
            for (int m = 0; m < inputs.Length; m++)
                if (shares[m] is { } s) result[m] = scope.Full(inputs[m].Shape, Total(scratch, s, n), inputs[m].DType);
            return result;
        }
        catch
        {
            foreach (var t in result) t?.Dispose();
            throw;
        }
    }

    private void Launch(RegionProgram program, RegionSteps steps, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        int n = (int)output.ElementCount;
        lock (Sync)
        {
            if (output.DType == DType.Float32)
            {
                _regionF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionViews<float>, ArrayView<float>, RegionSteps, Registers8<float>>(Kernels.RegionF32);
                _regionF32(n, Views<float>(inputs), Out(output).Cast<float>(), steps, Literals<float>(program, v => (float)v));
            }
            else
            {
                _regionF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionViews<double>, ArrayView<double>, RegionSteps, Registers8<double>>(Kernels.RegionF64);
                _regionF64(n, Views<double>(inputs), Out(output).Cast<double>(), steps, Literals<double>(program, v => v));
            }
            Accelerator.Synchronize();
            FusedLaunches++;
        }
    }

    private void LaunchVjp(RegionProgram program, RegionSteps steps, ReadOnlySpan<Tensor> inputs, Tensor grad, bool oneElementGrad,
        Tensor?[] result, Tensor?[] shares, int n)
    {
        lock (Sync)
        {
            if (grad.DType == DType.Float32)
            {
                _regionVjpF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionViews<float>, ArrayView<float>, int, RegionViews<float>, int, RegionSteps, Registers8<float>>(Kernels.RegionVjpF32);
                _regionVjpF32(n, Views<float>(inputs), In(grad).Cast<float>(), oneElementGrad ? 1 : 0, Gradients<float>(result, shares),
                    inputs.Length, steps, Literals<float>(program, v => (float)v));
            }
            else
            {
                _regionVjpF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionViews<double>, ArrayView<double>, int, RegionViews<double>, int, RegionSteps, Registers8<double>>(Kernels.RegionVjpF64);
                _regionVjpF64(n, Views<double>(inputs), In(grad).Cast<double>(), oneElementGrad ? 1 : 0, Gradients<double>(result, shares),
                    inputs.Length, steps, Literals<double>(program, v => v));
            }
            Accelerator.Synchronize();
            FusedVjpLaunches++;
        }
    }

    /// <summary>The sum of a single-element input's n shares: chunks on the device, the chunks' sums on the host, all in double and in order.</summary>
    private double Total(ExecutionScope scratch, Tensor shares, int n)
    {
        int chunks = (n + ChunkSum - 1) / ChunkSum;
        if (chunks == 0) return 0;
        var sums = scratch.Allocate(new Shape(chunks), DType.Float64);
        lock (Sync)
        {
            var (x, y) = (In(shares), Out(sums).Cast<double>());
            if (shares.DType == DType.Float32)
                (_sumChunksF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int>(Kernels.SumChunksF32))(chunks, x.Cast<float>(), y, n, ChunkSum);
            else
                (_sumChunksF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int>(Kernels.SumChunksF64))(chunks, x.Cast<double>(), y, n, ChunkSum);
            Accelerator.Synchronize();
        }
        double total = 0;
        foreach (var s in sums.ReadOnlySpan<double>()) total += s;
        return total;
    }

    /// <summary>The inputs' device views (the caller holds the lock), single elements flagged.</summary>
    private static RegionViews<T> Views<T>(ReadOnlySpan<Tensor> inputs) where T : unmanaged
    {
        var views = new RegionViews<T>();
        for (int k = 0; k < inputs.Length; k++) views.Set(k, In(inputs[k]).Cast<T>(), inputs[k].ElementCount == 1);
        return views;
    }

    /// <summary>Where each input's adjoint goes: its gradient, its shares, or nowhere (flagged).</summary>
    private static RegionViews<T> Gradients<T>(Tensor?[] result, Tensor?[] shares) where T : unmanaged
    {
        var views = new RegionViews<T>();
        for (int k = 0; k < result.Length; k++)
        {
            var target = result[k] ?? shares[k];
            views.Set(k, target is null ? default : Out(target).Cast<T>(), flagged: target is null);
        }
        return views;
    }

    private static Registers8<T> Literals<T>(RegionProgram program, Func<double, T> convert) where T : unmanaged
    {
        var literals = new Registers8<T>();
        for (int l = 0; l < program.Literals.Count; l++) literals.Set(l, convert(program.Literals[l]));
        return literals;
    }
}
