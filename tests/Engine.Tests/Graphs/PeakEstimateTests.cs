using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;
using static AutogradService.Engine.Tests.Graphs.MemoryTestKit;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>The plan's peak-bytes estimate against what an evaluate run's budget measures.</summary>
public class PeakEstimateTests
{
    [Fact]
    public void Estimate_MatchesMeasuredPeak_AcrossGraphs()
    {
        var cases = new (string Name, string Program, Func<ExecutionScope, Dictionary<string, Tensor>> Feed)[]
        {
            ("broadcast", "a = x * 2\nb = a + y\nc = b * y\nd = sum(c)",
                s => Inputs(("x", Floats(s, 1, 300, 200)), ("y", Floats(s, 2, 200)))),
            ("reductions", "s = sum(x, axes=[1])\nm = max(x, axes=[0], keepdims=true)\nt = x - m\nu = exp(t)\nv = sum(u, axes=[1])\nw = v / s\nk = min(w)",
                s => Inputs(("x", Floats(s, 3, 400, 300)))),
            ("matmul", "h = x @ w\nr = relu(h + b)\no = r @ w2\nl = sum(o * o)",
                s => Inputs(("x", Floats(s, 4, 64, 100)), ("w", Floats(s, 5, 100, 200)), ("b", Floats(s, 6, 200)), ("w2", Floats(s, 7, 200, 10)))),
            ("views", "a = x * 2\nv = reshape(a, shape=[-1])\nb = exp(v)\nt = transpose(x)\nr = reshape(t, shape=[50, 40])\nc = sum(b) + sum(r)",
                s => Inputs(("x", Floats(s, 8, 40, 50)))),
            ("literals and constants", "k = 3\na = x * 0.5 + 0.5\nb = a * k - 1\nc = b * 0.5",
                s => Inputs(("x", Floats(s, 9, 1000)))),
            ("promotion", "a = x * 2\nb = a + y\nc = exp(b)",
                s => Inputs(("x", s.FromArray(Uniform(1000, 10).Select(v => (double)v).ToArray())), ("y", Floats(s, 11, 1000)))),
            ("several outputs", "a = exp(x)\nb = a * 2\nc = sin(b)\nd = c + a",
                s => Inputs(("x", Floats(s, 12, 2000)))),
            ("integers", "a = x * 3\nb = abs(a - 1)\nc = sum(b)",
                s => Inputs(("x", s.FromArray(Enumerable.Range(0, 777).Select(i => (long)i).ToArray())))),
        };
        foreach (var (name, program, feed) in cases)
        {
            var outputs = name == "several outputs" ? new[] { "b", "d" } : null;
            var m = Run(ProgramParser.Parse(program, outputs), feed);
            Assert.True(m.Estimate.Complete, name);
            Assert.True(m.Estimate.PeakBytes == m.Peak, $"{name}: estimated {m.Estimate.PeakBytes}, measured {m.Peak}");
        }
    }

    public static IEnumerable<object[]> OpCases => Ops.OpCase.All();

    /// <summary>
    /// Every registered op on each of its examples, its inputs first copied by the graph (so they are values the run
    /// made and may write over): the same bits with and without in-place, and the estimate equal to the measured peak,
    /// composite ops included (the meta run executes their inner ops).
    /// </summary>
    [Theory]
    [MemberData(nameof(OpCases))]
    public void EveryOp_EstimateMatchesTheRun_AndInPlaceChangesNoBits(string name)
    {
        var c = Ops.OpCase.Parse(name);
        var specs = c.Example.Inputs;
        var parameters = new Parameter[specs.Count];
        var nodes = new List<Node>();
        var copies = new string[specs.Count];
        for (int i = 0; i < specs.Count; i++)
        {
            parameters[i] = new Parameter($"p{i}") { AnyDType = true };
            copies[i] = $"q{i}";
            bool isBool = specs[i].DType == DType.Bool || specs[i].Domain == InputDomain.Bool;
            nodes.Add(isBool ? N("logical_not", [$"p{i}"], copies[i]) : N("mul", [$"p{i}", "1"], copies[i]));
        }
        nodes.Add(N(c.Op.Name, copies, "y", c.Attrs));
        var g = G(parameters, [.. nodes], "y");
        Dictionary<string, Tensor> Feed(ExecutionScope s)
        {
            var sampled = Ops.OpCase.Parse(name).Sample(s); // the same values every call
            return sampled.Select((t, i) => (Name: $"p{i}", Value: t)).ToDictionary(kv => kv.Name, kv => kv.Value);
        }

        var on = Run(g, Feed);
        var off = Run(g, Feed, inPlace: false);
        Assert.Equal(off.Values["y"], on.Values["y"]);
        Assert.True(on.Estimate.Complete, on.Estimate.Caveat);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Theory]
    [InlineData("y = softmax(x, axis=1)")]
    [InlineData("a = x * 2\ny = logsumexp(a, axes=[1])")]
    [InlineData("a = exp(x)\nn = norm(a)\ny = a / n")]
    public void CompositeOps_EstimateIsExact_AndTheirTemporariesAreFreed(string program)
    {
        var g = ProgramParser.Parse(program);
        Dictionary<string, Tensor> Feed(ExecutionScope s) => Inputs(("x", Floats(s, 13, 300, 200)));
        var m = Run(g, Feed, check: (scope, feed, run) =>
        {
            // After the run only the inputs, the outputs and the run's literals remain: a composite's inner values went.
            long kept = feed.Values.Sum(t => t.ByteCount) + run.Outputs.Values.Sum(t => t.ByteCount);
            Assert.True(scope.Budget.InUseBytes - kept <= 64, $"{scope.Budget.InUseBytes - kept} bytes left behind");
        });
        Assert.True(m.Estimate.Complete, m.Estimate.Caveat);
        Assert.Equal(m.Peak, m.Estimate.PeakBytes);
    }

    [Fact]
    public void CompositeInALoop_RunsInBoundedMemory()
    {
        // norm in the cond allocated inner values every iteration, which used to stay until the scope ended.
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 256 * 1024 });
        var cond = G([S("i"), P("v")],
            [N("norm", ["v"], "n"), N("gt", ["n", "-1"], "finite"), N("lt", ["i", "3000"], "more"), N("logical_and", ["finite", "more"], "go")], "go");
        var body = G([S("i"), P("v")], [N("add", ["i", "1"], "i2"), N("softmax", ["v"], "v2")], "i2", "v2");
        var g = G([S("i"), P("x", DType.Float32, 4000)],
            [new Node("while", ["i", "x"], ["n", "y"], Attributes.Of(("cond", cond), ("body", body)))], "y");
        var inputs = Inputs(("i", scope.Scalar(0f)), ("x", Floats(scope, 14, 4000)));
        var r = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(g, inputs), inputs);
        Assert.Equal(1.0, r.Outputs["y"].ToDoubles().Sum(), 1e-3);
    }

    [Fact]
    public void If_EstimateIsTheDearerBranch_AndMatchesItsRun()
    {
        // then: one new value (3 buffers with x and a); else: two live at once (4 buffers).
        var then = G([P("v")], [N("exp", ["v"], "e")], "e");
        var otherwise = G([P("v")], [N("mul", ["v", "3"], "m"), N("mul", ["v", "4"], "n"), N("add", ["m", "n"], "k")], "k");
        var g = G([S("p", DType.Bool), P("x", DType.Float32, 1000)],
        [
            N("mul", ["x", "2"], "a"),
            new Node("if", ["p", "a"], ["c"], Attributes.Of(("then", then), ("else", otherwise)), "choose"),
            N("sum", ["c"], "d"),
        ], "d");
        Measured RunWith(bool p) => Run(g, s => Inputs(("p", s.FromSpan<bool>([p], [])), ("x", Floats(s, 15, 1000))));
        var taken = RunWith(true);
        var dearer = RunWith(false);
        Assert.True(dearer.Peak > taken.Peak);
        Assert.True(dearer.Estimate.Complete);
        Assert.Equal(dearer.Peak, dearer.Estimate.PeakBytes);
        Assert.Equal(1 + 4000 * 4 + 4 * 3, dearer.Peak); // p, x, a, m, n (k then takes m's bytes) and the literals 2, 3, 4
    }

    [Fact]
    public void Loops_AreMarkedIncomplete()
    {
        var plan = Plan.Build(C5([3]));
        Assert.False(plan.Estimates.Complete);
        Assert.Equal("loops are counted for one iteration", plan.Estimates.Caveat);
        Assert.True(plan.Estimates.PeakBytes > 0);
    }
}

/// <summary>The meta backend's estimate against measured peaks, over generated graphs (the property the estimate promises).</summary>
public class RandomGraphPeakTests
{
    public static IEnumerable<object[]> Seeds() => Enumerable.Range(1, 120).Select(seed => new object[] { seed });

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Estimate_EqualsMeasuredPeak_OnRandomGraphs(int seed)
    {
        // One in ten is large enough for elementwise regions to run fused.
        var (rows, columns) = seed % 10 == 0 ? (512, 520) : (1 + seed * 7 % 23, 1 + seed * 11 % 19);
        var g = RandomGraphs.Make(seed, rows, columns, nodes: 6 + seed % 15);
        var graph = ProgramParser.Parse(g.Program, g.Outputs);
        var m = Run(graph, s => g.Feed(s, graph, seed));
        Assert.True(m.Estimate.Complete, m.Estimate.Caveat);
        Assert.True(m.Estimate.PeakBytes == m.Peak, $"estimated {m.Estimate.PeakBytes}, measured {m.Peak}, for\n{g.Program}outputs {string.Join(", ", g.Outputs)}");
    }
}
