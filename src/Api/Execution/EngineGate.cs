using System.Threading.RateLimiting;
using AutogradService.Api.Errors;
using AutogradService.Api.Options;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Execution;

/// <summary>
/// The bounded engine pool: at most <see cref="LimitsOptions.EffectiveConcurrency"/> computations run at once (about one
/// per core, so intra-op work never oversubscribes), at most <see cref="LimitsOptions.EngineQueueLength"/> wait in
/// arrival order, and the next one is refused at once with <c>overloaded</c> and a Retry-After hint instead of piling up.
/// </summary>
public sealed class EngineGate : IDisposable
{
    private readonly ConcurrencyLimiter _limiter;

    public EngineGate(IOptions<LimitsOptions> options)
    {
        var limits = options.Value;
        Concurrency = limits.EffectiveConcurrency;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = Concurrency,
            QueueLimit = limits.EngineQueueLength,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
    }

    public int Concurrency { get; }

    public long Waiting => _limiter.GetStatistics()?.CurrentQueuedCount ?? 0;

    public long Running => Concurrency - (_limiter.GetStatistics()?.CurrentAvailablePermits ?? Concurrency);

    /// <summary>
    /// Runs <paramref name="work"/> on a worker thread once a permit is free, as one <c>autograd.engine</c> span (its
    /// queue wait a tag, its outcome the result code).
    /// </summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, T> work, CancellationToken cancellation)
    {
        using var span = Operations.Telemetry.Source.StartActivity("autograd.engine");
        long queued = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var lease = await _limiter.AcquireAsync(1, cancellation).ConfigureAwait(false);
            if (!lease.IsAcquired) throw ServiceException.Overloaded(TimeSpan.FromSeconds(1));
            span?.SetTag("autograd.engine.queue_wait_ms", System.Diagnostics.Stopwatch.GetElapsedTime(queued).TotalMilliseconds);
            var result = await Task.Run(() => work(cancellation), cancellation).ConfigureAwait(false);
            Operations.Telemetry.RecordOutcome(span, "ok");
            return result;
        }
        catch (Exception e) when (span is not null)
        {
            Operations.Telemetry.RecordOutcome(span, ApiError.From(e).Code);
            throw;
        }
    }

    public void Dispose() => _limiter.Dispose();
}
