using System.Runtime.CompilerServices;
using AutogradService.Contracts.V1;
using Google.Rpc;
using Grpc.Core;

namespace AutogradService.Client.Transport;

/// <summary>gRPC: the generated clients, with every <see cref="RpcException"/> turned into an <see cref="AutogradException"/>.</summary>
internal sealed class GrpcTransport(Autodiff.AutodiffClient autodiff, Sessions.SessionsClient sessions, Models.ModelsClient models,
    TimeSpan? timeout) : IAutogradTransport
{
    private readonly Sessions.SessionsClient _sessions = sessions;
    private int _roundTrips;

    public string Name => "grpc";

    public int RoundTrips => Volatile.Read(ref _roundTrips);

    private CallOptions Options(CancellationToken ct) =>
        new(deadline: timeout is { } t ? DateTime.UtcNow + t : null, cancellationToken: ct);

    private async Task<T> Call<T>(Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken ct)
    {
        Interlocked.Increment(ref _roundTrips);
        try
        {
            return await call(Options(ct)).ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw ToException(e);
        }
    }

    public Task<EvaluateResponse> EvaluateAsync(EvaluateRequest request, CancellationToken ct) => Call(o => autodiff.EvaluateAsync(request, o), ct);
    public Task<GradientResponse> GradientAsync(GradientRequest request, CancellationToken ct) => Call(o => autodiff.GradientAsync(request, o), ct);
    public Task<JvpResponse> JvpAsync(JvpRequest request, CancellationToken ct) => Call(o => autodiff.JvpAsync(request, o), ct);
    public Task<JacobianResponse> JacobianAsync(JacobianRequest request, CancellationToken ct) => Call(o => autodiff.JacobianAsync(request, o), ct);
    public Task<HessianResponse> HessianAsync(HessianRequest request, CancellationToken ct) => Call(o => autodiff.HessianAsync(request, o), ct);
    public Task<InspectResponse> InspectAsync(InspectRequest request, CancellationToken ct) => Call(o => autodiff.InspectAsync(request, o), ct);
    public Task<ListOpsResponse> ListOpsAsync(CancellationToken ct) => Call(o => autodiff.ListOpsAsync(new ListOpsRequest(), o), ct);
    public Task<ListDevicesResponse> ListDevicesAsync(CancellationToken ct) => Call(o => autodiff.ListDevicesAsync(new ListDevicesRequest(), o), ct);
    public Task<ModelInfo> PutModelAsync(PutModelRequest request, CancellationToken ct) => Call(o => models.PutAsync(request, o), ct);
    public Task<ModelInfo> GetModelAsync(string name, CancellationToken ct) => Call(o => models.GetAsync(new GetModelRequest { Name = name }, o), ct);
    public Task<ListModelsResponse> ListModelsAsync(CancellationToken ct) => Call(o => models.ListAsync(new ListModelsRequest(), o), ct);
    public Task DeleteModelAsync(string name, CancellationToken ct) => Call(o => models.DeleteAsync(new DeleteModelRequest { Name = name }, o), ct);

    public async IAsyncEnumerable<ResultChunk> GradientStreamAsync(GradientRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        Interlocked.Increment(ref _roundTrips);
        using var call = autodiff.GradientStream(request, Options(ct));
        while (true)
        {
            ResultChunk chunk;
            try
            {
                if (!await call.ResponseStream.MoveNext(ct).ConfigureAwait(false)) yield break;
                chunk = call.ResponseStream.Current;
            }
            catch (RpcException e)
            {
                throw ToException(e);
            }
            yield return chunk;
        }
    }

    public ISessionChannel OpenSession(SessionOptions options) => new Channel(this, options);

    /// <summary>The stream is the session. Its open command rides along with the first batch.</summary>
    private sealed class Channel(GrpcTransport owner, SessionOptions options) : ISessionChannel
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private AsyncDuplexStreamingCall<Command, Reply>? _call;
        private long _next;

        public async Task<IReadOnlyList<Reply>> RunAsync(IReadOnlyList<Command> commands, CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                Interlocked.Increment(ref owner._roundTrips);
                bool opening = _call is null;
                // No deadline on the stream: it lives as long as the session, which the server's idle timeout bounds.
                _call ??= owner._sessions.Run(cancellationToken: CancellationToken.None);
                var replies = new List<Reply>(commands.Count);
                try
                {
                    if (opening) await _call.RequestStream.WriteAsync(new Command { Open = options }, ct).ConfigureAwait(false);
                    foreach (var c in commands) await _call.RequestStream.WriteAsync(c, ct).ConfigureAwait(false);
                    if (opening)
                    {
                        var opened = await ReadAsync(ct).ConfigureAwait(false);
                        if (opened.Error is { } e) throw new AutogradException(e.Code, e.Detail, Empty(e.Node), Empty(e.Op), Empty(e.Input));
                    }
                    for (int i = 0; i < commands.Count; i++) replies.Add(await ReadAsync(ct).ConfigureAwait(false));
                }
                catch (RpcException e)
                {
                    throw ToException(e);
                }
                return replies;
            }
            finally
            {
                _gate.Release();
            }
        }

        private async Task<Reply> ReadAsync(CancellationToken ct)
        {
            if (!await _call!.ResponseStream.MoveNext(ct).ConfigureAwait(false))
                throw new AutogradException("not_found", "the server ended the session");
            var reply = _call.ResponseStream.Current;
            if (reply.CommandIndex != _next)
                throw new AutogradException("internal", $"reply {reply.CommandIndex} answers command {_next}");
            _next++;
            return reply;
        }

        public async ValueTask DisposeAsync()
        {
            if (_call is null) return;
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                await _call.RequestStream.CompleteAsync().ConfigureAwait(false);
                while (await _call.ResponseStream.MoveNext(CancellationToken.None).ConfigureAwait(false))
                {
                    // The server ends the stream once ours is complete; replies still in flight are dropped.
                }
            }
            catch (RpcException)
            {
                // Already over: nothing to free on our side.
            }
            catch (InvalidOperationException)
            {
                // The request stream was already completed.
            }
            finally
            {
                _call.Dispose();
                _call = null;
                _gate.Release();
            }
        }
    }

    private static string? Empty(string s) => string.IsNullOrEmpty(s) ? null : s;

    /// <summary>The contract's code and where (ErrorInfo), the retry hint (RetryInfo), else the trailer and status.</summary>
    internal static AutogradException ToException(RpcException e)
    {
        string? code = e.Trailers.GetValue("autograd-code");
        IDictionary<string, string>? facts = null;
        TimeSpan? retry = null;
        if (e.GetRpcStatus() is { } status)
        {
            if (status.GetDetail<ErrorInfo>() is { } info)
            {
                code ??= info.Reason;
                facts = info.Metadata;
            }
            if (status.GetDetail<RetryInfo>() is { RetryDelay: { } delay }) retry = delay.ToTimeSpan();
        }
        code ??= e.StatusCode switch
        {
            StatusCode.Unavailable => "unavailable",
            StatusCode.DeadlineExceeded => "deadline_exceeded",
            StatusCode.Cancelled => "cancelled",
            StatusCode.Unauthenticated => "unauthenticated",
            _ => "internal",
        };
        string? Fact(string key) => facts is not null && facts.TryGetValue(key, out var v) ? v : null;
        int? index = int.TryParse(Fact("command_index"), out int i) ? i : null;
        return new AutogradException(code, e.Status.Detail, Fact("node"), Fact("op"), Fact("input"), index, e.StatusCode.ToString(), retry, e);
    }
}
