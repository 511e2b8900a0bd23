using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// int64 and bool maps, zips, reductions and fills as device kernels (on ILGPU's CPU accelerator): bit for bit the
/// CPU's, with the int64 extremes (wrapping arithmetic), broadcasting on both sides, middle-axis reductions, and the
/// kernels int64 does not define left to the host's refusal.
/// </summary>
public class GpuIntegerTests
{
    private static IBackend Gpu => GpuTestDevice.Backend;

    private static readonly long[] Edges = [long.MinValue, long.MinValue + 1, -7, -1, 0, 1, 3, long.MaxValue - 1, long.MaxValue, 1L << 40, -(1L << 33), 12];

    private static (Tensor Cpu, Tensor Gpu) Both(ExecutionScope cpu, ExecutionScope gpu, long[] values, params int[] shape)
    {
        int[]? dims = shape.Length == 0 ? null : shape; // none: a vector
        return (cpu.FromSpan<long>(values, dims), gpu.FromSpan<long>(values, dims));
    }

    private static byte[] Run(ExecutionScope scope, TensorType type, Action<Tensor> kernel)
    {
        var output = scope.Allocate(type);
        kernel(output);
        return output.Bytes().ToArray();
    }

    [Theory]
    [InlineData(UnaryKernel.Neg)]
    [InlineData(UnaryKernel.Abs)]
    [InlineData(UnaryKernel.Square)]
    [InlineData(UnaryKernel.Sign)]
    [InlineData(UnaryKernel.Relu)]
    public void Int64Maps_GiveTheCpusBits(UnaryKernel kernel)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var (c, g) = Both(cpu, gpu, Edges);
        Assert.Equal(Run(cpu, c.Type, y => CpuBackend.Instance.Unary(kernel, c, y)), Run(gpu, g.Type, y => Gpu.Unary(kernel, g, y)));
    }

    [Theory]
    [InlineData(BinaryKernel.Add)]
    [InlineData(BinaryKernel.Sub)]
    [InlineData(BinaryKernel.Mul)]
    [InlineData(BinaryKernel.Maximum)]
    [InlineData(BinaryKernel.Minimum)]
    [InlineData(BinaryKernel.Eq)]
    [InlineData(BinaryKernel.Ne)]
    [InlineData(BinaryKernel.Lt)]
    [InlineData(BinaryKernel.Le)]
    [InlineData(BinaryKernel.Gt)]
    [InlineData(BinaryKernel.Ge)]
    public void Int64Zips_BroadcastingBothWays_GiveTheCpusBits(BinaryKernel kernel)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var (ca, ga) = Both(cpu, gpu, Edges, 12, 1);
        var (cb, gb) = Both(cpu, gpu, Edges, 1, 12);
        var type = new TensorType(new Shape(12, 12), kernel >= BinaryKernel.Eq ? DType.Bool : DType.Int64);
        Assert.Equal(Run(cpu, type, y => CpuBackend.Instance.Binary(kernel, ca, cb, y)), Run(gpu, type, y => Gpu.Binary(kernel, ga, gb, y)));
    }

    [Theory]
    [InlineData(BinaryKernel.LogicalAnd)]
    [InlineData(BinaryKernel.LogicalOr)]
    [InlineData(BinaryKernel.Eq)]
    [InlineData(BinaryKernel.Ne)]
    public void BoolZips_AndNot_GiveTheCpusBits(BinaryKernel kernel)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        bool[] a = [true, false, true], b = [false, true];
        var (ca, ga) = (cpu.FromSpan<bool>(a, [3, 1]), gpu.FromSpan<bool>(a, [3, 1]));
        var (cb, gb) = (cpu.FromSpan<bool>(b, [1, 2]), gpu.FromSpan<bool>(b, [1, 2]));
        var type = new TensorType(new Shape(3, 2), DType.Bool);
        Assert.Equal(Run(cpu, type, y => CpuBackend.Instance.Binary(kernel, ca, cb, y)), Run(gpu, type, y => Gpu.Binary(kernel, ga, gb, y)));
        Assert.Equal(Run(cpu, ca.Type, y => CpuBackend.Instance.Unary(UnaryKernel.LogicalNot, ca, y)), Run(gpu, ga.Type, y => Gpu.Unary(UnaryKernel.LogicalNot, ga, y)));
    }

    [Theory]
    [InlineData(ReduceKernel.Sum)]
    [InlineData(ReduceKernel.Prod)]
    [InlineData(ReduceKernel.Max)]
    [InlineData(ReduceKernel.Min)]
    public void Int64Reductions_OverAMiddleAxis_GiveTheCpusBits(ReduceKernel kernel)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var values = Enumerable.Range(0, 2 * 3 * 4).Select(i => Edges[i % Edges.Length] + i).ToArray();
        var (c, g) = Both(cpu, gpu, values, 2, 3, 4);
        var type = new TensorType(new Shape(2, 4), DType.Int64);
        Assert.Equal(Run(cpu, type, y => CpuBackend.Instance.Reduce(kernel, c, [1], y)), Run(gpu, type, y => Gpu.Reduce(kernel, g, [1], y)));
    }

    [Theory]
    [InlineData(DType.Int64, 3.9)]
    [InlineData(DType.Int64, -1e300)]
    [InlineData(DType.Int64, double.NaN)]
    [InlineData(DType.Bool, 0.0)]
    [InlineData(DType.Bool, -0.5)]
    public void Fills_ConvertAsTheCpuDoes(DType dtype, double value)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var type = new TensorType(new Shape(5), dtype);
        Assert.Equal(Run(cpu, type, y => CpuBackend.Instance.Fill(y, value)), Run(gpu, type, y => Gpu.Fill(y, value)));
    }
}
