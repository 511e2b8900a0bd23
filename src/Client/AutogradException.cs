namespace AutogradService.Client;

/// <summary>
/// Every failure the service reports, whichever transport carried it: <see cref="Code"/> is the contract's stable
/// error code (<c>invalid_graph</c>, <c>shape_mismatch</c>, <c>graph_freed</c>, ...), and <see cref="Node"/>,
/// <see cref="Op"/> and <see cref="Input"/> say where when the service knows.
/// </summary>
public sealed class AutogradException : Exception
{
    public AutogradException(string code, string message, string? node = null, string? op = null, string? input = null,
        int? commandIndex = null, string? status = null, TimeSpan? retryAfter = null, Exception? inner = null)
        : base($"{code}: {message}", inner)
    {
        Code = code;
        Detail = message;
        Node = node;
        Op = op;
        Input = input;
        CommandIndex = commandIndex;
        Status = status;
        RetryAfter = retryAfter;
    }

    public string Code { get; }

    /// <summary>The service's human-readable explanation.</summary>
    public string Detail { get; }

    public string? Node { get; }
    public string? Op { get; }
    public string? Input { get; }

    /// <summary>In a session batch, the index of the command that failed.</summary>
    public int? CommandIndex { get; }

    /// <summary>The HTTP status (REST) or gRPC status code name.</summary>
    public string? Status { get; }

    /// <summary>When the service says to retry (overloaded, quota_exceeded).</summary>
    public TimeSpan? RetryAfter { get; }
}
