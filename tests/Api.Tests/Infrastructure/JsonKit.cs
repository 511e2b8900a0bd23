using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>A REST reply: status, headers and the parsed body (JSON or problem details).</summary>
public sealed record RestReply(HttpStatusCode Status, string? ContentType, HttpResponseHeaders Headers, JsonElement Body, string Text)
{
    public string? Code => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("code", out var c) ? c.GetString() : null;

    public string Str(string property) => Body.GetProperty(property).GetString() ?? "";

    public RestReply Ok()
    {
        Assert.True(Status is HttpStatusCode.OK or HttpStatusCode.Created, $"expected success, got {(int)Status}: {Text}");
        return this;
    }

    /// <summary>Asserts an RFC 9457 problem with the contract's code and HTTP status.</summary>
    public RestReply Problem(int status, string code)
    {
        Assert.True((int)Status == status, $"expected {status} {code}, got {(int)Status}: {Text}");
        Assert.Equal("application/problem+json", ContentType);
        Assert.Equal(code, Code);
        Assert.Equal(status, Body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(Body.GetProperty("detail").GetString()));
        Assert.DoesNotContain("   at ", Text); // no stack traces to clients
        return this;
    }
}

/// <summary>JSON helpers: request bodies from anonymous objects (property names as written), tensors back to numbers.</summary>
public static class JsonKit
{
    // Relaxed escaping: base64 ('+') and program text ('<', '>') go out as written, and large b64 bodies serialize fast.
    private static readonly JsonSerializerOptions Options = new() // deep enough for 16 nested subgraphs
    {
        MaxDepth = 256,
        PropertyNamingPolicy = null,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Serialize(object body) => body as string ?? JsonSerializer.Serialize(body, Options);

    public static async Task<RestReply> Post(this HttpClient client, string path, object body, string? accept = null, CancellationToken cancellation = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(Serialize(body), Encoding.UTF8, "application/json") };
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        return await SendAsync(client, request, cancellation);
    }

    public static async Task<RestReply> Put(this HttpClient client, string path, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, path) { Content = new StringContent(Serialize(body), Encoding.UTF8, "application/json") };
        return await SendAsync(client, request);
    }

    public static async Task<RestReply> Get(this HttpClient client, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        return await SendAsync(client, request);
    }

    public static async Task<RestReply> Delete(this HttpClient client, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, path);
        return await SendAsync(client, request);
    }

    public static async Task<RestReply> SendAsync(HttpClient client, HttpRequestMessage request, CancellationToken cancellation = default)
    {
        using var response = await client.SendAsync(request, cancellation);
        var text = await response.Content.ReadAsStringAsync(cancellation);
        var contentType = response.Content.Headers.ContentType?.MediaType;
        JsonElement body = default;
        if (text.Length > 0 && (contentType?.Contains("json") ?? false) && !contentType.Contains("ndjson"))
        {
            using var doc = JsonDocument.Parse(text);
            body = doc.RootElement.Clone();
        }
        return new RestReply(response.StatusCode, contentType, response.Headers, body, text);
    }

    /// <summary>The flat values of a response tensor: <c>{dtype, shape, data}</c> (NaN and infinities as strings) or <c>{dtype, shape, b64}</c>.</summary>
    public static double[] Values(JsonElement tensor)
    {
        if (tensor.TryGetProperty("b64", out var b64))
        {
            var bytes = Convert.FromBase64String(b64.GetString()!);
            return tensor.GetProperty("dtype").GetString() switch
            {
                "float32" => MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(v => (double)v).ToArray(),
                "float64" => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
                "int64" => MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(v => (double)v).ToArray(),
                _ => bytes.Select(b => (double)b).ToArray(),
            };
        }
        return tensor.GetProperty("data").EnumerateArray().Select(Number).ToArray();
    }

    public static double Number(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        _ => e.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var s => throw new FormatException($"not a number: {s}"),
        },
    };

    public static int[] Shape(JsonElement tensor) => tensor.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();

    public static string DType(JsonElement tensor) => tensor.GetProperty("dtype").GetString()!;

    /// <summary>The single value of a scalar (or one-element) tensor.</summary>
    public static double One(JsonElement tensor) => Assert.Single(Values(tensor));

    public static JsonElement At(this JsonElement e, params string[] path)
    {
        foreach (var p in path) e = e.GetProperty(p);
        return e;
    }

    /// <summary>Polls until <paramref name="condition"/> holds (or fails after <paramref name="seconds"/>).</summary>
    public static async Task Eventually(Func<bool> condition, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(10);
        }
    }

    /// <summary>Asserts each element is within a relative tolerance.</summary>
    public static void Close(double[] expected, double[] actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}
