using System.Diagnostics;
using AutogradService.Api.Operations;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Api.Tests.Operations;

/// <summary>
/// OpenTelemetry spans: every REST and gRPC request is one server span continuing the caller's <c>traceparent</c>, and
/// each computation one <c>autograd.engine</c> span of the service's own ActivitySource under it; both carry the
/// contract's result code.
/// </summary>
public sealed class TelemetryTests(ObservedService service) : IClassFixture<ObservedService>
{
    private static object C1 => new { program = Cases.C1Program, inputs = new { x = Cases.X } };

    /// <summary>The spans of one trace, once its server span has ended (it ends after the response is sent).</summary>
    private async Task<(Activity Server, Activity[] Engine)> SpansOf(string traceId, string parentSpanId)
    {
        Activity[] Trace() => service.Spans.Snapshot().Where(a => a.TraceId.ToHexString() == traceId).ToArray();
        await JsonKit.Eventually(() => Trace().Any(a => a.Kind == ActivityKind.Server), "the server span to end");
        var spans = Trace();
        var server = Assert.Single(spans, a => a.Kind == ActivityKind.Server);
        Assert.Equal(parentSpanId, server.ParentSpanId.ToHexString());
        var engine = spans.Where(a => a.Source.Name == Telemetry.SourceName).ToArray();
        Assert.All(engine, e => Assert.Equal(server.SpanId, e.ParentSpanId));
        return (server, engine);
    }

    [Fact]
    public async Task Rest_RequestIsOneServerSpan_WithOneEngineSpan()
    {
        var (traceparent, traceId, parent) = ObservedService.NewTraceparent();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/gradient") { Content = new StringContent(JsonKit.Serialize(C1), System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("traceparent", traceparent);
        (await JsonKit.SendAsync(service.CreateClient(), request)).Ok();

        var (server, engine) = await SpansOf(traceId, parent);
        Assert.Equal("ok", server.GetTagItem(Telemetry.CodeTag));
        var compute = Assert.Single(engine);
        Assert.Equal("autograd.engine", compute.OperationName);
        Assert.Equal("ok", compute.GetTagItem(Telemetry.CodeTag));
        Assert.NotNull(compute.GetTagItem("autograd.engine.queue_wait_ms"));
    }

    [Fact]
    public async Task Rest_FailedRequest_SpansCarryTheCode()
    {
        var (traceparent, traceId, parent) = ObservedService.NewTraceparent();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/evaluate")
        {
            Content = new StringContent(JsonKit.Serialize(new { program = "y = frobnicate(x)", inputs = new { x = 1 } }), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", traceparent);
        (await JsonKit.SendAsync(service.CreateClient(), request)).Problem(400, "invalid_graph");

        var (server, engine) = await SpansOf(traceId, parent);
        Assert.Equal("invalid_graph", server.GetTagItem(Telemetry.CodeTag));
        Assert.Equal("invalid_graph", Assert.Single(engine).GetTagItem(Telemetry.CodeTag));
        // A contract error is an answer, not a server failure.
        Assert.NotEqual(ActivityStatusCode.Error, server.Status);
    }

    [Fact]
    public async Task Grpc_CallIsOneServerSpan_WithOneEngineSpan()
    {
        var (traceparent, traceId, parent) = ObservedService.NewTraceparent();
        var request = new GradientRequest { Computation = new Computation { Program = Cases.C1Program } };
        request.Inputs["x"] = Tensors.F32(Cases.X);
        await service.Autodiff.GradientAsync(request, new Metadata { { "traceparent", traceparent } });

        var (server, engine) = await SpansOf(traceId, parent);
        Assert.Equal("ok", server.GetTagItem(Telemetry.CodeTag));
        Assert.Equal("ok", Assert.Single(engine).GetTagItem(Telemetry.CodeTag));
    }
    [Fact]
    public async Task Rest_WithoutATraceStore_AnUntracedRequestRecordsNoSpans_ButKeepsItsTraceId()
    {
        // ObservedService configures no OTLP endpoint: root requests are not recorded (their spans would go nowhere).
        using var untraced = new HttpRequestMessage(HttpMethod.Post, "/v1/evaluate")
        {
            Content = new StringContent(JsonKit.Serialize(new { program = "y = frobnicate(x)", inputs = new { x = 1 } }), System.Text.Encoding.UTF8, "application/json"),
        };
        var problem = (await JsonKit.SendAsync(service.CreateClient(), untraced)).Problem(400, "invalid_graph");
        string untracedId = problem.Str(TraceIds.ProblemDetailsKey);
        Assert.Matches("^[0-9a-f]{32}$", untracedId);

        // A traced request after it is recorded; by the time its server span has ended, the untraced one has too.
        var (traceparent, traceId, parent) = ObservedService.NewTraceparent();
        using var traced = new HttpRequestMessage(HttpMethod.Post, "/v1/gradient") { Content = new StringContent(JsonKit.Serialize(C1), System.Text.Encoding.UTF8, "application/json") };
        traced.Headers.Add("traceparent", traceparent);
        (await JsonKit.SendAsync(service.CreateClient(), traced)).Ok();
        await SpansOf(traceId, parent);
        Assert.DoesNotContain(service.Spans.Snapshot(), a => a.TraceId.ToHexString() == untracedId);
    }
}
