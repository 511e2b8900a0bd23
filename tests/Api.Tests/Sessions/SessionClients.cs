using System.Text.Json;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Api.Tests.Sessions;

/// <summary>A REST session as a client holds it: its id, batches of commands, and DELETE when done.</summary>
public sealed class RestSession : IAsyncDisposable
{
    private readonly HttpClient _client;

    private RestSession(HttpClient client, string id)
    {
        _client = client;
        Id = id;
    }

    public string Id { get; }

    public static async Task<RestSession> OpenAsync(HttpClient client, object? options = null)
    {
        var r = await client.Post("/v1/sessions", options ?? new { });
        Assert.Equal(System.Net.HttpStatusCode.Created, r.Status);
        return new RestSession(client, r.Str("id"));
    }

    /// <summary>Runs a batch that must succeed; returns its results (one per command).</summary>
    public async Task<JsonElement[]> RunAsync(params object[] commands)
    {
        var r = (await TryRunAsync(commands)).Ok();
        var results = r.Body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(commands.Length, results.Length);
        return results;
    }

    public Task<RestReply> TryRunAsync(params object[] commands) => _client.Post($"/v1/sessions/{Id}/commands", new { commands });

    /// <summary>Fetches one value.</summary>
    public async Task<double[]> FetchAsync(string name) => JsonKit.Values((await RunAsync(Fetch(name)))[0].GetProperty("value"));

    public async Task<double[]> GradAsync(string name) => JsonKit.Values((await RunAsync(Grad(name)))[0].GetProperty("value"));

    public static object Variable(string name, object value, bool requiresGrad = true) => new { variable = new { name, value, requires_grad = requiresGrad } };
    public static object Apply(string op, object[] inputs, string output) => new { apply = new { op, inputs, output } };
    public static object Fetch(string name) => new { fetch = new { name } };
    public static object Backward(string output, object? seed = null, bool retainGraph = false, bool createGraph = false) =>
        new { backward = new { output, seed, retain_graph = retainGraph, create_graph = createGraph } };
    public static object Grad(string name) => new { grad = new { name } };
    public static object Grad(string name, string output) => new { grad = new { name, output } };
    public static object ZeroGrad(params string[] names) => new { zero_grad = new { names } };
    public static object Detach(string name, string output) => new { detach = new { name, output } };

    public async ValueTask DisposeAsync() => await _client.Delete($"/v1/sessions/{Id}");
}

/// <summary>A gRPC session: the bidirectional stream, one reply per command, in order.</summary>
public sealed class GrpcSession : IDisposable
{
    private readonly AsyncDuplexStreamingCall<Command, Reply> _call;
    private long _sent;

    private GrpcSession(AsyncDuplexStreamingCall<Command, Reply> call) => _call = call;

    public static async Task<GrpcSession> OpenAsync(Contracts.V1.Sessions.SessionsClient client, SessionOptions? options = null)
    {
        var session = new GrpcSession(client.Run());
        if (options is not null)
        {
            var reply = await session.SendAsync(new Command { Open = options });
            Assert.False(string.IsNullOrEmpty(reply.SessionId));
        }
        return session;
    }

    /// <summary>Sends one command and returns its reply (errors included).</summary>
    public async Task<Reply> SendAsync(Command command)
    {
        await _call.RequestStream.WriteAsync(command);
        Assert.True(await _call.ResponseStream.MoveNext(default), "the session stream ended");
        var reply = _call.ResponseStream.Current;
        Assert.Equal(_sent++, reply.CommandIndex);
        return reply;
    }

    /// <summary>Sends a command that must succeed.</summary>
    public async Task<Reply> Do(Command command)
    {
        var reply = await SendAsync(command);
        Assert.True(reply.Error is null, $"{command.KindCase} failed: {reply.Error?.Code} {reply.Error?.Detail}");
        return reply;
    }

    public async Task<double[]> FetchAsync(string name) => Tensors.Values((await Do(Fetch(name))).Value);

    public async Task<double[]> GradAsync(string name) => Tensors.Values((await Do(new Command { Grad = new GradCommand { Name = name } })).Value);

    public static Command Variable(string name, Contracts.V1.Tensor value, bool requiresGrad = true) =>
        new() { Variable = new VariableCommand { Name = name, Value = value, RequiresGrad = requiresGrad } };

    public static Command Apply(string op, string output, params string[] inputs) => new() { Apply = new ApplyCommand { Op = op, Inputs = { inputs }, Output = output } };
    public static Command Fetch(string name) => new() { Fetch = new FetchCommand { Name = name } };
    public static Command Backward(string output, Contracts.V1.Tensor? seed = null, bool retainGraph = false, bool createGraph = false) =>
        new() { Backward = new BackwardCommand { Output = output, Seed = seed, RetainGraph = retainGraph, CreateGraph = createGraph } };
    public static Command ZeroGrad(params string[] names) => new() { ZeroGrad = new ZeroGradCommand { Names = { names } } };
    public static Command Detach(string name, string output) => new() { Detach = new DetachCommand { Name = name, Output = output } };

    public async Task CloseAsync()
    {
        await _call.RequestStream.CompleteAsync();
        Assert.False(await _call.ResponseStream.MoveNext(default));
    }

    public void Dispose() => _call.Dispose();
}
