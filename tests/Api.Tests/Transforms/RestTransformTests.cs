using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>Every stateless transform over REST JSON, with the chapter's numbers.</summary>
public sealed class RestTransformTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task C1_GradientOfAProgram()
    {
        var r = (await _client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
        Assert.Equal([0.0, 4, 8, 12], Values(r.Body.At("gradients", "x")));
        Assert.Equal([4], Shape(r.Body.At("gradients", "x")));
        Assert.Equal("float32", DType(r.Body.At("gradients", "x")));
        var stats = r.Body.GetProperty("stats");
        Assert.True(stats.GetProperty("nodes_executed").GetInt64() >= 2);
        Assert.True(stats.GetProperty("peak_bytes").GetInt64() > 0);
        Assert.True(stats.GetProperty("forward_ms").GetDouble() >= 0);
        Assert.True(stats.GetProperty("backward_ms").GetDouble() >= 0);
    }

    [Fact]
    public async Task C1_GradientOfAGraph_WithWrt()
    {
        var r = (await _client.Post("/v1/gradient", new { graph = Cases.C1Graph.ToJson(), inputs = new { x = Cases.X }, wrt = new[] { "x" } })).Ok();
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
        Assert.Equal([0.0, 4, 8, 12], Values(r.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task Evaluate_ReturnsOutputsOnly()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
        Assert.False(r.Body.TryGetProperty("gradients", out _));
        Assert.True(r.Body.TryGetProperty("stats", out _));
    }

    [Fact]
    public async Task C3_NonScalarOutput_WithAndWithoutSeed()
    {
        var seeded = (await _client.Post("/v1/gradient", new
        {
            program = Cases.C3Program, inputs = new { x = Cases.X }, seeds = new { y = new[] { 1, 1, 1, 1 } },
        })).Ok();
        Assert.Equal([0.0, 2, 4, 6], Values(seeded.Body.At("gradients", "x")));
        var summed = (await _client.Post("/v1/gradient", new { program = Cases.C3Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal([0.0, 2, 4, 6], Values(summed.Body.At("gradients", "x")));
        Assert.Equal([0.0, 1, 4, 9], Values(summed.Body.At("outputs", "y")));
        // Another seed weighs the rows: v^T dy/dx = 2 x v.
        var weighted = (await _client.Post("/v1/gradient", new
        {
            program = Cases.C3Program, inputs = new { x = Cases.X }, seeds = new { y = new[] { 1, 0, 2, -1 } },
        })).Ok();
        Assert.Equal([0.0, 0, 8, -6], Values(weighted.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task E6_ValuesAndAdjointsOfIntermediates()
    {
        var r = (await _client.Post("/v1/gradient", new
        {
            program = Cases.E6Program,
            inputs = new { x = Cases.E6XJson },
            intermediates = new[] { "product", "lg", "square", "sn" },
        })).Ok();
        Close(Cases.E6F, Values(r.Body.At("outputs", "f")), 1e-12);
        Assert.Equal("float64", DType(r.Body.At("gradients", "x")));
        Close(Cases.E6Df, Values(r.Body.At("gradients", "x")), 1e-12);
        var sin = Cases.E6X.Select(Math.Sin).ToArray();
        var square = Cases.E6X.Select(v => v * v).ToArray();
        Close([1, 1, 1, 1], Values(r.Body.At("intermediates", "product", "adjoint")), 1e-15); // df/d(product)
        Close(sin, Values(r.Body.At("intermediates", "lg", "adjoint")), 1e-12);               // df/d(log) = sin x
        Close(sin, Values(r.Body.At("intermediates", "sn", "value")), 1e-15);
        Close(square, Values(r.Body.At("intermediates", "square", "value")), 1e-15);
        Close(sin.Zip(square, (s, q) => s / q).ToArray(), Values(r.Body.At("intermediates", "square", "adjoint")), 1e-12);
    }

    [Fact]
    public async Task E7_JvpEqualsGradient()
    {
        var jvp = (await _client.Post("/v1/jvp", new
        {
            program = Cases.E6Program,
            inputs = new { x = Cases.E6XJson },
            tangents = new { x = new { dtype = "float64", shape = new[] { 4 }, data = new[] { 1, 1, 1, 1 } } },
        })).Ok();
        Close(Cases.E6F, Values(jvp.Body.At("outputs", "f")), 1e-12);
        var forward = Values(jvp.Body.At("tangents_out", "f"));
        Close(Cases.E6Df, forward, 1e-12);
        var grad = (await _client.Post("/v1/gradient", new { program = Cases.E6Program, inputs = new { x = Cases.E6XJson } })).Ok();
        Close(forward, Values(grad.Body.At("gradients", "x")), 1e-14);
    }

    [Fact]
    public async Task E1_SecondDerivative_HessianDiagonalAndHvp()
    {
        var h = (await _client.Post("/v1/hessian", new { program = "f = sum(log(x ** 2) * sin(x) + 1 / x)", inputs = new { x = Cases.E6XJson } })).Ok();
        var hessian = h.Body.At("hessians", "x", "x");
        Assert.Equal([4, 4], Shape(hessian));
        var m = Values(hessian);
        Close(Cases.E1D2, Enumerable.Range(0, 4).Select(i => m[i * 4 + i]).ToArray(), 1e-10);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                if (i != j) Assert.Equal(0.0, m[i * 4 + j], 12); // f is elementwise: the Hessian is diagonal

        // The Hessian-vector product with ones is the same diagonal, without forming the matrix.
        var hvp = (await _client.Post("/v1/hessian", new
        {
            program = "f = sum(log(x ** 2) * sin(x) + 1 / x)",
            inputs = new { x = Cases.E6XJson },
            vector = new { x = new { dtype = "float64", shape = new[] { 4 }, data = new[] { 1, 1, 1, 1 } } },
        })).Ok();
        Close(Cases.E1D2, Values(hvp.Body.At("hvp", "x")), 1e-10);
        Assert.False(hvp.Body.TryGetProperty("hessians", out var hs) && hs.EnumerateObject().Any());
    }

    [Theory]
    [InlineData("auto", "forward")]   // n = 3 inputs, m = 3 outputs: ties go forward
    [InlineData("forward", "forward")]
    [InlineData("reverse", "reverse")]
    public async Task E3_JacobianThroughWhileAndIf_Is4096TimesIdentity(string mode, string expectedMode)
    {
        var graph = Cases.C5Graph([3]).ToJson();
        var r = (await _client.Post("/v1/jacobian", new { graph, inputs = new { a = new[] { 0.3, -0.2, 0.1 } }, mode })).Ok();
        var j = r.Body.At("jacobians", "c", "a");
        Assert.Equal([3, 3], Shape(j));
        Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], Values(j));
        if (mode != "auto") Assert.Equal(expectedMode, r.Str("mode_used"));
        else Assert.Contains(r.Str("mode_used"), new[] { "forward", "reverse" });
    }

    [Fact]
    public async Task E3_ValueAndGradientThroughWhileAndIf()
    {
        var r = (await _client.Post("/v1/gradient", new { graph = Cases.C5Graph([3]).ToJson(), inputs = new { a = new[] { 0.3, -0.2, 0.1 } } })).Ok();
        Close([1228.8, -819.2, 409.6], Values(r.Body.At("outputs", "c")), 1e-6);
        Assert.Equal([4096.0, 4096, 4096], Values(r.Body.At("gradients", "a")));
    }

    [Theory]
    [InlineData(0.5, 1024.0, 2048.0)]
    [InlineData(-0.3, -122880.0078, 409600.0)]
    [InlineData(1.7, 1740.8, 1024.0)]
    public async Task C5_ScalarThroughTheGraphsLoopAndBranch(double a, double c, double grad)
    {
        var r = (await _client.Post("/v1/gradient", new { graph = Cases.C5Graph([]).ToJson(), inputs = new { a } })).Ok();
        Assert.Equal((float)c, (float)One(r.Body.At("outputs", "c")));
        Assert.Equal((float)grad, (float)One(r.Body.At("gradients", "a")));
    }

    [Fact]
    public async Task E8_JacobianAutoPicksTheCheaperMode()
    {
        // R^2 -> R^6 (outer product with a constant): forward costs 2 passes, reverse 6.
        var wide = (await _client.Post("/v1/jacobian", new
        {
            program = "y = outer(x, c)", inputs = new { x = new[] { 1, 2 }, c = new[] { 1, 2, 3 } }, wrt = new[] { "x" },
        })).Ok();
        Assert.Equal("forward", wide.Str("mode_used"));
        Assert.Equal([2, 3, 2], Shape(wide.Body.At("jacobians", "y", "x")));
        // R^4 -> R: reverse costs one pass.
        var tall = (await _client.Post("/v1/jacobian", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal("reverse", tall.Str("mode_used"));
        Assert.Equal([0.0, 4, 8, 12], Values(tall.Body.At("jacobians", "y", "x")));
    }

    [Fact]
    public async Task TensorForms_NumberNestedObjectAndBase64()
    {
        var b64 = Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>([1f, 2, 3, 4]).ToArray());
        var r = (await _client.Post("/v1/evaluate", new
        {
            program = "y = s * m + o + b",
            inputs = new
            {
                s = 2,                                                            // a number: a scalar
                m = new[] { new[] { 1, 2 }, new[] { 3, 4 } },                     // a nested array: shape inferred
                o = new { dtype = "float32", shape = new[] { 2, 2 }, data = new[] { 10, 20, 30, 40 } },
                b = new { dtype = "float32", shape = new[] { 2, 2 }, b64 },       // raw little-endian bytes
            },
        })).Ok();
        var y = r.Body.At("outputs", "y");
        Assert.Equal([2, 2], Shape(y));
        Assert.Equal([13.0, 26, 39, 52], Values(y));
    }

    [Fact]
    public async Task TensorForms_NonFiniteValuesTravelAsStrings()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new object[] { "NaN", "Infinity", "-Infinity", 1.5 } } })).Ok();
        var data = r.Body.At("outputs", "y").GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal("NaN", data[0].GetString());
        Assert.Equal("Infinity", data[1].GetString());
        Assert.Equal("-Infinity", data[2].GetString());
        Assert.Equal(1.5, data[3].GetDouble());
    }

    [Fact]
    public async Task TensorEncodingB64_InTheResponse()
    {
        var r = (await _client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X }, tensor_encoding = "b64" })).Ok();
        var g = r.Body.At("gradients", "x");
        Assert.False(g.TryGetProperty("data", out _));
        Assert.True(g.TryGetProperty("b64", out _));
        Assert.Equal([0.0, 4, 8, 12], Values(g));
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task Float64AndInt64Inputs()
    {
        var r = (await _client.Post("/v1/evaluate", new
        {
            program = "y = x * 2",
            inputs = new { x = new { dtype = "int64", shape = new[] { 3 }, data = new long[] { 1, -2, 9007199254740991 } } },
        })).Ok();
        Assert.Equal("int64", DType(r.Body.At("outputs", "y")));
        var raw = r.Body.At("outputs", "y").GetProperty("data").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal([2L, -4, 18014398509481982], raw);
    }

    [Fact]
    public async Task NumberLiteralsInAJsonGraph_TakeTheDTypeOfTheirOperands()
    {
        var f64 = new TestGraph([new GInput("x", "float64", [1])], [TestGraph.N("mul", ["x", 0.1], "y")], ["y"]);
        var r = (await _client.Post("/v1/evaluate", new { graph = f64.ToJson(), inputs = new { x = new { dtype = "float64", shape = new[] { 1 }, data = new[] { 1.0 } } } })).Ok();
        Assert.Equal("float64", DType(r.Body.At("outputs", "y")));
        Assert.Equal(0.1, One(r.Body.At("outputs", "y"))); // not 0.1f widened
        var i64 = new TestGraph([new GInput("n", "int64", [1])], [TestGraph.N("add", ["n", 1.0], "m")], ["m"]);
        var n = (await _client.Post("/v1/evaluate", new { graph = i64.ToJson(), inputs = new { n = new { dtype = "int64", shape = new[] { 1 }, data = new[] { 41 } } } })).Ok();
        Assert.Equal("int64", DType(n.Body.At("outputs", "m")));
        Assert.Equal(42.0, One(n.Body.At("outputs", "m")));
    }

    [Fact]
    public async Task Inspect_ShapesFlopsAndDiagrams()
    {
        var r = (await _client.Post("/v1/inspect", new { program = Cases.E6Program, inputs = new { x = new { dtype = "float64", shape = new[] { 4 } } } })).Ok();
        Assert.True(r.Body.GetProperty("valid").GetBoolean());
        var f = r.Body.At("values", "f");
        Assert.Equal("float64", f.GetProperty("dtype").GetString());
        Assert.Equal([4], f.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        Assert.True(r.Body.GetProperty("flops").GetInt64() > 0);
        Assert.True(r.Body.GetProperty("peak_bytes").GetInt64() > 0);
        Assert.True(r.Body.GetProperty("node_count").GetInt64() >= 6);
        var dot = r.Str("dot");
        Assert.Contains("digraph", dot);
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" }) Assert.Contains(op, dot);
        Assert.False(string.IsNullOrWhiteSpace(r.Str("mermaid")));
        Assert.Contains("sin", r.Str("mermaid"));
    }

    [Fact]
    public async Task Inspect_PeakBytes_AreWhatEvaluateMeasures_AndLoopsSaySo()
    {
        // E6 with a composite (softmax) on 1000 elements: the meta run's estimate is the evaluate run's measured peak.
        const string program = Cases.E6Program + "\ns = softmax(f, axis=0)";
        var x = Enumerable.Range(1, 1000).Select(i => i / 100.0).ToArray();
        var inspect = (await _client.Post("/v1/inspect", new { program, inputs = new { x = new { dtype = "float64", shape = new[] { 1000 } } } })).Ok();
        var evaluate = (await _client.Post("/v1/evaluate", new { program, inputs = new { x = new { dtype = "float64", shape = new[] { 1000 }, data = x } } })).Ok();
        Assert.Equal(evaluate.Body.At("stats", "peak_bytes").GetInt64(), inspect.Body.GetProperty("peak_bytes").GetInt64());
        Assert.True(inspect.Body.GetProperty("peak_bytes_exact").GetBoolean());
        Assert.False(inspect.Body.TryGetProperty("peak_bytes_caveat", out _));

        const string loop = "def f(a):\n    b = a * 2\n    while b.norm() < 1000:\n        b = b * 2\n    return b";
        var looped = (await _client.Post("/v1/inspect", new { program = loop, inputs = new { a = new { dtype = "float32", shape = new[] { 3 } } } })).Ok();
        Assert.False(looped.Body.GetProperty("peak_bytes_exact").GetBoolean());
        Assert.Equal("loops are counted for one iteration", looped.Str("peak_bytes_caveat"));
    }

    [Fact]
    public async Task OpsCatalog_FromTheRegistry()
    {
        var r = (await _client.Get("/v1/ops")).Ok();
        var ops = r.Body.GetProperty("ops").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        Assert.True(ops.Count >= 40, $"only {ops.Count} ops");
        Assert.True(ops["dot"].GetProperty("differentiable").GetBoolean());
        Assert.Contains(ops["sum"].GetProperty("attributes").EnumerateArray(), a => a.GetProperty("name").GetString() == "axes");
        Assert.Equal(2, ops["mul"].GetProperty("inputs").GetArrayLength());
        foreach (var op in ops.Values) Assert.False(string.IsNullOrEmpty(op.GetProperty("output").GetString()));
    }
}
