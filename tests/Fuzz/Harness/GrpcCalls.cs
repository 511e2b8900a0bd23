using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AutogradService.Fuzz.Harness;

/// <summary>
/// What a gRPC service method needs from its call when it is invoked directly, without a channel: a deadline (as the
/// call's cancellation token), empty headers, an anonymous HTTP context (where Grpc.AspNetCore's GetHttpContext looks
/// for it), and streams backed by lists. The services' own code runs unchanged.
/// </summary>
public sealed class FuzzCallContext : ServerCallContext
{
    private readonly Metadata _trailers = [];
    private readonly CancellationToken cancellation;

    public FuzzCallContext(CancellationToken cancellation)
    {
        this.cancellation = cancellation;
        UserState["__HttpContext"] = new Microsoft.AspNetCore.Http.DefaultHttpContext { RequestServices = Services };
    }

    /// <summary>Default options only: security off, so every call is the anonymous caller.</summary>
    private static readonly IServiceProvider Services = new ServiceCollection().AddOptions().BuildServiceProvider();

    protected override string MethodCore => "fuzz";
    protected override string HostCore => "localhost";
    protected override string PeerCore => "ipv4:127.0.0.1:1";
    protected override DateTime DeadlineCore => DateTime.MaxValue;
    protected override Metadata RequestHeadersCore { get; } = [];
    protected override CancellationToken CancellationTokenCore => cancellation;
    protected override Metadata ResponseTrailersCore => _trailers;
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore { get; } = new(null, new Dictionary<string, List<AuthProperty>>());

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}

/// <summary>A client stream that yields the given messages, then ends.</summary>
public sealed class ListReader<T>(IReadOnlyList<T> messages) : IAsyncStreamReader<T>
{
    private int _next = -1;

    public T Current => messages[_next];

    public Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(++_next < messages.Count);
    }
}

/// <summary>A server stream that keeps what is written (replies carry per-command errors the harness checks).</summary>
public sealed class ListWriter<T> : IServerStreamWriter<T>
{
    public List<T> Written { get; } = [];

    public WriteOptions? WriteOptions { get; set; }

    public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

    public Task WriteAsync(T message, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Written.Add(message);
        return Task.CompletedTask;
    }
}

/// <summary>A host lifetime that never stops (the sessions service watches it to end streams on shutdown).</summary>
public sealed class RunningLifetime : IHostApplicationLifetime
{
    public CancellationToken ApplicationStarted => CancellationToken.None;
    public CancellationToken ApplicationStopping => CancellationToken.None;
    public CancellationToken ApplicationStopped => CancellationToken.None;

    public void StopApplication()
    {
    }
}
