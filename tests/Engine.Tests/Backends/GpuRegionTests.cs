using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using AutogradService.Gpu;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// Fused elementwise regions on the GPU backend as one kernel launch (on ILGPU's CPU accelerator): the region's steps
/// interpreted per element from registers give the CPU's node-by-node values within the backends' tolerance, through
/// the interpreter and directly; a region the kernel cannot take runs member by member and gives the same.
/// </summary>
public class GpuRegionTests
{
    // W4's chain with a single-element operand, a literal and a division: one region of nine steps.
    private const string Chain = "a = x * x\nb = neg(a)\nc = exp(b)\nd = sin(x)\ne = d * c\nf = tanh(x)\ng = e + f\nh = g * s\ny = h / 3";

    private static GpuBackend Gpu => GpuTestDevice.Backend;

    private static ElementwiseRegion OnlyRegion(Plan plan)
    {
        var order = plan.Root.Order;
        return Enumerable.Range(0, order.Count).Select(k => plan.Root.Regions?.RootAt(k)).Single(r => r is not null)!;
    }

    private static double[] Values(int n, int seed, double low = -3, double high = 3)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => low + (high - low) * random.NextDouble()).ToArray();
    }

    private static void AssertClose(double[] want, double[] got, DType dtype)
    {
        // The conformance suite's bound: relative to the element and to the tensor's scale (sums of steps cancel).
        double rtol = dtype == DType.Float32 ? 1e-5 : 1e-12;
        double scale = want.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        Assert.Equal(want.Length, got.Length);
        for (int j = 0; j < want.Length; j++)
            Assert.True(want[j].Equals(got[j]) || Math.Abs(want[j] - got[j]) <= rtol * (Math.Max(Math.Abs(want[j]), Math.Abs(got[j])) + scale),
                $"element {j}: {got[j]} on the GPU backend, {want[j]} on the CPU");
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void TheInterpretersFusedRegion_IsOneLaunch_WithTheCpusValues(DType dtype)
    {
        int n = (int)RegionRunner.MinElements + 3; // large enough for the interpreter to fuse
        var x = Values(n, 1);
        var s = Values(1, 2);
        Dictionary<string, Tensor> Feed(ExecutionScope scope) => new(StringComparer.Ordinal)
        {
            ["x"] = F.Cast(scope.FromSpan<double>(x, [1, n]), dtype),
            ["s"] = F.Cast(scope.FromSpan<double>(s, [1, 1]), dtype),
        };
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        using var _ = cpu.NoGrad();
        using var __ = gpu.NoGrad();
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(Chain), Feed(cpu));
        var want = Interpreter.Run(cpu, plan, Feed(cpu), RunOptions.Default with { Fuse = false }).Outputs["y"];
        int before = Gpu.FusedLaunches;
        var got = Interpreter.Run(gpu, plan, Feed(gpu), RunOptions.Default with { Fuse = true }).Outputs["y"];
        Assert.Equal(1, Gpu.FusedLaunches - before);
        Assert.Equal(want.Type, got.Type);
        AssertClose(want.ToDoubles(), got.ToDoubles(), dtype);
    }

    [Theory]
    [InlineData("y = exp(x) * 2", 2)]
    [InlineData("a = x * 0.7\nb = erf(a)\ny = b - x", 3)]
    [InlineData("a = x + u\nb = x - u\nc = a * b\nd = sqrt(abs(c))\ny = maximum(d, 0.5)", 6)]
    // A balanced tree over eight inputs: at most three values live at once.
    [InlineData("a = p + q\nb = r + s\nc = a * b\nd = t - u\ne = v - w\nf = d / e\ny = c + f", 7)]
    [InlineData("a = x ** 2\nb = log1p(a)\nc = expm1(b)\nd = sigmoid(c)\ne = softplus(d)\nf = relu(e)\ng = rsqrt(f + 1)\ny = minimum(g, x)", 9)]
    public void RegionPrograms_RunAsOneLaunch_WithTheCpusValues(string program, int steps)
    {
        var plan = Plan.Build(ProgramParser.Parse(program));
        var region = OnlyRegion(plan);
        Assert.Equal(steps, region.Program.Steps.Count);
        Assert.NotNull(RegionCode.Compile(region.Program));
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            int before = Gpu.FusedLaunches;
            var (want, got) = RunBoth(region, dtype, n: 1000);
            Assert.Equal(1, Gpu.FusedLaunches - before);
            AssertClose(want, got, dtype);
        }
    }

    [Fact]
    public void ARegionTheKernelCannotTake_RunsMemberByMember_WithTheSameValues()
    {
        // Seventeen steps are more than the kernel holds, nine inputs more than it reads.
        var longChain = OnlyRegion(Plan.Build(ProgramParser.Parse(
            string.Join("\n", Enumerable.Range(0, 17).Select(k => $"v{k + 1} = sin({(k == 0 ? "x" : $"v{k}")})")))));
        var wide = OnlyRegion(Plan.Build(ProgramParser.Parse(
            "s1 = x0 + x1\n" + string.Join("\n", Enumerable.Range(2, 7).Select(k => $"s{k} = s{k - 1} * x{k}")))));
        foreach (var region in new[] { longChain, wide })
        {
            Assert.Null(RegionCode.Compile(region.Program));
            int before = Gpu.FusedLaunches;
            var (want, got) = RunBoth(region, DType.Float64, n: 100);
            Assert.Equal(0, Gpu.FusedLaunches - before);
            AssertClose(want, got, DType.Float64);
        }
    }

    [Fact]
    public void Registers_AreReused_OnceTheirOneReaderHasReadThem()
    {
        // A chain of sixteen steps needs one register.
        var chain = OnlyRegion(Plan.Build(ProgramParser.Parse(
            string.Join("\n", Enumerable.Range(0, 16).Select(k => $"v{k + 1} = sin({(k == 0 ? "x" : $"v{k}")})")))));
        var steps = RegionCode.Compile(chain.Program)!.Value;
        Assert.Equal(16, steps.Count);
        Assert.All(Enumerable.Range(0, 16), k => Assert.Equal(0, steps.Get(k) >> 17 & 7));
        // Eight values and their sums: however the plan orders them, no more than eight live at once (the most
        // sixteen steps can keep), so the kernel's eight registers always suffice.
        string[] ops = ["exp", "sin", "cos", "tanh", "sigmoid", "softplus", "abs", "neg"];
        var wide = OnlyRegion(Plan.Build(ProgramParser.Parse(
            string.Join("\n", ops.Select((op, k) => $"e{k} = {op}(x)")) + "\ns1 = e0 + e1\n" +
            string.Join("\n", Enumerable.Range(2, 6).Select(k => $"s{k} = s{k - 1} + e{k}")) + "\ny = s7 + e7")));
        var code = RegionCode.Compile(wide.Program)!.Value;
        Assert.Equal(15, code.Count);
        Assert.InRange(Enumerable.Range(0, code.Count).Max(k => code.Get(k) >> 17 & 7), 1, 7);
        var (want, got) = RunBoth(wide, DType.Float64, n: 100);
        AssertClose(want, got, DType.Float64);
    }

    /// <summary>The region on the CPU (its tiled runner) and on the GPU backend, inputs drawn in [-3, 3].</summary>
    private static (double[] Want, double[] Got) RunBoth(ElementwiseRegion region, DType dtype, int n)
    {
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var values = region.Inputs.Select((_, i) => Values(n, 10 + i)).ToArray();
        Tensor[] Inputs(ExecutionScope scope) => values.Select(v => F.Cast(scope.FromSpan<double>(v, [n]), dtype)).ToArray();
        var want = cpu.Allocate(new Shape(n), dtype);
        ((IBackend)CpuBackend.Instance).RunRegion(cpu, region, Inputs(cpu), want);
        var got = gpu.Allocate(new Shape(n), dtype);
        ((IBackend)Gpu).RunRegion(gpu, region, Inputs(gpu), got);
        return (want.ToDoubles(), got.ToDoubles());
    }
}
