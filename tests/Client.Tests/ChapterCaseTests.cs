using AutogradService.Contracts.V1;
using Attribute = AutogradService.Contracts.V1.Attribute;

namespace AutogradService.Client.Tests;

/// <summary>The chapter's cases (shared/spec/d2l-cases.md) through the .NET client, once per transport.</summary>
public abstract class ChapterCaseTests(TestService service) : IClassFixture<TestService>
{
    protected TestService Service { get; } = service;

    protected abstract AutogradClient Client { get; }

    protected abstract string TransportName { get; }

    private const string E6Program = "sq = x * x\nl = log(sq)\ns = sin(x)\np = l * s\nr = 1 / x\nf = p + r";
    private static readonly double[] E6X = [0.5, 1, 2, -1.5];
    private static readonly double[] E6F = [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964];
    private static readonly double[] E6Df = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564];
    private static readonly double[] E1D2 = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112];

    private static Dictionary<string, Tensor> In(string name, Tensor value) => new() { [name] = value };

    private static void Near(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    /// <summary>Assert.Equal on arrays (a collection literal would pick its span overload, which cannot cross an await).</summary>
    private static void Same<T>(T[] expected, T[] actual) => Assert.Equal(expected, actual);

    private static void Near(float[] expected, float[] actual, double tolerance) =>
        Near(expected.Select(v => (double)v).ToArray(), actual.Select(v => (double)v).ToArray(), tolerance);

    [Fact]
    public void Transport_is_the_one_asked_for() => Assert.Equal(TransportName, Client.Transport);

    [Fact]
    public async Task C1_gradient_of_2_dot_x_x()
    {
        var r = await Client.GradientAsync(AutogradClient.Program("y = 2 * dot(x, x)"), In("x", Tensors.From([0f, 1, 2, 3])), "x");
        Assert.Equal(28, r.Outputs["y"].ToScalar());
        Assert.Empty(r.Outputs["y"].Shape);
        Assert.Equal(DType.Float32, r.Gradients["x"].Dtype);
        Assert.Equal([0f, 4, 8, 12], r.Gradients["x"].ToFloatArray());
        var r64 = await Client.GradientAsync(AutogradClient.Program("y = 2 * dot(x, x)"), In("x", Tensors.From([0.0, 1, 2, 3])), "x");
        Assert.Equal([0.0, 4, 8, 12], r64.Gradients["x"].ToDoubleArray());
    }

    [Fact]
    public async Task C2_accumulate_overwrite_and_zero_grad()
    {
        await using (var s = Client.OpenSession(new SessionOptions { GradientMode = GradientMode.Accumulate }))
        {
            s.Variable("x", Tensors.From([0f, 1, 2, 3]));
            s.Program("y = 2 * dot(x, x)");
            s.Backward("y");
            s.Program("t = sum(x)");
            s.Backward("t");
            Same([1f, 5, 9, 13], (await s.GradAsync("x")).ToFloatArray());
            s.ZeroGrad("x");
            s.Program("t = sum(x)");
            s.Backward("t");
            Same([1f, 1, 1, 1], (await s.GradAsync("x")).ToFloatArray());
        }
        await using (var s = Client.OpenSession(new SessionOptions { GradientMode = GradientMode.Overwrite }))
        {
            s.Variable("x", Tensors.From([0f, 1, 2, 3]));
            s.Program("y = 2 * dot(x, x)");
            s.Backward("y");
            s.Program("t = sum(x)");
            s.Backward("t");
            Same([1f, 1, 1, 1], (await s.GradAsync("x")).ToFloatArray());
        }
    }

    [Fact]
    public async Task C3_non_scalar_output_with_a_seed_the_sum_convention_or_PyTorchs_refusal()
    {
        var request = new GradientRequest { Computation = AutogradClient.Program("y = x * x") };
        request.Inputs["x"] = Tensors.From([0f, 1, 2, 3]);
        request.Wrt.Add("x");
        Same([0f, 2, 4, 6], (await Client.GradientAsync(request)).Gradients["x"].ToFloatArray());
        request.Seeds["y"] = Tensors.From([1f, 1, 1, 1]);
        Same([0f, 2, 4, 6], (await Client.GradientAsync(request)).Gradients["x"].ToFloatArray());

        await using var s = Client.OpenSession(new SessionOptions { StrictScalarSeed = true });
        s.Variable("x", Tensors.From([0f, 1, 2, 3]));
        s.Program("y = x * x");
        s.Backward("y");
        var e = await Assert.ThrowsAsync<AutogradException>(() => s.FlushAsync());
        Assert.Equal("invalid_argument", e.Code);
        Assert.Equal(2, e.CommandIndex);
        Assert.Contains("scalar outputs", e.Detail);
    }

    [Fact]
    public async Task C4_detach()
    {
        await using var s = Client.OpenSession();
        s.Variable("x", Tensors.From([0f, 1, 2, 3]));
        s.Program("y = x * x");
        s.Detach("y", "u");
        s.Program("z = sum(u * x)");
        s.Backward("z");
        var u = s.Fetch("u");
        var grad = s.Grad("x");
        await s.FlushAsync();
        Same([0f, 1, 4, 9], (await u).ToFloatArray());
        Same([0f, 1, 4, 9], (await grad).ToFloatArray());
        s.ZeroGrad("x");
        s.Program("t = sum(y)");
        s.Backward("t");
        Same([0f, 2, 4, 6], (await s.GradAsync("x")).ToFloatArray());
    }

    /// <summary>C5 with the loop and the branch in C#: one round trip per decision, the rest batched.</summary>
    private async Task<(double C, double Grad, int Decisions, int RoundTrips)> C5(float a)
    {
        int before = Client.RoundTrips, decisions = 0;
        await using var s = Client.OpenSession();
        s.Variable("a", Tensors.Scalar(a));
        s.Apply("mul", "b", "a", "2");
        while (true)
        {
            s.Apply("norm", "n", "b");
            decisions++;
            if (await s.ScalarAsync("n") >= 1000) break;
            s.Apply("mul", "b", "b", "2");
        }
        s.Apply("sum", "total", "b");
        decisions++;
        if (await s.ScalarAsync("total") > 0) s.Apply("identity", "c", "b");
        else s.Apply("mul", "c", "100", "b");
        s.Backward("c");
        var grad = s.Grad("a");
        var c = await s.ScalarAsync("c");
        return (c, (await grad).ToScalar(), decisions, Client.RoundTrips - before);
    }

    [Theory]
    [InlineData(0.5f, 1024.0, 2048.0)]
    [InlineData(-0.3f, -122880.0078, 409600.0)]
    [InlineData(1.7f, 1740.8, 1024.0)]
    public async Task C5_the_clients_own_while_and_if_through_a_session(float a, double c, double grad)
    {
        var r = await C5(a);
        Near([c], [r.C], 1e-6);
        Near([grad], [r.Grad], 1e-6);
        Near([r.C / a], [r.Grad], 1e-5);
        // Opening a REST session is one request of its own; over gRPC it rides with the first batch.
        Assert.Equal(r.Decisions + 1 + (TransportName == "rest" ? 1 : 0), r.RoundTrips);
    }

    [Fact]
    public async Task E1_second_derivative_by_create_graph_and_by_the_Hessian()
    {
        await using (var s = Client.OpenSession())
        {
            s.Variable("x", Tensors.From(E6X));
            s.Program(E6Program + "\ny = sum(f)");
            s.Backward("y", createGraph: true);
            _ = s.Grad("x", output: "g");
            s.ZeroGrad("x");
            s.Program("gs = sum(g)");
            s.Backward("gs");
            Near(E1D2, (await s.GradAsync("x")).ToDoubleArray(), 1e-12);
        }
        var h = await Client.HessianAsync(AutogradClient.Program(E6Program + "\ny = sum(f)"), In("x", Tensors.From(E6X)), "x");
        var matrix = h.Hessians["x"].ByInput["x"];
        Assert.Equal([4L, 4], matrix.Shape);
        var values = matrix.ToDoubleArray();
        Near(E1D2, Enumerable.Range(0, 4).Select(i => values[i * 5]).ToArray(), 1e-12);
    }

    [Fact]
    public async Task E2_backward_twice_needs_retain_graph()
    {
        await using (var s = Client.OpenSession())
        {
            s.Variable("x", Tensors.From([0f, 1, 2, 3]));
            s.Program("y = 2 * dot(x, x)");
            s.Backward("y");
            s.Backward("y");
            var e = await Assert.ThrowsAsync<AutogradException>(() => s.FlushAsync());
            Assert.Equal("graph_freed", e.Code);
            Assert.Contains("retain_graph", e.Detail);
            Assert.Equal(3, e.CommandIndex);
        }
        await using (var s = Client.OpenSession())
        {
            s.Variable("x", Tensors.From([0f, 1, 2, 3]));
            s.Program("y = 2 * dot(x, x)");
            s.Backward("y", retainGraph: true);
            Same([0f, 4, 8, 12], (await s.GradAsync("x")).ToFloatArray());
            s.Backward("y");
            Same([0f, 8, 16, 24], (await s.GradAsync("x")).ToFloatArray());
        }
    }

    /// <summary>C5 as a graph with while and if nodes (attrs holding subgraphs): exercises the graph's REST form too.</summary>
    private static Graph C5Graph()
    {
        static Node N(string op, string output, params string[] inputs)
        {
            var n = new Node { Op = op };
            n.Inputs.Add(inputs);
            n.Outputs.Add(output);
            return n;
        }
        static Graph G(string[] inputs, Node[] nodes, params string[] outputs)
        {
            var g = new Graph();
            foreach (var i in inputs) g.Inputs.Add(new Parameter { Name = i, Dtype = DType.Float32 });
            g.Nodes.Add(nodes);
            g.Outputs.Add(outputs);
            return g;
        }
        var loop = N("while", "b_final", "b");
        loop.Attrs["cond"] = new Attribute { Graph = G(["b"], [N("norm", "n", "b"), N("lt", "go", "n", "1000")], "go") };
        loop.Attrs["body"] = new Attribute { Graph = G(["b"], [N("mul", "b2", "2", "b")], "b2") };
        loop.Attrs["max_iterations"] = new Attribute { I = 1000 };
        var branch = N("if", "c", "positive", "b_final");
        branch.Attrs["then"] = new Attribute { Graph = G(["b"], [], "b") };
        branch.Attrs["else"] = new Attribute { Graph = G(["b"], [N("mul", "scaled", "100", "b")], "scaled") };
        var graph = G([], [N("mul", "b", "2", "a"), loop, N("sum", "total", "b_final"), N("gt", "positive", "total", "0"), branch], "c");
        graph.Inputs.Add(new Parameter { Name = "a", Dtype = DType.Float32, Shape = { 3 }, HasShape = true });
        return graph;
    }

    [Fact]
    public async Task E3_vector_C5_its_seeded_gradient_and_its_Jacobian()
    {
        var a = Tensors.From([0.3f, -0.2f, 0.1f]);
        var request = new GradientRequest { Computation = AutogradClient.Graph(C5Graph()) };
        request.Inputs["a"] = a;
        request.Wrt.Add("a");
        request.Seeds["c"] = Tensors.From([1f, 1, 1]);
        var r = await Client.GradientAsync(request);
        Near([1228.8f, -819.2f, 409.6f], r.Outputs["c"].ToFloatArray(), 1e-6);
        Assert.Equal([4096f, 4096, 4096], r.Gradients["a"].ToFloatArray());
        var j = await Client.JacobianAsync(AutogradClient.Graph(C5Graph()), In("a", a), "a");
        var identity = Enumerable.Range(0, 9).Select(i => i % 4 == 0 ? 4096f : 0f).ToArray();
        Assert.Equal(identity, j.Jacobians["c"].ByInput["a"].ToFloatArray());
        Assert.Equal([3L, 3], j.Jacobians["c"].ByInput["a"].Shape);
    }

    [Fact]
    public async Task E4_the_derivative_of_sin_is_cos_without_asking_for_cos()
    {
        var x = Enumerable.Range(0, 200).Select(i => (float)(-2 * Math.PI + 4 * Math.PI * i / 199)).ToArray();
        var r = await Client.GradientAsync(AutogradClient.Program("y = sin(x)"), In("x", Tensors.From(x)), "x");
        var cos = x.Select(MathF.Cos).ToArray();
        var grad = r.Gradients["x"].ToFloatArray();
        for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(grad[i] - cos[i]) <= 2 * float.Epsilon + 2.4e-7, $"x = {x[i]}: {grad[i]} vs {cos[i]}");
    }

    [Fact]
    public async Task E5_inspect_draws_the_graph()
    {
        var r = await Client.InspectAsync(AutogradClient.Program("f = log(x ** 2) * sin(x) + 1 / x"), In("x", Tensors.Spec(DType.Float64, 4)));
        Assert.True(r.Valid);
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" })
        {
            Assert.Contains(op, r.Mermaid);
            Assert.Contains(op, r.Dot);
        }
        var f = Assert.Single(r.Values, v => v.Name == "f");
        Assert.Equal(DType.Float64, f.Dtype);
        Assert.Equal([4L], f.Shape);
    }

    [Fact]
    public async Task E6_values_gradients_and_per_node_terms()
    {
        var request = new GradientRequest { Computation = AutogradClient.Program(E6Program) };
        request.Inputs["x"] = Tensors.From(E6X);
        request.Wrt.Add("x");
        request.Intermediates.Add(["s", "r"]);
        var r = await Client.GradientAsync(request);
        Near(E6F, r.Outputs["f"].ToDoubleArray(), 1e-12);
        Near(E6Df, r.Gradients["x"].ToDoubleArray(), 1e-12);
        Near(E6X.Select(Math.Sin).ToArray(), r.Intermediates["s"].Value.ToDoubleArray(), 1e-12);
        Near(E6X.Select(v => Math.Log(v * v)).ToArray(), r.Intermediates["s"].Adjoint.ToDoubleArray(), 1e-12);
        Near([1, 1, 1, 1], r.Intermediates["r"].Adjoint.ToDoubleArray(), 1e-12);
    }

    [Fact]
    public async Task E7_forward_mode_equals_reverse_mode()
    {
        var forward = await Client.JvpAsync(AutogradClient.Program(E6Program), In("x", Tensors.From(E6X)), In("x", Tensors.From([1.0, 1, 1, 1])));
        var reverse = await Client.GradientAsync(AutogradClient.Program(E6Program), In("x", Tensors.From(E6X)), "x");
        Near(E6Df, forward.TangentsOut["f"].ToDoubleArray(), 1e-12);
        Near(reverse.Gradients["x"].ToDoubleArray(), forward.TangentsOut["f"].ToDoubleArray(), 1e-12);
    }

    [Fact]
    public async Task E8_the_Jacobian_picks_the_cheaper_mode()
    {
        var wide = await Client.JacobianAsync(AutogradClient.Program("y = sum(x * x)"), In("x", Tensors.From([0.0, 1, 2, 3, 4])), "x");
        Assert.Equal(JacobianMode.Reverse, wide.ModeUsed);
        Assert.Equal([0.0, 2, 4, 6, 8], wide.Jacobians["y"].ByInput["x"].ToDoubleArray());
        var tallInputs = new Dictionary<string, Tensor> { ["x"] = Tensors.Scalar(2.0), ["w"] = Tensors.From([0.0, 1, 2, 3, 4, 5]) };
        var tall = await Client.JacobianAsync(AutogradClient.Program("y = x * w"), tallInputs, "x");
        Assert.Equal(JacobianMode.Forward, tall.ModeUsed);
        Assert.Equal([0.0, 1, 2, 3, 4, 5], tall.Jacobians["y"].ByInput["x"].ToDoubleArray());
    }

    [Fact]
    public async Task Errors_carry_the_code_the_node_and_the_op()
    {
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensors.From([1.0, 1, 1]), ["z"] = Tensors.From([1.0, 1, 1, 1]) };
        var e = await Assert.ThrowsAsync<AutogradException>(() => Client.EvaluateAsync(AutogradClient.Program("y = x + z"), inputs));
        Assert.Equal(("shape_mismatch", "y", "add"), (e.Code, e.Node, e.Op));
        var unknown = await Assert.ThrowsAsync<AutogradException>(() => Client.EvaluateAsync(AutogradClient.Program("y = frobnicate(x)"), inputs));
        Assert.Equal("invalid_graph", unknown.Code);
        Assert.Contains("frobnicate", unknown.Detail);
        var missing = await Assert.ThrowsAsync<AutogradException>(() => Client.GetModelAsync("no-such-model"));
        Assert.Equal("not_found", missing.Code);
    }

    [Fact]
    public async Task A_failed_command_fails_its_batch_and_the_session_stays_usable()
    {
        await using var s = Client.OpenSession();
        s.Constant("x", Tensors.From([1f, 1, 1]));
        s.Constant("w", Tensors.From([1f, 1, 1, 1]));
        var before = s.Fetch("x");
        s.Apply("matmul", "y", "x", "w");
        var after = s.Fetch("y");
        var e = await Assert.ThrowsAsync<AutogradException>(() => s.FlushAsync());
        Assert.Equal(("shape_mismatch", "matmul", 3), (e.Code, e.Op, e.CommandIndex));
        Assert.Equal("shape_mismatch", (await Assert.ThrowsAsync<AutogradException>(() => after)).Code);
        // gRPC answers each command, so the value fetched before the failure arrives; REST answers a failed batch
        // with its error alone, so that value shares the failure.
        if (TransportName == "grpc") Same([1f, 1, 1], (await before).ToFloatArray());
        else Assert.Equal("shape_mismatch", (await Assert.ThrowsAsync<AutogradException>(() => before)).Code);
        Same([1f, 1, 1], (await s.FetchAsync("x")).ToFloatArray());
    }

    [Fact]
    public async Task Large_tensors_round_trip_exactly_and_stream_in_chunks()
    {
        var random = new Random(7);
        var x = Enumerable.Range(0, 300_000).Select(_ => random.NextDouble() - 0.5).ToArray();
        var request = new GradientRequest { Computation = AutogradClient.Program("y = sum(x * x)") };
        request.Inputs["x"] = Tensors.From(x);
        request.Wrt.Add("x");
        var whole = await Client.GradientAsync(request);
        Assert.Equal(x.Select(v => 2 * v).ToArray(), whole.Gradients["x"].ToDoubleArray());

        var streamed = new List<StreamedTensor>();
        int chunks = 0;
        await foreach (var message in Client.GradientStreamAsync(request))
            if (message.KindCase == ResultChunk.KindOneofCase.Tensor) chunks++;
        await foreach (var t in Client.StreamGradientAsync(request)) streamed.Add(t);
        Assert.Equal([("output", "y"), ("gradient", "x")], streamed.Select(t => (t.Role, t.Name)));
        Assert.True(chunks > 2, $"a 2.4 MB gradient comes in chunks of at most 1 MiB (got {chunks} messages)");
        Assert.Equal(x.Select(v => 2 * v).ToArray(), streamed[1].Value.ToDoubleArray());
        Assert.Equal([300_000L], streamed[1].Value.Shape);
    }

    [Fact]
    public async Task Models_are_registered_used_and_deleted()
    {
        var name = $"c1-{TransportName}-{Guid.NewGuid():N}";
        var info = await Client.PutModelAsync(name, "t = dot(x, x)\ny = 2 * t");
        Assert.Equal(name, info.Name);
        Assert.Equal(["y"], info.Outputs);
        var r = await Client.GradientAsync(AutogradClient.Model(name), In("x", Tensors.From([0f, 1, 2, 3])), "x");
        Assert.Equal([0f, 4, 8, 12], r.Gradients["x"].ToFloatArray());
        Assert.Contains(await Client.ListModelsAsync(), m => m.Name == name);
        await Client.DeleteModelAsync(name);
        Assert.Equal("not_found", (await Assert.ThrowsAsync<AutogradException>(() => Client.GetModelAsync(name))).Code);
    }

    [Fact]
    public async Task The_ops_catalog_lists_every_op()
    {
        var ops = await Client.ListOpsAsync();
        Assert.Contains(ops.Ops, o => o.Name == "sin" && o.Differentiable);
        Assert.Contains(ops.Ops, o => o.Name == "matmul" && o.Inputs.Count == 2);
    }

    [Fact]
    public async Task The_devices_are_listed()
    {
        var devices = await Client.ListDevicesAsync();
        var cpu = Assert.Single(devices.Devices);
        Assert.Equal(("cpu", "cpu"), (cpu.Name, cpu.Kind));
        Assert.True(cpu.MemoryBytes > 0 && cpu.Units >= 1);
        Assert.Equal("cpu", devices.DefaultDevice);
    }
}

public sealed class GrpcChapterCaseTests(TestService service) : ChapterCaseTests(service)
{
    private AutogradClient? _client;
    protected override AutogradClient Client => _client ??= Service.Grpc();
    protected override string TransportName => "grpc";
}

public sealed class RestChapterCaseTests(TestService service) : ChapterCaseTests(service)
{
    private AutogradClient? _client;
    protected override AutogradClient Client => _client ??= Service.Rest();
    protected override string TransportName => "rest";
}
