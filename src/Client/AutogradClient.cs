using System.Runtime.CompilerServices;
using AutogradService.Client.Transport;
using AutogradService.Contracts.V1;
using Grpc.Net.Client;

namespace AutogradService.Client;

/// <summary>A streamed gradient's tensor, whole: <see cref="Role"/> is "output" or "gradient".</summary>
public sealed record StreamedTensor(string Role, string Name, Tensor Value);

/// <summary>
/// AutogradService from .NET: the contract's requests and responses over gRPC, or over REST JSON where gRPC cannot
/// reach; every failure is an <see cref="AutogradException"/>. Thread-safe; sessions are not (one per flow).
/// </summary>
public sealed class AutogradClient
{
    private readonly IAutogradTransport _transport;

    private AutogradClient(IAutogradTransport transport) => _transport = transport;

    /// <summary>gRPC through the generated clients (as <c>AddGrpcClient</c> makes them); <paramref name="timeout"/> is each call's deadline.</summary>
    public AutogradClient(Autodiff.AutodiffClient autodiff, Sessions.SessionsClient sessions, Models.ModelsClient models, TimeSpan? timeout = null)
        : this(new GrpcTransport(autodiff, sessions, models, timeout))
    {
    }

    /// <summary>REST JSON; the client's BaseAddress is the service's REST address (e.g. http://host:8080/).</summary>
    public AutogradClient(HttpClient rest) : this(new RestTransport(rest))
    {
        if (rest.BaseAddress is null) throw new ArgumentException("the HttpClient needs a BaseAddress: the service's REST address", nameof(rest));
    }

    /// <summary>
    /// gRPC, falling back to REST (for that call and every later one) when gRPC cannot be reached: a call that found
    /// nothing listening ran nowhere, so it is safe to send again.
    /// </summary>
    public AutogradClient(Autodiff.AutodiffClient autodiff, Sessions.SessionsClient sessions, Models.ModelsClient models, HttpClient restFallback,
        TimeSpan? timeout = null)
        : this(new FallbackTransport(new GrpcTransport(autodiff, sessions, models, timeout), new RestTransport(restFallback)))
    {
        if (restFallback.BaseAddress is null) throw new ArgumentException("the HttpClient needs a BaseAddress: the service's REST address", nameof(restFallback));
    }

    public static AutogradClient ForGrpc(GrpcChannel channel, TimeSpan? timeout = null) =>
        new(new Autodiff.AutodiffClient(channel), new Sessions.SessionsClient(channel), new Models.ModelsClient(channel), timeout);

    /// <summary>"grpc" or "rest" (the one in use, after any fallback).</summary>
    public string Transport => _transport.Name;

    /// <summary>Requests sent so far (a session batch counts once).</summary>
    public int RoundTrips => _transport.RoundTrips;

    // What to compute.

    public static Computation Program(string text) => new() { Program = text };

    public static Computation Model(string name) => new() { Model = name };

    public static Computation Graph(Graph graph) => new() { Graph = graph };

    // Stateless transforms, the contract's messages in and out.

    public Task<EvaluateResponse> EvaluateAsync(EvaluateRequest request, CancellationToken ct = default) => _transport.EvaluateAsync(request, ct);

    public Task<GradientResponse> GradientAsync(GradientRequest request, CancellationToken ct = default) => _transport.GradientAsync(request, ct);

    public Task<JvpResponse> JvpAsync(JvpRequest request, CancellationToken ct = default) => _transport.JvpAsync(request, ct);

    public Task<JacobianResponse> JacobianAsync(JacobianRequest request, CancellationToken ct = default) => _transport.JacobianAsync(request, ct);

    public Task<HessianResponse> HessianAsync(HessianRequest request, CancellationToken ct = default) => _transport.HessianAsync(request, ct);

    public Task<InspectResponse> InspectAsync(InspectRequest request, CancellationToken ct = default) => _transport.InspectAsync(request, ct);

    public Task<ListOpsResponse> ListOpsAsync(CancellationToken ct = default) => _transport.ListOpsAsync(ct);

    /// <summary>The devices the service computes on (a request's device field names one) and its default device.</summary>
    public Task<ListDevicesResponse> ListDevicesAsync(CancellationToken ct = default) => _transport.ListDevicesAsync(ct);

    /// <summary>The stream's messages as they come: outputs, then each gradient once final (large ones in chunks), then stats.</summary>
    public IAsyncEnumerable<ResultChunk> GradientStreamAsync(GradientRequest request, CancellationToken ct = default) =>
        _transport.GradientStreamAsync(request, ct);

    /// <summary>Like <see cref="GradientStreamAsync"/>, chunks put together: each tensor as soon as its last chunk arrives.</summary>
    public async IAsyncEnumerable<StreamedTensor> StreamGradientAsync(GradientRequest request, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var partial = new Dictionary<(string, string), (TensorChunk First, MemoryStream Bytes)>();
        await foreach (var message in _transport.GradientStreamAsync(request, ct).ConfigureAwait(false))
        {
            if (message.KindCase != ResultChunk.KindOneofCase.Tensor) continue;
            var chunk = message.Tensor;
            var key = (chunk.Role, chunk.Name);
            if (chunk.Offset == 0) partial[key] = (chunk, new MemoryStream());
            var (first, bytes) = partial[key];
            chunk.Data.WriteTo(bytes);
            if (!chunk.Last) continue;
            partial.Remove(key);
            var tensor = new Tensor { Dtype = first.Dtype, Raw = Google.Protobuf.ByteString.CopyFrom(bytes.GetBuffer(), 0, (int)bytes.Length) };
            tensor.Shape.Add(first.Shape);
            yield return new StreamedTensor(chunk.Role, chunk.Name, tensor);
        }
    }

    // The same, in one line each: a program (or Model(...)/Graph(...)) and its inputs.

    public Task<EvaluateResponse> EvaluateAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, CancellationToken ct = default)
    {
        var request = new EvaluateRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        return EvaluateAsync(request, ct);
    }

    public Task<GradientResponse> GradientAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, params string[] wrt)
    {
        var request = new GradientRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        request.Wrt.Add(wrt);
        return GradientAsync(request);
    }

    public Task<JvpResponse> JvpAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyDictionary<string, Tensor> tangents,
        CancellationToken ct = default)
    {
        var request = new JvpRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        request.Tangents.Add(tangents.ToDictionary());
        return JvpAsync(request, ct);
    }

    public Task<JacobianResponse> JacobianAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, params string[] wrt)
    {
        var request = new JacobianRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        request.Wrt.Add(wrt);
        return JacobianAsync(request);
    }

    public Task<HessianResponse> HessianAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, params string[] wrt)
    {
        var request = new HessianRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        request.Wrt.Add(wrt);
        return HessianAsync(request);
    }

    public Task<InspectResponse> InspectAsync(Computation computation, IReadOnlyDictionary<string, Tensor> inputs, CancellationToken ct = default)
    {
        var request = new InspectRequest { Computation = computation };
        request.Inputs.Add(inputs.ToDictionary());
        return InspectAsync(request, ct);
    }

    // Models.

    public Task<ModelInfo> PutModelAsync(string name, string program, CancellationToken ct = default) =>
        _transport.PutModelAsync(new PutModelRequest { Name = name, Program = program }, ct);

    public Task<ModelInfo> PutModelAsync(string name, Graph graph, CancellationToken ct = default) =>
        _transport.PutModelAsync(new PutModelRequest { Name = name, Graph = graph }, ct);

    public Task<ModelInfo> GetModelAsync(string name, CancellationToken ct = default) => _transport.GetModelAsync(name, ct);

    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(CancellationToken ct = default) =>
        (await _transport.ListModelsAsync(ct).ConfigureAwait(false)).Models;

    public Task DeleteModelAsync(string name, CancellationToken ct = default) => _transport.DeleteModelAsync(name, ct);

    // Sessions.

    /// <summary>A session; nothing is sent until its first batch (over gRPC the open rides with that batch).</summary>
    public AutogradSession OpenSession(SessionOptions? options = null) => new(_transport.OpenSession(options ?? new SessionOptions()));
}
