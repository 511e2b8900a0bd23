using System.Runtime.CompilerServices;
using AutogradService.Contracts.V1;

namespace AutogradService.Client.Transport;

/// <summary>
/// gRPC first, REST when gRPC cannot be reached: a call that fails with <c>unavailable</c> (nothing answered, so
/// nothing ran) is sent again over the fallback, and every later call goes there directly. A session moves only
/// before its first batch has run, since its state lives where that batch went.
/// </summary>
internal sealed class FallbackTransport(IAutogradTransport primary, IAutogradTransport fallback) : IAutogradTransport
{
    private readonly IAutogradTransport _fallback = fallback;
    private volatile bool _fellBack;

    private IAutogradTransport Active => _fellBack ? _fallback : primary;

    public string Name => Active.Name;

    public int RoundTrips => primary.RoundTrips + _fallback.RoundTrips;

    private static bool Unreachable(AutogradException e) => e.Code == "unavailable";

    private async Task<T> Call<T>(Func<IAutogradTransport, Task<T>> call)
    {
        if (_fellBack) return await call(_fallback).ConfigureAwait(false);
        try
        {
            return await call(primary).ConfigureAwait(false);
        }
        catch (AutogradException e) when (Unreachable(e))
        {
            _fellBack = true;
            return await call(_fallback).ConfigureAwait(false);
        }
    }

    public Task<EvaluateResponse> EvaluateAsync(EvaluateRequest request, CancellationToken ct) => Call(t => t.EvaluateAsync(request, ct));
    public Task<GradientResponse> GradientAsync(GradientRequest request, CancellationToken ct) => Call(t => t.GradientAsync(request, ct));
    public Task<JvpResponse> JvpAsync(JvpRequest request, CancellationToken ct) => Call(t => t.JvpAsync(request, ct));
    public Task<JacobianResponse> JacobianAsync(JacobianRequest request, CancellationToken ct) => Call(t => t.JacobianAsync(request, ct));
    public Task<HessianResponse> HessianAsync(HessianRequest request, CancellationToken ct) => Call(t => t.HessianAsync(request, ct));
    public Task<InspectResponse> InspectAsync(InspectRequest request, CancellationToken ct) => Call(t => t.InspectAsync(request, ct));
    public Task<ListOpsResponse> ListOpsAsync(CancellationToken ct) => Call(t => t.ListOpsAsync(ct));
    public Task<ListDevicesResponse> ListDevicesAsync(CancellationToken ct) => Call(t => t.ListDevicesAsync(ct));
    public Task<ModelInfo> PutModelAsync(PutModelRequest request, CancellationToken ct) => Call(t => t.PutModelAsync(request, ct));
    public Task<ModelInfo> GetModelAsync(string name, CancellationToken ct) => Call(t => t.GetModelAsync(name, ct));
    public Task<ListModelsResponse> ListModelsAsync(CancellationToken ct) => Call(t => t.ListModelsAsync(ct));
    public Task DeleteModelAsync(string name, CancellationToken ct) => Call(async t => { await t.DeleteModelAsync(name, ct).ConfigureAwait(false); return 0; });

    public async IAsyncEnumerable<ResultChunk> GradientStreamAsync(GradientRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        // A stream moves only before its first message: after that, part of the result has been handed out.
        var source = Active;
        await using var messages = source.GradientStreamAsync(request, ct).GetAsyncEnumerator(ct);
        bool more;
        try
        {
            more = await messages.MoveNextAsync().ConfigureAwait(false);
        }
        catch (AutogradException e) when (Unreachable(e) && source == primary)
        {
            _fellBack = true;
            source = null;
            more = false;
        }
        if (source is null)
        {
            await foreach (var m in _fallback.GradientStreamAsync(request, ct).ConfigureAwait(false)) yield return m;
            yield break;
        }
        while (more)
        {
            yield return messages.Current;
            more = await messages.MoveNextAsync().ConfigureAwait(false);
        }
    }

    public ISessionChannel OpenSession(SessionOptions options) =>
        _fellBack ? _fallback.OpenSession(options) : new Channel(this, primary.OpenSession(options), options);

    private sealed class Channel(FallbackTransport owner, ISessionChannel first, SessionOptions options) : ISessionChannel
    {
        private ISessionChannel _channel = first;
        private bool _ran;

        public async Task<IReadOnlyList<Reply>> RunAsync(IReadOnlyList<Command> commands, CancellationToken ct)
        {
            if (_ran) return await _channel.RunAsync(commands, ct).ConfigureAwait(false);
            try
            {
                var replies = await _channel.RunAsync(commands, ct).ConfigureAwait(false);
                _ran = true;
                return replies;
            }
            catch (AutogradException e) when (Unreachable(e))
            {
                owner._fellBack = true;
                await _channel.DisposeAsync().ConfigureAwait(false);
                _channel = owner._fallback.OpenSession(options);
                var replies = await _channel.RunAsync(commands, ct).ConfigureAwait(false);
                _ran = true;
                return replies;
            }
        }

        public ValueTask DisposeAsync() => _channel.DisposeAsync();
    }
}
