using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using static AutogradService.Api.Tests.Inference.Oip;

namespace AutogradService.Api.Tests.Inference;

/// <summary>The body limit on framed /v2 bodies and on ONNX files uploaded over gRPC: at the edge and one byte past it.</summary>
public sealed class OipBinaryLimitTests(OipBinaryLimitTests.SmallBodies service) : IClassFixture<OipBinaryLimitTests.SmallBodies>
{
    public const int MaxBody = 4096;

    public sealed class SmallBodies() : ServiceFactory(new Dictionary<string, string?>
    {
        ["Limits:MaxRequestBodyBytes"] = MaxBody.ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    [Fact]
    public async Task AFramedBody_AtTheLimit_Runs_PastIt_IsRequestTooLarge_InTheProtocolsForm()
    {
        using var client = service.CreateClient();
        (await client.Put("/v1/models/oip-bin-body", new { program = "y = x * 2" })).Ok();
        var values = Enumerable.Range(0, 4).Select(i => (float)i).ToArray();
        async Task<RestReply> Send(int length)
        {
            // The JSON header padded with spaces so the whole body is `length` bytes: 16 of them are the tensor's.
            var json = Serialize(new { inputs = new[] { new { name = "x", datatype = "FP32", shape = new[] { 4 }, parameters = new { binary_data_size = 16 } } } });
            var header = Encoding.UTF8.GetBytes(json + new string(' ', length - 16 - Encoding.UTF8.GetByteCount(json)));
            using var request = FramedRequest("/v2/models/oip-bin-body/infer", header, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
            return await SendAsync(client, request);
        }
        var atLimit = (await Send(MaxBody)).Ok();
        Assert.Equal(new[] { 0.0, 2, 4, 6 }, Data(Named(atLimit.Body.GetProperty("outputs"), "y")));
        (await Send(MaxBody + 1)).OipError(413, "request_too_large");
    }

    [Fact]
    public async Task AnOnnxFileOverGrpc_PastTheBodyLimit_IsRefused_AndNothingIsRegistered()
    {
        var models = service.Models;
        // A model whose one initializer makes the message larger than the limit.
        var big = new AutogradService.Onnx.Tests.OnnxBuilder().Input("x", global::Onnx.TensorProto.Types.DataType.Double, 1)
            .Initializer("w", AutogradService.Onnx.Tests.OnnxBuilder.Random(1, MaxBody / 8)).Node("Mul", ["x", "x"], ["y"]).Output("y").Bytes();
        var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() =>
            models.PutAsync(new Contracts.V1.PutModelRequest { Name = "grpc-onnx-big", Onnx = Google.Protobuf.ByteString.CopyFrom(big) }).ResponseAsync);
        Assert.Equal(global::Grpc.Core.StatusCode.ResourceExhausted, e.StatusCode);
        Assert.DoesNotContain("grpc-onnx-big", (await models.ListAsync(new Contracts.V1.ListModelsRequest())).Models.Select(m => m.Name));

        var small = new AutogradService.Onnx.Tests.OnnxBuilder().Input("x", global::Onnx.TensorProto.Types.DataType.Double, 1)
            .Node("Mul", ["x", "x"], ["y"]).Output("y").Bytes();
        Assert.Equal("onnx", (await models.PutAsync(new Contracts.V1.PutModelRequest { Name = "grpc-onnx-small", Onnx = Google.Protobuf.ByteString.CopyFrom(small) })).Format);
    }
}
