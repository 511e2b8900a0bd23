using AutogradService.Api.Execution;
using AutogradService.Api.Options;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Operations;

/// <summary>
/// Readiness (<c>/readyz</c>, gRPC health): whether a load balancer should send this instance more work.
/// <list type="bullet">
/// <item>Unhealthy (503, NOT_SERVING) once the host is stopping, so balancers drain it while in-flight requests
/// finish, and while the engine queue is full, when the next request would be refused with <c>overloaded</c>.</item>
/// <item>Degraded (still 200, SERVING) while every worker is busy and requests wait in the queue.</item>
/// <item>Healthy otherwise.</item>
/// </list>
/// Liveness (<c>/healthz</c>) runs no check: a saturated or draining process is alive and must not be restarted.
/// </summary>
public sealed class ReadinessCheck(EngineGate gate, IOptions<LimitsOptions> limits, IHostApplicationLifetime lifetime, Engine.Backends.Devices devices)
    : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        long waiting = gate.Waiting, running = gate.Running;
        int queueLength = limits.Value.EngineQueueLength;
        var data = new Dictionary<string, object>
        {
            ["engine_running"] = running,
            ["engine_workers"] = gate.Concurrency,
            ["engine_waiting"] = waiting,
            ["engine_queue_length"] = queueLength,
            ["devices"] = string.Join(",", devices.List().Select(d => d.Name)),
            ["default_device"] = devices.Default,
        };
        var result = lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("the service is stopping: in-flight requests finish, new ones belong elsewhere", data: data)
            : running >= gate.Concurrency && waiting >= queueLength
                ? HealthCheckResult.Unhealthy($"the engine is saturated: {running} workers busy and the queue full ({waiting}/{queueLength})", data: data)
                : waiting > 0
                    ? HealthCheckResult.Degraded($"every engine worker is busy; {waiting} of {queueLength} queue places taken", data: data)
                    : HealthCheckResult.Healthy($"{running} of {gate.Concurrency} engine workers busy", data: data);
        return Task.FromResult(result);
    }
}
