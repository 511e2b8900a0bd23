using System.Collections;
using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>
/// A service whose log entries (with their scopes' trace ids) and finished spans the test can read: a logger provider
/// and an OpenTelemetry in-memory exporter added to the host's own providers. The service's own categories log from
/// Information. Spans come from every host in the process (ActivitySource listeners are process-wide): filter by trace id.
/// </summary>
public class ObservedService : ServiceFactory
{
    public ObservedService()
        : this(new Dictionary<string, string?>())
    {
    }

    protected ObservedService(IReadOnlyDictionary<string, string?> settings)
        : base(new Dictionary<string, string?>(settings) { ["Logging:LogLevel:AutogradService"] = "Information" })
    {
    }

    public LogCapture Logs { get; } = new();

    public LockedList<Activity> Spans { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<ILoggerProvider>(Logs);
            services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans));
        });
    }

    /// <summary>A <c>traceparent</c> header value for a fresh trace, and its trace and parent span ids.</summary>
    public static (string Header, string TraceId, string ParentSpanId) NewTraceparent()
    {
        var trace = ActivityTraceId.CreateRandom().ToHexString();
        var span = ActivitySpanId.CreateRandom().ToHexString();
        return ($"00-{trace}-{span}-01", trace, span);
    }
}

/// <summary>One captured log entry: level, category, message, and the <c>TraceId</c> of its scopes (null if none).</summary>
public sealed record LogEntry(LogLevel Level, string Category, string Message, string? TraceId, Exception? Exception);

/// <summary>Records every log entry of one host with the trace id its scopes carry (as the console formatter writes them).</summary>
public sealed class LogCapture : ILoggerProvider, ISupportExternalScope
{
    private readonly List<LogEntry> _entries = [];
    private IExternalScopeProvider? _scopes;

    public LogEntry[] Entries
    {
        get { lock (_entries) return [.. _entries]; }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        lock (_entries) _entries.Add(entry);
    }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string? traceId = null;
            owner._scopes?.ForEachScope((scope, _) =>
            {
                if (scope is IEnumerable<KeyValuePair<string, object?>> values)
                    foreach (var (key, value) in values)
                        if (key == "TraceId") traceId = value?.ToString();
            }, (object?)null);
            owner.Add(new LogEntry(logLevel, category, formatter(state, exception), traceId, exception));
        }
    }
}

/// <summary>A list safe to add to from exporter threads while a test reads a snapshot.</summary>
public sealed class LockedList<T> : ICollection<T>
{
    private readonly List<T> _items = [];

    public int Count
    {
        get { lock (_items) return _items.Count; }
    }

    public bool IsReadOnly => false;

    public void Add(T item)
    {
        lock (_items) _items.Add(item);
    }

    public T[] Snapshot()
    {
        lock (_items) return [.. _items];
    }

    public void Clear()
    {
        lock (_items) _items.Clear();
    }

    public bool Contains(T item)
    {
        lock (_items) return _items.Contains(item);
    }

    public void CopyTo(T[] array, int arrayIndex)
    {
        lock (_items) _items.CopyTo(array, arrayIndex);
    }

    public bool Remove(T item)
    {
        lock (_items) return _items.Remove(item);
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
