using System.Net.Http.Headers;
using System.Text;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Memory;
using Google.Protobuf;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Errors;

/// <summary>
/// Small hostile requests, each of a class that once crashed the process, read another request's data or answered
/// 500 / UNKNOWN: every one now gets a documented code, and the pool settles back where it was.
/// </summary>
[Collection(SerialCollection.Name)] // reads the shared pool's outstanding bytes
public sealed class HostileInputTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task ShapeWhoseElementCountWraps_IsRefused_AndReadsNothing()
    {
        // 65536^4 = 2^64 wraps to 0 in unchecked 64-bit arithmetic: the shape is refused when it is made.
        await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new[] { 1, 2, 3, 4 } } });
        (await _client.Post("/v1/evaluate", new { program = "y = slice(zeros(shape=[65536,65536,65536,65536]), starts=[0,0,0,0], stops=[1,1,1,16])" }))
            .Problem(400, "invalid_graph");
        (await _client.Post("/v1/evaluate", new { program = "y = x + 1", inputs = new { x = new { shape = new[] { 65536, 65536, 65536, 65536 }, data = Array.Empty<int>() } } }))
            .Problem(400, "invalid_tensor");
        var request = new EvaluateRequest { Computation = new Computation { Program = "y = x + 1" } };
        request.Inputs["x"] = new Contracts.V1.Tensor { Dtype = Contracts.V1.DType.Float32, Shape = { 65536, 65536, 65536, 65536 } };
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Theory]
    [InlineData("(", ")", 20_000)]
    [InlineData("sin(", ")", 10_000)]
    [InlineData("-", "", 20_000)]
    [InlineData("x ** ", "", 10_000)]
    public async Task DeeplyNestedProgram_IsRefused(string open, string close, int depth)
    {
        string program = "y = " + string.Concat(Enumerable.Repeat(open, depth)) + "x" + string.Concat(Enumerable.Repeat(close, depth));
        var r = (await _client.Post("/v1/evaluate", new { program, inputs = new { x = 1 } })).Problem(400, "invalid_graph");
        Assert.Contains("deep", r.Str("detail"));
        var request = new EvaluateRequest { Computation = new Computation { Program = program } };
        request.Inputs["x"] = Tensors.F32Scalar(1);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Theory]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "wrt": [5]}""", "wrt[0]")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "limits": 5}""", "limits")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "device": 5}""", "device")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "limits": {"timeout_ms": 1.5}}""", "limits.timeout_ms")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "limits": {"memory_bytes": -1}}""", "limits.memory_bytes")]
    [InlineData("""{"program": 5, "inputs": {"x": 1}}""", "program")]
    [InlineData("""{"program": "y = x", "inputs": 5}""", "inputs")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "outputs": [1]}""", "outputs[0]")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "frobnicate": true}""", "frobnicate")]
    public async Task FieldOfTheWrongType_NamesTheField(string body, string field)
    {
        var r = (await _client.Post("/v1/gradient", body)).Problem(400, "invalid_argument");
        Assert.Contains(field, r.Str("detail"));
    }

    [Fact]
    public async Task LimitsOverTheServers_AreCappedNotRefused()
    {
        (await _client.Post("/v1/gradient", """{"program": "y = x", "inputs": {"x": 1}, "limits": {"timeout_ms": 1e10, "memory_bytes": 1e15}}""")).Ok();
    }

    [Theory]
    [InlineData("""{"memory_bytes": "x"}""", "memory_bytes")]
    [InlineData("""{"gradient_mode": 5}""", "gradient_mode")]
    [InlineData("""{"strict_scalar_seed": "yes"}""", "strict_scalar_seed")]
    [InlineData("""{"idle_timeout_ms": []}""", "idle_timeout_ms")]
    [InlineData("[1]", "")]
    [InlineData("5", "")]
    [InlineData("null", "")]
    public async Task SessionOptionsOfTheWrongShape_OpenNoSession(string body, string field)
    {
        var r = (await _client.Post("/v1/sessions", body)).Problem(400, "invalid_argument");
        Assert.Contains(field, r.Str("detail"));
    }

    [Theory]
    [InlineData("""{"program": 5}""", "invalid_argument")]
    [InlineData("[1]", "invalid_argument")]
    [InlineData("""{"graph": 5}""", "invalid_graph")]
    [InlineData("""{"program": "y = x", "outputs": [1]}""", "invalid_argument")]
    public async Task ModelBodiesOfTheWrongShape_AreRefused(string body, string code)
    {
        (await _client.Put("/v1/models/wrong-shape", body)).Problem(400, code);
        (await _client.Get("/v1/models/wrong-shape")).Problem(404, "not_found");
    }

    [Fact]
    public async Task TensorFieldsOfTheWrongType_AreInvalidTensor()
    {
        (await _client.Post("/v1/evaluate", """{"program": "y = x", "inputs": {"x": {"dtype": 5, "data": [1]}}}""")).Problem(400, "invalid_tensor");
        (await _client.Post("/v1/evaluate", """{"program": "y = x", "inputs": {"x": {"data": [1e999]}}}""")).Problem(400, "invalid_tensor");
        (await _client.Post("/v1/evaluate", """{"program": "y = x", "inputs": {"x": {"shape": [1.5], "data": [1]}}}""")).Problem(400, "invalid_tensor");
        (await _client.Post("/v1/evaluate", """{"program": "y = x", "inputs": {"x": {"shape": [2], "b64": 7}}}""")).Problem(400, "invalid_tensor");
    }

    [Fact]
    public async Task InvalidUtf8_IsInvalidArgument()
    {
        byte[] body = [.. "{\"program\": \"y = x\", \"inputs\": {\""u8, 0xC3, 0x28, .. "\": 1}}"u8];
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/evaluate") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        (await SendAsync(_client, request)).Problem(400, "invalid_argument");
    }

    [Theory]
    [InlineData("""{"program": "y = x", "inputs": {"\ud800": 1}}""")]
    [InlineData("""{"program": "y = \udc00x", "inputs": {"x": 1}}""")]
    [InlineData("""{"program": "y = x", "inputs": {"x": {"dtype": "\ud800", "data": [1]}}}""")]
    [InlineData("""{"program": "y = x", "inputs": {"x": 1}, "wrt": ["\ud800"]}""")]
    public async Task LoneSurrogateEscapes_AreInvalidArgument(string body)
    {
        var r = await _client.Post("/v1/gradient", body);
        Assert.Equal(400, (int)r.Status);
    }

    [Theory]
    [InlineData("/v1/evaluate", "text/plain")]
    [InlineData("/v1/evaluate", null)]
    [InlineData("/v1/inspect", "application/x-www-form-urlencoded")]
    [InlineData("/v1/sessions", "text/plain")]
    public async Task ContentTypeOtherThanJson_Is415(string path, string? contentType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent("""{"program": "y = x"}"""u8.ToArray()) };
        if (contentType is not null) request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        (await SendAsync(_client, request)).Problem(415, "unsupported_media_type");
    }

    [Fact]
    public async Task OpenApi_StillDeclaresTheJsonBodies()
    {
        var doc = (await _client.Get("/openapi/v1.json")).Ok().Body;
        foreach (var path in new[] { "/v1/evaluate", "/v1/gradient", "/v1/inspect", "/v1/sessions" })
            Assert.True(doc.At("paths", path, "post", "requestBody", "content").TryGetProperty("application/json", out _), path);
    }

    [Fact]
    public async Task Int64BeyondDoublePrecision_RoundTrips()
    {
        const long big = 9_007_199_254_740_993; // 2^53 + 1: not a double
        var r = (await _client.Post("/v1/evaluate", "{\"program\": \"y = identity(x)\", \"inputs\": {\"x\": {\"dtype\": \"int64\", \"data\": [" + big + ", -1]}}}")).Ok();
        var data = r.Body.At("outputs", "y").GetProperty("data").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal([big, -1], data);
    }

    [Theory]
    [InlineData("jacobian")]
    [InlineData("hessian")]
    public async Task DerivativeWithNothingToDifferentiate_IsInvalidArgument(string transform)
    {
        var body = new { program = "y = sum(x)", inputs = new { x = new { dtype = "int64", data = new[] { 1, 2 } } } };
        (await _client.Post($"/v1/{transform}", body)).Problem(400, "invalid_argument");
    }

    [Fact]
    public async Task EmptyMatricesOverAHugeBatch_AnswerAtOnce()
    {
        var r = (await _client.Post("/v1/evaluate", new { program = "y = matmul(zeros(shape=[50000000, 0, 3]), zeros(shape=[3, 4]))" })).Ok();
        Assert.Equal([50000000, 0, 4], Shape(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task MalformedProtobuf_IsInvalidArgument_InUnaryCalls()
    {
        long before = BufferPool.Shared.OutstandingBytes;
        var method = new Method<byte[], byte[]>(MethodType.Unary, "autograd.v1.Autodiff", "Evaluate", Raw, Raw);
        var invoker = service.Channel.CreateCallInvoker();
        // A field tag with wire type 7 (invalid), then a length prefix that runs past the end.
        foreach (byte[] bytes in new[] { new byte[] { 0x0F, 0x01 }, new byte[] { 0x0A, 0xFF, 0xFF, 0x01 } })
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(method, null, new CallOptions(), bytes).ResponseAsync);
            GrpcErrors.Check(e, StatusCode.InvalidArgument, "invalid_argument");
        }
        Assert.Equal(before, BufferPool.Shared.OutstandingBytes);
    }

    [Fact]
    public async Task OverNestedProtobuf_IsInvalidArgument()
    {
        // A graph attribute holding a graph holding ... 200 deep: past protobuf's recursion limit of 100.
        var graph = new Graph();
        for (int i = 0; i < 200; i++)
        {
            var outer = new Graph();
            var node = new Node { Op = "identity", Outputs = { "y" } };
            node.Attrs["body"] = new Contracts.V1.Attribute { Graph = graph };
            outer.Nodes.Add(node);
            graph = outer;
        }
        var request = new EvaluateRequest { Computation = new Computation { Graph = graph } };
        var method = new Method<byte[], byte[]>(MethodType.Unary, "autograd.v1.Autodiff", "Evaluate", Raw, Raw);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            service.Channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(), request.ToByteArray()).ResponseAsync);
        GrpcErrors.Check(e, StatusCode.InvalidArgument, "invalid_argument");
    }

    [Fact]
    public async Task MalformedProtobuf_InASessionStream_IsInvalidArgument()
    {
        var method = new Method<byte[], byte[]>(MethodType.DuplexStreaming, "autograd.v1.Sessions", "Run", Raw, Raw);
        using var call = service.Channel.CreateCallInvoker().AsyncDuplexStreamingCall(method, null, new CallOptions());
        await call.RequestStream.WriteAsync([0x0F, 0x01]);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None)) { }
        });
        GrpcErrors.Check(e, StatusCode.InvalidArgument, "invalid_argument");
    }

    [Fact]
    public async Task InspectWithAHugeDimension_IsInvalidArgument()
    {
        var request = new InspectRequest { Computation = new Computation { Program = "y = x + 1" } };
        request.Inputs["x"] = new Contracts.V1.Tensor { Dtype = Contracts.V1.DType.Float32, Shape = { long.MaxValue } };
        var e = await Assert.ThrowsAsync<RpcException>(() => service.Autodiff.InspectAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.DoesNotContain("overflow", e.Status.Detail, StringComparison.OrdinalIgnoreCase);
        (await _client.Post("/v1/inspect", """{"program": "y = x + 1", "inputs": {"x": {"dtype": "float32", "shape": [1e300]}}}""")).Problem(400, "invalid_argument");
    }

    /// <summary>An if whose then-branch holds an if ... <paramref name="levels"/> subgraphs deep; the else-branch passes x through.</summary>
    private static TestGraph NestedIfs(int levels)
    {
        TestGraph Branch(int below) => below == 0
            ? new TestGraph([new GInput("x")], [TestGraph.N("mul", [2.0, "x"], "y")], ["y"])
            : new TestGraph([new GInput("x")], [If(below - 1)], ["y"]);
        GNode If(int below) => new("if", ["positive", "x"], ["y"], new Dictionary<string, object>
        {
            ["then"] = Branch(below),
            ["else"] = new TestGraph([new GInput("x")], [], ["x"]),
        });
        return new TestGraph([new GInput("x")], [TestGraph.N("gt", ["x", 0.0], "positive"), If(levels - 1)], ["y"]);
    }

    [Fact]
    public async Task SubgraphDepth_OneLimitOverRestAndGrpc()
    {
        // The documented limit (16 nested subgraphs) holds over REST too: the JSON reader's own depth allows it.
        var atLimit = NestedIfs(Engine.Graphs.GraphLimits.MaxSubgraphDepth);
        Assert.Equal(2.0, One((await _client.Post("/v1/evaluate", new { graph = atLimit.ToJson(), inputs = new { x = 1 } })).Ok().Body.At("outputs", "y")));
        var ok = new EvaluateRequest { Computation = new Computation { Graph = atLimit.ToProto() } };
        ok.Inputs["x"] = Tensors.F32Scalar(1);
        Assert.Equal(2.0, Tensors.One((await service.Autodiff.EvaluateAsync(ok)).Outputs["y"]));

        var past = NestedIfs(Engine.Graphs.GraphLimits.MaxSubgraphDepth + 1);
        (await _client.Post("/v1/evaluate", new { graph = past.ToJson(), inputs = new { x = 1 } })).Problem(400, "invalid_graph");
        var refused = new EvaluateRequest { Computation = new Computation { Graph = past.ToProto() } };
        refused.Inputs["x"] = Tensors.F32Scalar(1);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph", () => service.Autodiff.EvaluateAsync(refused).ResponseAsync);
    }

    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);
}
