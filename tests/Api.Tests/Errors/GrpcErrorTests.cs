using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.TestGraph;
using static AutogradService.Api.Tests.Infrastructure.Tensors;

namespace AutogradService.Api.Tests.Errors;

/// <summary>Every code of the error table over gRPC: the status of the table and a google.rpc.ErrorInfo whose reason is the code.</summary>
public sealed class GrpcErrorTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly Autodiff.AutodiffClient _client = service.Autodiff;

    private Task<EvaluateResponse> Evaluate(TestGraph graph, params (string Name, Tensor Value)[] inputs)
    {
        var request = new EvaluateRequest { Computation = new Computation { Graph = graph.ToProto() } };
        foreach (var (name, value) in inputs) request.Inputs[name] = value;
        return _client.EvaluateAsync(request).ResponseAsync;
    }

    private Task<EvaluateResponse> EvaluateProgram(string program, params (string Name, Tensor Value)[] inputs)
    {
        var request = new EvaluateRequest { Computation = new Computation { Program = program } };
        foreach (var (name, value) in inputs) request.Inputs[name] = value;
        return _client.EvaluateAsync(request).ResponseAsync;
    }

    private static readonly Tensor X = F32([1, 2, 3]);

    [Fact]
    public async Task InvalidGraph_UnknownOpMissingValueCycleBadAttribute()
    {
        var unknown = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => Evaluate(new TestGraph([new GInput("x")], [N("frobnicate", ["x"], "y")], ["y"]), ("x", X)));
        Assert.Equal("frobnicate", GrpcErrors.Info(unknown).Metadata["op"]);
        var missing = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => Evaluate(new TestGraph([new GInput("x")], [N("mul", ["x", "nope"], "y")], ["y"]), ("x", X)));
        Assert.Equal("nope", GrpcErrors.Info(missing).Metadata["input"]);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => Evaluate(new TestGraph([new GInput("x")], [N("add", ["b", "x"], "a"), N("add", ["a", "x"], "b")], ["b"]), ("x", X)));
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => Evaluate(new TestGraph([new GInput("x")], [N("sum", ["x"], "s", new Dictionary<string, object> { ["axes"] = "abc" })], ["s"]), ("x", X)));
    }

    [Fact]
    public async Task ShapeAndDTypeMismatch_NameNodeAndOp()
    {
        var graph = new TestGraph([new GInput("x", "float32", [3]), new GInput("y", "float32", [4])], [N("add", ["x", "y"], "s", name: "adder")], ["s"]);
        var shape = await GrpcErrors.Expect(StatusCode.InvalidArgument, "shape_mismatch", () => Evaluate(graph, ("x", X), ("y", F32([1, 2, 3, 4]))));
        Assert.Equal("adder", GrpcErrors.Info(shape).Metadata["node"]);
        Assert.Equal("add", GrpcErrors.Info(shape).Metadata["op"]);
        var b = new Tensor { Dtype = DType.Bool, Shape = { 3 }, BoolData = { true, false, true } };
        var dtype = await GrpcErrors.Expect(StatusCode.InvalidArgument, "dtype_mismatch", () => EvaluateProgram("s = logical_and(x, b)", ("x", X), ("b", b)));
        Assert.Equal("logical_and", GrpcErrors.Info(dtype).Metadata["op"]);
    }

    [Fact]
    public async Task StructuredFacts_ArriveAsValues_TheSameAsOverRest()
    {
        var graph = new TestGraph([new GInput("x", "float32", [3]), new GInput("y", "float32", [4])], [N("add", ["x", "y"], "s", name: "adder")], ["s"]);
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "shape_mismatch", () => Evaluate(graph, ("x", X), ("y", F32([1, 2, 3, 4]))));
        var metadata = GrpcErrors.Info(e).Metadata;
        Assert.DoesNotContain(metadata.Values, v => v.StartsWith("System.", StringComparison.Ordinal));

        // REST sends the list as a JSON array; gRPC's string metadata carries the same array as JSON text.
        using var http = service.CreateClient();
        var rest = (await http.Post("/v1/evaluate", new { graph = graph.ToJson(), inputs = new { x = new[] { 1, 2, 3 }, y = new[] { 1, 2, 3, 4 } } }))
            .Problem(400, "shape_mismatch");
        var restTypes = rest.Body.GetProperty("input_types");
        Assert.Equal(System.Text.Json.JsonValueKind.Array, restTypes.ValueKind);
        var grpcTypes = System.Text.Json.JsonDocument.Parse(metadata["input_types"]).RootElement;
        Assert.Equal(restTypes.EnumerateArray().Select(t => t.GetString()), grpcTypes.EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(2, grpcTypes.GetArrayLength());
    }

    [Fact]
    public void MetadataValues_AreJsonTextForNonStrings()
    {
        Assert.Equal("abc", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue("abc"));
        Assert.Equal("4096", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue(4096L));
        Assert.Equal("true", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue(true));
        Assert.Equal("0.5", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue(0.5));
        Assert.Equal("[\"a\",\"b\"]", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue(new[] { "a", "b" }));
        Assert.Equal("[1,2]", AutogradService.Api.Grpc.ErrorInterceptor.MetadataValue(new List<long> { 1, 2 }));
    }

    [Fact]
    public async Task InvalidTensor_LengthAndRawBytesAndMixedFields()
    {
        var shortTyped = new Tensor { Dtype = DType.Float32, Shape = { 2, 2 }, FloatData = { 1, 2, 3 } };
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => EvaluateProgram("y = x * 1", ("x", shortTyped)));
        Assert.Equal("x", GrpcErrors.Info(e).Metadata["input"]);
        var shortRaw = new Tensor { Dtype = DType.Float32, Shape = { 2 }, Raw = Google.Protobuf.ByteString.CopyFrom(new byte[7]) };
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => EvaluateProgram("y = x * 1", ("x", shortRaw)));
        var wrongField = new Tensor { Dtype = DType.Float32, Shape = { 2 }, DoubleData = { 1, 2 } };
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => EvaluateProgram("y = x * 1", ("x", wrongField)));
    }

    [Fact]
    public async Task NotDifferentiable_WrtAnInt64Input()
    {
        var request = new GradientRequest { Computation = new Computation { Program = "y = x * n" } };
        request.Inputs["x"] = X;
        request.Inputs["n"] = I64([1, 2, 3]);
        request.Wrt.Add("n");
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "not_differentiable", () => _client.GradientAsync(request).ResponseAsync);
        Assert.Equal("n", GrpcErrors.Info(e).Metadata["input"]);
    }

    [Fact]
    public async Task MemoryAndIterationLimits_AreResourceExhausted()
    {
        var memory = new EvaluateRequest { Computation = new Computation { Program = "y = x * 2" }, Limits = new RequestLimits { MemoryBytes = 4000 } };
        memory.Inputs["x"] = F32(new float[1000]);
        var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "memory_limit_exceeded", () => _client.EvaluateAsync(memory).ResponseAsync);
        Assert.Equal("4000", GrpcErrors.Info(e).Metadata["limit_bytes"]);

        var loop = new EvaluateRequest { Computation = new Computation { Graph = Cases.C5Graph([], maxIterations: 5).ToProto() } };
        loop.Inputs["a"] = F32Scalar(0.5f);
        var it = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "iteration_limit_exceeded", () => _client.EvaluateAsync(loop).ResponseAsync);
        Assert.Equal("loop", GrpcErrors.Info(it).Metadata["node"]);
    }

    [Fact]
    public async Task NotFound_UnknownModel()
    {
        var request = new EvaluateRequest { Computation = new Computation { Model = "no-such-model" } };
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => _client.EvaluateAsync(request).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => service.Models.GetAsync(new GetModelRequest { Name = "no-such-model" }).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => service.Models.DeleteAsync(new DeleteModelRequest { Name = "no-such-model" }).ResponseAsync);
    }

    [Fact]
    public async Task GraphFreedAndNotFound_InASessionStream_ReplyWithTheErrorAndTheSessionGoesOn()
    {
        using var call = service.Sessions.Run();
        async Task<Reply> Send(Command c)
        {
            await call.RequestStream.WriteAsync(c);
            Assert.True(await call.ResponseStream.MoveNext(default));
            return call.ResponseStream.Current;
        }
        await Send(new Command { Variable = new VariableCommand { Name = "x", Value = F32(Cases.X), RequiresGrad = true } });
        await Send(new Command { Apply = new ApplyCommand { Op = "dot", Inputs = { "x", "x" }, Output = "t" } });
        Assert.Null((await Send(new Command { Backward = new BackwardCommand { Output = "t" } })).Error);
        var freed = await Send(new Command { Backward = new BackwardCommand { Output = "t" } });
        Assert.Equal("graph_freed", freed.Error.Code);
        Assert.Contains("retain_graph", freed.Error.Detail);
        Assert.Equal(3, freed.CommandIndex);
        var missing = await Send(new Command { Fetch = new FetchCommand { Name = "nope" } });
        Assert.Equal("not_found", missing.Error.Code);
        var grad = await Send(new Command { Grad = new GradCommand { Name = "x" } });
        Assert.Equal([0.0, 2, 4, 6], Values(grad.Value));
        await call.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task MissingComputation_IsInvalidArgument()
    {
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => _client.EvaluateAsync(new EvaluateRequest()).ResponseAsync);
    }
}
