using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.TestGraph;

namespace AutogradService.Api.Tests.Errors;

/// <summary>
/// Every code of the error table over REST: RFC 9457 problem details (application/problem+json) with the stable code,
/// the HTTP status of the table and the node/op/input at fault. Deadline and overload are in their own classes.
/// </summary>
public sealed class RestErrorTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();
    private static readonly int[] X = [1, 2, 3];

    private Task<RestReply> Evaluate(TestGraph graph, object inputs) => _client.Post("/v1/evaluate", new { graph = graph.ToJson(), inputs });

    private static string? Prop(RestReply r, string name) => r.Body.TryGetProperty(name, out var v) ? v.GetString() : null;

    [Fact]
    public async Task InvalidGraph_UnknownOp()
    {
        var r = (await Evaluate(new TestGraph([new GInput("x")], [N("frobnicate", ["x"], "y")], ["y"]), new { x = X })).Problem(400, "invalid_graph");
        Assert.Equal("frobnicate", Prop(r, "op"));
        Assert.Contains("frobnicate", r.Str("detail"));
        (await _client.Post("/v1/evaluate", new { program = "y = frobnicate(x)", inputs = new { x = X } })).Problem(400, "invalid_graph");
    }

    [Fact]
    public async Task InvalidGraph_MissingValue()
    {
        var r = (await Evaluate(new TestGraph([new GInput("x")], [N("mul", ["x", "nope"], "y")], ["y"]), new { x = X })).Problem(400, "invalid_graph");
        Assert.Equal("nope", Prop(r, "input"));
        Assert.Equal("mul", Prop(r, "op"));
    }

    [Fact]
    public async Task InvalidGraph_Cycle()
    {
        var r = (await Evaluate(new TestGraph([new GInput("x")], [N("add", ["b", "x"], "a"), N("add", ["a", "x"], "b")], ["b"]), new { x = X }))
            .Problem(400, "invalid_graph");
        Assert.Contains("cycle", r.Str("detail"));
    }

    [Fact]
    public async Task InvalidGraph_DuplicateValue()
    {
        var r = (await Evaluate(new TestGraph([new GInput("x")], [N("neg", ["x"], "a"), N("sin", ["x"], "a")], ["a"]), new { x = X }))
            .Problem(400, "invalid_graph");
        Assert.Contains("duplicate", r.Str("detail"));
    }

    [Theory]
    [InlineData("axes", "abc")]
    [InlineData("bogus", 1L)]
    public async Task InvalidGraph_BadAttribute(string name, object value)
    {
        var graph = new TestGraph([new GInput("x")], [N("sum", ["x"], "s", new Dictionary<string, object> { [name] = value }, name: "total")], ["s"]);
        var r = (await Evaluate(graph, new { x = X })).Problem(400, "invalid_graph");
        Assert.Equal("total", Prop(r, "node"));
        Assert.Equal("sum", Prop(r, "op"));
        Assert.Contains(name, r.Str("detail"));
    }

    [Fact]
    public async Task ShapeMismatch_NamesNodeOpAndBothShapes()
    {
        var graph = new TestGraph([new GInput("x", "float32", [3]), new GInput("y", "float32", [4])], [N("add", ["x", "y"], "s", name: "adder")], ["s"]);
        var r = (await Evaluate(graph, new { x = X, y = new[] { 1, 2, 3, 4 } })).Problem(400, "shape_mismatch");
        Assert.Equal("adder", Prop(r, "node"));
        Assert.Equal("add", Prop(r, "op"));
        Assert.Contains("[3]", r.Str("detail"));
        Assert.Contains("[4]", r.Str("detail"));
    }

    [Fact]
    public async Task DTypeMismatch_NamesNodeOpAndBothDTypes()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "s = logical_and(x, b)", inputs = new { x = X, b = new[] { true, false, true } } }))
            .Problem(400, "dtype_mismatch");
        Assert.Equal("s", Prop(r, "node"));
        Assert.Equal("logical_and", Prop(r, "op"));
        Assert.Contains("float32", r.Str("detail"));
        Assert.Contains("bool", r.Str("detail"));
    }

    [Fact]
    public async Task InvalidTensor_Ragged()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new object[] { new[] { 1, 2 }, new[] { 3 } } } }))
            .Problem(400, "invalid_tensor");
        Assert.Equal("x", Prop(r, "input"));
        Assert.Contains("ragged", r.Str("detail"));
    }

    [Fact]
    public async Task InvalidTensor_DataLengthIsNotTheShapeProduct()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new { dtype = "float32", shape = new[] { 2, 2 }, data = X } } }))
            .Problem(400, "invalid_tensor");
        Assert.Equal("x", Prop(r, "input"));
        var bytes = (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new { dtype = "float32", shape = new[] { 2 }, b64 = Convert.ToBase64String(new byte[7]) } } }))
            .Problem(400, "invalid_tensor");
        Assert.Contains("bytes", bytes.Str("detail"));
    }

    [Fact]
    public async Task InvalidTensor_BadBase64()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new { dtype = "float32", shape = new[] { 1 }, b64 = "!!not base64" } } }))
            .Problem(400, "invalid_tensor");
        Assert.Contains("base64", r.Str("detail"));
    }

    [Fact]
    public async Task InvalidTensor_NonNumericString()
    {
        (await _client.Post("/v1/evaluate", new { program = "y = x * 1", inputs = new { x = new object[] { 1, "one" } } })).Problem(400, "invalid_tensor");
    }

    [Fact]
    public async Task NotDifferentiable_WrtAnInt64Input()
    {
        var graph = new TestGraph([new GInput("x"), new GInput("n", "int64")], [N("mul", ["x", "n"], "y")], ["y"]);
        var r = (await _client.Post("/v1/gradient", new
        {
            graph = graph.ToJson(), inputs = new { x = X, n = new { dtype = "int64", shape = new[] { 3 }, data = X } }, wrt = new[] { "n" },
        })).Problem(400, "not_differentiable");
        Assert.Equal("n", Prop(r, "input"));
        Assert.Contains("int64", r.Str("detail"));
    }

    [Fact]
    public async Task GraphFreed_SessionBackwardTwice()
    {
        var id = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        var r = (await _client.Post($"/v1/sessions/{id}/commands", new
        {
            commands = new object[]
            {
                new { variable = new { name = "x", value = Cases.X } },
                new { apply = new { op = "dot", inputs = new[] { "x", "x" }, output = "t" } },
                new { backward = new { output = "t" } },
                new { backward = new { output = "t" } },
            },
        })).Problem(409, "graph_freed");
        Assert.Equal(3, r.Body.GetProperty("command_index").GetInt32());
        Assert.Contains("retain_graph", r.Str("detail"));
        await _client.Delete($"/v1/sessions/{id}");
    }

    [Fact]
    public async Task MemoryLimitExceeded_RequestLimitSaysHowMuch()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new float[1000] }, limits = new { memory_bytes = 4000 } }))
            .Problem(422, "memory_limit_exceeded");
        Assert.Equal(4000, r.Body.GetProperty("limit_bytes").GetInt64());
        Assert.True(r.Body.GetProperty("requested_bytes").GetInt64() > 0);
        Assert.Contains("4000", r.Str("detail"));
    }

    [Fact]
    public async Task IterationLimitExceeded_WhileWithMaxIterations()
    {
        // a = 0.5 needs 9 doublings of b = 1 to pass norm 1000; max_iterations 5 stops it.
        var r = (await _client.Post("/v1/evaluate", new { graph = Cases.C5Graph([], maxIterations: 5).ToJson(), inputs = new { a = 0.5 } }))
            .Problem(422, "iteration_limit_exceeded");
        Assert.Equal("loop", Prop(r, "node"));
        Assert.Equal("while", Prop(r, "op"));
        Assert.Equal(5, r.Body.GetProperty("max_iterations").GetInt64());
    }

    [Fact]
    public async Task NotFound_UnknownModelAndUnknownSession()
    {
        var model = (await _client.Post("/v1/evaluate", new { model = "no-such-model", inputs = new { x = X } })).Problem(404, "not_found");
        Assert.Contains("no-such-model", model.Str("detail"));
        (await _client.Get("/v1/models/no-such-model")).Problem(404, "not_found");
        (await _client.Delete("/v1/models/no-such-model")).Problem(404, "not_found");
        (await _client.Post("/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/commands", new { commands = new object[] { new { fetch = new { name = "x" } } } })).Problem(404, "not_found");
        (await _client.Delete("/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA")).Problem(404, "not_found");
    }

    [Fact]
    public async Task MalformedRequests_AreInvalidArgument()
    {
        (await _client.Post("/v1/evaluate", "{\"program\": ")).Problem(400, "invalid_argument");
        (await _client.Post("/v1/evaluate", new { inputs = new { x = X } })).Problem(400, "invalid_argument");
        (await _client.Post("/v1/evaluate", new { program = "y = x", graph = new { nodes = Array.Empty<object>() } })).Problem(400, "invalid_argument");
        (await _client.Post("/v1/jacobian", new { program = "y = x", inputs = new { x = X }, mode = "sideways" })).Problem(400, "invalid_argument");
        (await _client.Post("/v1/evaluate", new { program = "y = x", inputs = new { x = X }, device = "tpu" })).Problem(400, "invalid_argument");
    }

    [Fact]
    public async Task AnErrorDoesNotAffectTheNextRequest()
    {
        (await Evaluate(new TestGraph([new GInput("x")], [N("frobnicate", ["x"], "y")], ["y"]), new { x = X })).Problem(400, "invalid_graph");
        var ok = (await _client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal([0.0, 4, 8, 12], JsonKit.Values(ok.Body.At("gradients", "x")));
    }
}
