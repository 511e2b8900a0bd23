using AutogradService.Engine.Autodiff;
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
    private const string Chain = Graphs.ElementwiseRegionTests.Chain;

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

    /// <summary>The conformance suite's rounding bound (a region chains several ops).</summary>
    private static void AssertClose(double[] want, double[] got, DType dtype) => Bound.Rounding(dtype).AssertHolds(want, got, dtype);

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

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void TheInterpretersRecordedRegion_IsOneLaunchEachWay_WithTheCpusGradients(DType dtype)
    {
        int n = (int)RegionRunner.MinElements + 3;
        var x = Values(n, 1);
        var s = Values(1, 2);
        (Dictionary<string, Tensor> Feed, Tensor[] Leaves) Feed(ExecutionScope scope)
        {
            var (tx, ts) = (F.Cast(scope.FromSpan<double>(x, [1, n]), dtype), F.Cast(scope.FromSpan<double>(s, [1, 1]), dtype));
            tx.RequireGrad();
            ts.RequireGrad();
            return (new(StringComparer.Ordinal) { ["x"] = tx, ["s"] = ts }, [tx, ts]);
        }
        var seed = Values(n, 3);
        Tensor[] Gradients(ExecutionScope scope, bool fuse)
        {
            var (feed, leaves) = Feed(scope);
            var plan = GraphFunctions.Prepare(ProgramParser.Parse(Chain), feed);
            var y = Interpreter.Run(scope, plan, feed, RunOptions.Default with { Fuse = fuse }).Outputs["y"];
            return ReverseMode.Grad([y], [F.Cast(scope.FromSpan<double>(seed, [1, n]), dtype)], leaves);
        }
        using var cpu = new ExecutionScope();
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var want = Gradients(cpu, fuse: false);
        var (forward, backward) = (Gpu.FusedLaunches, Gpu.FusedVjpLaunches);
        var got = Gradients(gpu, fuse: true);
        Assert.Equal((1, 1), (Gpu.FusedLaunches - forward, Gpu.FusedVjpLaunches - backward));
        for (int k = 0; k < want.Length; k++)
        {
            Assert.Equal(want[k].Type, got[k].Type);
            AssertClose(want[k].ToDoubles(), got[k].ToDoubles(), dtype);
        }
    }

    /// <summary>Every fusable op's rule, through programs whose inputs stay in the ops' domains (inputs drawn in [0.5, 3]).</summary>
    private static readonly string[] ProgramsForVjps =
    [
        "a = log(x)\nb = log1p(u)\nc = a * b\nd = sqrt(v)\ne = rsqrt(w)\nf = d / e\ny = c - f",
        "a = x - 1.75\nb = abs(a)\nc = exp(b)\nd = expm1(u)\ne = c * d\nf = square(v)\ng = reciprocal(f)\nh = neg(g)\ny = e + h",
        "a = x - 1.75\nb = sin(a)\nc = cos(u)\nd = b * c\ne = v - 1.75\nf = tan(e)\ng = tanh(w)\nh = f * g\ny = d + h",
        "a = x - 1.75\nb = sigmoid(a)\nc = u - 1.75\nd = relu(c)\ne = b * d\nf = v - 1.75\ng = softplus(f)\nh = sign(w)\ni = g * h\nj = erf(p)\nk = e + i\ny = k - j",
        // pow in both operands, ties in maximum (v with itself) and minimum, one input read by several steps.
        "a = x ** u\nb = maximum(v, v)\nc = minimum(w, p)\nd = a / b\ne = d * c\nf = x ** 2\ny = e - f",
        "a = minimum(x, 1.5)\nb = maximum(u, 2)\nc = a * b\ny = c * x",
    ];

    public static TheoryData<string> VjpPrograms() => new(ProgramsForVjps);

    [Theory]
    [MemberData(nameof(VjpPrograms))]
    public void RegionVjps_AreOneLaunch_WithTheGradientsOfTheMembersRules(string program)
    {
        var region = OnlyRegion(Plan.Build(ProgramParser.Parse(program)));
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            foreach (bool singles in new[] { false, true })
            {
                int before = Gpu.FusedVjpLaunches;
                var (want, got) = VjpBoth(region, dtype, n: 700, singleElements: singles);
                Assert.Equal(1, Gpu.FusedVjpLaunches - before);
                for (int k = 0; k < want.Length; k++) AssertClose(want[k], got[k], dtype);
            }
    }

    [Fact]
    public void EveryFusableOp_HasItsRuleHeldByTheVjpPrograms()
    {
        // A new fusable op must join a program above: the kernel's rule table is the GPU's copy of the op's rule.
        var covered = ProgramsForVjps
            .SelectMany(p => OnlyRegion(Plan.Build(ProgramParser.Parse(p))).Program.Steps.Select(s => s.Kernel)).ToHashSet();
        var missing = OpRegistry.Default.All.Where(op => op.Step is { } step && !covered.Contains(step)).Select(op => op.Name);
        Assert.Equal([], missing);
    }

    /// <summary>
    /// The region's input gradients on the CPU (its members applied through the dispatcher, recorded, and reverse
    /// mode's own rules) and from the GPU's fused VJP, for a random cotangent; with <paramref name="singleElements"/>
    /// every other input is a single element and the cotangent one element too.
    /// </summary>
    private static (double[][] Want, double[][] Got) VjpBoth(ElementwiseRegion region, DType dtype, int n, bool singleElements)
    {
        var values = region.Inputs.Select((_, i) => Values(singleElements && i % 2 == 1 ? 1 : n, 20 + i, 0.5, 3)).ToArray();
        var cotangent = Values(singleElements ? 1 : n, 9);
        Tensor[] Inputs(ExecutionScope scope) => values.Select(v => F.Cast(scope.FromSpan<double>(v), dtype)).ToArray();
        using var cpu = new ExecutionScope();
        var x = Inputs(cpu);
        foreach (var t in x) t.RequireGrad();
        var named = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < x.Length; i++) named[region.Inputs[i]] = x[i];
        var y = region.ApplyMembers(cpu, named, v => cpu.Scalar(v, dtype));
        var want = ReverseMode.Grad([y], [F.BroadcastTo(F.Cast(cpu.FromSpan<double>(cotangent), dtype), y.Shape)], x);

        using var gpu = new ExecutionScope(new ScopeOptions { Backend = Gpu });
        var z = Inputs(gpu);
        var output = gpu.Allocate(y.Type);
        ((IBackend)Gpu).RunRegion(gpu, region, z, output);
        var got = ((IBackend)Gpu).RunRegionVjp(gpu, region, z, output, F.Cast(gpu.FromSpan<double>(cotangent), dtype), [.. z.Select(_ => true)])!;
        for (int k = 0; k < z.Length; k++) Assert.Equal(x[k].Type, got[k]!.Type);
        return (want.Select(t => t.ToDoubles()).ToArray(), got.Select(t => t!.ToDoubles()).ToArray());
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
