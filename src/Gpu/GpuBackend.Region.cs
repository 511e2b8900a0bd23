using System.Runtime.CompilerServices;
using AutogradService.Engine;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// Fused elementwise regions as one kernel launch (<see cref="Kernels.RegionF32"/>): the plan's region compiled once
/// into steps the kernel interprets per element from registers. A region the kernel cannot take runs member by member.
/// </summary>
public sealed partial class GpuBackend
{
    private Action<Index1D, RegionInputs<float>, ArrayView<float>, RegionSteps, Registers8<float>>? _regionF32;
    private Action<Index1D, RegionInputs<double>, ArrayView<double>, RegionSteps, Registers8<double>>? _regionF64;

    /// <summary>Each program's compiled steps (or why not: null), kept as long as the plan holds its region.</summary>
    private readonly ConditionalWeakTable<RegionProgram, StrongBox<RegionSteps?>> _regionSteps = new();

    /// <summary>Regions run as one launch so far (tests read it).</summary>
    internal int FusedLaunches { get; private set; }

    /// <summary>
    /// A fused region: one launch when its program compiles; else member by member on whole tensors in a scope of
    /// its own (its operands and intermediates, like the CPU's tiles, are not the request's), then the root copied
    /// into <paramref name="output"/>.
    /// </summary>
    void IBackend.RunRegion(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        if (Fits(output) && output.DType is DType.Float32 or DType.Float64 &&
            _regionSteps.GetValue(region.Program, p => new(RegionCode.Compile(p))).Value is { } steps)
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

    private void Launch(RegionProgram program, RegionSteps steps, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        int n = (int)output.ElementCount;
        lock (Sync)
        {
            if (output.DType == DType.Float32)
            {
                var x = new RegionInputs<float>();
                for (int k = 0; k < inputs.Length; k++) x.Set(k, In(inputs[k]).Cast<float>(), inputs[k].ElementCount == 1);
                var literals = new Registers8<float>();
                for (int l = 0; l < program.Literals.Count; l++) literals.Set(l, (float)program.Literals[l]);
                _regionF32 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionInputs<float>, ArrayView<float>, RegionSteps, Registers8<float>>(Kernels.RegionF32);
                _regionF32(n, x, Out(output).Cast<float>(), steps, literals);
            }
            else
            {
                var x = new RegionInputs<double>();
                for (int k = 0; k < inputs.Length; k++) x.Set(k, In(inputs[k]).Cast<double>(), inputs[k].ElementCount == 1);
                var literals = new Registers8<double>();
                for (int l = 0; l < program.Literals.Count; l++) literals.Set(l, program.Literals[l]);
                _regionF64 ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, RegionInputs<double>, ArrayView<double>, RegionSteps, Registers8<double>>(Kernels.RegionF64);
                _regionF64(n, x, Out(output).Cast<double>(), steps, literals);
            }
            Accelerator.Synchronize();
            FusedLaunches++;
        }
    }
}
