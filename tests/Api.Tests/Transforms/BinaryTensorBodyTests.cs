using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>
/// The binary tensor framing (KServe / Triton binary data extension) on the /v1 transforms: a JSON header whose length
/// is the Inference-Header-Content-Length header, then raw little-endian tensor bytes in header order; answers framed
/// the same way on request. Every way the header and the bytes can disagree is a clear 400.
/// </summary>
public sealed class BinaryTensorBodyTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static byte[] Bytes<T>(params T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static string Binary(string dtype, int[] shape, long size) =>
        $"{{\"dtype\": \"{dtype}\", \"shape\": [{string.Join(",", shape)}], \"parameters\": {{\"binary_data_size\": {size}}}}}";

    private static HttpRequestMessage Framed(string path, string header, byte[] data, string? lengthHeader = null, string contentType = "application/octet-stream", string? accept = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent([.. json, .. data]) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", lengthHeader ?? json.Length.ToString());
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        return request;
    }

    private Task<RestReply> Send(HttpRequestMessage request) => SendAsync(_client, request);

    /// <summary>Splits a framed answer into its JSON header and the bytes after it.</summary>
    private async Task<(JsonElement Header, byte[] Data, HttpResponseMessage Response)> SendFramed(HttpRequestMessage request)
    {
        var response = await _client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, Encoding.UTF8.GetString(body));
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        int length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single());
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        return (JsonDocument.Parse(body.AsMemory(0, length)).RootElement.Clone(), body[length..], response);
    }

    [Fact]
    public async Task C1_Gradient_WithABinaryInput_AnswersJson()
    {
        var header = $"{{\"program\": \"t = dot(x, x)\\ny = 2 * t\", \"wrt\": [\"x\"], \"inputs\": {{\"x\": {Binary("float32", [4], 16)}}}}}";
        var r = (await Send(Framed("/v1/gradient", header, Bytes(0f, 1, 2, 3)))).Ok();
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
        Assert.Equal([0.0, 4, 8, 12], Values(r.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task BinaryAndJsonTensors_Mix_AndTakeBytesInHeaderOrder()
    {
        var header = "{\"program\": \"y = sum(a * b) + c\", \"inputs\": {" +
                     $"\"b\": {Binary("float64", [2], 16)}, \"c\": [100], \"a\": {Binary("float64", [2], 16)}}}}}";
        var r = (await Send(Framed("/v1/evaluate", header, [.. Bytes(3.0, 4.0), .. Bytes(10.0, 20.0)]))).Ok();
        Assert.Equal(100 + 30 + 80.0, One(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task BinaryAnswer_WhenAccepted_CarriesEveryTensorsBytes()
    {
        var header = $"{{\"program\": \"y = x * 2\", \"wrt\": [\"x\"], \"inputs\": {{\"x\": {Binary("float32", [3], 12)}}}}}";
        var (head, data, _) = await SendFramed(Framed("/v1/gradient", header, Bytes(1f, 2, 3), accept: "application/octet-stream"));
        var y = head.At("outputs", "y");
        Assert.Equal(12, y.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal([3], Shape(y));
        Assert.False(y.TryGetProperty("data", out _));
        Assert.Equal(24, data.Length); // outputs.y, then gradients.x
        Assert.Equal([2f, 4, 6], MemoryMarshal.Cast<byte, float>(data.AsSpan(0, 12)).ToArray());
        Assert.Equal([2f, 2, 2], MemoryMarshal.Cast<byte, float>(data.AsSpan(12, 12)).ToArray());
    }

    [Fact]
    public async Task BinaryAnswer_WhenAskedByParameter_EvenForAJsonRequest()
    {
        var r = await _client.PostAsync("/v1/evaluate", new StringContent(
            "{\"program\": \"y = x\", \"inputs\": {\"x\": {\"dtype\": \"int64\", \"data\": [-9223372036854775808, 5]}}, \"parameters\": {\"binary_data_output\": true}}",
            Encoding.UTF8, "application/json"));
        var body = await r.Content.ReadAsByteArrayAsync();
        int length = int.Parse(r.Headers.GetValues("Inference-Header-Content-Length").Single());
        Assert.Equal([long.MinValue, 5], MemoryMarshal.Cast<byte, long>(body.AsSpan(length)).ToArray());
        (await _client.Post("/v1/evaluate", new { program = "y = x", inputs = new { x = 1 }, parameters = new { binary_data_output = "yes" } }))
            .Problem(400, "invalid_argument");
        (await _client.Post("/v1/evaluate", new { program = "y = x", inputs = new { x = 1 }, parameters = new { colour = 1 } }))
            .Problem(400, "invalid_argument");
    }

    [Fact]
    public async Task NaNPayloadsAndEveryFloatClass_RoundTripBitExact()
    {
        var bits = TensorCodecTests.FloatBits;
        var values = bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var header = $"{{\"program\": \"y = identity(x)\", \"inputs\": {{\"x\": {Binary("float32", [values.Length], values.Length * 4)}}}}}";
        var (_, data, _) = await SendFramed(Framed("/v1/evaluate", header, Bytes(values), accept: "application/octet-stream"));
        Assert.Equal(bits, MemoryMarshal.Cast<byte, uint>(data).ToArray());
    }

    [Fact]
    public async Task BoolsAndEmptyTensors_AreFramedToo()
    {
        var header = "{\"program\": \"y = logical_not(b)\\nz = e * 2\", \"outputs\": [\"y\", \"z\"], \"inputs\": {" +
                     $"\"b\": {Binary("bool", [3], 3)}, \"e\": {Binary("float32", [0], 0)}}}}}";
        var r = await Send(Framed("/v1/evaluate", header, [0, 7, 1]));
        if (r.Status != HttpStatusCode.OK) Assert.Fail(r.Text);
        Assert.Equal([1.0, 0, 0], Values(r.Body.At("outputs", "y")));
        Assert.Equal([0], Shape(r.Body.At("outputs", "z")));
    }

    public static TheoryData<string, string, byte[], string> BadFrames => new()
    {
        // header value, tensor, bytes, expected words
        { "abc", Binary("float32", [2], 8), new byte[8], "must be one decimal integer" },
        { "-5", Binary("float32", [2], 8), new byte[8], "must be one decimal integer" },
        { "1", Binary("float32", [2], 8), new byte[8], "JSON header is 1 bytes" },
        { "999999", Binary("float32", [2], 8), new byte[8], "JSON header is 999999 bytes" },
        { "", Binary("float32", [2], 8), new byte[4], "only 4 bytes of binary data are left" },          // truncated
        { "", Binary("float32", [2], 8), new byte[12], "4 bytes of binary data follow the last tensor" },  // oversized
        { "", Binary("float32", [2], 4), new byte[4], "binary_data_size is 4, but shape [2] of float32 needs 8 bytes" },
        { "", Binary("float32", [2], -1), new byte[8], "binary_data_size must be an integer" },
        { "", "{\"dtype\": \"float32\", \"shape\": [2], \"data\": [1, 2], \"parameters\": {\"binary_data_size\": 8}}", new byte[8], "not from 'data'" },
        { "", "{\"dtype\": \"float32\", \"shape\": [2], \"parameters\": {}}", new byte[8], "parameters must hold binary_data_size" },
        { "", "{\"dtype\": \"float32\", \"parameters\": {\"binary_data_size\": 8}}", new byte[8], "needs a shape" },
        { "", "{\"dtype\": \"float32\", \"shape\": [-2], \"parameters\": {\"binary_data_size\": 8}}", new byte[8], "dimension" },
        { "", "{\"dtype\": \"float12\", \"shape\": [2], \"parameters\": {\"binary_data_size\": 8}}", new byte[8], "unknown dtype" },
        { "", "[[1], [2, 3]]", Array.Empty<byte>(), "ragged" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task InconsistentFrames_AreRefused(string lengthHeader, string tensor, byte[] data, string expected)
    {
        var header = $"{{\"program\": \"y = x\", \"inputs\": {{\"x\": {tensor}}}}}";
        var r = await Send(Framed("/v1/evaluate", header, data, lengthHeader.Length == 0 ? null : lengthHeader));
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Contains(expected, r.Text);
    }

    [Fact]
    public async Task AHeaderLengthThatCutsTheJson_IsMalformedJson()
    {
        var header = $"{{\"program\": \"y = x\", \"inputs\": {{\"x\": {Binary("float32", [2], 8)}}}}}";
        var r = await Send(Framed("/v1/evaluate", header, new byte[8], lengthHeader: (header.Length - 1).ToString()));
        r.Problem(400, "invalid_argument");
        Assert.Contains("malformed JSON", r.Text);
    }

    [Fact]
    public async Task InputsGivenTwice_AndAWrongContentType_AreRefused()
    {
        var header = $"{{\"program\": \"y = x\", \"inputs\": {{\"x\": {Binary("float32", [1], 4)}}}, \"inputs\": {{}}}}";
        (await Send(Framed("/v1/evaluate", header, new byte[4]))).Problem(400, "invalid_argument");
        header = $"{{\"program\": \"y = x\", \"inputs\": {{\"x\": {Binary("float32", [1], 4)}}}}}";
        (await Send(Framed("/v1/evaluate", header, new byte[4], contentType: "text/plain"))).Problem(415, "unsupported_media_type");
        (await Send(Framed("/v1/evaluate", header, new byte[4], contentType: "application/json"))).Ok();
    }
}
