using AutogradService.Api.Operations;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Api.Tests.Operations;

/// <summary>
/// Every error body carries the request's trace id — REST problem details' <c>trace_id</c>, the gRPC <c>trace-id</c>
/// trailer — the caller's own when it sent <c>traceparent</c>, so an error report leads to the server's logs and spans.
/// </summary>
public sealed class TraceIdTests(DefaultService service) : IClassFixture<DefaultService>
{
    private static readonly System.Text.RegularExpressions.Regex TraceIdForm = new("^[0-9a-f]{32}$");

    [Fact]
    public async Task Rest_ProblemDetails_CarryTheCallersTraceId()
    {
        var (traceparent, traceId, _) = ObservedService.NewTraceparent();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/evaluate")
        {
            Content = new StringContent(JsonKit.Serialize(new { program = "y = frobnicate(x)", inputs = new { x = 1 } }), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", traceparent);
        var r = (await JsonKit.SendAsync(service.CreateClient(), request)).Problem(400, "invalid_graph");
        Assert.Equal(traceId, r.Str(TraceIds.ProblemDetailsKey));
    }

    [Fact]
    public async Task Rest_ProblemDetails_WithoutTraceparent_StillCarryATraceId()
    {
        var client = service.CreateClient();
        var a = (await client.Delete("/v1/sessions/no-such-session")).Problem(404, "not_found");
        var b = (await client.Delete("/v1/sessions/no-such-session")).Problem(404, "not_found");
        Assert.Matches(TraceIdForm, a.Str(TraceIds.ProblemDetailsKey));
        Assert.NotEqual(a.Str(TraceIds.ProblemDetailsKey), b.Str(TraceIds.ProblemDetailsKey));
    }

    [Fact]
    public async Task Grpc_Errors_CarryTheTraceIdTrailer()
    {
        var (traceparent, traceId, _) = ObservedService.NewTraceparent();
        var request = new EvaluateRequest { Computation = new Computation { Program = "y = frobnicate(x)" } };
        request.Inputs["x"] = Tensors.F32Scalar(1);
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => service.Autodiff.EvaluateAsync(request, new Metadata { { "traceparent", traceparent } }).ResponseAsync);
        Assert.Equal(traceId, e.Trailers.GetValue(TraceIds.GrpcTrailer));

        var without = await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
        Assert.Matches(TraceIdForm, without.Trailers.GetValue(TraceIds.GrpcTrailer));
    }
}
