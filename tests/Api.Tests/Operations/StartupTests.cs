using System.Text.Json;
using System.Text.RegularExpressions;
using AutogradService.Api.Operations;
using AutogradService.Api.Tests.Infrastructure;

namespace AutogradService.Api.Tests.Operations;

/// <summary>
/// The real binary (<c>dotnet AutogradService.Api.dll</c>): a bad setting ends start-up with exit code 78 and one line on
/// stderr naming it, no stack trace; a running service writes one JSON object per log line, and the lines of a request
/// carry the trace id its error body names.
/// </summary>
public sealed class StartupTests : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _models = Directory.CreateTempSubdirectory("autograd-startup-tests-").FullName;

    [Theory]
    [InlineData("Limits:TimeoutMs", "-5")]
    [InlineData("Limits:TimeoutMs", "soon")]
    [InlineData("Limits:MaxRequestBodyBytes", "-1")]
    [InlineData("Limits:EngineQueueLength", "-3")]
    [InlineData("Server:BindAddress", "example.com")]
    [InlineData("Server:RestPort", "70000")]
    [InlineData("Server:DefaultDevice", "tpu")]
    [InlineData("Server:Gpu", "maybe")]
    public async Task BadSetting_EndsStartUpWithOneLineNamingIt(string key, string value)
    {
        // Later arguments win: the bad setting goes last.
        using var binary = ServiceBinary.Start($"--Server:ModelRepositoryPath={_models}", "--Server:RestPort=0", "--Server:GrpcPort=0", $"--{key}={value}");
        Assert.True(await binary.ExitedWithin(StartTimeout), "the service kept running with a bad setting");
        var stderr = binary.Stderr.Where(l => l.Length > 0).ToArray();
        var line = Assert.Single(stderr);
        Assert.StartsWith("configuration error: ", line);
        Assert.Contains(key, line);
        Assert.Equal(StartupErrors.ExitCode, binary.ExitCode);
        Assert.DoesNotContain(binary.Stdout, l => l.Contains("   at ") || l.Contains("Exception"));
    }

    [Fact]
    public async Task TheSameGrpcAndRestPort_IsRefusedNamingBoth()
    {
        using var binary = ServiceBinary.Start("--Server:RestPort=18099", "--Server:GrpcPort=18099", $"--Server:ModelRepositoryPath={_models}");
        Assert.True(await binary.ExitedWithin(StartTimeout));
        var line = Assert.Single(binary.Stderr, l => l.Length > 0);
        Assert.Contains("Server:RestPort", line);
        Assert.Contains("Server:GrpcPort", line);
        Assert.Equal(StartupErrors.ExitCode, binary.ExitCode);
    }

    [Fact]
    public async Task LogLines_AreJson_AndARequestsLinesCarryTheTraceIdOfItsErrorBody()
    {
        using var binary = ServiceBinary.Start("--Server:RestPort=0", "--Server:GrpcPort=0", $"--Server:ModelRepositoryPath={_models}",
            // The hosting diagnostics log each request's start and end: lines inside the request to look at.
            "--Logging:LogLevel:Microsoft.AspNetCore.Hosting=Information");
        // No propagator: other hosts' tracing in this process would otherwise replace the traceparent sent below.
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, ActivityHeadersPropagator = null }) { Timeout = TimeSpan.FromSeconds(10) };
        var rest = await RestAddressAsync(binary, http);

        var (traceparent, traceId, _) = ObservedService.NewTraceparent();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{rest}/v1/evaluate")
        {
            Content = new StringContent(JsonKit.Serialize(new { program = "y = frobnicate(x)", inputs = new { x = 1 } }), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", traceparent);
        var reply = (await JsonKit.SendAsync(http, request)).Problem(400, "invalid_graph");
        Assert.Equal(traceId, reply.Str(TraceIds.ProblemDetailsKey));

        JsonElement[] RequestLines() => binary.Stdout.Select(Parse)
            .Where(log => Scopes(log).Any(s => s.TryGetProperty("RequestPath", out var p) && p.GetString() == "/v1/evaluate")).ToArray();
        await JsonKit.Eventually(() => RequestLines().Length >= 2, "the request's start and end to be logged", seconds: 20);
        Assert.All(RequestLines(), log =>
            Assert.Contains(Scopes(log), s => s.TryGetProperty("TraceId", out var t) && t.GetString() == traceId));
        Assert.All(binary.Stdout, line => Parse(line));
    }

    /// <summary>The REST address: of the two the service listens on, the one where /healthz answers over HTTP/1.1.</summary>
    private static async Task<string> RestAddressAsync(ServiceBinary binary, HttpClient http)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(binary.HasExited, $"the service exited: {string.Join('\n', binary.Stderr)}");
            var addresses = binary.Stdout.Select(l => Regex.Match(l, @"Now listening on: (http://[0-9.]+:[0-9]+)"))
                .Where(m => m.Success).Select(m => m.Groups[1].Value);
            foreach (var address in addresses)
            {
                try
                {
                    using var response = await http.GetAsync($"{address}/healthz");
                    if (response.IsSuccessStatusCode) return address;
                }
                catch (HttpRequestException)
                {
                    // Not answering yet, or the gRPC port (HTTP/2 only).
                }
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"the service did not start:\n{string.Join('\n', binary.Stdout.TakeLast(20))}");
    }

    private static JsonElement Parse(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"a log line is not one JSON object ({e.Message}): {line}");
        }
    }

    private static IEnumerable<JsonElement> Scopes(JsonElement log) =>
        log.TryGetProperty("Scopes", out var scopes) ? scopes.EnumerateArray() : [];

    public void Dispose()
    {
        try
        {
            Directory.Delete(_models, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}
