using AutogradService.Contracts.V1;

namespace AutogradService.Client.Transport;

/// <summary>
/// One way to reach the service. The contract's protobuf messages are the client's vocabulary on both: gRPC sends
/// them as they are, REST maps them to and from the JSON forms of the API.
/// </summary>
internal interface IAutogradTransport
{
    string Name { get; }

    /// <summary>Requests sent so far (a session batch counts once).</summary>
    int RoundTrips { get; }

    Task<EvaluateResponse> EvaluateAsync(EvaluateRequest request, CancellationToken ct);
    Task<GradientResponse> GradientAsync(GradientRequest request, CancellationToken ct);
    Task<JvpResponse> JvpAsync(JvpRequest request, CancellationToken ct);
    Task<JacobianResponse> JacobianAsync(JacobianRequest request, CancellationToken ct);
    Task<HessianResponse> HessianAsync(HessianRequest request, CancellationToken ct);
    IAsyncEnumerable<ResultChunk> GradientStreamAsync(GradientRequest request, CancellationToken ct);
    Task<InspectResponse> InspectAsync(InspectRequest request, CancellationToken ct);
    Task<ListOpsResponse> ListOpsAsync(CancellationToken ct);
    Task<ListDevicesResponse> ListDevicesAsync(CancellationToken ct);

    Task<ModelInfo> PutModelAsync(PutModelRequest request, CancellationToken ct);
    Task<ModelInfo> GetModelAsync(string name, CancellationToken ct);
    Task<ListModelsResponse> ListModelsAsync(CancellationToken ct);
    Task DeleteModelAsync(string name, CancellationToken ct);

    /// <summary>A session; nothing may be sent until its first batch.</summary>
    ISessionChannel OpenSession(SessionOptions options);
}

/// <summary>A session's command channel: one batch at a time, one reply per command that ran.</summary>
internal interface ISessionChannel : IAsyncDisposable
{
    /// <summary>
    /// Runs the commands in order. Replies come back for the commands that ran; a failed command's reply carries its
    /// error, and REST stops the batch there (gRPC runs the rest, each failing or not on its own).
    /// </summary>
    Task<IReadOnlyList<Reply>> RunAsync(IReadOnlyList<Command> commands, CancellationToken ct);
}
