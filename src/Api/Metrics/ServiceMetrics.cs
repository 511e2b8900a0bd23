using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Engine.Memory;
using Prometheus;

namespace AutogradService.Api.Metrics;

/// <summary>
/// The Prometheus metrics served at <c>/metrics</c>: requests and latency by transport and method, engine queue and
/// workers, pooled bytes, open sessions, and limit rejections by error code. Gauges are read when scraped.
/// </summary>
public sealed class ServiceMetrics
{
    private static readonly string[] LimitCodes =
    [
        ErrorCatalog.Overloaded, ErrorCatalog.RequestTooLarge, Engine.ErrorCodes.MemoryLimitExceeded,
        Engine.ErrorCodes.IterationLimitExceeded, Engine.ErrorCodes.DeadlineExceeded,
    ];

    private readonly Counter _requests;
    private readonly Histogram _latency;
    private readonly Counter _rejections;

    public ServiceMetrics(EngineGate gate, Sessions.SessionStore sessions)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        _requests = factory.CreateCounter("autograd_requests_total", "Requests handled, by transport, method and result code.",
            ["transport", "method", "code"]);
        _latency = factory.CreateHistogram("autograd_request_duration_seconds", "Request latency, by transport and method.",
            new HistogramConfiguration
            {
                LabelNames = ["transport", "method"],
                Buckets = Histogram.ExponentialBuckets(0.0001, 2, 20),
            });
        _rejections = factory.CreateCounter("autograd_limit_rejections_total", "Requests refused by a limit, by error code.", ["code"]);
        var queue = factory.CreateGauge("autograd_engine_queue_length", "Requests waiting for an engine worker.");
        var running = factory.CreateGauge("autograd_engine_running", "Computations running on engine workers.");
        var pooled = factory.CreateGauge("autograd_pooled_bytes", "Bytes of the tensor buffer pool, by state.", ["state"]);
        var open = factory.CreateGauge("autograd_open_sessions", "Open define-by-run sessions.");
        Registry.AddBeforeCollectCallback(() =>
        {
            queue.Set(gate.Waiting);
            running.Set(gate.Running);
            pooled.WithLabels("outstanding").Set(BufferPool.Shared.OutstandingBytes);
            pooled.WithLabels("retained").Set(BufferPool.Shared.RetainedBytes);
            open.Set(sessions.Count);
        });
    }

    /// <summary>This service's own registry (so test hosts in one process do not share counters).</summary>
    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    public void Record(string transport, string method, string code, TimeSpan elapsed)
    {
        _requests.WithLabels(transport, method, code).Inc();
        _latency.WithLabels(transport, method).Observe(elapsed.TotalSeconds);
        if (Array.IndexOf(LimitCodes, code) >= 0) _rejections.WithLabels(code).Inc();
    }
}
