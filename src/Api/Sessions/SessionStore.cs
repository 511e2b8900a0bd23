using System.Collections.Concurrent;
using System.Security.Cryptography;
using AutogradService.Api.Errors;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Sessions;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Sessions;

/// <summary>
/// Open REST sessions (a gRPC session lives as long as its stream and is only counted here). Ids are 128 random bits,
/// so holding the id is what makes a session yours; once authentication exists the owner is checked too. Idle sessions
/// expire; the number open is capped.
/// </summary>
public sealed class SessionStore : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _sessions = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits;
    private readonly TimeProvider _time;
    private int _open;

    public SessionStore(IOptions<LimitsOptions> limits, TimeProvider time)
    {
        _limits = limits.Value;
        _time = time;
    }

    public int Count => Volatile.Read(ref _open);

    public sealed class Entry(string id, Session session, TimeSpan idle, string? owner)
    {
        public string Id { get; } = id;
        public Session Session { get; } = session;
        public TimeSpan IdleTimeout { get; } = idle;
        public string? Owner { get; } = owner;
        public SemaphoreSlim Lock { get; } = new(1, 1);
        public DateTimeOffset LastUsed { get; set; }
        public DateTimeOffset ExpiresAt => LastUsed + IdleTimeout;
    }

    /// <summary>The settings a client asked for, lowered to the server's limits.</summary>
    public SessionSettings SettingsFor(Engine.Autodiff.GradientMode mode, long memoryBytes, bool strict) => new()
    {
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

    public Entry Open(SessionSettings settings, TimeSpan idle, string? owner)
    {
        ReserveSlot();
        var id = NewId();
        Entry entry;
        try
        {
            entry = new Entry(id, new Session(settings), idle, owner) { LastUsed = _time.GetUtcNow() };
        }
        catch
        {
            Interlocked.Decrement(ref _open);
            throw;
        }
        _sessions[id] = entry;
        return entry;
    }

    /// <summary>Counts a streaming (gRPC) session against the cap; dispose the result when the stream ends.</summary>
    public IDisposable OpenStream()
    {
        ReserveSlot();
        return new StreamSlot(this);
    }

    private void ReserveSlot()
    {
        if (Interlocked.Increment(ref _open) <= _limits.MaxOpenSessions) return;
        Interlocked.Decrement(ref _open);
        throw new ServiceException(ErrorCatalog.Overloaded,
                $"the server has {_limits.MaxOpenSessions} sessions open, its limit; close one or retry later", TimeSpan.FromSeconds(5));
    }

    public Entry Get(string id, string? owner)
    {
        if (!_sessions.TryGetValue(id, out var entry) || entry.ExpiresAt < _time.GetUtcNow() || entry.Owner != owner)
            throw new EngineException(ErrorCodes.NotFound, "no such session (it may have expired or been closed)");
        entry.LastUsed = _time.GetUtcNow();
        return entry;
    }

    public bool Close(string id, string? owner)
    {
        if (!_sessions.TryGetValue(id, out var entry) || entry.Owner != owner) return false;
        if (!_sessions.TryRemove(id, out _)) return false;
        Interlocked.Decrement(ref _open);
        DisposeWhenIdle(entry);
        return true;
    }

    /// <summary>Closes sessions idle past their timeout; called periodically.</summary>
    public int Sweep()
    {
        var now = _time.GetUtcNow();
        int closed = 0;
        foreach (var (id, entry) in _sessions)
        {
            if (entry.ExpiresAt >= now || !_sessions.TryRemove(id, out _)) continue;
            Interlocked.Decrement(ref _open);
            DisposeWhenIdle(entry);
            closed++;
        }
        return closed;
    }

    private static void DisposeWhenIdle(Entry entry)
    {
        // A batch may still be running on it: dispose after it finishes.
        entry.Lock.Wait();
        try
        {
            entry.Session.Dispose();
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private static string NewId() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose()
    {
        foreach (var entry in _sessions.Values) entry.Session.Dispose();
        _sessions.Clear();
    }

    private sealed class StreamSlot(SessionStore store) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref store._open);
        }
    }
}

/// <summary>Expires idle sessions every few seconds.</summary>
public sealed class SessionSweeper(SessionStore store) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false)) store.Sweep();
    }
}
