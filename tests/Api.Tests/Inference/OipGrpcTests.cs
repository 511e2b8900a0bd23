using System.Runtime.InteropServices;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.Inference;
using AutogradService.Contracts.V2;
using Google.Protobuf;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using InputTensor = AutogradService.Contracts.Inference.ModelInferRequest.Types.InferInputTensor;

namespace AutogradService.Api.Tests.Inference;

/// <summary>
/// The Open Inference Protocol over gRPC (<c>inference.GRPCInferenceService</c>) and the gradient extension's
/// <c>autograd.v2.GradientService</c>: typed contents and raw bytes in, raw bytes out, numbers checked against REST /v1.
/// </summary>
public sealed class OipGrpcTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly GRPCInferenceService.GRPCInferenceServiceClient _oip = new(service.Channel);
    private readonly GradientService.GradientServiceClient _gradients = new(service.Channel);
    private readonly HttpClient _rest = service.CreateClient();

    private static InputTensor Fp32(string name, long[] shape, double[] values)
    {
        var t = new InputTensor { Name = name, Datatype = "FP32", Contents = new InferTensorContents() };
        t.Shape.Add(shape);
        t.Contents.Fp32Contents.Add(values.Select(v => (float)v));
        return t;
    }

    private static InputTensor RawSpec(string name, string datatype, long[] shape)
    {
        var t = new InputTensor { Name = name, Datatype = datatype };
        t.Shape.Add(shape);
        return t;
    }

    private static ByteString RawFloats(double[] values) => ByteString.CopyFrom(MemoryMarshal.AsBytes(values.Select(v => (float)v).ToArray().AsSpan()));

    private static float[] Floats(ByteString raw) => MemoryMarshal.Cast<byte, float>(raw.Span).ToArray();

    private static ModelInferRequest MlpRequest(string model)
    {
        var request = new ModelInferRequest { ModelName = model, Id = "g-1" };
        request.Inputs.Add(Fp32("x", [2, 3], Oip.X));
        request.Inputs.Add(Fp32("w", [3, 2], Oip.W));
        return request;
    }

    private async Task Register(string name) =>
        (await _rest.Put($"/v1/models/{name}", new { program = Oip.MlpProgram, outputs = new[] { "y", "s" } })).Ok();

    [Fact]
    public async Task ServerAndModelMetadata_Liveness_Readiness()
    {
        Assert.True((await _oip.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await _oip.ServerReadyAsync(new ServerReadyRequest())).Ready);
        var server = await _oip.ServerMetadataAsync(new ServerMetadataRequest());
        Assert.Equal("autograd-service", server.Name);
        Assert.Contains("gradient", server.Extensions);

        await Register("g-meta");
        var meta = await _oip.ModelMetadataAsync(new ModelMetadataRequest { Name = "g-meta" });
        Assert.Equal(["1"], meta.Versions);
        Assert.Equal(["x", "w"], meta.Inputs.Select(i => i.Name));
        Assert.Equal(["y", "s"], meta.Outputs.Select(o => o.Name));
        Assert.All(meta.Inputs, i => Assert.Equal("FP32", i.Datatype));
        Assert.True((await _oip.ModelReadyAsync(new ModelReadyRequest { Name = "g-meta" })).Ready);
        Assert.True((await _oip.ModelReadyAsync(new ModelReadyRequest { Name = "g-meta", Version = "1" })).Ready);
        Assert.False((await _oip.ModelReadyAsync(new ModelReadyRequest { Name = "g-meta", Version = "3" })).Ready);
        Assert.False((await _oip.ModelReadyAsync(new ModelReadyRequest { Name = "g-none" })).Ready);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => _oip.ModelMetadataAsync(new ModelMetadataRequest { Name = "g-none" }).ResponseAsync);
    }

    [Fact]
    public async Task ModelInfer_TypedContentsAndRawBytes_GiveV1sNumbers_AsRawOutputs()
    {
        await Register("g-infer");
        var typed = await _oip.ModelInferAsync(MlpRequest("g-infer"));
        Assert.Equal("g-infer", typed.ModelName);
        Assert.Equal("1", typed.ModelVersion);
        Assert.Equal("g-1", typed.Id);
        Assert.Equal(["y", "s"], typed.Outputs.Select(o => o.Name));
        Assert.Equal(typed.Outputs.Count, typed.RawOutputContents.Count);

        var raw = new ModelInferRequest { ModelName = "g-infer" };
        raw.Inputs.Add(RawSpec("x", "FP32", [2, 3]));
        raw.Inputs.Add(RawSpec("w", "FP32", [3, 2]));
        raw.RawInputContents.Add(RawFloats(Oip.X));
        raw.RawInputContents.Add(RawFloats(Oip.W));
        raw.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "y" });
        var fromRaw = await _oip.ModelInferAsync(raw);
        var y = Assert.Single(fromRaw.Outputs);
        Assert.Equal("FP32", y.Datatype);
        Assert.Equal([2L, 2], y.Shape);

        var v1 = (await _rest.Post("/v1/evaluate", new { model = "g-infer", inputs = Oip.V1MlpInputs })).Ok().Body;
        // The same float32 values; JSON prints them shortest-round-trip, so compare at float precision.
        Close(Values(v1.At("outputs", "y")), Floats(fromRaw.RawOutputContents[0]).Select(v => (double)v).ToArray(), 1e-7);
        Close(Values(v1.At("outputs", "y")), Floats(typed.RawOutputContents[0]).Select(v => (double)v).ToArray(), 1e-7);
        Close(Values(v1.At("outputs", "s")), Floats(typed.RawOutputContents[1]).Select(v => (double)v).ToArray(), 1e-7);
    }

    [Fact]
    public async Task ModelInfer_EveryDatatype_InRawBytes()
    {
        var graph = new TestGraph(
            [new GInput("k", "int64", [2]), new GInput("x", "float64", [2]), new GInput("c", "bool", [2])],
            [TestGraph.N("mul", ["k", 3.0], "i"), TestGraph.N("mul", ["x", 0.5], "d"), TestGraph.N("logical_not", ["c"], "n")],
            ["i", "d", "n"]);
        (await _rest.Put("/v1/models/g-types", new { graph = graph.ToJson() })).Ok();
        var request = new ModelInferRequest { ModelName = "g-types" };
        request.Inputs.Add(RawSpec("k", "INT64", [2]));
        request.Inputs.Add(RawSpec("x", "FP64", [2]));
        request.Inputs.Add(RawSpec("c", "BOOL", [2]));
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(new long[] { 4, -5 }.AsSpan())));
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(new[] { 1.25, 3.0 }.AsSpan())));
        request.RawInputContents.Add(ByteString.CopyFrom([1, 0]));
        var r = await _oip.ModelInferAsync(request);
        Assert.Equal(["INT64", "FP64", "BOOL"], r.Outputs.Select(o => o.Datatype));
        Assert.Equal([12L, -15], MemoryMarshal.Cast<byte, long>(r.RawOutputContents[0].Span).ToArray());
        Assert.Equal([0.625, 1.5], MemoryMarshal.Cast<byte, double>(r.RawOutputContents[1].Span).ToArray());
        Assert.Equal([0, 1], r.RawOutputContents[2].ToByteArray());

        var typed = new ModelInferRequest { ModelName = "g-types" };
        var k = RawSpec("k", "INT64", [2]);
        k.Contents = new InferTensorContents();
        k.Contents.Int64Contents.Add([4, -5]);
        var x = RawSpec("x", "FP64", [2]);
        x.Contents = new InferTensorContents();
        x.Contents.Fp64Contents.Add([1.25, 3.0]);
        var c = RawSpec("c", "BOOL", [2]);
        c.Contents = new InferTensorContents();
        c.Contents.BoolContents.Add([true, false]);
        typed.Inputs.Add([k, x, c]);
        Assert.Equal(r.RawOutputContents, (await _oip.ModelInferAsync(typed)).RawOutputContents);
    }

    [Fact]
    public async Task ModelInfer_Refusals()
    {
        await Register("g-refuse");
        Task Call(ModelInferRequest r) => _oip.ModelInferAsync(r).ResponseAsync;

        var shortRaw = MlpRequest("g-refuse");
        foreach (var input in shortRaw.Inputs) input.Contents = null;
        shortRaw.RawInputContents.Add(RawFloats(Oip.X));
        shortRaw.RawInputContents.Add(RawFloats([1, 2]));
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(shortRaw));
        Assert.Contains("raw_input_contents[1]", e.Status.Detail);

        var both = MlpRequest("g-refuse");
        both.RawInputContents.Add(RawFloats(Oip.X));
        both.RawInputContents.Add(RawFloats(Oip.W));
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(both));

        var oneRaw = MlpRequest("g-refuse");
        oneRaw.RawInputContents.Add(RawFloats(Oip.X));
        e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(oneRaw));
        Assert.Contains("one per tensor", e.Status.Detail);

        var wrongField = MlpRequest("g-refuse");
        wrongField.Inputs[0].Contents = new InferTensorContents();
        wrongField.Inputs[0].Contents.Fp64Contents.Add(Oip.X);
        e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(wrongField));
        Assert.Contains("fp32_contents", e.Status.Detail);

        var tooFew = MlpRequest("g-refuse");
        tooFew.Inputs[0].Contents.Fp32Contents.RemoveAt(0);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => Call(tooFew));

        var unsupported = MlpRequest("g-refuse");
        unsupported.Inputs[0].Datatype = "UINT8";
        e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(unsupported));
        Assert.Contains("UINT8", e.Status.Detail);

        var noModel = MlpRequest("");
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => Call(noModel));
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => Call(MlpRequest("g-absent")));
        var version = MlpRequest("g-refuse");
        version.ModelVersion = "2";
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => Call(version));
    }

    [Fact]
    public async Task Gradients_BatchedRawCotangents_Jvp_Jacobian_MatchV1()
    {
        await Register("g-grad");
        double[] rows = [1, 0, 0, 1, 0.5, -2, 3, 0.25];
        var vjp = new GradientRequest { Infer = MlpRequest("g-grad") };
        vjp.Wrt.Add("w");
        vjp.Cotangents.Add(RawSpec("y", "FP32", [2, 2, 2]));
        vjp.RawCotangentContents.Add(RawFloats(rows));
        var batched = await _gradients.VjpAsync(vjp);
        Assert.Equal(2, batched.Outputs.Parameters["batch_size"].Int64Param);
        Assert.Equal("one_pass", batched.Outputs.Parameters["batched_backward"].StringParam);
        var w = Assert.Single(batched.Derivatives);
        Assert.Equal("w", w.Name);
        Assert.Equal([2L, 3, 2], w.Shape);
        var got = Floats(batched.RawDerivativeContents[0]);
        for (int b = 0; b < 2; b++)
        {
            var v1 = (await _rest.Post("/v1/gradient", new
            {
                model = "g-grad", inputs = Oip.V1MlpInputs, outputs = new[] { "y" }, wrt = new[] { "w" },
                seeds = new { y = new { dtype = "float32", shape = new[] { 2, 2 }, data = rows.Skip(b * 4).Take(4).ToArray() } },
            })).Ok().Body;
            Close(Values(v1.At("gradients", "w")), got.Skip(b * 6).Take(6).Select(v => (double)v).ToArray(), 1e-6);
        }

        var jvp = new GradientRequest { Infer = MlpRequest("g-grad") };
        jvp.Tangents.Add(Fp32("x", [2, 3], [1, 0, 0, 0, 1, 0]));
        var forward = await _gradients.JvpAsync(jvp);
        Assert.Equal(["y", "s"], forward.Derivatives.Select(d => d.Name));
        var v1Jvp = (await _rest.Post("/v1/jvp", new
        {
            model = "g-grad", inputs = Oip.V1MlpInputs, tangents = new { x = new { dtype = "float32", shape = new[] { 2, 3 }, data = new[] { 1.0, 0, 0, 0, 1, 0 } } },
        })).Ok().Body;
        Close(Values(v1Jvp.At("tangents_out", "s")), Floats(forward.RawDerivativeContents[1]).Select(v => (double)v).ToArray(), 1e-6);

        var jac = new GradientRequest { Infer = MlpRequest("g-grad") };
        jac.Of.Add("y");
        var j = await _gradients.JacobianAsync(jac);
        Assert.Equal(["y/x", "y/w"], j.Derivatives.Select(d => d.Name));
        Assert.Equal("w", j.Derivatives[1].Parameters["wrt"].StringParam);
        var v1Jac = (await _rest.Post("/v1/jacobian", new { model = "g-grad", inputs = Oip.V1MlpInputs, outputs = new[] { "y" } })).Ok().Body;
        Close(Values(v1Jac.At("jacobians", "y", "w")), Floats(j.RawDerivativeContents[1]).Select(v => (double)v).ToArray(), 1e-6);

        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => _gradients.VjpAsync(new GradientRequest()).ResponseAsync);
        var misplaced = new GradientRequest { Infer = MlpRequest("g-grad") };
        misplaced.Tangents.Add(Fp32("x", [2, 3], new double[6]));
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_argument", () => _gradients.VjpAsync(misplaced).ResponseAsync);
        var badBatch = new GradientRequest { Infer = MlpRequest("g-grad") };
        badBatch.Cotangents.Add(Fp32("y", [5], new double[5]));
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "shape_mismatch", () => _gradients.VjpAsync(badBatch).ResponseAsync);
    }
}
