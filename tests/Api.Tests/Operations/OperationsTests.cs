using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using Grpc.Health.V1;

namespace AutogradService.Api.Tests.Operations;

/// <summary>Health, readiness, gRPC health and reflection, gRPC-Web on the REST port, OpenAPI, the API page and metrics.</summary>
public sealed class OperationsTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/readyz")]
    public async Task HealthEndpoints(string path)
    {
        using var response = await _client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task GrpcHealth_IsServing()
    {
        var health = new Health.HealthClient(service.Channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Fact]
    public async Task GrpcReflection_ListsTheServices()
    {
        var reflection = new global::Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(service.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new global::Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(default));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToArray();
        Assert.Contains("autograd.v1.Autodiff", services);
        Assert.Contains("autograd.v1.Sessions", services);
        Assert.Contains("autograd.v1.Models", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task GrpcWeb_OnTheRestPort()
    {
        // An empty Ping message in one gRPC-Web frame: flag 0, length 0.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/autograd.v1.Autodiff/Ping") { Content = new ByteArrayContent(new byte[5]) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc-web");
        request.Version = HttpVersion.Version11;
        using var response = await _client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("application/grpc-web", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Contains("grpc-status:0", System.Text.Encoding.ASCII.GetString(body).Replace(" ", ""));
    }

    [Fact]
    public async Task OpenApi_DescribesTheV1Paths_AndTheApiPageIsServed()
    {
        var doc = (await _client.Get("/openapi/v1.json")).Ok();
        Assert.StartsWith("3.", doc.Str("openapi"));
        var paths = doc.Body.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var path in new[]
                 {
                     "/v1/evaluate", "/v1/gradient", "/v1/jvp", "/v1/jacobian", "/v1/hessian", "/v1/inspect", "/v1/ops",
                     "/v1/sessions", "/v1/sessions/{id}/commands", "/v1/sessions/{id}", "/v1/models", "/v1/models/{name}",
                 })
            Assert.Contains(path, paths);

        using var page = await _client.GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Metrics_CountRequestsByTransportAndCode()
    {
        (await _client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        (await _client.Post("/v1/evaluate", new { program = "y = frobnicate(x)", inputs = new { x = 1 } })).Problem(400, "invalid_graph");
        (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new float[100] }, limits = new { memory_bytes = 100 } }))
            .Problem(422, "memory_limit_exceeded");
        await service.Autodiff.PingAsync(new Contracts.V1.PingRequest());

        var text = await _client.GetStringAsync("/metrics");
        var lines = text.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("autograd_requests_total{") && l.Contains("transport=\"rest\"") && l.Contains("POST /v1/gradient") && l.Contains("code=\"ok\""));
        Assert.Contains(lines, l => l.StartsWith("autograd_requests_total{") && l.Contains("transport=\"rest\"") && l.Contains("code=\"invalid_graph\""));
        Assert.Contains(lines, l => l.StartsWith("autograd_requests_total{") && l.Contains("transport=\"grpc\"") && l.Contains("Ping"));
        Assert.Contains(lines, l => l.StartsWith("autograd_limit_rejections_total{") && l.Contains("code=\"memory_limit_exceeded\""));
        foreach (var name in new[] { "autograd_request_duration_seconds_bucket", "autograd_engine_queue_length", "autograd_engine_running", "autograd_pooled_bytes", "autograd_open_sessions" })
            Assert.Contains(lines, l => l.StartsWith(name));
    }
}
