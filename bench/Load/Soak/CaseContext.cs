using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Load.Soak;

/// <summary>What a case run gets: the shared connections, this client's random source, and the run's fixtures.</summary>
public sealed class CaseContext(Connections connections, Random rng, Fixtures fixtures)
{
    public Random Rng { get; } = rng;
    public Fixtures Fixtures { get; } = fixtures;
    public Autodiff.AutodiffClient Autodiff => connections.Autodiff;
    public Sessions.SessionsClient Sessions => connections.Sessions;

    /// <summary>A REST answer: its contract code, status and parsed body (null when not JSON).</summary>
    public sealed class RestAnswer(int status, string code, JsonDocument? body) : IDisposable
    {
        public int Status { get; } = status;
        public string Code { get; } = code;
        public JsonElement Body => body?.RootElement ?? default;
        public bool Ok => Code == "ok";
        public void Dispose() => body?.Dispose();
    }

    public Task<RestAnswer> PostAsync(string path, string json) => SendAsync(HttpMethod.Post, path, Numbers.Utf8(json), "application/json");

    public async Task<RestAnswer> SendAsync(HttpMethod method, string path, byte[]? body, string? contentType)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (contentType is not null) request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        using var response = await connections.Rest.SendAsync(request);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        JsonDocument? doc = null;
        try
        {
            if (bytes.Length > 0) doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException)
        {
            // Not JSON: the code falls back to the status.
        }
        string? code = null;
        if (doc is { RootElement.ValueKind: JsonValueKind.Object } d && d.RootElement.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String)
            code = c.GetString();
        return new RestAnswer((int)response.StatusCode, Contract.RestCode((int)response.StatusCode, code), doc);
    }

    /// <summary>A streamed gradient (<c>Accept: application/x-ndjson</c>): the status and the whole body.</summary>
    public async Task<(int Status, string Text)> PostNdJsonAsync(string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(Numbers.Utf8(json)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await connections.Rest.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A gRPC call's outcome: the result, or the contract code of its failure.</summary>
    public static async Task<(T? Result, string Code)> GrpcAsync<T>(Func<AsyncUnaryCall<T>> call) where T : class
    {
        try
        {
            return (await call(), "ok");
        }
        catch (RpcException e)
        {
            return (null, CodeOf(e));
        }
    }

    public static string CodeOf(RpcException e) => Contract.GrpcCode(e.StatusCode, e.Trailers.GetValue("autograd-code"));

    /// <summary>
    /// Sends hand-made bytes as a gRPC request (5-byte frame header plus message) over raw HTTP/2, as a client with a
    /// broken serializer would, and reads grpc-status and autograd-code from the headers or trailers.
    /// </summary>
    public async Task<string> RawGrpcAsync(string method, byte[] frame)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, method)
        {
            Content = new ByteArrayContent(frame),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        using var response = await connections.RawH2.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode != HttpStatusCode.OK) return $"http_{(int)response.StatusCode}";
        await response.Content.CopyToAsync(Stream.Null);
        string? Header(string name) =>
            response.TrailingHeaders.TryGetValues(name, out var t) ? t.FirstOrDefault()
            : response.Headers.TryGetValues(name, out var h) ? h.FirstOrDefault() : null;
        var status = Header("grpc-status");
        if (status is null || !int.TryParse(status, out int s)) return "grpc_no_status";
        return Contract.GrpcCode((StatusCode)s, Header("autograd-code"));
    }

    /// <summary>A gRPC frame: uncompressed flag, big-endian length, message bytes.</summary>
    public static byte[] Frame(byte[] message, uint? declaredLength = null)
    {
        var frame = new byte[5 + message.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), declaredLength ?? (uint)message.Length);
        message.CopyTo(frame, 5);
        return frame;
    }
}
