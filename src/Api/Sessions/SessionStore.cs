using AutogradService.Engine.Backends;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using AutogradService.Api.Errors;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Engine;
using AutogradService.Engine.Sessions;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Sessions;

/// <summary>
/// Open REST sessions (a gRPC session lives as long as its stream and is only counted here). Ids are 128 random bits,
/// and a session belongs to the caller that opened it: another caller's id is <c>not_found</c>, as if it did not
/// exist. Idle sessions expire; the number open is capped for the server and, with security on, per caller.
/// A batch and the session's closing are ordered by the session's lock: a batch either completes or, when the
/// session is closed under it, ends with <c>not_found</c> — never on a disposed session.
/// </summary>
public sealed class SessionStore : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _sessions = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits;
    private readonly QuotaOptions _quotas;
    private readonly TimeProvider _time;
    private readonly Lock _slots = new();
    private readonly Dictionary<string, int> _openByCaller = new(StringComparer.Ordinal);
    private int _open;

    private readonly Devices _devices;

    public SessionStore(IOptions<LimitsOptions> limits, IOptions<QuotaOptions> quotas, TimeProvider time, Devices devices)
    {
        _limits = limits.Value;
        _quotas = quotas.Value;
        _time = time;
        _devices = devices;
    }

    public int Count => Volatile.Read(ref _open);

    public sealed class Entry(string id, Session session, TimeSpan idle, string owner) : IDisposable
    {
        private readonly CancellationTokenSource _closing = new();

        public string Id { get; } = id;
        public Session Session { get; } = session;
        public TimeSpan IdleTimeout { get; } = idle;
        public string Owner { get; } = owner;
        public SemaphoreSlim Lock { get; } = new(1, 1);
        public DateTimeOffset LastUsed { get; set; }
        public DateTimeOffset ExpiresAt => LastUsed + IdleTimeout;

        /// <summary>Cancelled when the session is closed: a batch running on it stops promptly.</summary>
        public CancellationToken Closing => _closing.Token;

        /// <summary>Set under <see cref="Lock"/> once the session is disposed.</summary>
        public bool Closed { get; private set; }

        internal async Task CloseAsync()
        {
            _closing.Cancel();
            await Lock.WaitAsync().ConfigureAwait(false);
            try
            {
                Closed = true;
                Session.Dispose();
            }
            finally
            {
                Lock.Release();
            }
        }

        public void Dispose()
        {
            Session.Dispose();
            _closing.Dispose();
        }
    }

    /// <summary>
    /// The settings a client asked for, lowered to the server's limits, on the device it named (empty: the server's
    /// default; <c>auto</c> is the CPU, as a session has no plan to place by).
    /// </summary>
    public SessionSettings SettingsFor(Engine.Autodiff.GradientMode mode, long memoryBytes, bool strict, string? device = null) => new()
    {
        Backend = _devices.Place(_devices.Resolve(device)),
        GradientMode = mode,
        MemoryLimitBytes = memoryBytes > 0 ? Math.Min(memoryBytes, _limits.MemoryBytesPerSession) : _limits.MemoryBytesPerSession,
        MaxLoopIterations = _limits.MaxLoopIterations,
        StrictScalarSeed = strict,
        MaxTensorElements = _limits.MaxTensorElements,
        MaxLiveTensors = _limits.MaxTensorsPerSession,
        GraphLimits = _limits.Graph(),
    };

    public TimeSpan IdleTimeoutFor(long requestedMs) =>
        TimeSpan.FromMilliseconds(requestedMs > 0 ? Math.Min(requestedMs, _limits.SessionIdleSeconds * 1000L) : _limits.SessionIdleSeconds * 1000L);

    public Entry Open(SessionSettings settings, TimeSpan idle, Caller caller)
    {
        ReserveSlot(caller);
        var id = NewId();
        Entry entry;
        try
        {
            entry = new Entry(id, new Session(settings), idle, caller.Id) { LastUsed = _time.GetUtcNow() };
        }
        catch
        {
            ReleaseSlot(caller.Id);
            throw;
        }
        _sessions[id] = entry;
        return entry;
    }

    /// <summary>Counts a streaming (gRPC) session against the caps; dispose the result when the stream ends.</summary>
    public IDisposable OpenStream(Caller caller)
    {
        ReserveSlot(caller);
        return new StreamSlot(this, caller.Id);
    }

    private void ReserveSlot(Caller caller)
    {
        lock (_slots)
        {
            if (_open >= _limits.MaxOpenSessions)
                throw new ServiceException(ErrorCatalog.Overloaded,
                    $"the server has {_limits.MaxOpenSessions} sessions open, its limit; close one or retry later", TimeSpan.FromSeconds(5));
            int mine = _openByCaller.GetValueOrDefault(caller.Id);
            if (caller.HasQuotas && mine >= _quotas.SessionsPerCaller)
                throw Quotas.Exceeded(Quotas.Sessions, _quotas.SessionsPerCaller, TimeSpan.FromSeconds(5),
                    $"this caller has {mine} sessions open, its quota of {_quotas.SessionsPerCaller}; close one or retry later");
            _openByCaller[caller.Id] = mine + 1;
            Volatile.Write(ref _open, _open + 1);
        }
    }

    private void ReleaseSlot(string owner)
    {
        lock (_slots)
        {
            int mine = _openByCaller.GetValueOrDefault(owner) - 1;
            if (mine > 0) _openByCaller[owner] = mine;
            else _openByCaller.Remove(owner);
            Volatile.Write(ref _open, _open - 1);
        }
    }

    public Entry Get(string id, Caller caller)
    {
        if (!_sessions.TryGetValue(id, out var entry) || entry.ExpiresAt < _time.GetUtcNow() || entry.Owner != caller.Id) throw NotFound();
        entry.LastUsed = _time.GetUtcNow();
        return entry;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the caller's session, one batch at a time. A close that comes first makes this
    /// <c>not_found</c>; a close that comes during it cancels it, and it ends with <c>not_found</c> too.
    /// </summary>
    public async Task<T> RunAsync<T>(string id, Caller caller, Func<Session, CancellationToken, Task<T>> work, CancellationToken cancellation)
    {
        var entry = Get(id, caller);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation, entry.Closing);
        try
        {
            await entry.Lock.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (entry.Closing.IsCancellationRequested)
        {
            throw NotFound();
        }
        try
        {
            if (entry.Closed) throw NotFound();
            return await work(entry.Session, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (entry.Closing.IsCancellationRequested && e is OperationCanceledException or SessionBatchException { Error.Code: ErrorCodes.DeadlineExceeded })
        {
            throw NotFound();
        }
        finally
        {
            entry.LastUsed = _time.GetUtcNow();
            entry.Lock.Release();
        }
    }

    /// <summary>Closes the caller's session; a batch running on it is cancelled and this returns once it has stopped.</summary>
    public async Task<bool> CloseAsync(string id, Caller caller)
    {
        if (!_sessions.TryGetValue(id, out var entry) || entry.Owner != caller.Id) return false;
        if (!_sessions.TryRemove(new KeyValuePair<string, Entry>(id, entry))) return false;
        ReleaseSlot(entry.Owner);
        await entry.CloseAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>Closes sessions idle past their timeout; one running a batch is in use, not idle. Called periodically.</summary>
    public async Task<int> SweepAsync()
    {
        var now = _time.GetUtcNow();
        int closed = 0;
        foreach (var (id, entry) in _sessions)
        {
            if (entry.ExpiresAt >= now || entry.Lock.CurrentCount == 0 || !_sessions.TryRemove(new KeyValuePair<string, Entry>(id, entry))) continue;
            ReleaseSlot(entry.Owner);
            await entry.CloseAsync().ConfigureAwait(false);
            closed++;
        }
        return closed;
    }

    private static EngineException NotFound() => new(ErrorCodes.NotFound, "no such session (it may have expired or been closed)");

    private static string NewId() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose()
    {
        foreach (var entry in _sessions.Values) entry.Dispose();
        _sessions.Clear();
    }

    private sealed class StreamSlot(SessionStore store, string owner) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) store.ReleaseSlot(owner);
        }
    }
}

/// <summary>Expires idle sessions every few seconds.</summary>
public sealed class SessionSweeper(SessionStore store) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false)) await store.SweepAsync().ConfigureAwait(false);
    }
}
