using System.Diagnostics.Metrics;
using AutogradService.Api.Execution;
using AutogradService.Api.Metrics;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Memory;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace AutogradService.Api.Tests.Errors;

/// <summary>
/// cancelled: a client that goes away mid-computation (REST connection aborted, gRPC call cancelled) is counted as
/// <c>cancelled</c> in the metrics (Prometheus and the OpenTelemetry meter), logged at Information with the request's
/// trace id and never at Error, and its computation stops and gives every pooled byte back. A request's own timeout
/// stays <c>deadline_exceeded</c>. Serial: the buffer pool is shared by every host in the process.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class CancellationTests(ObservedService service) : IClassFixture<ObservedService>, IDisposable
{
    private readonly HttpClient _client = service.CreateClient();
    private readonly MeterListener _meter = new();
    private readonly List<string> _meteredCodes = [];

    private void ListenToRequestCounts()
    {
        var ours = service.Get<ServiceMetrics>().Meter;
        _meter.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == ours && instrument.Name == "autograd.requests") listener.EnableMeasurementEvents(instrument);
        };
        _meter.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "code")
                    lock (_meteredCodes) _meteredCodes.Add((string)tag.Value!);
        });
        _meter.Start();
    }

    private bool Metered(string code)
    {
        lock (_meteredCodes) return _meteredCodes.Contains(code);
    }

    private async Task<long> WarmAsync()
    {
        (await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        return BufferPool.Shared.OutstandingBytes;
    }

    private async Task SettledAt(long before)
    {
        var gate = service.Get<EngineGate>();
        await JsonKit.Eventually(() => gate.Running == 0, "the abandoned computation to stop");
        await JsonKit.Eventually(() => BufferPool.Shared.OutstandingBytes == before,
            $"pooled bytes to return to {before} (now {BufferPool.Shared.OutstandingBytes})", seconds: 5);
    }

    private async Task WhileRunning(Func<bool> done)
    {
        var gate = service.Get<EngineGate>();
        await JsonKit.Eventually(() => gate.Running == 1 || done(), "the long request to occupy a worker");
        Assert.False(done(), "the long request ended before it was cancelled");
    }

    /// <summary>autograd_requests_total for one transport, method and code, as /metrics serves it.</summary>
    private async Task<double> Count(string transport, string method, string code) =>
        (await _client.GetStringAsync("/metrics")).Split('\n')
        .Where(l => l.StartsWith("autograd_requests_total{", StringComparison.Ordinal) && l.Contains($"transport=\"{transport}\"")
                    && l.Contains(method) && l.Contains($"code=\"{code}\""))
        .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    private async Task<double[]> Counts(string transport, string method) =>
        [await Count(transport, method, "cancelled"), await Count(transport, method, "deadline_exceeded"), await Count(transport, method, "internal")];

    private void AssertLoggedAsCancelled(string traceId)
    {
        var entries = service.Logs.Entries;
        Assert.DoesNotContain(entries, e => e.Level >= LogLevel.Error);
        var entry = Assert.Single(entries, e => e.TraceId == traceId && e.Message.Contains("cancelled"));
        Assert.Equal(LogLevel.Information, entry.Level);
    }

    [Fact]
    public async Task Rest_ClientAbortsMidRequest_IsCancelled_NotAnError_AndThePoolReturns()
    {
        ListenToRequestCounts();
        long before = await WarmAsync();
        var counted = await Counts("rest", "POST /v1/evaluate\"");
        var (traceparent, traceId, _) = ObservedService.NewTraceparent();
        using var abort = new CancellationTokenSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/evaluate")
        {
            Content = new StringContent(JsonKit.Serialize(Cases.EndlessLoopRequest(100_000, timeoutMs: 20_000)), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", traceparent);
        var call = _client.SendAsync(request, abort.Token);
        await WhileRunning(() => call.IsCompleted);
        abort.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await SettledAt(before);

        await JsonKit.Eventually(() => Metered("cancelled"), "the meter to count the request as cancelled");
        // One more cancelled; no more deadline_exceeded or internal.
        Assert.Equal([counted[0] + 1, counted[1], counted[2]], await Counts("rest", "POST /v1/evaluate\""));
        AssertLoggedAsCancelled(traceId);
    }

    [Fact]
    public async Task Grpc_ClientCancelsTheCall_IsCancelled_NotAnError_AndThePoolReturns()
    {
        long before = await WarmAsync();
        var counted = await Counts("grpc", "Autodiff/Evaluate\"");
        var (traceparent, traceId, _) = ObservedService.NewTraceparent();
        var request = new EvaluateRequest { Computation = new Computation { Graph = Cases.EndlessLoop().ToProto() } };
        request.Inputs["i0"] = Tensors.F32Scalar(0);
        request.Inputs["x0"] = Tensors.F32Raw(new float[100_000]);
        using var abort = new CancellationTokenSource();
        var call = service.Autodiff.EvaluateAsync(request, new Metadata { { "traceparent", traceparent } }, cancellationToken: abort.Token).ResponseAsync;
        await WhileRunning(() => call.IsCompleted);
        abort.Cancel();
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        await SettledAt(before);

        await JsonKit.Eventually(() => service.Logs.Entries.Any(l => l.TraceId == traceId), "the server to log the cancellation");
        Assert.Equal([counted[0] + 1, counted[1], counted[2]], await Counts("grpc", "Autodiff/Evaluate\""));
        AssertLoggedAsCancelled(traceId);
    }

    [Fact]
    public async Task Rest_OwnTimeout_StaysDeadlineExceeded()
    {
        long before = await WarmAsync();
        var counted = await Counts("rest", "POST /v1/evaluate\"");
        (await _client.Post("/v1/evaluate", Cases.EndlessLoopRequest(100_000, timeoutMs: 100))).Problem(504, "deadline_exceeded");
        await SettledAt(before);
        Assert.Equal([counted[0], counted[1] + 1, counted[2]], await Counts("rest", "POST /v1/evaluate\""));
    }

    public void Dispose()
    {
        _meter.Dispose();
        _client.Dispose();
    }
}
