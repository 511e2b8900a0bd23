using System.Runtime.InteropServices;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.Inference;
using AutogradService.Contracts.V1;
using AutogradService.Onnx.Tests;
using Google.Protobuf;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using DataType = Onnx.TensorProto.Types.DataType;
using InputTensor = AutogradService.Contracts.Inference.ModelInferRequest.Types.InferInputTensor;

namespace AutogradService.Api.Tests.Inference;

/// <summary>
/// ONNX files uploaded over gRPC (<c>Models.Put</c> with <c>onnx</c> bytes) land on the same import as REST's
/// application/onnx: the same description, the same numbers over /v1 and the Open Inference Protocol, the same errors.
/// </summary>
public sealed class OnnxGrpcUploadTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly Contracts.V1.Models.ModelsClient _models = service.Models;
    private readonly GRPCInferenceService.GRPCInferenceServiceClient _oip = new(service.Channel);
    private readonly HttpClient _rest = service.CreateClient();

    /// <summary>x[N,3] (N symbolic) → Gemm → Relu → MatMul → Tanh, float64 weights.</summary>
    private static byte[] Mlp() => new OnnxBuilder()
        .Input("x", DataType.Double, -1, 3)
        .Initializer("w1", OnnxBuilder.Random(1, 3, 4)).Initializer("b1", OnnxBuilder.Random(2, 4))
        .Initializer("w2", OnnxBuilder.Random(3, 4, 2))
        .Node("Gemm", ["x", "w1", "b1"], ["h"]).Node("Relu", ["h"], ["a"])
        .Node("MatMul", ["a", "w2"], ["z"]).Node("Tanh", ["z"], ["y"])
        .Output("y").Bytes();

    private static readonly double[] X = [0.5, -1, 2, 1.5, 0.25, -0.75];

    private static PutModelRequest Put(string name, byte[] onnx, int? batch = 2)
    {
        var request = new PutModelRequest { Name = name, Onnx = ByteString.CopyFrom(onnx) };
        if (batch is { } n) request.Dims["N"] = n;
        return request;
    }

    [Fact]
    public async Task AnOnnxFileOverGrpcIsRegisteredAsRestWouldAndRunsOverOipAndV1()
    {
        var info = await _models.PutAsync(Put("grpc-onnx-mlp", Mlp()));
        Assert.Equal("onnx", info.Format);
        Assert.Equal(["y"], info.Outputs);
        var x = Assert.Single(info.Inputs);
        Assert.Equal("x", x.Name);
        Assert.Equal([2L, 3L], x.Shape);

        // The same file over REST (?dims=N:2) describes itself the same way.
        using var content = new ByteArrayContent(Mlp());
        content.Headers.ContentType = new("application/onnx");
        var rest = (await SendAsync(_rest, new HttpRequestMessage(HttpMethod.Put, "/v1/models/rest-onnx-mlp?dims=N:2") { Content = content })).Ok();
        Assert.Equal(info.NodeCount, rest.Body.GetProperty("node_count").GetInt64());
        Assert.Equal("onnx", (await _rest.Get("/v1/models/grpc-onnx-mlp")).Ok().Str("format"));

        var inputs = new { x = new { dtype = "float64", shape = new[] { 2, 3 }, data = X } };
        var viaRest = Values((await _rest.Post("/v1/evaluate", new { model = "rest-onnx-mlp", inputs })).Ok().Body.At("outputs", "y"));
        var viaGrpcModel = Values((await _rest.Post("/v1/evaluate", new { model = "grpc-onnx-mlp", inputs })).Ok().Body.At("outputs", "y"));
        Assert.Equal(viaRest, viaGrpcModel);

        var request = new ModelInferRequest { ModelName = "grpc-onnx-mlp" };
        var spec = new InputTensor { Name = "x", Datatype = "FP64" };
        spec.Shape.Add([2, 3]);
        request.Inputs.Add(spec);
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(X.AsSpan())));
        var infer = await _oip.ModelInferAsync(request);
        var y = MemoryMarshal.Cast<byte, double>(infer.RawOutputContents[0].Span).ToArray();
        Assert.Equal(viaRest.Length, y.Length);
        for (int i = 0; i < y.Length; i++) Assert.Equal(viaRest[i], y[i], 12);
    }

    [Fact]
    public async Task BadOnnxBytesOrStrayDimsAreInvalidArgument()
    {
        var garbage = await Assert.ThrowsAsync<RpcException>(() => _models.PutAsync(Put("grpc-onnx-bad", [0xff, 0xff, 0xff, 0x01])).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, garbage.StatusCode);
        Assert.Contains("not an ONNX model", garbage.Status.Detail);

        var empty = await Assert.ThrowsAsync<RpcException>(() => _models.PutAsync(Put("grpc-onnx-empty", [])).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);

        var negative = await Assert.ThrowsAsync<RpcException>(() => _models.PutAsync(Put("grpc-onnx-neg", Mlp(), batch: -1)).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, negative.StatusCode);
        Assert.Contains("dims['N']", negative.Status.Detail);

        var stray = new PutModelRequest { Name = "grpc-graph-dims", Program = "y = x * 2" };
        stray.Dims["N"] = 2;
        var strayError = await Assert.ThrowsAsync<RpcException>(() => _models.PutAsync(stray).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, strayError.StatusCode);
        Assert.Contains("with onnx", strayError.Status.Detail);

        // None of the refused uploads registered anything.
        var listed = (await _models.ListAsync(new ListModelsRequest())).Models.Select(m => m.Name).ToArray();
        Assert.DoesNotContain("grpc-onnx-bad", listed);
        Assert.DoesNotContain("grpc-onnx-neg", listed);
    }
}
