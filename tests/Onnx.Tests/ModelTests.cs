using AutogradService.Engine;
using AutogradService.Engine.Tensors;
using static AutogradService.Onnx.Tests.OnnxBuilder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AutogradService.Onnx.Tests;

/// <summary>Small models of the three families the importer targets, built here: values and gradients.</summary>
public sealed class ModelTests
{
    private const DataType F64 = DataType.Double;

    /// <summary>x[2,4] → Gemm → Tanh → Gemm(transB) → LogSoftmax; Dropout and Identity pass through.</summary>
    internal static OnnxBuilder Mlp() => new OnnxBuilder()
        .Input("x", F64, 2, 4)
        .Initializer("W1", Random(1, 4, 5)).Initializer("b1", Random(2, 5))
        .Initializer("W2", Random(3, 3, 5)).Initializer("b2", Random(4, 3))
        .Node("Gemm", ["x", "W1", "b1"], ["h"])
        .Node("Tanh", ["h"], ["a"])
        .Node("Dropout", ["a"], ["d"])
        .Node("Gemm", ["d", "W2", "b2"], ["z"], ("transB", 1L), ("alpha", 0.5))
        .Node("Identity", ["z"], ["logits"])
        .Node("LogSoftmax", ["logits"], ["y"], ("axis", 1L))
        .Output("y");

    [Fact]
    public void MlpMatchesAHandComputation()
    {
        var imported = OnnxImporter.Import(Mlp().Bytes());
        var x = Random(7, 2, 4);
        var y = OnnxRun.Evaluate(imported.Graph, [x])[0].ToDoubles();

        double[] xs = x.ToDoubles(), w1 = Random(1, 4, 5).ToDoubles(), b1 = Random(2, 5).ToDoubles(), w2 = Random(3, 3, 5).ToDoubles(), b2 = Random(4, 3).ToDoubles();
        for (int n = 0; n < 2; n++)
        {
            var a = new double[5];
            for (int j = 0; j < 5; j++)
            {
                double s = b1[j];
                for (int i = 0; i < 4; i++) s += xs[n * 4 + i] * w1[i * 5 + j];
                a[j] = Math.Tanh(s);
            }
            var z = new double[3];
            for (int k = 0; k < 3; k++)
            {
                double s = 0;
                for (int j = 0; j < 5; j++) s += a[j] * w2[k * 5 + j];
                z[k] = 0.5 * s + b2[k];
            }
            double lse = Math.Log(z.Sum(Math.Exp));
            for (int k = 0; k < 3; k++) Assert.Equal(z[k] - lse, y[n * 3 + k], 12);
        }
        Assert.Equal(["W1", "b1", "W2", "b2"], imported.Summary.Parameters);
        Assert.Equal(2, imported.Summary.OpHistogram["Gemm"]);
    }

    [Fact]
    public void MlpGradientsByInputAndWeightsMatchFiniteDifferences()
    {
        var imported = OnnxImporter.Import(Mlp().Bytes());
        GradientCheck.Check(imported.Graph, new Dictionary<string, HostTensor> { ["x"] = Random(7, 2, 4) }, ["x", "W1", "b2"]);
    }

    /// <summary>x[1,2,6,6] → Conv(pad 1) → BatchNorm → Relu → MaxPool(2) → Pad → AveragePool(2, stride 1) → GlobalAveragePool → Flatten → Gemm.</summary>
    internal static OnnxBuilder Cnn() => new OnnxBuilder()
        .Input("x", F64, 1, 2, 6, 6)
        .Initializer("Wc", Random(11, 3, 2, 3, 3)).Initializer("bc", Random(12, 3))
        .Initializer("gamma", Random(13, 3)).Initializer("beta", Random(14, 3))
        .Initializer("mean", Random(15, 3)).Initializer("var", HostTensor.Of(new[] { 0.5, 1.0, 2.0 }, 3))
        .Initializer("Wf", Random(16, 3, 4)).Initializer("pads", Longs(0, 0, 1, 0, 0, 0, 0, 1))
        .Node("Conv", ["x", "Wc", "bc"], ["c"], ("pads", new long[] { 1, 1, 1, 1 }), ("kernel_shape", new long[] { 3, 3 }))
        .Node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"])
        .Node("Relu", ["n"], ["r"])
        .Node("MaxPool", ["r"], ["m"], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }))
        .Node("Pad", ["m", "pads"], ["p"], ("mode", "reflect"))
        .Node("AveragePool", ["p"], ["ap"], ("kernel_shape", new long[] { 2, 2 }))
        .Node("GlobalAveragePool", ["ap"], ["g"])
        .Node("Flatten", ["g"], ["f"])
        .Node("Gemm", ["f", "Wf"], ["y"])
        .Output("y");

    [Fact]
    public void CnnConvolutionMatchesADirectLoop()
    {
        var model = new OnnxBuilder().Input("x", F64, 1, 2, 5, 5).Initializer("W", Random(21, 3, 2, 3, 3))
            .Node("Conv", ["x", "W"], ["y"], ("pads", new long[] { 1, 0, 1, 2 }), ("strides", new long[] { 2, 1 }))
            .Output("y");
        var x = Random(22, 1, 2, 5, 5);
        var y = OnnxRun.Evaluate(OnnxImporter.Import(model.Bytes()).Graph, [x])[0];
        // Rows: (5 + 1 + 1 - 3) / 2 + 1 = 3; columns: (5 + 0 + 2 - 3) / 1 + 1 = 5.
        Assert.Equal(new Shape(1, 3, 3, 5), y.Shape);
        double[] xs = x.ToDoubles(), ws = Random(21, 3, 2, 3, 3).ToDoubles(), ys = y.ToDoubles();
        for (int m = 0; m < 3; m++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 5; j++)
                {
                    double s = 0;
                    for (int c = 0; c < 2; c++)
                        for (int ki = 0; ki < 3; ki++)
                            for (int kj = 0; kj < 3; kj++)
                            {
                                int r = i * 2 - 1 + ki, col = j + kj;
                                if (r >= 0 && r < 5 && col >= 0 && col < 5) s += xs[(c * 5 + r) * 5 + col] * ws[((m * 2 + c) * 3 + ki) * 3 + kj];
                            }
                    Assert.Equal(s, ys[(m * 3 + i) * 5 + j], 12);
                }
    }

    [Fact]
    public void CnnGradientsMatchFiniteDifferences()
    {
        var imported = OnnxImporter.Import(Cnn().Bytes());
        Assert.Equal(new Shape(1, 4), OnnxRun.Evaluate(imported.Graph, [Random(17, 1, 2, 6, 6)])[0].Shape);
        GradientCheck.Check(imported.Graph, new Dictionary<string, HostTensor> { ["x"] = Random(17, 1, 2, 6, 6) }, ["x", "Wc", "gamma"]);
    }

    /// <summary>
    /// A pre-norm transformer block as PyTorch exports one: LayerNormalization, Q/K/V projections, heads split by a
    /// Shape→Gather→Concat→Reshape chain, a causal mask from Trilu, Softmax attention, and an Erf GELU MLP.
    /// </summary>
    internal static OnnxBuilder Transformer()
    {
        const int d = 8, heads = 2, seq = 4;
        var b = new OnnxBuilder()
            .Input("x", F64, 2, seq, d)
            .Initializer("ln_g", Random(31, d)).Initializer("ln_b", Random(32, d))
            .Initializer("Wq", Random(33, d, d)).Initializer("Wk", Random(34, d, d)).Initializer("Wv", Random(35, d, d))
            .Initializer("Wo", Random(36, d, d)).Initializer("W1", Random(37, d, 2 * d)).Initializer("W2", Random(38, 2 * d, d))
            .Initializer("ln2_g", Random(39, d)).Initializer("ln2_b", Random(40, d))
            .Initializer("heads", Longs(heads)).Initializer("head_dim", Longs(d / heads)).Initializer("zero", Longs(0)).Initializer("one", Longs(1))
            .Initializer("perm_axes", Longs(0)).Initializer("scale", HostTensor.Of(new[] { Math.Sqrt(d / heads) }, []))
            .Initializer("half", HostTensor.Of(new[] { 0.5 }, [])).Initializer("sqrt2", HostTensor.Of(new[] { Math.Sqrt(2) }, []))
            .Initializer("two", HostTensor.Of(new[] { 2.0 }, []))
            .Node("LayerNormalization", ["x", "ln_g", "ln_b"], ["h"], ("axis", -1L), ("epsilon", 1e-5))
            .Node("MatMul", ["h", "Wq"], ["q"]).Node("MatMul", ["h", "Wk"], ["k"]).Node("MatMul", ["h", "Wv"], ["v"])
            // [B, S, D] → [B, S, H, D/H] with the sizes read from the tensor, as exporters write it.
            .Node("Shape", ["q"], ["q_shape"])
            .Node("Gather", ["q_shape", "zero"], ["batch"], ("axis", 0L))
            .Node("Gather", ["q_shape", "one"], ["len"], ("axis", 0L))
            .Node("Concat", ["batch", "len", "heads", "head_dim"], ["split_shape"], ("axis", 0L));
        foreach (var t in new[] { "q", "k", "v" })
        {
            b.Node("Reshape", [t, "split_shape"], [t + "_r"]);
            b.Node("Transpose", [t + "_r"], [t + "_h"], ("perm", new long[] { 0, 2, 1, 3 }));
        }
        b.Node("Transpose", ["k_h"], ["k_t"], ("perm", new long[] { 0, 1, 3, 2 }))
            .Node("MatMul", ["q_h", "k_t"], ["scores_raw"])
            .Node("Div", ["scores_raw", "scale"], ["scores"])
            // Causal mask: ones [S, S] from ConstantOfShape, lower triangle by Trilu, masked positions → -1e9.
            .Node("Constant", [], ["mask_shape"], ("value", Longs(seq, seq)))
            .Node("ConstantOfShape", ["mask_shape"], ["ones"], ("value", HostTensor.Of(new[] { 1.0 }, 1)))
            .Node("Trilu", ["ones"], ["lower"], ("upper", 0L))
            .Node("Cast", ["lower"], ["lower_b"], ("to", (long)DataType.Bool))
            .Node("Constant", [], ["minus"], ("value", HostTensor.Of(new[] { -1e9 }, [])))
            .Node("Where", ["lower_b", "scores", "minus"], ["masked"])
            .Node("Softmax", ["masked"], ["attn"], ("axis", -1L))
            .Node("MatMul", ["attn", "v_h"], ["ctx_h"])
            .Node("Transpose", ["ctx_h"], ["ctx_t"], ("perm", new long[] { 0, 2, 1, 3 }))
            .Node("Shape", ["x"], ["x_shape"])
            .Node("Reshape", ["ctx_t", "x_shape"], ["ctx"])
            .Node("MatMul", ["ctx", "Wo"], ["proj"])
            .Node("Add", ["x", "proj"], ["res1"])
            // Second LayerNorm spelled out with ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add.
            .Node("ReduceMean", ["res1"], ["mu"], ("axes", new long[] { -1 }))
            .Node("Sub", ["res1", "mu"], ["cen"])
            .Node("Pow", ["cen", "two"], ["sq"])
            .Node("ReduceMean", ["sq"], ["var"], ("axes", new long[] { -1 }))
            .Node("Constant", [], ["eps"], ("value", HostTensor.Of(new[] { 1e-5 }, [])))
            .Node("Add", ["var", "eps"], ["var_eps"])
            .Node("Sqrt", ["var_eps"], ["std"])
            .Node("Div", ["cen", "std"], ["norm"])
            .Node("Mul", ["norm", "ln2_g"], ["scaled"])
            .Node("Add", ["scaled", "ln2_b"], ["h2"])
            // GELU with Erf: 0.5 x (1 + erf(x / sqrt 2)).
            .Node("MatMul", ["h2", "W1"], ["u"])
            .Node("Div", ["u", "sqrt2"], ["u_s"])
            .Node("Erf", ["u_s"], ["erf"])
            .Node("Constant", [], ["one_f"], ("value", HostTensor.Of(new[] { 1.0 }, [])))
            .Node("Add", ["erf", "one_f"], ["erf1"])
            .Node("Mul", ["u", "erf1"], ["ue"])
            .Node("Mul", ["ue", "half"], ["gelu"])
            .Node("MatMul", ["gelu", "W2"], ["mlp"])
            .Node("Add", ["res1", "mlp"], ["y"])
            .Output("y");
        return b;
    }

    [Fact]
    public void TransformerBlockImportsAndMatchesFiniteDifferences()
    {
        var imported = OnnxImporter.Import(Transformer().Bytes());
        var x = Random(41, 2, 4, 8);
        var y = OnnxRun.Evaluate(imported.Graph, [x])[0];
        Assert.Equal(new Shape(2, 4, 8), y.Shape);
        Assert.All(y.ToDoubles(), v => Assert.True(double.IsFinite(v)));
        // The first position attends only to itself: its output cannot depend on later positions.
        var changed = (double[])x.ToDoubles().Clone();
        changed[3 * 8] += 1;
        var y2 = OnnxRun.Evaluate(imported.Graph, [new HostTensor(DType.Float64, x.Shape, changed)])[0].ToDoubles();
        for (int j = 0; j < 8; j++) Assert.Equal(y.ToDoubles()[j], y2[j], 12);
        GradientCheck.Check(imported.Graph, new Dictionary<string, HostTensor> { ["x"] = x }, ["x", "Wq", "ln_g", "W1"], tolerance: 1e-5);
    }

    [Fact]
    public void IfAndLoopBecomeControlFlowThatGradientsGoThrough()
    {
        var thenBranch = Subgraph("then", [], ["t"], NodeProto("Mul", ["x", "x"], ["t"]));
        var elseBranch = Subgraph("else", [], ["e"], NodeProto("Neg", ["x"], ["e"]));
        var body = Subgraph("body", [("i", DataType.Int64), ("c", DataType.Bool), ("v", F64)], ["c_out", "v_out"],
            NodeProto("Identity", ["c"], ["c_out"]),
            NodeProto("Mul", ["v", "x"], ["vx"]),
            NodeProto("Sin", ["vx"], ["v_out"]));
        var model = new OnnxBuilder()
            .Input("x", F64, 3)
            .Initializer("trips", HostTensor.Of(new long[] { 3 }, []))
            .Node("ReduceSum", ["x"], ["s"], ("keepdims", 0L))
            .Node("Constant", [], ["zero"], ("value", HostTensor.Of(new[] { 0.0 }, [])))
            .Node("Greater", ["s", "zero"], ["positive"])
            .Node("If", ["positive"], ["branch"], ("then_branch", thenBranch), ("else_branch", elseBranch))
            .Node("Loop", ["trips", "", "branch"], ["looped"], ("body", body))
            .Output("looped");
        var imported = OnnxImporter.Import(model.Bytes());
        Assert.Contains(imported.Graph.Nodes, n => n.Op == "if");
        Assert.Contains(imported.Graph.Nodes, n => n.Op == "while");

        foreach (var x in new[] { HostTensor.Of(new[] { 0.5, 0.25, 0.75 }, 3), HostTensor.Of(new[] { -0.5, 0.25, -0.75 }, 3) })
        {
            var xs = x.ToDoubles();
            var expected = xs.Sum() > 0 ? xs.Select(v => v * v).ToArray() : xs.Select(v => -v).ToArray();
            for (int trip = 0; trip < 3; trip++) expected = expected.Select((v, i) => Math.Sin(v * xs[i])).ToArray();
            var y = OnnxRun.Evaluate(imported.Graph, [x])[0].ToDoubles();
            for (int i = 0; i < 3; i++) Assert.Equal(expected[i], y[i], 12);
            GradientCheck.Check(imported.Graph, new Dictionary<string, HostTensor> { ["x"] = x }, ["x"]);
        }
    }

    [Fact]
    public void ALoopWhoseBodyDecidesWhenToStopIsAWhileLoop()
    {
        // v ← v · 1.5 while sum(v) < 10 (no trip count): the body computes its own condition.
        var body = Subgraph("body", [("i", DataType.Int64), ("c", DataType.Bool), ("v", F64)], ["c_out", "v_out"],
            NodeProto("Mul", ["v", "factor"], ["v_out"]),
            NodeProto("ReduceSum", ["v_out"], ["s"], ("keepdims", 0L)),
            NodeProto("Less", ["s", "ten"], ["c_out"]));
        var model = new OnnxBuilder()
            .Input("x", F64, 2)
            .Initializer("factor", HostTensor.Of(new[] { 1.5 }, [])).Initializer("ten", HostTensor.Of(new[] { 10.0 }, []))
            .Initializer("go", new HostTensor(DType.Bool, Shape.Scalar, new[] { true }))
            .Node("Loop", ["", "go", "x"], ["y"], ("body", body))
            .Output("y");
        var graph = OnnxImporter.Import(model.Bytes()).Graph;
        var x = HostTensor.Of(new[] { 1.0, 2.0 }, 2);
        // 3 · 1.5^k first reaches 10 at k = 3 (10.125).
        Assert.Equal([3.375, 6.75], OnnxRun.Evaluate(graph, [x])[0].ToDoubles());
        GradientCheck.Check(graph, new Dictionary<string, HostTensor> { ["x"] = x }, ["x", "factor"]);
    }

    [Theory]
    [InlineData(16, true)]
    [InlineData(17, false)]
    public void IfsNestAsDeepAsTheGraphLimit(int depth, bool accepted)
    {
        // Each level: if (sum(x) > 0) then <the level below> else x; the innermost branch is exp(x).
        var inner = Subgraph("leaf", [], ["out0"], NodeProto("Exp", ["x"], ["out0"]));
        for (int level = 1; level <= depth; level++)
        {
            var orElse = Subgraph($"else{level}", [], [$"e{level}"], NodeProto("Identity", ["x"], [$"e{level}"]));
            var wrap = Subgraph($"level{level}", [], [$"out{level}"], NodeProto("If", ["positive"], [$"out{level}"], ("then_branch", inner), ("else_branch", orElse)));
            inner = wrap;
        }
        var model = new OnnxBuilder().Input("x", F64, 2)
            .Node("ReduceSum", ["x"], ["s"], ("keepdims", 0L))
            .Node("Constant", [], ["zero"], ("value", HostTensor.Of(new[] { 0.0 }, [])))
            .Node("Greater", ["s", "zero"], ["positive"])
            .Node("If", ["positive"], ["y"], ("then_branch", inner.Node[0].Attribute[0].G), ("else_branch", Subgraph("top", [], ["t"], NodeProto("Neg", ["x"], ["t"]))))
            .Output("y");
        if (accepted)
        {
            var graph = OnnxImporter.Import(model.Bytes()).Graph;
            Assert.Equal(Math.Exp(0.5), OnnxRun.Evaluate(graph, [HostTensor.Of(new[] { 0.5, 0.25 }, 2)])[0].ToDoubles()[0], 12);
        }
        else
        {
            var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(model.Bytes()));
            Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        }
    }

    [Fact]
    public void AnIfWithAConstantConditionKeepsOnlyItsBranch()
    {
        var model = new OnnxBuilder()
            .Input("x", F64, 2)
            .Node("Constant", [], ["yes"], ("value", new HostTensor(DType.Bool, Shape.Scalar, new[] { true })))
            .Node("If", ["yes"], ["y"], ("then_branch", Subgraph("then", [], ["t"], NodeProto("Exp", ["x"], ["t"]))),
                ("else_branch", Subgraph("else", [], ["e"], NodeProto("ArgMax", ["x"], ["e"]))))
            .Output("y");
        var imported = OnnxImporter.Import(model.Bytes());
        Assert.DoesNotContain(imported.Graph.Nodes, n => n.Op == "if");
        Assert.Equal(Math.Exp(0.5), OnnxRun.Evaluate(imported.Graph, [HostTensor.Of(new[] { 0.5, 1.0 }, 2)])[0].ToDoubles()[0], 12);
    }

    [Fact]
    public void SoftmaxCrossEntropyWithWeightsAndIgnoredLabelsMatchesFiniteDifferences()
    {
        var model = new OnnxBuilder(opset: 13)
            .Input("scores", F64, 3, 4, 2)
            .Initializer("labels", HostTensor.Of(new long[] { 0, 3, 1, -1, 2, 2 }, 3, 2))
            .Initializer("weights", HostTensor.Of(new[] { 0.5, 1.0, 2.0, 1.5 }, 4))
            .Node("SoftmaxCrossEntropyLoss", ["scores", "labels", "weights"], ["loss", "log_prob"], ("ignore_index", -1L))
            .Output("loss").Output("log_prob");
        var graph = OnnxImporter.Import(model.Bytes()).Graph;
        var scores = Random(51, 3, 4, 2);
        var outs = OnnxRun.Evaluate(graph, [scores]);
        // By hand: mean over non-ignored positions of -w[t] log p[n, t, d], divided by the weights' sum.
        double[] s = scores.ToDoubles(), lp = outs[1].ToDoubles(), w = [0.5, 1.0, 2.0, 1.5];
        long[] labels = [0, 3, 1, -1, 2, 2];
        double num = 0, den = 0;
        for (int n = 0; n < 3; n++)
            for (int d = 0; d < 2; d++)
            {
                long t = labels[n * 2 + d];
                if (t < 0) continue;
                double lse = Math.Log(Enumerable.Range(0, 4).Sum(k => Math.Exp(s[(n * 4 + k) * 2 + d])));
                Assert.Equal(s[(n * 4 + t) * 2 + d] - lse, lp[(n * 4 + t) * 2 + d], 12);
                num -= w[t] * (s[(n * 4 + t) * 2 + d] - lse);
                den += w[t];
            }
        Assert.Equal(num / den, outs[0].ToDoubles()[0], 12);
        GradientCheck.Check(graph, new Dictionary<string, HostTensor> { ["scores"] = scores }, ["scores", "weights"]);
    }

    [Fact]
    public void AnUnsupportedOpIsRefusedAtImportNamingOpDomainAndOpset()
    {
        var model = new OnnxBuilder(opset: 15).Input("x", F64, 2, 3).Node("ArgMax", ["x"], ["y"]).Output("y");
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(model.Bytes()));
        Assert.Equal(ErrorCodes.UnsupportedOp, e.Code);
        Assert.Contains("'ArgMax'", e.Message);
        Assert.Contains("ai.onnx", e.Message);
        Assert.Contains("opset 15", e.Message);
        Assert.Equal("ArgMax", e.Facts["onnx_op"]);
        Assert.Equal(15L, e.Facts["opset"]);

        var custom = new OnnxBuilder().Input("x", F64, 2).Node("Gelu", ["x"], ["y"]).Output("y");
        custom.Graph.Node[0].Domain = "com.microsoft";
        var e2 = Assert.Throws<EngineException>(() => OnnxImporter.Import(custom.Bytes()));
        Assert.Equal(ErrorCodes.UnsupportedOp, e2.Code);
        Assert.Contains("com.microsoft", e2.Message);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(19)]
    public void OpsetsOutsideTheSupportedRangeAreRefused(long opset)
    {
        var model = new OnnxBuilder(opset).Input("x", F64, 2).Node("Relu", ["x"], ["y"]).Output("y");
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(model.Bytes()));
        Assert.Equal(ErrorCodes.UnsupportedOp, e.Code);
        Assert.Contains($"opset {opset}", e.Message);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(18)]
    public void OpsetsAtTheEdgesOfTheRangeImport(long opset)
    {
        var model = new OnnxBuilder(opset).Input("x", F64, 2).Node("Relu", ["x"], ["y"]).Output("y");
        Assert.Equal([0.0, 2.0], OnnxRun.Evaluate(OnnxImporter.Import(model.Bytes()).Graph, [HostTensor.Of(new[] { -1.0, 2.0 }, 2)])[0].ToDoubles());
    }

    [Fact]
    public void BytesThatAreNoModelAreInvalidArgument()
    {
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(new byte[] { 0xff, 0xff, 0xff, 0x01, 0x02 }));
        Assert.Equal(ErrorCodes.InvalidArgument, e.Code);
        var empty = Assert.Throws<EngineException>(() => OnnxImporter.Import(Array.Empty<byte>()));
        Assert.Equal(ErrorCodes.InvalidArgument, empty.Code);
    }

    [Fact]
    public void ModelsOverTheSizeLimitAreRefusedBeforeParsing()
    {
        var bytes = Mlp().Bytes();
        Assert.NotNull(OnnxImporter.Import(bytes, new OnnxImportOptions { MaxModelBytes = bytes.Length }));
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(bytes, new OnnxImportOptions { MaxModelBytes = bytes.Length - 1 }));
        Assert.Equal(ErrorCodes.InvalidArgument, e.Code);
    }

    [Fact]
    public void ShapeArithmeticOnTwoSymbolicDimensionsNeedsThemFixed()
    {
        // Reshape can infer one symbolic size (-1), not two: the model must be given its sizes at upload.
        var model = new OnnxBuilder().Input("x", F64, -1, -1)
            .Node("Shape", ["x"], ["s"]).Node("Reshape", ["x", "s"], ["y"]).Output("y");
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(model.Bytes()));
        Assert.Equal(ErrorCodes.UnsupportedOp, e.Code);
        Assert.Contains("2 of its sizes are symbolic", e.Message);
        var fixedDims = OnnxImporter.Import(model.Bytes(), new OnnxImportOptions { Dims = new Dictionary<string, int> { ["N"] = 3 } });
        Assert.Equal(new Shape(3, 3), OnnxRun.Evaluate(fixedDims.Graph, [Random(1, 3, 3)])[0].Shape);
        // A shape computed from a value whose contents are run-time data (not a shape) is still refused.
        var data = new OnnxBuilder().Input("x", F64, 2, 2).Input("s", DataType.Int64, 2)
            .Node("Reshape", ["x", "s"], ["y"]).Output("y");
        Assert.Contains("known at import", Assert.Throws<EngineException>(() => OnnxImporter.Import(data.Bytes())).Message);
    }

    [Fact]
    public void ASymbolicBatchFlowsThroughShapeGatherConcatReshape()
    {
        // The transformer block as exporters write it, its batch symbolic: the head split's and the merge's target
        // shapes are computed in the graph (Shape → Gather → Concat → Reshape) from a size known only at run time.
        var builder = Transformer();
        builder.Graph.Input[0].Type.TensorType.Shape.Dim[0] = new global::Onnx.TensorShapeProto.Types.Dimension { DimParam = "batch" };
        var symbolic = OnnxImporter.Import(builder.Bytes()).Graph;
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Random(50 + batch, batch, 4, 8);
            var pinned = OnnxImporter.Import(builder.Bytes(), new OnnxImportOptions { Dims = new Dictionary<string, int> { ["batch"] = batch } }).Graph;
            var expected = OnnxRun.Evaluate(pinned, [x])[0];
            var actual = OnnxRun.Evaluate(symbolic, [x])[0];
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.ToDoubles(), actual.ToDoubles());
        }
        // Derivatives go through the run-time shapes too.
        GradientCheck.Check(symbolic, new Dictionary<string, HostTensor> { ["x"] = Random(60, 2, 4, 8) }, ["x", "Wq"]);
    }

    [Fact]
    public void ASymbolicBatchDimensionWorksWhereNoShapeIsComputed()
    {
        var model = new OnnxBuilder().Input("x", F64, -1, 4).Initializer("W", Random(1, 4, 2))
            .Node("MatMul", ["x", "W"], ["h"]).Node("Relu", ["h"], ["y"]).Output("y");
        var graph = OnnxImporter.Import(model.Bytes()).Graph;
        Assert.Equal(new Shape(5, 2), OnnxRun.Evaluate(graph, [Random(2, 5, 4)])[0].Shape);
        Assert.Equal(new Shape(1, 2), OnnxRun.Evaluate(graph, [Random(2, 1, 4)])[0].Shape);
    }

    [Fact]
    public void ValuesComputedAtImportCountAgainstTheFoldingLimit()
    {
        static byte[] Model(long rows) => new OnnxBuilder().Input("x", F64, 1)
            .Node("Constant", [], ["shape"], ("value", Longs(rows, 1024)))
            .Node("ConstantOfShape", ["shape"], ["c"], ("value", HostTensor.Of(new[] { 1.0 }, 1)))
            .Node("ReduceSum", ["c"], ["s"], ("keepdims", 0L))
            .Node("Mul", ["x", "s"], ["y"]).Output("y").Bytes();
        // 64 × 1024 doubles = 512 KiB for the constant, then its folded sum (8 bytes).
        var limit = new OnnxImportOptions { FoldBytes = 64 * 1024 * 8 + 8 };
        var y = OnnxRun.Evaluate(OnnxImporter.Import(Model(64), limit).Graph, [HostTensor.Of(new[] { 2.0 }, 1)])[0];
        Assert.Equal(2.0 * 64 * 1024, y.ToDoubles()[0]);
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(Model(64), limit with { FoldBytes = limit.FoldBytes - 1 }));
        Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        // A hostile shape (2^27 doubles, 1 GiB) is refused by the default limit before anything is allocated.
        var huge = Assert.Throws<EngineException>(() => OnnxImporter.Import(Model(1 << 17)));
        Assert.Equal(ErrorCodes.MemoryLimitExceeded, huge.Code);
    }

    [Fact]
    public void TheNodeLimitCountsImportedNodes()
    {
        var bytes = Mlp().Bytes();
        var limits = new Engine.Graphs.GraphLimits { MaxNodes = 6 };
        Assert.NotNull(OnnxImporter.Import(bytes, new OnnxImportOptions { Limits = limits }));
        var e = Assert.Throws<EngineException>(() => OnnxImporter.Import(bytes, new OnnxImportOptions { Limits = limits with { MaxNodes = 5 } }));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
    }
}

/// <summary>Damaged model files: the importer answers with a result or an engine error, never anything else.</summary>
public sealed class DamagedModelTests
{
    public static TheoryData<string> Models() => ["mlp", "cnn", "transformer"];

    [Theory]
    [MemberData(nameof(Models))]
    public void FlippedBytesGiveAModelOrAnEngineError(string which)
    {
        var bytes = which switch { "mlp" => ModelTests.Mlp().Bytes(), "cnn" => ModelTests.Cnn().Bytes(), _ => ModelTests.Transformer().Bytes() };
        var rng = new Random(1234);
        int imported = 0, refused = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var damaged = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++) damaged[rng.Next(damaged.Length)] = (byte)rng.Next(256);
            try
            {
                OnnxImporter.Import(damaged, new OnnxImportOptions { FoldBytes = 16 << 20 });
                imported++;
            }
            catch (EngineException)
            {
                refused++;
            }
        }
        Assert.Equal(300, imported + refused);
    }
}
