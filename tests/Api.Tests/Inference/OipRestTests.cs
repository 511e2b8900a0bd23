using System.Net;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using static AutogradService.Api.Tests.Inference.Oip;

namespace AutogradService.Api.Tests.Inference;

/// <summary>Open Inference Protocol helpers: tensors in the protocol's JSON form and its error body.</summary>
public static class Oip
{
    public static object Tensor(string name, string datatype, int[] shape, object data) => new { name, datatype, shape, data };

    public static object Fp32(string name, int[] shape, double[] data) => Tensor(name, "FP32", shape, data);

    /// <summary>The protocol's error body: <c>{"error": "..."}</c> (and our code), with the status of the error table.</summary>
    public static RestReply OipError(this RestReply reply, int status, string code, string? mentions = null)
    {
        Assert.True((int)reply.Status == status, $"expected {status} {code}, got {(int)reply.Status}: {reply.Text}");
        Assert.Equal("application/json", reply.ContentType);
        Assert.False(string.IsNullOrEmpty(reply.Str("error")));
        Assert.Equal(code, reply.Code);
        if (mentions is not null) Assert.Contains(mentions, reply.Str("error"));
        Assert.DoesNotContain("   at ", reply.Text);
        return reply;
    }

    /// <summary>A request in the binary tensor extension's framing: the JSON header's bytes, then the tensors' bytes.</summary>
    public static HttpRequestMessage FramedRequest(string path, byte[] header, byte[] data, string? headerLength = null)
    {
        var content = new ByteArrayContent([.. header, .. data]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.Add("Inference-Header-Content-Length", headerLength ?? header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return request;
    }

    public static JsonElement Named(JsonElement list, string name) =>
        list.EnumerateArray().Single(t => t.GetProperty("name").GetString() == name);

    public static double[] Data(JsonElement tensor) => tensor.GetProperty("data").EnumerateArray().Select(Number).ToArray();

    public static int[] Dims(JsonElement tensor) => tensor.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();

    /// <summary>A two-layer model: y = tanh(x @ w) (batched VJPs in one pass) and s = sum of y*y per row (row by row).</summary>
    public const string MlpProgram = "y = tanh(x @ w)\ns = sum(y * y, axes=[1])";

    public static readonly double[] X = [1, 2, 3, 4, 5, 6];
    public static readonly double[] W = [0.1, 0.2, -0.3, 0.4, 0.5, -0.6];

    public static object[] MlpInputs => [Fp32("x", [2, 3], X), Fp32("w", [3, 2], W)];

    public static object V1MlpInputs => new
    {
        x = new { dtype = "float32", shape = new[] { 2, 3 }, data = X },
        w = new { dtype = "float32", shape = new[] { 3, 2 }, data = W },
    };
}

/// <summary>
/// The Open Inference Protocol over REST (/v2): server and model metadata, health, readiness, inference with every
/// datatype and data layout, the gradient extension checked against the engine's own /v1 transforms, and every refusal
/// in the protocol's error form.
/// </summary>
public sealed class OipRestTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private async Task Register(string name, string program, string[]? outputs = null) =>
        (await _client.Put($"/v1/models/{name}", outputs is null ? new { program } : new { program, outputs })).Ok();

    [Fact]
    public async Task ServerMetadata_AdvertisesTheGradientExtension_AndHealthAnswers()
    {
        var server = (await _client.Get("/v2")).Ok();
        Assert.Equal("autograd-service", server.Str("name"));
        Assert.False(string.IsNullOrEmpty(server.Str("version")));
        Assert.Contains("gradient", server.Body.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()));
        Assert.True((await _client.Get("/v2/health/live")).Ok().Body.GetProperty("live").GetBoolean());
        Assert.True((await _client.Get("/v2/health/ready")).Ok().Body.GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task ModelMetadata_ShowsSignature_WithMinusOneForVariableDims_AtEveryVersionRoute()
    {
        var graph = new TestGraph(
            [new GInput("x", "float64", [-1, 3]), new GInput("z", "float32", [2, 3]), new GInput("k", "int64", [2])],
            [TestGraph.N("mul", ["x", 2.0], "y"), TestGraph.N("tanh", ["z"], "t")], ["y", "t"]);
        (await _client.Put("/v1/models/oip-meta", new { graph = graph.ToJson() })).Ok();
        foreach (var path in new[] { "/v2/models/oip-meta", "/v2/models/oip-meta/versions/1" })
        {
            var m = (await _client.Get(path)).Ok().Body;
            Assert.Equal("oip-meta", m.GetProperty("name").GetString());
            Assert.Equal(["1"], m.GetProperty("versions").EnumerateArray().Select(v => v.GetString()!).ToArray());
            Assert.Equal("autograd", m.GetProperty("platform").GetString());
            var x = Named(m.GetProperty("inputs"), "x");
            Assert.Equal("FP64", x.GetProperty("datatype").GetString());
            Assert.Equal([-1, 3], Dims(x));
            Assert.Equal("INT64", Named(m.GetProperty("inputs"), "k").GetProperty("datatype").GetString());
            var t = Named(m.GetProperty("outputs"), "t");
            Assert.Equal("FP32", t.GetProperty("datatype").GetString());
            Assert.Equal([2, 3], Dims(t));
            // Where the planner cannot tell an output's rank, a lone -1 says so.
            var y = Named(m.GetProperty("outputs"), "y");
            Assert.Equal("FP64", y.GetProperty("datatype").GetString());
            Assert.Equal([-1], Dims(y));
        }
        Assert.True((await _client.Get("/v2/models/oip-meta/ready")).Ok().Body.GetProperty("ready").GetBoolean());
        (await _client.Get("/v2/models/oip-meta/versions/1/ready")).Ok();
        (await _client.Get("/v2/models/oip-meta/versions/2")).OipError(404, "not_found", "version '2'");
        (await _client.Get("/v2/models/oip-meta/versions/2/ready")).OipError(404, "not_found");
        (await _client.Get("/v2/models/oip-nothing")).OipError(404, "not_found");
        (await _client.Get("/v2/models/oip-nothing/ready")).OipError(404, "not_found");
        // A program's inputs take any rank: a lone -1.
        await Register("oip-meta-program", "y = x * 2");
        var p = (await _client.Get("/v2/models/oip-meta-program")).Ok().Body;
        Assert.Equal([-1], Dims(Named(p.GetProperty("inputs"), "x")));
    }

    [Fact]
    public async Task Infer_FlatAndNestedData_GiveTheSameAnswer_AsV1Evaluate()
    {
        await Register("oip-mlp", MlpProgram, ["y", "s"]);
        var flat = (await _client.Post("/v2/models/oip-mlp/infer", new { id = "req-1", inputs = MlpInputs })).Ok().Body;
        Assert.Equal("oip-mlp", flat.GetProperty("model_name").GetString());
        Assert.Equal("1", flat.GetProperty("model_version").GetString());
        Assert.Equal("req-1", flat.GetProperty("id").GetString());
        Assert.Equal(["y", "s"], flat.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()!).ToArray());
        var nested = (await _client.Post("/v2/models/oip-mlp/versions/1/infer", new
        {
            inputs = new object[]
            {
                Tensor("x", "FP32", [2, 3], new[] { new[] { 1.0, 2, 3 }, new[] { 4.0, 5, 6 } }),
                Tensor("w", "FP32", [3, 2], new[] { new[] { 0.1, 0.2 }, new[] { -0.3, 0.4 }, new[] { 0.5, -0.6 } }),
            },
        })).Ok().Body;
        Assert.False(nested.TryGetProperty("id", out _));
        var v1 = (await _client.Post("/v1/evaluate", new { model = "oip-mlp", inputs = V1MlpInputs })).Ok().Body;
        foreach (var name in new[] { "y", "s" })
        {
            var t = Named(flat.GetProperty("outputs"), name);
            Assert.Equal("FP32", t.GetProperty("datatype").GetString());
            Assert.Equal(Shape(v1.At("outputs", name)), Dims(t));
            Assert.Equal(Values(v1.At("outputs", name)), Data(t));
            Assert.Equal(Data(t), Data(Named(nested.GetProperty("outputs"), name)));
        }

        // Requested outputs: only those, in the order asked.
        var one = (await _client.Post("/v2/models/oip-mlp/infer", new { inputs = MlpInputs, outputs = new[] { new { name = "s" } } })).Ok().Body;
        Assert.Equal("s", Assert.Single(one.GetProperty("outputs").EnumerateArray()).GetProperty("name").GetString());
    }

    [Fact]
    public async Task Infer_EveryDatatype_RoundTrips()
    {
        var graph = new TestGraph(
            [new GInput("k", "int64", [2]), new GInput("x", "float64", [2]), new GInput("c", "bool", [2])],
            [TestGraph.N("mul", ["k", 3.0], "i"), TestGraph.N("mul", ["x", 0.5], "d"), TestGraph.N("where", ["c", "x", 0.0], "b"),
             TestGraph.N("logical_not", ["c"], "n")],
            ["i", "d", "b", "n"]);
        (await _client.Put("/v1/models/oip-types", new { graph = graph.ToJson() })).Ok();
        var r = (await _client.Post("/v2/models/oip-types/infer", new
        {
            inputs = new[]
            {
                Tensor("k", "INT64", [2], new[] { 4L, -5L }),
                Tensor("x", "FP64", [2], new[] { 1.25, 3.0 }),
                Tensor("c", "BOOL", [2], new[] { true, false }),
            },
            parameters = new { priority = 1, note = "any scalar parameter is accepted", flag = true },
        })).Ok().Body.GetProperty("outputs");
        Assert.Equal("INT64", Named(r, "i").GetProperty("datatype").GetString());
        Assert.Equal([12.0, -15], Data(Named(r, "i")));
        Assert.Equal("FP64", Named(r, "d").GetProperty("datatype").GetString());
        Assert.Equal([0.625, 1.5], Data(Named(r, "d")));
        Assert.Equal([1.25, 0], Data(Named(r, "b")));
        Assert.Equal("BOOL", Named(r, "n").GetProperty("datatype").GetString());
        Assert.Equal([0.0, 1], Data(Named(r, "n")));
    }

    [Fact]
    public async Task Infer_Refusals_AreTheProtocolsErrorBody_NamingTheField()
    {
        await Register("oip-refuse", "y = x * 2");
        async Task<RestReply> Infer(object body) => await _client.Post("/v2/models/oip-refuse/infer", body);
        object One(string datatype, int[] shape, object data) => new { inputs = new[] { Tensor("x", datatype, shape, data) } };

        (await Infer(One("INT32", [1], new[] { 1 }))).OipError(400, "invalid_argument", "INT32");
        (await Infer(One("FP16", [1], new[] { 1 }))).OipError(400, "invalid_argument", "BOOL, INT64, FP32 or FP64");
        (await Infer(One("FLOAT", [1], new[] { 1 }))).OipError(400, "invalid_argument", "not an Open Inference Protocol datatype");
        (await Infer(One("FP32", [3], new[] { 1.0, 2 }))).OipError(400, "invalid_tensor", "2 values for its shape's 3");
        (await Infer(One("FP32", [1], new[] { 1.0, 2 }))).OipError(400, "invalid_tensor", "more values");
        (await Infer(One("FP32", [-1], new[] { 1.0 }))).OipError(400, "invalid_argument", "inputs[0].shape[0]");
        (await Infer(One("INT64", [1], new[] { 1.5 }))).OipError(400, "invalid_tensor", "integers");
        (await Infer(One("BOOL", [1], new[] { 1 }))).OipError(400, "invalid_tensor", "true or false");
        (await Infer(One("FP32", [1], new[] { "one" }))).OipError(400, "invalid_tensor", "not a number");
        (await Infer(One("FP32", [1, 1, 1, 1, 1, 1, 1, 1, 1], new[] { 1.0 }))).OipError(400, "invalid_tensor", "rank 9");
        (await Infer(new { inputs = new[] { Fp32("x", [1], [1]), Fp32("x", [1], [2]) } })).OipError(400, "invalid_argument", "second time");
        (await Infer(new { inputs = new[] { Fp32("x", [1], [1]) }, unknown = 1 })).OipError(400, "invalid_argument", "'unknown'");
        (await Infer(new { inputs = new[] { Fp32("x", [1], [1]) }, cotangents = Array.Empty<object>() })).OipError(400, "invalid_argument", "cotangents");
        (await Infer(new { inputs = new[] { Fp32("x", [1], [1]) }, parameters = new { nested = new { a = 1 } } }))
            .OipError(400, "invalid_argument", "parameters.nested");
        (await Infer(new { inputs = new[] { Fp32("x", [1], [1]) }, outputs = new[] { new { name = "y" }, new { name = "y" } } }))
            .OipError(400, "invalid_argument", "twice");
        (await Infer(new { inputs = new[] { new { name = "x", datatype = "FP32", shape = new[] { 1 }, data = new[] { 1.0 }, parameters = new { binary_data_size = 4 } } } }))
            .OipError(400, "invalid_argument", "binary tensor extension");
        (await Infer(new { inputs = new[] { Fp32("z", [1], [1]) } })).OipError(400, "invalid_argument");
        (await Infer(new { })).OipError(400, "invalid_argument", "'inputs' is required");
        (await Infer("{ not json")).OipError(400, "invalid_argument");
        (await _client.Post("/v2/models/oip-absent/infer", new { inputs = Array.Empty<object>() })).OipError(404, "not_found");
        (await _client.Post("/v2/models/oip-refuse/versions/7/infer", new { inputs = Array.Empty<object>() })).OipError(404, "not_found");

        // Content types: none, JSON and curl's form default are read as JSON; octet-stream only as the binary framing.
        foreach (var type in new string?[] { null, "application/x-www-form-urlencoded" })
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Serialize(One("FP32", [1], new[] { 3.0 }))));
            if (type is not null) content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
            using var response = await _client.PostAsync("/v2/models/oip-refuse/infer", content);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        using (var octets = new ByteArrayContent([1, 2, 3]))
        {
            octets.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/oip-refuse/infer") { Content = octets };
            (await SendAsync(_client, request)).OipError(415, "unsupported_media_type");
        }
        using (var framed = new HttpRequestMessage(HttpMethod.Post, "/v2/models/oip-refuse/infer") { Content = new StringContent("{}", Encoding.UTF8, "application/json") })
        {
            framed.Headers.Add("Inference-Header-Content-Length", "2");
            (await SendAsync(_client, framed)).OipError(400, "invalid_argument", "'inputs' is required"); // framed, read, and empty
        }
    }

    private static HttpRequestMessage FramedRequest(string path, object header, byte[] data, string? headerLength = null) =>
        Oip.FramedRequest(path, JsonSerializer.SerializeToUtf8Bytes(header), data, headerLength);

    private async Task<RestReply> Framed(string path, object header, byte[] data, string? headerLength = null)
    {
        using var request = FramedRequest(path, header, data, headerLength);
        return await SendAsync(_client, request);
    }

    /// <summary>A framed request whose answer is framed too: the answer's JSON header and its bytes.</summary>
    private async Task<(JsonDocument Header, byte[] Body, int HeaderLength)> FramedBinary(string path, object header, byte[] data)
    {
        using var request = FramedRequest(path, header, data);
        using var response = await _client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, Encoding.UTF8.GetString(body));
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        int length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        return (JsonDocument.Parse(body.AsMemory(0, length)), body, length);
    }

    private static byte[] Fp32Bytes(double[] values) => values.SelectMany(v => BitConverter.GetBytes((float)v)).ToArray();

    private static object BinaryFp32(string name, int[] shape, int count) =>
        new { name, datatype = "FP32", shape, parameters = new { binary_data_size = count * 4 } };

    [Fact]
    public async Task BinaryTensorExtension_InAndOut_ForInferAndTheGradientExtension()
    {
        await Register("oip-binary", MlpProgram, ["y", "s"]);
        var json = (await _client.Post("/v2/models/oip-binary/infer", new { inputs = MlpInputs })).Ok().Body.GetProperty("outputs");

        // Inputs as binary data (x binary, w as JSON), every output asked back as binary.
        var (header, raw, headerLength) = await FramedBinary("/v2/models/oip-binary/infer", new
        {
            inputs = new object[] { BinaryFp32("x", [2, 3], 6), Fp32("w", [3, 2], W) },
            parameters = new { binary_data_output = true },
        }, Fp32Bytes(X));
        using var headerDocument = header;
        int offset = headerLength;
        foreach (var output in header.RootElement.GetProperty("outputs").EnumerateArray())
        {
            int size = output.GetProperty("parameters").GetProperty("binary_data_size").GetInt32();
            Assert.False(output.TryGetProperty("data", out _));
            var values = Enumerable.Range(0, size / 4).Select(i => BitConverter.ToSingle(raw, offset + 4 * i)).ToArray();
            // JSON prints a float32 in its shortest form: read back as float32, the same bits.
            Assert.Equal(Data(Named(json, output.GetProperty("name").GetString()!)).Select(v => (float)v), values);
            offset += size;
        }
        Assert.Equal(raw.Length, offset);

        // One output asked as binary, the other as JSON; a batch of cotangents sent as binary data for a VJP.
        var (one, _, _) = await FramedBinary("/v2/models/oip-binary/infer", new
        {
            inputs = new object[] { BinaryFp32("w", [3, 2], 6), BinaryFp32("x", [2, 3], 6) },
            outputs = new object[] { new { name = "y", parameters = new { binary_data = true } }, new { name = "s" } },
        }, [.. Fp32Bytes(W), .. Fp32Bytes(X)]); // bytes in the order the tensors appear: w, then x
        using (one)
        {
            var outputs = one.RootElement.GetProperty("outputs");
            Assert.True(Named(outputs, "y").GetProperty("parameters").TryGetProperty("binary_data_size", out _));
            Assert.Equal(Data(Named(json, "s")), Data(Named(outputs, "s")));
        }
        double[] cotangents = [1, 0, 0, 1, 0.5, -2, 3, 0.25];
        var vjp = await Framed("/v2/models/oip-binary/vjp", new
        {
            cotangents = new[] { BinaryFp32("y", [2, 2, 2], 8) }, // before the inputs: its bytes come first
            inputs = new object[] { BinaryFp32("x", [2, 3], 6), Fp32("w", [3, 2], W) },
        }, [.. Fp32Bytes(cotangents), .. Fp32Bytes(X)]);
        var expected = (await _client.Post("/v2/models/oip-binary/vjp", new { inputs = MlpInputs, cotangents = new[] { Fp32("y", [2, 2, 2], cotangents) } })).Ok();
        Assert.Equal(HttpStatusCode.OK, vjp.Status);
        foreach (var name in new[] { "x", "w" })
            Assert.Equal(Data(Named(expected.Body.GetProperty("derivatives"), name)), Data(Named(vjp.Body.GetProperty("derivatives"), name)));
    }

    [Fact]
    public async Task BinaryTensorExtension_EveryDisagreement_IsAnOipError()
    {
        await Register("oip-binary-bad", "y = x * 2");
        const string path = "/v2/models/oip-binary-bad/infer";
        var x = new[] { BinaryFp32("x", [2], 2) };
        (await Framed(path, new { inputs = x }, Fp32Bytes([1, 2]), headerLength: "ten")).OipError(400, "invalid_argument", "one decimal integer");
        (await Framed(path, new { inputs = x }, Fp32Bytes([1, 2]), headerLength: "100000")).OipError(400, "invalid_argument", "the body has");
        (await Framed(path, new { inputs = new[] { BinaryFp32("x", [3], 2) } }, Fp32Bytes([1, 2]))).OipError(400, "invalid_tensor", "needs 12 bytes");
        (await Framed(path, new { inputs = x }, Fp32Bytes([1]))).OipError(400, "invalid_tensor", "only 4 bytes");
        (await Framed(path, new { inputs = x }, Fp32Bytes([1, 2, 3]))).OipError(400, "invalid_argument", "follow the last tensor");
        (await Framed(path, new { inputs = new[] { new { name = "x", datatype = "FP32", shape = new[] { 2 }, data = new[] { 1.0, 2 }, parameters = new { binary_data_size = 8 } } } },
            Fp32Bytes([1, 2]))).OipError(400, "invalid_argument", "cannot be given with binary_data_size");
        (await Framed(path, new { inputs = new[] { Fp32("x", [2], [1, 2]) }, parameters = new { binary_data_output = "yes" } }, []))
            .OipError(400, "invalid_argument", "binary_data_output");
        // Within the limits, the framing works: the same answer as JSON.
        var ok = await Framed(path, new { inputs = x }, Fp32Bytes([1, 2]));
        Assert.Equal([2.0, 4], Data(Named(ok.Body.GetProperty("outputs"), "y")));
    }

    [Fact]
    public async Task Vjp_MatchesV1Gradient_AndABatchOfCotangents_MatchesEachRow()
    {
        await Register("oip-vjp", MlpProgram, ["y", "s"]);
        double[][] rows = [[1, 0, 0, 1], [0.5, -2, 3, 0.25], [0, 0, 0, 0]];
        foreach (var row in rows)
        {
            var vjp = (await _client.Post("/v2/models/oip-vjp/vjp", new { inputs = MlpInputs, cotangents = new[] { Fp32("y", [2, 2], row) } })).Ok().Body;
            // `of` defaults to the outputs given cotangents: y alone is returned and differentiated.
            Assert.Equal("y", Assert.Single(vjp.GetProperty("outputs").EnumerateArray()).GetProperty("name").GetString());
            var v1 = (await _client.Post("/v1/gradient", new
            {
                model = "oip-vjp", inputs = V1MlpInputs, outputs = new[] { "y" },
                seeds = new { y = new { dtype = "float32", shape = new[] { 2, 2 }, data = row } },
            })).Ok().Body;
            foreach (var name in new[] { "x", "w" })
                Close(Values(v1.At("gradients", name)), Data(Named(vjp.GetProperty("derivatives"), name)), 1e-6);
        }

        var batched = (await _client.Post("/v2/models/oip-vjp/vjp", new
        {
            inputs = MlpInputs, wrt = new[] { "w" },
            cotangents = new[] { Fp32("y", [3, 2, 2], rows.SelectMany(r => r).ToArray()) },
        })).Ok().Body;
        Assert.Equal(3, batched.At("parameters", "batch_size").GetInt32());
        Assert.Equal("one_pass", batched.At("parameters", "batched_backward").GetString());
        var w = Assert.Single(batched.GetProperty("derivatives").EnumerateArray());
        Assert.Equal("w", w.GetProperty("name").GetString());
        Assert.Equal([3, 3, 2], Dims(w));
        var all = Data(w);
        for (int b = 0; b < rows.Length; b++)
        {
            var one = (await _client.Post("/v2/models/oip-vjp/vjp", new { inputs = MlpInputs, wrt = new[] { "w" }, cotangents = new[] { Fp32("y", [2, 2], rows[b]) } })).Ok().Body;
            Close(Data(Named(one.GetProperty("derivatives"), "w")), all.Skip(b * 6).Take(6).ToArray(), 1e-6);
        }

        // Through a reduction the batch runs row by row, with the same numbers.
        var perRow = (await _client.Post("/v2/models/oip-vjp/vjp", new
        {
            inputs = MlpInputs, cotangents = new[] { Fp32("s", [2, 2], [1, 0, 0, 1]) },
        })).Ok().Body;
        Assert.Equal("per_row", perRow.At("parameters", "batched_backward").GetString());
        var s0 = (await _client.Post("/v2/models/oip-vjp/vjp", new { inputs = MlpInputs, cotangents = new[] { Fp32("s", [2], [1, 0]) } })).Ok().Body;
        Close(Data(Named(s0.GetProperty("derivatives"), "x")), Data(Named(perRow.GetProperty("derivatives"), "x")).Take(6).ToArray(), 1e-6);
    }

    [Fact]
    public async Task Vjp_Refusals()
    {
        await Register("oip-vjp-bad", MlpProgram, ["y", "s"]);
        async Task<RestReply> Vjp(object body) => await _client.Post("/v2/models/oip-vjp-bad/vjp", body);
        (await Vjp(new { inputs = MlpInputs, cotangents = new[] { Fp32("y", [4], [1, 2, 3, 4]) } })).OipError(400, "shape_mismatch", "[B, ...");
        (await Vjp(new { inputs = MlpInputs, cotangents = new[] { Fp32("y", [3, 2, 2], new double[12]), Fp32("s", [2, 2], new double[4]) } }))
            .OipError(400, "shape_mismatch", "same batch size");
        (await Vjp(new { inputs = MlpInputs, cotangents = new[] { Fp32("q", [1], [1]) } })).OipError(400, "invalid_argument");
        (await Vjp(new { inputs = MlpInputs, wrt = new[] { "nope" } })).OipError(400, "invalid_argument", "nope");
        (await Vjp(new { inputs = MlpInputs, tangents = Array.Empty<object>() })).OipError(400, "invalid_argument", "'tangents'");
        (await Vjp(new { inputs = MlpInputs, cotangents = new[] { Tensor("y", "INT8", [2, 2], new[] { 1, 2, 3, 4 }) } }))
            .OipError(400, "invalid_argument", "cotangents[0].datatype");
    }

    [Fact]
    public async Task Jvp_AndJacobian_MatchV1()
    {
        await Register("oip-fwd", MlpProgram, ["y", "s"]);
        double[] tw = [1, 0, 0, -1, 0.5, 2];
        var jvp = (await _client.Post("/v2/models/oip-fwd/jvp", new { inputs = MlpInputs, tangents = new[] { Fp32("w", [3, 2], tw) } })).Ok().Body;
        var v1Jvp = (await _client.Post("/v1/jvp", new
        {
            model = "oip-fwd", inputs = V1MlpInputs, tangents = new { w = new { dtype = "float32", shape = new[] { 3, 2 }, data = tw } },
        })).Ok().Body;
        foreach (var name in new[] { "y", "s" })
            Close(Values(v1Jvp.At("tangents_out", name)), Data(Named(jvp.GetProperty("derivatives"), name)), 1e-6);
        (await _client.Post("/v2/models/oip-fwd/jvp", new { inputs = MlpInputs, wrt = new[] { "w" } })).OipError(400, "invalid_argument", "'wrt'");

        var jac = (await _client.Post("/v2/models/oip-fwd/jacobian", new { inputs = MlpInputs, wrt = new[] { "x" }, of = new[] { "s" } })).Ok().Body;
        Assert.Empty(jac.GetProperty("outputs").EnumerateArray());
        var block = Assert.Single(jac.GetProperty("derivatives").EnumerateArray());
        Assert.Equal("s/x", block.GetProperty("name").GetString());
        Assert.Equal("s", block.At("parameters", "of").GetString());
        Assert.Equal("x", block.At("parameters", "wrt").GetString());
        Assert.Equal([2, 2, 3], Dims(block));
        var v1Jac = (await _client.Post("/v1/jacobian", new { model = "oip-fwd", inputs = V1MlpInputs, wrt = new[] { "x" }, outputs = new[] { "s" } })).Ok().Body;
        Close(Values(v1Jac.At("jacobians", "s", "x")), Data(block), 1e-6);
    }
}

/// <summary>The per-tensor element limit and the body limit at their edges and one past them, over /v2.</summary>
public sealed class OipLimitTests(OipLimitTests.SmallTensors service) : IClassFixture<OipLimitTests.SmallTensors>
{
    public const int MaxBody = 4096;

    public sealed class SmallTensors() : ServiceFactory(new Dictionary<string, string?>
    {
        ["Limits:MaxTensorElements"] = "8",
        ["Limits:MaxRequestBodyBytes"] = MaxBody.ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    [Fact]
    public async Task MaxRequestBodyBytes_AtTheEdge_Runs_PastIt_IsRequestTooLarge_InTheProtocolsForm()
    {
        using var client = service.CreateClient();
        (await client.Put("/v1/models/oip-body", new { program = "y = x * 2" })).Ok();
        var json = Serialize(new { inputs = new[] { Fp32("x", [2], [1, 2]) } });
        string Padded(int length) => json + new string(' ', length - Encoding.UTF8.GetByteCount(json));
        (await client.Post("/v2/models/oip-body/infer", Padded(MaxBody))).Ok();
        (await client.Post("/v2/models/oip-body/infer", Padded(MaxBody + 1))).OipError(413, "request_too_large");
    }

    [Fact]
    public async Task Metrics_CountV2Requests_ByRouteAndCode()
    {
        using var client = service.CreateClient();
        (await client.Get("/v2/models/oip-metrics-absent")).OipError(404, "not_found");
        var text = await client.GetStringAsync("/metrics");
        Assert.Contains("GET /v2/models/{model}", text);
        Assert.Contains("not_found", text);
    }

    [Fact]
    public async Task MaxTensorElements_AtTheEdge_Runs_PastIt_IsRefused()
    {
        using var client = service.CreateClient();
        (await client.Put("/v1/models/oip-limit", new { program = "y = x * 2" })).Ok();
        var ok = (await client.Post("/v2/models/oip-limit/infer", new { inputs = new[] { Fp32("x", [2, 4], new double[8]) } })).Ok();
        Assert.Equal([2, 4], Dims(Named(ok.Body.GetProperty("outputs"), "y")));
        (await client.Post("/v2/models/oip-limit/infer", new { inputs = new[] { Fp32("x", [3, 3], new double[9]) } }))
            .OipError(400, "invalid_tensor", "limit of 8");
        // A huge declared shape is refused from the shape alone.
        (await client.Post("/v2/models/oip-limit/infer", new { inputs = new[] { Fp32("x", [2147483647, 2147483647], [1]) } }))
            .OipError(400, "invalid_tensor", "limit of 8");
        // Cotangents are held to the same limit: a batch of two 2x4 cotangents has 16 elements.
        (await client.Post("/v2/models/oip-limit/vjp", new
        {
            inputs = new[] { Fp32("x", [2, 4], new double[8]) }, cotangents = new[] { Fp32("y", [2, 2, 4], new double[16]) },
        })).OipError(400, "invalid_tensor", "limit of 8");
    }
}
