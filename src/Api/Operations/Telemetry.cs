using System.Diagnostics;
using AutogradService.Api.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AutogradService.Api.Operations;

/// <summary>
/// OpenTelemetry traces and metrics. Spans: ASP.NET Core's server span for every REST and gRPC request (Grpc.AspNetCore
/// tags its own with <c>grpc.method</c> and <c>grpc.status_code</c>; both get <see cref="CodeTag"/>), outgoing HttpClient calls, and this service's own <see cref="Source"/>: an
/// <c>autograd.engine</c> span per computation (queue wait plus run, tagged with its outcome). Metrics: this service's
/// meter (<see cref="ServiceMetrics.MeterName"/>, the same figures as <c>/metrics</c>), ASP.NET Core's and Kestrel's.
/// Nothing leaves the process unless an OTLP endpoint is configured with the standard variables
/// (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, or the per-signal ones); <c>OTEL_SERVICE_NAME</c> names the service.
/// </summary>
public static class Telemetry
{
    public const string SourceName = "AutogradService.Api";

    public static readonly ActivitySource Source = new(SourceName, typeof(Telemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Tag carrying the contract's result code on spans (<c>ok</c> or an error code).</summary>
    public const string CodeTag = "autograd.code";

    private static readonly string[] OtlpSettings =
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"];

    public static WebApplicationBuilder AddOperations(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.Configure<ProblemDetailsOptions>(o => o.CustomizeProblemDetails += TraceIds.Stamp);

        bool exporting = OtlpSettings.Any(key => !string.IsNullOrWhiteSpace(builder.Configuration[key]));
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "autograd-service"))
            .WithTracing(t =>
            {
                t.AddSource(SourceName)
                    // Probes and scrapes every few seconds are noise in a trace store.
                    .AddAspNetCoreInstrumentation(o => o.Filter = http => !IsProbe(http.Request.Path))
                    .AddHttpClientInstrumentation();
                // With no trace store, recording spans nobody reads cost ~20% of a small request's CPU (profiled on C1).
                // Requests still get an activity (the trace id in error bodies and log scopes), and a caller that sends a
                // sampled traceparent still gets recorded spans.
                if (!exporting) t.SetSampler(new ParentBasedSampler(new AlwaysOffSampler()));
            })
            .WithMetrics(m => m
                .AddMeter(ServiceMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation());
        if (exporting) otel.UseOtlpExporter();
        return builder;
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || path.StartsWithSegments("/metrics");

    /// <summary>
    /// Tags a span with the request's result code. Only <c>internal</c> marks it failed: the other codes are answers the
    /// contract defines (as OpenTelemetry leaves 4xx server spans unset).
    /// </summary>
    public static void RecordOutcome(Activity? activity, string code)
    {
        if (activity is null) return;
        activity.SetTag(CodeTag, code);
        if (code == Errors.ErrorCatalog.Internal) activity.SetStatus(ActivityStatusCode.Error, code);
    }
}
