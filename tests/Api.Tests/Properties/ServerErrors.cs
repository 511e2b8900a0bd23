using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace AutogradService.Api.Tests.Properties;

/// <summary>
/// Keeps the exceptions the service logs at Error (an unhandled REST error, a failed gRPC call), so a property test
/// that sees a 500 or UNKNOWN can say what threw where — and tell a tracked issue (the fuzz harness's
/// <see cref="AutogradService.Fuzz.Harness.KnownIssues"/>) from a new one.
/// </summary>
public sealed class ServerErrors : ILoggerProvider
{
    private readonly ConcurrentQueue<Exception> _errors = new();

    public ILogger CreateLogger(string categoryName) => new Logger(_errors);

    /// <summary>Everything logged since the last call.</summary>
    public List<Exception> Drain()
    {
        var drained = new List<Exception>();
        while (_errors.TryDequeue(out var e)) drained.Add(e);
        return drained;
    }

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<Exception> errors) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error && exception is not null) errors.Enqueue(exception);
        }
    }
}
