using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;
using static AutogradService.Engine.Tests.Graphs.MemoryTestKit;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// In-place reuse in unrecorded runs: it happens (lower peaks), changes no bits, and never touches inputs, kept
/// values, values read again, values shared with a view, or anything a recording or forward-mode run needs.
/// </summary>
public class InPlaceTests
{
    /// <summary>Large enough for the parallel split, below RegionRunner.MinElements: chains this size run node by node.</summary>
    private const int Elements = 200_000;

    [Fact]
    public void UnaryChain_RunsInInputPlusOneBuffer_BitIdenticalToEagerAndToNoReuse()
    {
        var g = ProgramParser.Parse(Chain);
        var data = Uniform(Elements, 1, -3, 3);
        Dictionary<string, Tensor> Feed(ExecutionScope s) => Inputs(("x", s.FromArray(data)));

        var on = Run(g, Feed);
        var off = Run(g, Feed, inPlace: false);
        const long buffer = 4L * Elements;
        Assert.Equal(2 * buffer, on.Peak);  // x, then one buffer written over ten times
        Assert.Equal(3 * buffer, off.Peak); // x, an op's input and its output
        Assert.Equal(off.Values["j"], on.Values["j"]);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
        Assert.True(on.Estimate.Complete);

        using var scope = new ExecutionScope();
        using var _ = scope.NoGrad();
        var x = scope.FromArray(data);
        var eager = F.Exp(F.Sqrt(F.Relu(F.Square(F.Sigmoid(F.Abs(F.Neg(F.Tanh(F.Cos(F.Sin(x))))))))));
        Assert.Equal(Bits(eager), on.Values["j"]);
    }

    public static TheoryData<string> UnaryNames() => [.. UnaryOps.All.Select(o => o.Name).Where(n => n != "logical_not")];

    [Theory]
    [MemberData(nameof(UnaryNames))]
    public void EveryUnaryOp_WritesOverItsInput_WithTheSameBits(string op)
    {
        // 200 007 elements: the split (parallel) path, and a tail that is not a whole vector.
        var g = ProgramParser.Parse($"a = x * 1\ny = {op}(a)");
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var data = Uniform(200_007, 2);
            Dictionary<string, Tensor> Feed(ExecutionScope s) =>
                Inputs(("x", dtype == DType.Float32 ? s.FromArray(data) : s.FromArray(data.Select(v => (double)v).ToArray())));
            var on = Run(g, Feed);
            var off = Run(g, Feed, inPlace: false);
            Assert.Equal(off.Values["y"], on.Values["y"]);
            Assert.Equal(200_007L * dtype.SizeOf(), off.Peak - on.Peak); // y took a's buffer
            Assert.Equal(on.Peak, on.Estimate.PeakBytes);
        }
    }

    [Theory]
    [InlineData("neg")]
    [InlineData("abs")]
    [InlineData("square")]
    [InlineData("relu")]
    [InlineData("sign")]
    public void IntegerUnaryOps_WriteInPlace(string op)
    {
        var g = ProgramParser.Parse($"a = x * 3\ny = {op}(a)");
        var data = Enumerable.Range(-500, 1001).Select(i => (long)i).ToArray();
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        var off = Run(g, s => Inputs(("x", s.FromArray(data))), inPlace: false);
        Assert.Equal(off.Values["y"], on.Values["y"]);
        Assert.Equal(1001L * 8, off.Peak - on.Peak);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void LogicalNot_WritesInPlace()
    {
        var g = ProgramParser.Parse("a = logical_not(x)\ny = logical_not(a)");
        var data = Enumerable.Range(0, 999).Select(i => i % 3 == 0).ToArray();
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        Assert.Equal(data.Select(b => b ? 1L : 0L).ToArray(), on.Values["y"]);
        Assert.Equal(999 + 999, on.Peak);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    public static TheoryData<string, int[]> BinaryCases()
    {
        var data = new TheoryData<string, int[]>();
        foreach (var op in BinaryOps.All.Select(o => o.Name))
            foreach (var shape in new[] { new[] { 400, 500 }, new[] { 500 }, new[] { 400, 1 }, Array.Empty<int>() })
                data.Add(op, shape);
        return data;
    }

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public void EveryBinaryOp_WritesOverTheOperandWithTheOutputsShape(string op, int[] otherShape)
    {
        // a has the output's shape [400, 500]; b broadcasts (or not). Both orders: the full operand first or second.
        foreach (var text in new[] { $"a = x * 1\nb = z * 1\ny = {op}(a, b)", $"a = x * 1\nb = z * 1\ny = {op}(b, a)" })
        {
            var g = ProgramParser.Parse(text);
            Dictionary<string, Tensor> Feed(ExecutionScope s) => Inputs(
                ("x", s.FromSpan<float>(Uniform(200_000, 3, 0.5, 1.5), [400, 500])),
                ("z", s.FromSpan<float>(Uniform(otherShape.Aggregate(1, (p, q) => p * q), 4, 0.5, 1.5), otherShape)));
            var on = Run(g, Feed);
            var off = Run(g, Feed, inPlace: false);
            Assert.Equal(off.Values["y"], on.Values["y"]);
            Assert.Equal(200_000L * 4, off.Peak - on.Peak);
            Assert.Equal(on.Peak, on.Estimate.PeakBytes);
        }
    }

    [Fact]
    public void BroadcastBothWays_NeitherOperandIsReused()
    {
        // [400, 1] + [1, 500]: neither operand has the output's shape, so the output needs its own buffer.
        var g = ProgramParser.Parse("a = x * 1\nb = z * 1\ny = a + b");
        Dictionary<string, Tensor> Feed(ExecutionScope s) => Inputs(("x", Floats(s, 5, 400, 1)), ("z", Floats(s, 6, 1, 500)));
        var on = Run(g, Feed);
        var off = Run(g, Feed, inPlace: false);
        Assert.Equal(off.Peak, on.Peak);
        Assert.Equal(off.Values["y"], on.Values["y"]);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void IntegerBinaryOps_WriteInPlace()
    {
        var g = ProgramParser.Parse("a = x * 2\ny = maximum(a - 7, x)");
        var data = Enumerable.Range(-500, 1000).Select(i => (long)i).ToArray();
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        var off = Run(g, s => Inputs(("x", s.FromArray(data))), inPlace: false);
        Assert.Equal(off.Values["y"], on.Values["y"]);
        Assert.Equal(data.Select(v => Math.Max(2 * v - 7, v)).ToArray(), on.Values["y"]);
        Assert.True(on.Peak < off.Peak);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void APlanForAnyShape_StillWritesInPlace()
    {
        // Planned without input types (a model registered for any shape): the op's rule gives the output type at run time.
        var plan = Plan.Build(ProgramParser.Parse("a = x * 2\nb = exp(a)\nc = b + a"));
        Assert.False(plan.Estimates.Complete);
        var data = Uniform(1000, 13);
        long Peak(bool inPlace)
        {
            using var scope = new ExecutionScope();
            using var _ = scope.NoGrad();
            Interpreter.Run(scope, plan, Inputs(("x", scope.FromArray(data))), new RunOptions { InPlace = inPlace });
            return scope.Budget.PeakBytes;
        }
        Assert.Equal(4000 * 3 + 4, Peak(true));  // x, a, b; c takes b's bytes
        Assert.Equal(4000 * 4 + 4, Peak(false));
    }

    [Fact]
    public void KeptIntermediates_AreNeverOverwritten()
    {
        var g = ProgramParser.Parse(Chain);
        var data = Uniform(10_000, 7, -3, 3);
        Dictionary<string, Tensor> Feed(ExecutionScope s) => Inputs(("x", s.FromArray(data)));
        var reference = Run(g, Feed, inPlace: false, options: new RunOptions { AllIntermediates = true });

        var some = Run(g, Feed, options: new RunOptions { Intermediates = ["c", "f"] });
        Assert.Equal(reference.Values["c"], some.Values["c"]);
        Assert.Equal(reference.Values["f"], some.Values["f"]);
        Assert.Equal(reference.Values["j"], some.Values["j"]);

        var all = Run(g, Feed, options: new RunOptions { AllIntermediates = true });
        foreach (var name in "abcdefghij".Select(c => c.ToString())) Assert.Equal(reference.Values[name], all.Values[name]);
        Assert.Equal(reference.Peak, all.Peak); // every value is kept: nothing may be written over

        var outputs = Run(g, Feed, options: new RunOptions { Outputs = ["e", "j"] });
        Assert.Equal(reference.Values["e"], outputs.Values["e"]);
        Assert.Equal(reference.Values["j"], outputs.Values["j"]);
    }

    [Fact]
    public void AValueReadAgainLater_IsNotOverwritten()
    {
        // exp(a) is not a's last read; a + b is, and writes over a (or b).
        var g = ProgramParser.Parse("a = x * 2\nb = exp(a)\nc = a + b");
        var data = Uniform(5000, 8);
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        using var scope = new ExecutionScope();
        var a = scope.FromArray(data) * 2.0;
        Assert.Equal(Bits(a + F.Exp(a)), on.Values["c"]);
        Assert.Equal(4 * 5000L * 3 + 4, on.Peak); // x, a, b (c took one of them) and the literal 2
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void AValueSharedWithAView_IsNotOverwritten()
    {
        // exp(a) is a's last read, but v shares a's bytes and is read after it.
        var g = ProgramParser.Parse("a = x * 2\nv = reshape(a, shape=[50, 100])\nb = exp(a)\nc = reshape(b, shape=[50, 100]) + v");
        var data = Uniform(5000, 9);
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        var off = Run(g, s => Inputs(("x", s.FromArray(data))), inPlace: false);
        Assert.Equal(off.Values["c"], on.Values["c"]);
        using var scope = new ExecutionScope();
        var a = scope.FromArray(data) * 2.0;
        Assert.Equal(Bits(F.Exp(a) + a), on.Values["c"]);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void AViewWhoseSourceIsGone_IsWrittenOver()
    {
        // After the reshape a is unbound; v alone holds the bytes, so exp(v) may write over them.
        var g = ProgramParser.Parse("a = x * 2\nv = reshape(a, shape=[50, 100])\nb = exp(v)");
        var data = Uniform(5000, 10);
        var on = Run(g, s => Inputs(("x", s.FromArray(data))));
        var off = Run(g, s => Inputs(("x", s.FromArray(data))), inPlace: false);
        Assert.Equal(off.Values["b"], on.Values["b"]);
        Assert.Equal(4 * 5000L * 2 + 4, on.Peak);
        Assert.Equal(4 * 5000L * 3 + 4, off.Peak);
        Assert.Equal(on.Peak, on.Estimate.PeakBytes);
    }

    [Fact]
    public void RecordingRuns_NeverReuse_GradientsUnchanged()
    {
        var g = ProgramParser.Parse(Chain);
        var data = Uniform(4096, 11, -3, 3);
        using var scope = new ExecutionScope();
        var x = scope.FromArray(data);
        var inputs = Inputs(("x", x));
        var plan = GraphFunctions.Prepare(g, inputs);
        var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest { AllIntermediates = true });

        // The same ops applied eagerly on the tape.
        var leaf = scope.Import(x).RequireGrad();
        var values = new List<Tensor>();
        Tensor v = leaf;
        foreach (var f in new Func<Tensor, Tensor>[] { F.Sin, F.Cos, F.Tanh, F.Neg, F.Abs, F.Sigmoid, F.Square, F.Relu, F.Sqrt, F.Exp })
            values.Add(v = f(v));
        var grad = ReverseMode.Grad([v], null, [leaf])[0];
        Assert.Equal(Bits(grad), Bits(r.Gradients["x"]));
        for (int i = 0; i < values.Count; i++)
            Assert.Equal(Bits(values[i]), Bits(r.Intermediates["abcdefghij"[i].ToString()].Value)); // none overwritten
        Assert.Equal(Bits(scope.FromArray(data)), Bits(x));
    }

    [Fact]
    public void ForwardMode_NeverReuses_TangentsMatchReverseMode()
    {
        // A JVP rule reads the op's input (cos x for sin), so a run carrying tangents must not write over it.
        var g = ProgramParser.Parse(Chain);
        var data = Uniform(2048, 12, -3, 3);
        using var scope = new ExecutionScope();
        var inputs = Inputs(("x", scope.FromArray(data)));
        var plan = GraphFunctions.Prepare(g, inputs);
        var jvp = GraphFunctions.Jvp(scope, plan, inputs, Inputs(("x", scope.Full(new Shape(2048), 1))));
        var grad = GraphFunctions.Gradient(scope, plan, inputs);
        Close(grad.Gradients["x"].ToDoubles(), jvp.Tangents["j"].ToDoubles(), 1e-5); // elementwise: J is diagonal
        Assert.Equal(Bits(grad.Outputs["j"]), Bits(jvp.Outputs["j"]));
    }

    [Fact]
    public void Dispatcher_WritesOverOnlyWhenSafe()
    {
        using var scope = new ExecutionScope();
        Tensor Fresh() => scope.FromArray([1f, 2f, 3f, 4f], 2, 2);
        var none = Attributes.Empty;
        using (scope.NoGrad())
        {
            var t = Fresh();
            Assert.Equal(t.Pointer, Dispatcher.Apply(scope, UnaryOps.Exp, [t], none, t).Pointer);

            var s = Fresh();
            var row = scope.FromArray([1f, 2f]);
            Assert.Equal(s.Pointer, Dispatcher.Apply(scope, BinaryOps.Add, [row, s], none, s).Pointer);
            Assert.NotEqual(row.Pointer, Dispatcher.Apply(scope, BinaryOps.Add, [row, s], none, row).Pointer); // not the output's shape

            var shared = Fresh();
            var view = F.Reshape(shared, 4);
            Assert.NotEqual(shared.Pointer, Dispatcher.Apply(scope, UnaryOps.Exp, [shared], none, shared).Pointer);
            Assert.Equal([1.0, 2.0, 3.0, 4.0], view.ToDoubles());

            var other = Fresh();
            Assert.NotEqual(other.Pointer, Dispatcher.Apply(scope, UnaryOps.Exp, [Fresh()], none, other).Pointer); // not an input
            var reduced = Fresh();
            Assert.NotEqual(reduced.Pointer, Dispatcher.Apply(scope, ReduceOps.Sum, [reduced], Attributes.Of(("axes", new[] { 0 }), ("keepdims", false)), reduced).Pointer);
            var compared = Fresh();
            Assert.NotEqual(compared.Pointer, Dispatcher.Apply(scope, PredicateOps.Gt, [compared, compared], none, compared).Pointer);

            var carrying = Fresh();
            carrying.Tangent = scope.Full(new Shape(2, 2), 1);
            var y = Dispatcher.Apply(scope, UnaryOps.Sin, [carrying], none, carrying);
            Assert.NotEqual(carrying.Pointer, y.Pointer);
            Assert.Equal(new[] { 1.0, 2.0, 3.0, 4.0 }.Select(Math.Cos), y.Tangent!.ToDoubles(), new DoubleTolerance()); // cos of the unchanged x
        }

        var leaf = Fresh().RequireGrad();
        var recorded = Dispatcher.Apply(scope, UnaryOps.Exp, [leaf], none, leaf);
        Assert.NotEqual(leaf.Pointer, recorded.Pointer);
        Assert.Equal([1.0, 2.0, 3.0, 4.0], leaf.ToDoubles());
    }

    private sealed class DoubleTolerance : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-6;
        public int GetHashCode(double obj) => 0;
    }
}
