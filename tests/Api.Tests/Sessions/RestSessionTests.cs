using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using static AutogradService.Api.Tests.Sessions.RestSession;

namespace AutogradService.Api.Tests.Sessions;

/// <summary>The chapter's define-by-run cases driven over the REST session resource, as a client would.</summary>
public sealed class RestSessionTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    /// <summary>C1's commands: x = arange(4) as a variable, y = 2 dot(x, x).</summary>
    private static object[] C1 => [Variable("x", Cases.X), Apply("dot", ["x", "x"], "t"), Apply("mul", [2, "t"], "y")];

    [Fact]
    public async Task C1_RecordBackwardRead()
    {
        await using var s = await OpenAsync(_client);
        var results = await s.RunAsync([.. C1, Fetch("y"), Backward("y"), Grad("x")]);
        Assert.Equal(28.0, One(results[3].GetProperty("value")));
        Assert.False(results[4].TryGetProperty("value", out _));
        Assert.Equal([0.0, 4, 8, 12], Values(results[5].GetProperty("value")));
    }

    [Fact]
    public async Task C2_AccumulateThenZeroGrad()
    {
        await using var s = await OpenAsync(_client, new { gradient_mode = "accumulate" });
        await s.RunAsync([.. C1, Backward("y")]);
        await s.RunAsync(Apply("sum", ["x"], "y"), Backward("y"));
        Assert.Equal(new double[] { 1.0, 5, 9, 13 }, await s.GradAsync("x"));
        await s.RunAsync(ZeroGrad("x"), Apply("sum", ["x"], "y"), Backward("y"));
        Assert.Equal(new double[] { 1.0, 1, 1, 1 }, await s.GradAsync("x"));
    }

    [Fact]
    public async Task C2_Overwrite()
    {
        await using var s = await OpenAsync(_client, new { gradient_mode = "overwrite" });
        await s.RunAsync([.. C1, Backward("y")]);
        Assert.Equal(new double[] { 0.0, 4, 8, 12 }, await s.GradAsync("x"));
        await s.RunAsync(Apply("sum", ["x"], "y"), Backward("y"));
        Assert.Equal(new double[] { 1.0, 1, 1, 1 }, await s.GradAsync("x"));
    }

    [Fact]
    public async Task C3_SeedSumConventionAndTheStrictRule()
    {
        await using var s = await OpenAsync(_client);
        await s.RunAsync(Variable("x", Cases.X), Apply("mul", ["x", "x"], "y"), Backward("y", seed: new[] { 1, 1, 1, 1 }));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));
        await s.RunAsync(ZeroGrad(), Apply("mul", ["x", "x"], "y"), Backward("y"));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));

        await using var strict = await OpenAsync(_client, new { strict_scalar_seed = true });
        var r = (await strict.TryRunAsync(Variable("x", Cases.X), Apply("mul", ["x", "x"], "y"), Backward("y"))).Problem(400, "invalid_argument");
        Assert.Equal(2, r.Body.GetProperty("command_index").GetInt32());
        Assert.Contains("scalar", r.Str("detail"));
    }

    [Fact]
    public async Task C4_Detach()
    {
        await using var s = await OpenAsync(_client);
        var results = await s.RunAsync(
            Variable("x", Cases.X), Apply("mul", ["x", "x"], "y"), Detach("y", "u"), Apply("mul", ["u", "x"], "z"), Apply("sum", ["z"], "sz"),
            Backward("sz"), Grad("x"), Fetch("u"));
        Assert.Equal([0.0, 1, 4, 9], Values(results[6].GetProperty("value")));
        Assert.Equal([0.0, 1, 4, 9], Values(results[7].GetProperty("value")));
        await s.RunAsync(ZeroGrad("x"), Apply("sum", ["y"], "sy"), Backward("sy"));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));
    }

    /// <summary>
    /// C5/E3 with the loop and the branch in this test's own code: b = 2a; while norm(b) &lt; 1000: b = 2b;
    /// c = b if sum(b) &gt; 0 else 100 b — reading norm and sum back from the session to decide.
    /// </summary>
    private static async Task<(double[] C, double[] Grad)> C5Async(RestSession s, object a)
    {
        await s.RunAsync(Variable("a", a), Apply("mul", [2, "a"], "b"));
        while (true)
        {
            var norm = await s.RunAsync(Apply("norm", ["b"], "n"), Fetch("n"));
            if (One(norm[1].GetProperty("value")) >= 1000) break;
            await s.RunAsync(Apply("mul", [2, "b"], "b")); // the name is rebound; the tape keeps the old value
        }
        var sum = await s.RunAsync(Apply("sum", ["b"], "s"), Fetch("s"));
        if (One(sum[1].GetProperty("value")) > 0) await s.RunAsync(Apply("identity", ["b"], "c"));
        else await s.RunAsync(Apply("mul", [100, "b"], "c"));
        var results = await s.RunAsync(Backward("c"), Grad("a"), Fetch("c"));
        return (Values(results[2].GetProperty("value")), Values(results[1].GetProperty("value")));
    }

    [Theory]
    [InlineData(0.5f, 1024f, 2048f)]
    [InlineData(-0.3f, -122880.0078f, 409600f)]
    [InlineData(1.7f, 1740.8f, 1024f)]
    public async Task C5_TheClientsOwnWhileAndIf(float a, float c, float grad)
    {
        await using var s = await OpenAsync(_client);
        var (value, gradient) = await C5Async(s, a);
        Assert.Equal(c, (float)value.Single());
        Assert.Equal(grad, (float)gradient.Single());
    }

    [Fact]
    public async Task E3_VectorThroughTheClientsLoop()
    {
        await using var s = await OpenAsync(_client);
        var (c, grad) = await C5Async(s, new[] { 0.3, -0.2, 0.1 });
        Close([1228.8, -819.2, 409.6], c, 1e-6);
        Assert.Equal([4096.0, 4096, 4096], grad);
    }

    [Fact]
    public async Task E1_CreateGraph_GivesTheFirstDerivativeAsARecordedValue()
    {
        await using var s = await OpenAsync(_client);
        var results = await s.RunAsync(
            Variable("x", Cases.E6XJson), Apply("pow", ["x", 2], "sq"), Apply("log", ["sq"], "lg"), Apply("sin", ["x"], "sn"),
            Apply("mul", ["lg", "sn"], "p"), Apply("div", [1, "x"], "r"), Apply("add", ["p", "r"], "f"),
            Fetch("f"), Backward("f", createGraph: true), Grad("x"));
        Close(Cases.E6F, Values(results[7].GetProperty("value")), 1e-12);
        Assert.Equal("float64", DType(results[9].GetProperty("value")));
        Close(Cases.E6Df, Values(results[9].GetProperty("value")), 1e-12);
    }

    [Fact]
    public async Task E1_SecondDerivativeThroughCreateGraph()
    {
        await using var s = await OpenAsync(_client);
        // f' recorded by a create_graph backward is bound as g, then differentiated again (seed ones: f'' per element).
        var results = await s.RunAsync(
            Variable("x", Cases.E6XJson), new { apply = new { program = "f = log(x ** 2) * sin(x) + 1 / x" } },
            Backward("f", createGraph: true), Grad("x", output: "g"), ZeroGrad("x"), Backward("g"), Grad("x"));
        Close(Cases.E6Df, Values(results[3].GetProperty("value")), 1e-12);
        Close(Cases.E1D2, Values(results[6].GetProperty("value")), 1e-10);
    }

    [Fact]
    public async Task E2_GraphFreedThenRetainGraph()
    {
        await using var s = await OpenAsync(_client);
        var freed = (await s.TryRunAsync([.. C1, Backward("y"), Backward("y")])).Problem(409, "graph_freed");
        Assert.Equal(4, freed.Body.GetProperty("command_index").GetInt32());
        Assert.Contains("retain_graph", freed.Str("detail"));
        // The commands before the failure kept their effect: the first backward's gradient is there.
        Assert.Equal(new double[] { 0.0, 4, 8, 12 }, await s.GradAsync("x"));

        await s.RunAsync(ZeroGrad("x"), Apply("dot", ["x", "x"], "t"), Apply("mul", [2, "t"], "y"), Backward("y", retainGraph: true));
        Assert.Equal(new double[] { 0.0, 4, 8, 12 }, await s.GradAsync("x"));
        await s.RunAsync(Backward("y"));
        Assert.Equal(new double[] { 0.0, 8, 16, 24 }, await s.GradAsync("x")); // accumulated
    }

    [Fact]
    public async Task Isolation_UnguessableIdsAndNoSharedValues()
    {
        await using var a = await OpenAsync(_client);
        await using var b = await OpenAsync(_client);
        Assert.NotEqual(a.Id, b.Id);
        foreach (var id in new[] { a.Id, b.Id })
        {
            Assert.True(id.Length >= 22, $"id '{id}' is shorter than 128 random bits");
            Assert.Matches("^[A-Za-z0-9_-]+$", id);
        }
        await a.RunAsync(Variable("secret", new[] { 42 }));
        var r = (await b.TryRunAsync(Fetch("secret"))).Problem(404, "not_found");
        Assert.Equal(0, r.Body.GetProperty("command_index").GetInt32());
        // A guessed id next to a real one is not a session.
        var guess = a.Id[..^1] + (a.Id[^1] == 'A' ? 'B' : 'A');
        (await _client.Post($"/v1/sessions/{guess}/commands", new { commands = new[] { Fetch("secret") } })).Problem(404, "not_found");
        Assert.Equal(new double[] { 42.0 }, await a.FetchAsync("secret"));
    }

    [Fact]
    public async Task Close_ThenTheIdIsGone()
    {
        var s = await OpenAsync(_client);
        await s.RunAsync(Variable("x", 1));
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await _client.Delete($"/v1/sessions/{s.Id}")).Status);
        (await s.TryRunAsync(Fetch("x"))).Problem(404, "not_found");
        (await _client.Delete($"/v1/sessions/{s.Id}")).Problem(404, "not_found");
    }

    [Fact]
    public async Task Batch_StopsAtTheFirstFailingCommand_AndNamesIt()
    {
        await using var s = await OpenAsync(_client);
        var r = (await s.TryRunAsync(Variable("x", Cases.X), Apply("add", ["x", "nope"], "y"), Variable("later", 1))).Problem(400, "invalid_graph");
        Assert.Equal(1, r.Body.GetProperty("command_index").GetInt32());
        Assert.Equal("nope", r.Str("input"));
        Assert.Equal(new double[] { 0.0, 1, 2, 3 }, await s.FetchAsync("x"));           // before the failure: done
        (await s.TryRunAsync(Fetch("later"))).Problem(404, "not_found"); // after it: never run
        // A malformed command is refused before anything runs, with its index too.
        var bad = (await s.TryRunAsync(Variable("y", 1), new { frobnicate = new { } })).Problem(400, "invalid_argument");
        Assert.Equal(1, bad.Body.GetProperty("command_index").GetInt32());
        (await s.TryRunAsync(Fetch("y"))).Problem(404, "not_found");
    }

    [Fact]
    public async Task NoGradConstantReleaseAndErrors()
    {
        await using var s = await OpenAsync(_client);
        await s.RunAsync(Variable("x", Cases.X), new { no_grad = new { enabled = true } }, Apply("mul", ["x", "x"], "z"), new { no_grad = new { enabled = false } });
        (await s.TryRunAsync(Backward("z"))).Problem(400, "not_differentiable");
        await s.RunAsync(new { constant = new { name = "k", value = 3 } }, Apply("mul", ["k", "x"], "w"), Apply("sum", ["w"], "sw"), Backward("sw"));
        Assert.Equal(new double[] { 3.0, 3, 3, 3 }, await s.GradAsync("x"));
        (await s.TryRunAsync(Grad("k"))).Problem(400, "not_differentiable");
        (await s.TryRunAsync(Grad("w"))).Problem(400, "invalid_argument");
        var shape = (await s.TryRunAsync(Variable("p", new[] { 1, 2 }), Apply("add", ["p", "x"], "q"))).Problem(400, "shape_mismatch");
        Assert.Equal("q", shape.Str("node"));
        Assert.Equal("add", shape.Str("op"));
        await s.RunAsync(new { release = new { names = new[] { "w" } } });
        (await s.TryRunAsync(Fetch("w"))).Problem(404, "not_found");
        // The flat command form works too.
        var flat = await s.RunAsync(new { command = "fetch", name = "x" });
        Assert.Equal([0.0, 1, 2, 3], Values(flat[0].GetProperty("value")));
    }

    [Fact]
    public async Task Program_SeveralLinesInOneCommand()
    {
        await using var s = await OpenAsync(_client);
        var results = await s.RunAsync(Variable("x", Cases.X), new { apply = new { program = Cases.C1Program } }, Backward("y"), Grad("x"), Fetch("t"));
        Assert.Equal([0.0, 4, 8, 12], Values(results[3].GetProperty("value")));
        Assert.Equal(14.0, One(results[4].GetProperty("value")));
    }
}
