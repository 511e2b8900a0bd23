using System.Diagnostics.Metrics;
using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Engine.Memory;
using Prometheus;

namespace AutogradService.Api.Metrics;

/// <summary>
/// The Prometheus metrics served at <c>/metrics</c>: requests and latency by transport and method, engine queue and
/// workers, pooled bytes, open sessions, and limit rejections by error code. Gauges are read when scraped.
/// The same figures go to the .NET meter <see cref="MeterName"/>, which OpenTelemetry exports (Operations/Telemetry.cs).
/// </summary>
public sealed class ServiceMetrics
{
    public const string MeterName = "AutogradService.Api";

    private static readonly string[] LimitCodes =
    [
        ErrorCatalog.Overloaded, ErrorCatalog.RequestTooLarge, Engine.ErrorCodes.MemoryLimitExceeded,
        Engine.ErrorCodes.IterationLimitExceeded, Engine.ErrorCodes.DeadlineExceeded,
    ];

    private readonly Counter _requests;
    private readonly Histogram _latency;
    private readonly Counter _rejections;
    private readonly Counter<long> _requestCount;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _rejectionCount;

    public ServiceMetrics(EngineGate gate, Sessions.SessionStore sessions, Engine.Backends.Devices devices, IMeterFactory meters)
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
        var deviceMemory = factory.CreateGauge("autograd_device_memory_bytes", "Memory of each device this process computes on.", ["device", "kind"]);
        foreach (var d in devices.List()) deviceMemory.WithLabels(d.Name, d.Kind).Set(d.MemoryBytes);
        Registry.AddBeforeCollectCallback(() =>
        {
            queue.Set(gate.Waiting);
            running.Set(gate.Running);
            pooled.WithLabels("outstanding").Set(BufferPool.Shared.OutstandingBytes);
            pooled.WithLabels("retained").Set(BufferPool.Shared.RetainedBytes);
            open.Set(sessions.Count);
        });

        Meter = meters.Create(MeterName);
        _requestCount = Meter.CreateCounter<long>("autograd.requests", "{request}", "Requests handled, by transport, method and result code.");
        _duration = Meter.CreateHistogram<double>("autograd.request.duration", "s", "Request latency, by transport and method.");
        _rejectionCount = Meter.CreateCounter<long>("autograd.limit_rejections", "{request}", "Requests refused by a limit, by error code.");
        Meter.CreateObservableGauge("autograd.engine.queue_length", () => gate.Waiting, "{request}", "Requests waiting for an engine worker.");
        Meter.CreateObservableGauge("autograd.engine.running", () => gate.Running, "{computation}", "Computations running on engine workers.");
        Meter.CreateObservableGauge("autograd.pooled_bytes", () => new[]
        {
            new Measurement<long>(BufferPool.Shared.OutstandingBytes, new KeyValuePair<string, object?>("state", "outstanding")),
            new Measurement<long>(BufferPool.Shared.RetainedBytes, new KeyValuePair<string, object?>("state", "retained")),
        }, "By", "Bytes of the tensor buffer pool, by state.");
        Meter.CreateObservableGauge("autograd.open_sessions", () => sessions.Count, "{session}", "Open define-by-run sessions.");
        Meter.CreateObservableGauge("autograd.device.memory", () => devices.List().Select(d => new Measurement<long>(d.MemoryBytes,
            new KeyValuePair<string, object?>("device", d.Name), new KeyValuePair<string, object?>("kind", d.Kind))),
            "By", "Memory of each device this process computes on.");
    }

    /// <summary>This host's meter (one per host, so test hosts in one process do not share instruments).</summary>
    public Meter Meter { get; }

    /// <summary>This service's own registry (so test hosts in one process do not share counters).</summary>
    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    public void Record(string transport, string method, string code, TimeSpan elapsed)
    {
        _requests.WithLabels(transport, method, code).Inc();
        _latency.WithLabels(transport, method).Observe(elapsed.TotalSeconds);
        if (Array.IndexOf(LimitCodes, code) >= 0) _rejections.WithLabels(code).Inc();

        var tags = new System.Diagnostics.TagList { { "transport", transport }, { "method", method }, { "code", code } };
        _requestCount.Add(1, tags);
        _duration.Record(elapsed.TotalSeconds, new System.Diagnostics.TagList { { "transport", transport }, { "method", method } });
        if (Array.IndexOf(LimitCodes, code) >= 0) _rejectionCount.Add(1, new KeyValuePair<string, object?>("code", code));
        // The request's server span (REST or gRPC) carries the contract's code too.
        Operations.Telemetry.RecordOutcome(System.Diagnostics.Activity.Current, code);
    }
}
