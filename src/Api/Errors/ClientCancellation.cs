using Grpc.Core;

namespace AutogradService.Api.Errors;

/// <summary>
/// Tells a client that went away (<c>cancelled</c>) from a request whose own deadline passed (<c>deadline_exceeded</c>).
/// Both cancel the same token; what differs is whether the connection or call was aborted before the deadline.
/// </summary>
public static class ClientCancellation
{
    /// <summary>
    /// A gRPC client's deadline timer fires at about the moment the server's does (the server's runs a little later: it
    /// starts when the call arrives), so a call aborted this close to its deadline counts as having reached it.
    /// </summary>
    public static readonly TimeSpan DeadlineSlack = TimeSpan.FromSeconds(1);

    /// <summary>REST: the connection was aborted. A request's own timeout (Limits:TimeoutMs, timeout_ms) never aborts it.</summary>
    public static bool WentAway(HttpContext http) => http.RequestAborted.IsCancellationRequested;

    /// <summary>gRPC: the call was cancelled while its deadline (if it has one) was still ahead.</summary>
    public static bool WentAway(ServerCallContext call) =>
        call.CancellationToken.IsCancellationRequested && (call.Deadline == DateTime.MaxValue || call.Deadline - DateTime.UtcNow > DeadlineSlack);
}
