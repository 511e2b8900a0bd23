using System.Net.Http.Headers;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Engine.Tensors;
using AutogradService.Onnx.Tests;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AutogradService.Api.Tests.Models;

/// <summary>ONNX models over REST: uploaded as files or base64, described, run by name through every transform.</summary>
public sealed class OnnxModelTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    /// <summary>x[2,4] → Gemm → Tanh → Gemm(transB) → LogSoftmax, float64 weights W1, b1, W2, b2.</summary>
    private static byte[] Mlp() => new OnnxBuilder()
        .Input("x", DataType.Double, 2, 4)
        .Initializer("W1", OnnxBuilder.Random(1, 4, 5)).Initializer("b1", OnnxBuilder.Random(2, 5))
        .Initializer("W2", OnnxBuilder.Random(3, 3, 5)).Initializer("b2", OnnxBuilder.Random(4, 3))
        .Node("Gemm", ["x", "W1", "b1"], ["h"]).Node("Tanh", ["h"], ["a"])
        .Node("Gemm", ["a", "W2", "b2"], ["z"], ("transB", 1L)).Node("LogSoftmax", ["z"], ["y"], ("axis", 1L))
        .Output("y").Bytes();

    private static readonly object X = new { dtype = "float64", shape = new[] { 2, 4 }, data = new[] { 0.1, -0.2, 0.3, 0.4, 0.5, 0.6, -0.7, 0.8 } };

    private async Task<RestReply> PutOnnx(string path, byte[] bytes, string type = "application/onnx")
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return await SendAsync(_client, request);
    }

    [Fact]
    public async Task AnOnnxFileIsRegisteredDescribedAndRunByName()
    {
        var put = (await PutOnnx("/v1/models/onnx-mlp", Mlp())).Ok();
        Assert.Equal("onnx", put.Str("format"));
        var input = put.Body.GetProperty("inputs")[0];
        Assert.Equal("x", input.GetProperty("name").GetString());
        Assert.Equal("float64", input.GetProperty("dtype").GetString());
        Assert.Equal([2, 4], input.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        Assert.Equal(["y"], put.Body.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()!).ToArray());
        var parameters = put.Body.GetProperty("parameters").EnumerateArray().ToArray();
        Assert.Equal(["W1", "b1", "W2", "b2"], parameters.Select(p => p.GetProperty("name").GetString()!).ToArray());
        Assert.Equal([4, 5], parameters[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        Assert.Equal(2, put.Body.At("op_histogram", "Gemm").GetInt32());
        Assert.Equal(1, put.Body.At("op_histogram", "LogSoftmax").GetInt32());
        Assert.Equal(17, put.Body.At("opsets", "").GetInt64());

        var get = (await _client.Get("/v1/models/onnx-mlp")).Ok();
        Assert.Equal("onnx", get.Str("format"));
        Assert.Equal(1, get.Body.At("op_histogram", "Tanh").GetInt32());

        var eval = (await _client.Post("/v1/evaluate", new { model = "onnx-mlp", inputs = new { x = X } })).Ok();
        var y = Values(eval.Body.At("outputs", "y"));
        Assert.Equal(6, y.Length);
        for (int n = 0; n < 2; n++) Assert.Equal(1.0, y.Skip(3 * n).Take(3).Sum(Math.Exp), 12); // log-probabilities

        // Weights are constants, yet naming one in wrt differentiates by it.
        var grad = (await _client.Post("/v1/gradient", new { model = "onnx-mlp", inputs = new { x = X }, wrt = new[] { "x", "W1" } })).Ok();
        Assert.Equal(8, Values(grad.Body.At("gradients", "x")).Length);
        var dW1 = Values(grad.Body.At("gradients", "W1"));
        Assert.Equal(20, dW1.Length);
        Assert.Contains(dW1, v => v != 0);
        // Log-softmax rows sum their probabilities to one, so with seeds of ones the gradient of z is 1 - 3 p.
        var jvp = (await _client.Post("/v1/jvp", new
        {
            model = "onnx-mlp", inputs = new { x = X },
            tangents = new { b2 = new { dtype = "float64", data = new[] { 1.0, 1.0, 1.0 } } },
        })).Ok();
        Assert.All(Values(jvp.Body.At("tangents_out", "y")), t => Assert.Equal(0.0, t, 12)); // shifting every logit leaves log-softmax
    }

    [Fact]
    public async Task ABase64ModelInJsonIsTheSameAsTheFile()
    {
        var put = (await _client.Put("/v1/models/onnx-b64", new { format = "onnx", onnx = Convert.ToBase64String(Mlp()) })).Ok();
        Assert.Equal("onnx", put.Str("format"));
        (await _client.Put("/v1/models/onnx-b64", new { format = "onnx" })).Problem(400, "invalid_argument");
        (await _client.Put("/v1/models/onnx-b64", new { format = "onnx", onnx = "not base64!" })).Problem(400, "invalid_argument");
        (await _client.Put("/v1/models/onnx-b64", new { format = "tflite", onnx = "AAAA" })).Problem(400, "invalid_argument");
        (await _client.Put("/v1/models/onnx-b64", new { format = "onnx", onnx = Convert.ToBase64String(Mlp()), dims = new { N = -1 } })).Problem(400, "invalid_argument");
    }

    [Fact]
    public async Task AnUnsupportedOpIsRefusedAtUpload()
    {
        var bytes = new OnnxBuilder(opset: 16).Input("x", DataType.Float, 2, 3).Node("ArgMax", ["x"], ["y"]).Output("y").Bytes();
        var reply = (await PutOnnx("/v1/models/onnx-argmax", bytes)).Problem(400, "unsupported_op");
        Assert.Contains("ArgMax", reply.Body.GetProperty("detail").GetString());
        Assert.Contains("opset 16", reply.Body.GetProperty("detail").GetString());
        (await _client.Get("/v1/models/onnx-argmax")).Problem(404, "not_found");
    }

    [Fact]
    public async Task BytesThatAreNoModelAreInvalidArgument()
    {
        (await PutOnnx("/v1/models/onnx-junk", [0xff, 0xff, 0xff, 0x07], "application/octet-stream")).Problem(400, "invalid_argument");
        (await PutOnnx("/v1/models/onnx-empty", [])).Problem(400, "invalid_argument");
    }

    [Fact]
    public async Task SymbolicDimensionsCanBeFixedAtUpload()
    {
        // One symbolic size passes through shape arithmetic (Reshape infers it); two need their sizes at upload.
        var one = new OnnxBuilder().Input("x", DataType.Double, -1, 4)
            .Node("Shape", ["x"], ["s"]).Node("Reshape", ["x", "s"], ["r"]).Node("Sin", ["r"], ["y"]).Output("y").Bytes();
        var symbolic = (await PutOnnx("/v1/models/onnx-one-symbolic", one)).Ok();
        Assert.Equal([-1, 4], symbolic.Body.GetProperty("inputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        var bytes = new OnnxBuilder().Input("x", DataType.Double, -1, -1)
            .Node("Shape", ["x"], ["s"]).Node("Reshape", ["x", "s"], ["r"]).Node("Sin", ["r"], ["y"]).Output("y").Bytes();
        (await PutOnnx("/v1/models/onnx-dims", bytes)).Problem(400, "unsupported_op");
        (await PutOnnx("/v1/models/onnx-dims?dims=N:x", bytes)).Problem(400, "invalid_argument");
        var put = (await PutOnnx("/v1/models/onnx-dims?dims=N:2", bytes)).Ok();
        Assert.Equal([2, 2], put.Body.GetProperty("inputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        var square = new { dtype = "float64", shape = new[] { 2, 2 }, data = new[] { 0.1, -0.2, 0.3, 0.4 } };
        var grad = (await _client.Post("/v1/gradient", new { model = "onnx-dims", inputs = new { x = square } })).Ok();
        Assert.Equal(Math.Cos(0.1), Values(grad.Body.At("gradients", "x"))[0], 12);
        grad = (await _client.Post("/v1/gradient", new { model = "onnx-one-symbolic", inputs = new { x = X } })).Ok(); // any batch
        Assert.Equal(Math.Cos(0.1), Values(grad.Body.At("gradients", "x"))[0], 12);
    }

    [Fact]
    public async Task OnnxModelsSurviveARestart()
    {
        var folder = Path.Combine(Path.GetTempPath(), "autograd-api-tests", Guid.NewGuid().ToString("N"));
        try
        {
            using (var first = new ServiceFactory(modelsPath: folder))
            {
                using var request = new HttpRequestMessage(HttpMethod.Put, "/v1/models/kept") { Content = new ByteArrayContent(Mlp()) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/onnx");
                (await SendAsync(first.CreateClient(), request)).Ok();
            }
            using var second = new ServiceFactory(modelsPath: folder);
            var get = (await second.CreateClient().Get("/v1/models/kept")).Ok();
            Assert.Equal("onnx", get.Str("format"));
            Assert.Equal(2, get.Body.At("op_histogram", "Gemm").GetInt32());
            var eval = (await second.CreateClient().Post("/v1/evaluate", new { model = "kept", inputs = new { x = X } })).Ok();
            Assert.Equal(6, Values(eval.Body.At("outputs", "y")).Length);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task JsonGraphModelsShowTheirEngineOpHistogram()
    {
        var put = (await _client.Put("/v1/models/graph-hist", new { program = "t = x * x\ny = sin(t) + t" })).Ok();
        Assert.Equal("graph", put.Str("format"));
        Assert.Equal(1, put.Body.At("op_histogram", "sin").GetInt32());
        Assert.Empty(put.Body.GetProperty("parameters").EnumerateArray());
    }

    [Fact]
    public async Task AnOnnxModelUploadedOverGrpc_IsTheSameModelAsOverRest()
    {
        var models = service.Models;
        var request = new Contracts.V1.PutModelRequest { Name = "onnx-grpc", Onnx = Google.Protobuf.ByteString.CopyFrom(Mlp()) };
        var info = await models.PutAsync(request);
        Assert.Equal(["W1", "b1", "W2", "b2"], info.Parameters);
        Assert.Equal(2, info.OpHistogram["Gemm"]);
        Assert.Equal("x", Assert.Single(info.Inputs).Name);

        // Run by name over REST: the same numbers as the file uploaded over REST.
        (await PutOnnx("/v1/models/onnx-rest-twin", Mlp())).Ok();
        var viaGrpc = Values((await _client.Post("/v1/evaluate", new { model = "onnx-grpc", inputs = new { x = X } })).Ok().Body.At("outputs", "y"));
        var viaRest = Values((await _client.Post("/v1/evaluate", new { model = "onnx-rest-twin", inputs = new { x = X } })).Ok().Body.At("outputs", "y"));
        Assert.Equal(viaRest, viaGrpc);

        // Symbolic dimensions get their sizes from dims; a bad file or size is invalid_argument, as over REST.
        var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => models.PutAsync(new Contracts.V1.PutModelRequest
        {
            Name = "onnx-grpc-bad", Onnx = Google.Protobuf.ByteString.CopyFromUtf8("not a model"),
        }).ResponseAsync);
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        var negative = new Contracts.V1.PutModelRequest { Name = "onnx-grpc-dims", Onnx = Google.Protobuf.ByteString.CopyFrom(Mlp()) };
        negative.Dims["batch"] = -1;
        e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => models.PutAsync(negative).ResponseAsync);
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
    }
}
