using System.Net;
using System.Text;
using AutogradService.Api.Tests.Fuzz;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Engine.Memory;
using CsCheck;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace AutogradService.Api.Tests.Properties;

/// <summary>The service under small limits, so a mutated request that does run costs little; its logged errors are kept.</summary>
public sealed class PropertyService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:TimeoutMs"] = "2000",
    ["Limits:MemoryBytesPerRequest"] = (64L << 20).ToString(),
    ["Limits:MaxTensorElements"] = (1 << 20).ToString(),
    ["Limits:MaxOpenSessions"] = "4",
    // Hostile requests by the hundred: the errors they log are read from Errors, not printed.
    ["Logging:Console:LogLevel:Default"] = "None",
})
{
    public ServerErrors Errors { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureLogging(logging => logging.AddProvider(Errors));
    }
}

/// <summary>
/// Property-based hostile requests: valid requests (the fuzz seed corpora: REST bodies of every transform, inspect,
/// session batches and models; gRPC messages of every Autodiff RPC) are mutated — fields dropped, duplicated and
/// retyped, extreme numbers, huge/negative/zero dimensions, deep nesting, long names, broken programs, random bytes in
/// protobuf — and sent to the real service in-process. Each must get a result or a documented error code (never 500,
/// UNKNOWN or INTERNAL); afterwards the pool is back where it was and the service still answers correctly. Fixed
/// seeds, a bounded count (<c>AUTOGRAD_PROPERTY_ITERATIONS</c> raises it; see <see cref="PropertyRun"/>).
/// </summary>
[Collection(SerialCollection.Name)] // reads the process-wide pool
public sealed class HostileRequestProperties(PropertyService service, ITestOutputHelper output) : IClassFixture<PropertyService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static readonly string[] Transforms = ["evaluate", "gradient", "jvp", "jacobian", "hessian"];

    private sealed record RestBase(string Kind, string Body);

    private static readonly Lazy<RestBase[]> RestBases = new(() =>
    [
        .. FuzzFiles.Paths("corpus", "transform-json").Select(f => new RestBase("transform", File.ReadAllText(f))),
        .. FuzzFiles.Paths("corpus", "session-json").Select(f => new RestBase("session", File.ReadAllText(f))),
        .. FuzzFiles.Paths("corpus", "graph-json").Select(f => new RestBase("model", $"{{\"graph\": {File.ReadAllText(f)}}}")),
        new RestBase("model", """{"program": "t = dot(x, x)\ny = 2 * t"}"""),
        new RestBase("open-session", """{"gradient_mode": "overwrite", "memory_bytes": 1048576, "idle_timeout_ms": 60000, "strict_scalar_seed": true}"""),
        new RestBase("inspect", """{"program": "t = dot(x, x)\ny = 2 * t", "inputs": {"x": {"dtype": "float32", "shape": [4]}}}"""),
        new RestBase("inspect", "{\"graph\": " + File.ReadAllText(FuzzFiles.Paths("corpus", "graph-json").First(f => f.Contains("c5"))) + ", \"inputs\": {\"a\": [1, 2, 3]}}"),
    ]);

    public sealed record RestCase(int Base, RequestMutation[] Mutations, int Transform);

    [Fact]
    public async Task Mutated_rest_requests_get_a_result_or_a_documented_error()
    {
        var gen = Gen.Select(Gen.Int[0, RestBases.Value.Length - 1], RequestMutation.Several, Gen.Int[0, Transforms.Length - 1],
            (b, m, t) => new RestCase(b, m, t));
        long pooled = await Quiet();
        var known = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await PropertyRun.ForEach(gen, seed: 20_260_901, PropertyRun.Iterations(250), async c =>
        {
            var (kind, body) = Body(c);
            service.Errors.Drain();
            var reply = await SendRest(kind, body, c);
            if (!((int)reply.Status == 500 && Tracked(known))) AssertDocumented(reply);
            await PoolReturnsTo(pooled);
        }, c => $"{RestBases.Value[c.Base].Kind} {Transforms[c.Transform]} after {string.Join(", ", c.Mutations)}:\n{Body(c).Body}");
        Report(known);
        await AssertHealthy();
    }

    public sealed record GrpcCase(int Base, bool Structured, RequestMutation[] Mutations, ByteMutation[] Bytes);

    [Fact]
    public async Task Mutated_grpc_messages_get_a_result_or_a_documented_status()
    {
        var bases = FuzzFiles.Paths("corpus", "proto").Select(File.ReadAllBytes).ToArray();
        var gen = Gen.Select(Gen.Int[0, bases.Length - 1], Gen.Bool, RequestMutation.Several, ByteMutation.Several,
            (b, s, m, bytes) => new GrpcCase(b, s, m, bytes));
        long pooled = await Quiet();
        var known = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await PropertyRun.ForEach(gen, seed: 20_260_902, PropertyRun.Iterations(250), async c =>
        {
            var (rpc, message) = GrpcMessage(bases[c.Base], c);
            service.Errors.Drain();
            var status = await GrpcRaw.Call(service.Channel, rpc, message);
            if (status is StatusCode.Unknown or StatusCode.Internal && !Tracked(known))
                Assert.Fail($"{GrpcRaw.Rpcs[rpc]} answered {status}: {Thrown()}");
            await PoolReturnsTo(pooled);
        }, c => $"{GrpcRaw.Rpcs[bases[c.Base][0] % GrpcRaw.Rpcs.Length]} structured={c.Structured} {string.Join(", ", c.Mutations)} {string.Join(", ", c.Bytes)}");
        Report(known);
        await AssertHealthy();
    }

    public sealed record SessionCase(int Base, int Message, bool Structured, RequestMutation[] Mutations, ByteMutation[] Bytes);

    [Fact]
    public async Task Mutated_grpc_session_streams_get_replies_or_a_documented_status()
    {
        var bases = FuzzFiles.Paths("corpus", "session-proto").Select(Commands).ToArray();
        var gen = Gen.Select(Gen.Int[0, bases.Length - 1], Gen.Int[0, 63], Gen.Bool, RequestMutation.Several, ByteMutation.Several,
            (b, m, s, mutations, bytes) => new SessionCase(b, m, s, mutations, bytes));
        long pooled = await Quiet();
        var known = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await PropertyRun.ForEach(gen, seed: 20_260_903, PropertyRun.Iterations(150), async c =>
        {
            var commands = bases[c.Base].ToList();
            int at = c.Message % commands.Count;
            if (c.Structured && GrpcRaw.Mutate(Contracts.V1.Command.Parser, commands[at], c.Mutations) is { } mutated) commands[at] = mutated;
            else foreach (var m in c.Bytes) commands[at] = m.Apply(commands[at]);
            service.Errors.Drain();
            var (status, codes) = await GrpcRaw.Session(service.Channel, commands);
            if (status is StatusCode.Unknown or StatusCode.Internal && !Tracked(known))
                Assert.Fail($"the session stream ended {status}: {Thrown()}");
            Assert.DoesNotContain("internal", codes);
            await PoolReturnsTo(pooled);
        }, c => $"{c.Base} message {c.Message} structured={c.Structured} {string.Join(", ", c.Mutations)} {string.Join(", ", c.Bytes)}");
        Report(known);
        await AssertHealthy();
    }

    /// <summary>The messages of a length-delimited command stream (the session-proto seeds).</summary>
    private static byte[][] Commands(string file)
    {
        using var stream = File.OpenRead(file);
        var messages = new List<byte[]>();
        while (stream.Position < stream.Length) messages.Add(Contracts.V1.Command.Parser.ParseDelimitedFrom(stream).ToByteArray());
        return [.. messages];
    }

    private static (string Kind, string Body) Body(RestCase c)
    {
        var b = RestBases.Value[c.Base];
        var tree = JsonTree.Parse(b.Body);
        foreach (var m in c.Mutations) m.Apply(tree);
        return (b.Kind, tree.Write());
    }

    private static (int Rpc, byte[] Message) GrpcMessage(byte[] seed, GrpcCase c)
    {
        int rpc = seed[0] % GrpcRaw.Rpcs.Length;
        byte[] message = seed[1..];
        if (c.Structured && GrpcRaw.Mutate(rpc, message, c.Mutations) is { } structured) message = structured;
        else foreach (var m in c.Bytes) message = m.Apply(message);
        return (rpc, message);
    }

    private async Task<RestReply> SendRest(string kind, string body, RestCase c)
    {
        switch (kind)
        {
            case "session":
            {
                var open = (await _client.Post("/v1/sessions", new { })).Ok();
                var id = open.Str("id");
                var reply = await Raw(HttpMethod.Post, $"/v1/sessions/{id}/commands", body);
                Assert.True((await _client.Delete($"/v1/sessions/{id}")).Status == HttpStatusCode.NoContent, "the session closes");
                return reply;
            }
            case "model":
            {
                var name = $"prop-{c.Base}-{c.Transform}";
                var reply = await Raw(HttpMethod.Put, $"/v1/models/{name}", body);
                if (reply.Status == HttpStatusCode.OK) await _client.Delete($"/v1/models/{name}");
                return reply;
            }
            case "inspect":
                return await Raw(HttpMethod.Post, "/v1/inspect", body);
            case "open-session":
            {
                var reply = await Raw(HttpMethod.Post, "/v1/sessions", body);
                if (reply.Status == HttpStatusCode.Created) await _client.Delete($"/v1/sessions/{reply.Str("id")}");
                return reply;
            }
            default:
                return await Raw(HttpMethod.Post, $"/v1/{Transforms[c.Transform]}", body);
        }
    }

    private async Task<RestReply> Raw(HttpMethod method, string path, string body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        return await JsonKit.SendAsync(_client, request);
    }

    /// <summary>
    /// Whether the failure just answered is a tracked issue (every exception the service logged for it matches one of
    /// the fuzz harness's <see cref="global::AutogradService.Fuzz.Harness.KnownIssues"/>); counted by issue.
    /// </summary>
    private bool Tracked(SortedDictionary<string, int> known)
    {
        var thrown = service.Errors.Drain();
        // The log entry may trail the response by a moment on a busy machine.
        for (int wait = 0; thrown.Count == 0 && wait < 20; wait++)
        {
            Thread.Sleep(50);
            thrown = service.Errors.Drain();
        }
        var ids = thrown.Select(global::AutogradService.Fuzz.Harness.KnownIssues.Match).ToList();
        if (thrown.Count == 0 || ids.Any(id => id is null))
        {
            _lastThrown = thrown;
            return false;
        }
        foreach (var id in ids.OfType<string>())
        {
            var key = id[..id.IndexOf(':')];
            known[key] = known.GetValueOrDefault(key) + 1;
        }
        return true;
    }

    private List<Exception> _lastThrown = [];

    /// <summary>What the service logged for the failure at hand: type, message and the first frames of our code.</summary>
    private string Thrown() => string.Join("\n", _lastThrown.Select(e =>
        $"{e.GetType().Name}: {e.Message}\n" + string.Join("\n", (e.StackTrace ?? "(no stack trace)").Split('\n').Take(8))));

    private void Report(SortedDictionary<string, int> known)
    {
        foreach (var (id, n) in known) output.WriteLine($"tracked issue {id}: {n} cases (see tests/Fuzz/Harness/Outcome.cs, KnownIssues)");
    }

    /// <summary>A result, or RFC 9457 problem details with a documented code, never 500 and never a stack trace.</summary>
    private void AssertDocumented(RestReply reply)
    {
        int status = (int)reply.Status;
        if (status is 200 or 201 or 204) return;
        Assert.True(status != 500, $"500: {reply.Text}\n{Thrown()}");
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.False(string.IsNullOrEmpty(reply.Code), $"no code: {reply.Text}");
        Assert.NotEqual("internal", reply.Code);
        Assert.DoesNotContain("   at ", reply.Text);
    }

    /// <summary>The pool's level once nothing runs: the baseline each case must return to.</summary>
    private async Task<long> Quiet()
    {
        (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new[] { 1, 2 } } })).Ok();
        await Task.Delay(50);
        return BufferPool.Shared.OutstandingBytes;
    }

    private static Task PoolReturnsTo(long pooled) => JsonKit.Eventually(() => BufferPool.Shared.OutstandingBytes == pooled,
        $"pooled bytes to return to {pooled} (now {BufferPool.Shared.OutstandingBytes})", seconds: 5);

    /// <summary>Still live and ready, and still right: C1 (y = 2 x·x at x = 0..3) is 28 over REST and gRPC.</summary>
    private async Task AssertHealthy()
    {
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/readyz")).StatusCode);
        var rest = (await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
        Assert.Equal(28, JsonKit.One(rest.Body.At("outputs", "y")));
        var grpc = await service.Autodiff.EvaluateAsync(new Contracts.V1.EvaluateRequest
        {
            Computation = new Contracts.V1.Computation { Program = Cases.C1Program },
            Inputs = { ["x"] = Tensors.F32(Cases.X) },
        });
        Assert.Equal([28.0], Tensors.Values(grpc.Outputs["y"]));
    }
}
