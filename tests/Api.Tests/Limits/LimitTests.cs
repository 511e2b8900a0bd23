using System.Text;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Limits;

/// <summary>Small limits, so each can be tested at its edge and one past it.</summary>
public sealed class SmallLimitsService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:MaxRequestBodyBytes"] = "65536",
    ["Limits:MaxNodes"] = "5",
    ["Limits:MaxTensorElements"] = "1024",
    ["Limits:MaxRank"] = "3",
    ["Limits:MaxLoopIterations"] = "10",
    ["Limits:MemoryBytesPerRequest"] = "65536",
    ["Limits:MemoryBytesPerSession"] = "65536",
    ["Limits:MaxOpenSessions"] = "2",
});

/// <summary>Every limit of the Limits section at its edge (accepted) and one past it (refused with the table's code).</summary>
public sealed class LimitTests(SmallLimitsService service) : IClassFixture<SmallLimitsService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static string Chain(int nodes) => string.Join("\n", Enumerable.Range(0, nodes).Select(i => $"v{i + 1} = {(i == 0 ? "x" : $"v{i}")} + 1"));

    [Fact]
    public async Task RequestBodyBytes_Rest()
    {
        const string json = "{\"program\":\"y = x * 2\",\"inputs\":{\"x\":1}}";
        string Padded(int bytes) => json[..^1] + new string(' ', bytes - Encoding.UTF8.GetByteCount(json)) + "}";
        var atEdge = (await _client.Post("/v1/evaluate", Padded(65536))).Ok();
        Assert.Equal(2.0, One(atEdge.Body.At("outputs", "y")));
        (await _client.Post("/v1/evaluate", Padded(65537))).Problem(413, "request_too_large");
        (await _client.Post("/v1/sessions/any/commands", "{\"commands\":[]" + new string(' ', 70000) + "}")).Problem(413, "request_too_large");
    }

    [Fact]
    public async Task RequestBodyBytes_Grpc()
    {
        EvaluateRequest Sized(int bytes)
        {
            var request = new EvaluateRequest { Computation = new Computation { Program = "y = x * 2\n#" } };
            request.Inputs["x"] = Tensors.F32Scalar(1);
            request.Computation.Program += new string('.', bytes - request.CalculateSize());
            // The varint length prefix of the program may grow by a byte: trim back to the exact size.
            while (request.CalculateSize() > bytes) request.Computation.Program = request.Computation.Program[..^1];
            Assert.Equal(bytes, request.CalculateSize());
            return request;
        }
        var ok = await service.Autodiff.EvaluateAsync(Sized(65536));
        Assert.Equal(2.0, Tensors.One(ok.Outputs["y"]));
        var e = await Assert.ThrowsAsync<RpcException>(() => service.Autodiff.EvaluateAsync(Sized(65537)).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task NodesPerGraph()
    {
        var ok = (await _client.Post("/v1/evaluate", new { program = Chain(5), inputs = new { x = 0 } })).Ok();
        Assert.Equal(5.0, One(ok.Body.At("outputs", "v5")));
        var r = (await _client.Post("/v1/evaluate", new { program = Chain(6), inputs = new { x = 0 } })).Problem(400, "invalid_graph");
        Assert.Contains("5", r.Str("detail"));
        // Subgraph nodes count: C5 has 5 nodes at the top and 4 inside its loop and branch.
        (await _client.Post("/v1/evaluate", new { graph = Cases.C5Graph([]).ToJson(), inputs = new { a = 0.5 } })).Problem(400, "invalid_graph");
        (await _client.Put("/v1/models/too-big", new { program = Chain(6) })).Problem(400, "invalid_graph");
        (await _client.Put("/v1/models/too-big", new { graph = Cases.C5Graph([]).ToJson() })).Problem(400, "invalid_graph");
        (await _client.Put("/v1/models/fits", new { program = Chain(5) })).Ok();

        var request = new EvaluateRequest { Computation = new Computation { Program = Chain(6) } };
        request.Inputs["x"] = Tensors.F32Scalar(0);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Fact]
    public async Task ElementsPerTensor()
    {
        var ok = (await _client.Post("/v1/evaluate", new { program = "y = sum(x)", inputs = new { x = Enumerable.Repeat(1, 1024).ToArray() } })).Ok();
        Assert.Equal(1024.0, One(ok.Body.At("outputs", "y")));
        (await _client.Post("/v1/evaluate", new { program = "y = sum(x)", inputs = new { x = new float[1025] } })).Problem(400, "invalid_tensor");
        (await _client.Post("/v1/evaluate", new { program = "y = sum(x)", inputs = new { x = new { dtype = "float32", shape = new[] { 1025 }, data = new float[1025] } } }))
            .Problem(400, "invalid_tensor");
        (await _client.Post("/v1/evaluate", new { program = "y = sum(x)", inputs = new { x = new { dtype = "float32", shape = new[] { 1025 }, b64 = Convert.ToBase64String(new byte[4100]) } } }))
            .Problem(400, "invalid_tensor");

        var request = new EvaluateRequest { Computation = new Computation { Program = "y = sum(x)" } };
        request.Inputs["x"] = Tensors.F32(new float[1024]);
        Assert.Equal(0.0, Tensors.One((await service.Autodiff.EvaluateAsync(request)).Outputs["y"]));
        request.Inputs["x"] = Tensors.F32(new float[1025]);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Fact]
    public async Task Rank()
    {
        var ok = (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new { dtype = "float32", shape = new[] { 1, 2, 1 }, data = new[] { 1, 2 } } } })).Ok();
        Assert.Equal([1, 2, 1], Shape(ok.Body.At("outputs", "y")));
        var r = (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new { dtype = "float32", shape = new[] { 1, 2, 1, 1 }, data = new[] { 1, 2 } } } }))
            .Problem(400, "invalid_tensor");
        Assert.Contains("rank", r.Str("detail"));
        (await _client.Post("/v1/evaluate", new { program = "y = x * 2", inputs = new { x = new[] { new[] { new[] { new[] { 1 } } } } } })).Problem(400, "invalid_tensor");

        var request = new EvaluateRequest { Computation = new Computation { Program = "y = x * 2" } };
        request.Inputs["x"] = Tensors.F32([1, 2], 1, 2, 1, 1);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_tensor", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Fact]
    public async Task LoopIterations()
    {
        var ok = (await _client.Post("/v1/evaluate", new { graph = Cases.CountingLoop().ToJson(), inputs = new { i0 = 0, n = 10 } })).Ok();
        Assert.Equal(10.0, One(ok.Body.At("outputs", "i")));
        var r = (await _client.Post("/v1/evaluate", new { graph = Cases.CountingLoop().ToJson(), inputs = new { i0 = 0, n = 11 } }))
            .Problem(422, "iteration_limit_exceeded");
        Assert.Equal("server", r.Str("limit_source"));
        // A graph's own max_iterations may lower the limit, never raise it.
        (await _client.Post("/v1/evaluate", new { graph = Cases.CountingLoop(maxIterations: 1000).ToJson(), inputs = new { i0 = 0, n = 11 } }))
            .Problem(422, "iteration_limit_exceeded");
        (await _client.Post("/v1/evaluate", new { graph = Cases.CountingLoop(maxIterations: 3).ToJson(), inputs = new { i0 = 0, n = 3 } })).Ok();
        (await _client.Post("/v1/evaluate", new { graph = Cases.CountingLoop(maxIterations: 3).ToJson(), inputs = new { i0 = 0, n = 4 } }))
            .Problem(422, "iteration_limit_exceeded");
    }

    [Fact]
    public async Task MemoryPerRequest_AtThePeakAndOneByteLess()
    {
        var body = new { program = Cases.C3Program, inputs = new { x = new float[256] } };
        var free = (await _client.Post("/v1/gradient", body)).Ok();
        long peak = free.Body.At("stats", "peak_bytes").GetInt64();
        Assert.InRange(peak, 1024, 65536);
        (await _client.Post("/v1/gradient", new { body.program, body.inputs, limits = new { memory_bytes = peak } })).Ok();
        var r = (await _client.Post("/v1/gradient", new { body.program, body.inputs, limits = new { memory_bytes = peak - 1 } }))
            .Problem(422, "memory_limit_exceeded");
        Assert.Equal(peak - 1, r.Body.GetProperty("limit_bytes").GetInt64());
    }

    [Fact]
    public async Task MemoryPerRequest_TheServerLimitCannotBeRaised()
    {
        // outer(x, x) of 1024 elements needs 4 MiB: over the server's 64 KiB whatever the request asks for.
        var r = (await _client.Post("/v1/evaluate", new { program = "y = outer(x, x)", inputs = new { x = new float[1024] }, limits = new { memory_bytes = 1L << 40 } }))
            .Problem(422, "memory_limit_exceeded");
        Assert.Equal(65536, r.Body.GetProperty("limit_bytes").GetInt64());
        var request = new EvaluateRequest { Computation = new Computation { Program = "y = outer(x, x)" }, Limits = new RequestLimits { MemoryBytes = 1L << 40 } };
        request.Inputs["x"] = Tensors.F32(new float[1024]);
        await GrpcErrors.Expect(StatusCode.ResourceExhausted, "memory_limit_exceeded", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
    }

    [Fact]
    public async Task MemoryPerSession_ServerLimit()
    {
        var id = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        try
        {
            // 16 tensors of 1024 float32 fill the 64 KiB exactly; the 17th is refused and names its command.
            var fill = Enumerable.Range(0, 16).Select(i => (object)new { constant = new { name = $"v{i}", value = new float[1024] } }).ToArray();
            (await _client.Post($"/v1/sessions/{id}/commands", new { commands = fill })).Ok();
            var r = (await _client.Post($"/v1/sessions/{id}/commands", new
            {
                commands = new object[] { new { fetch = new { name = "v0" } }, new { variable = new { name = "one_more", value = new float[1] } } },
            })).Problem(422, "memory_limit_exceeded");
            Assert.Equal(1, r.Body.GetProperty("command_index").GetInt32());
            Assert.Equal(65536, r.Body.GetProperty("limit_bytes").GetInt64());
            // Releasing a value gives its memory back to the session.
            (await _client.Post($"/v1/sessions/{id}/commands", new
            {
                commands = new object[] { new { release = new { names = new[] { "v0" } } }, new { constant = new { name = "c", value = new float[1024] } } },
            })).Ok();
        }
        finally
        {
            await _client.Delete($"/v1/sessions/{id}");
        }
    }

    [Fact]
    public async Task MemoryPerSession_LoweredByTheClient()
    {
        var id = (await _client.Post("/v1/sessions", new { memory_bytes = 4096 })).Ok().Str("id");
        try
        {
            (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { constant = new { name = "a", value = new float[1024] } } } })).Ok();
            (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { constant = new { name = "b", value = 1 } } } }))
                .Problem(422, "memory_limit_exceeded");
        }
        finally
        {
            await _client.Delete($"/v1/sessions/{id}");
        }

        // gRPC: the stream's open options lower it the same way.
        using var call = service.Sessions.Run();
        await call.RequestStream.WriteAsync(new Command { Open = new SessionOptions { MemoryBytes = 4096 } });
        Assert.True(await call.ResponseStream.MoveNext(default));
        await call.RequestStream.WriteAsync(new Command { Constant = new ConstantCommand { Name = "a", Value = Tensors.F32(new float[1024]) } });
        Assert.True(await call.ResponseStream.MoveNext(default));
        Assert.Null(call.ResponseStream.Current.Error);
        await call.RequestStream.WriteAsync(new Command { Constant = new ConstantCommand { Name = "b", Value = Tensors.F32Scalar(1) } });
        Assert.True(await call.ResponseStream.MoveNext(default));
        Assert.Equal("memory_limit_exceeded", call.ResponseStream.Current.Error!.Code);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(default));
    }

    [Fact]
    public async Task OpenSessions_RestAndGrpcStreamsShareTheCap()
    {
        var a = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        var b = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        try
        {
            var r = (await _client.Post("/v1/sessions", new { })).Problem(429, "overloaded");
            Assert.NotNull(r.Headers.RetryAfter);
            using var call = service.Sessions.Run();
            // The server refuses the stream as it opens, before any command.
            var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(default));
            GrpcErrors.Check(e, StatusCode.ResourceExhausted, "overloaded");
        }
        finally
        {
            await _client.Delete($"/v1/sessions/{a}");
        }
        // One closed: a gRPC session stream fits again, and while it is open no REST session does.
        using (var call = service.Sessions.Run())
        {
            await call.RequestStream.WriteAsync(new Command { Variable = new VariableCommand { Name = "x", Value = Tensors.F32Scalar(1), RequiresGrad = true } });
            Assert.True(await call.ResponseStream.MoveNext(default));
            Assert.Null(call.ResponseStream.Current.Error);
            (await _client.Post("/v1/sessions", new { })).Problem(429, "overloaded");
            await call.RequestStream.CompleteAsync();
            Assert.False(await call.ResponseStream.MoveNext(default));
        }
        await Eventually(() => service.Get<global::AutogradService.Api.Sessions.SessionStore>().Count == 1, "the stream's slot to be given back");
        var c = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        await _client.Delete($"/v1/sessions/{b}");
        await _client.Delete($"/v1/sessions/{c}");
    }
}

/// <summary>A 300 ms server timeout and 1 s session idle time.</summary>
public sealed class ShortTimesService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:TimeoutMs"] = "300",
    ["Limits:SessionIdleSeconds"] = "1",
});

/// <summary>The time limits: the server's timeout (a request cannot raise it) and session idle expiry.</summary>
public sealed class TimeLimitTests(ShortTimesService service) : IClassFixture<ShortTimesService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task Timeout_WithinIsAnsweredPastIsCancelled_AndARequestCannotRaiseIt()
    {
        (await _client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X }, limits = new { timeout_ms = 250 } })).Ok();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var request = Cases.EndlessLoopRequest(100_000, timeoutMs: 3_600_000);
        (await _client.Post("/v1/evaluate", request)).Problem(504, "deadline_exceeded");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(8), $"the server's 300 ms limit took {started.Elapsed}");
    }

    [Fact]
    public async Task IdleSession_ExpiresAndIsNotFound()
    {
        var open = (await _client.Post("/v1/sessions", new { })).Ok();
        var id = open.Str("id");
        Assert.True(open.Body.GetProperty("expires_at").GetDateTimeOffset() <= DateTimeOffset.UtcNow.AddSeconds(2));
        (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { variable = new { name = "x", value = 1 } } } })).Ok();
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { fetch = new { name = "x" } } } })).Problem(404, "not_found");
        await Eventually(() => service.Get<global::AutogradService.Api.Sessions.SessionStore>().Count == 0, "the sweeper to close the idle session");
    }

    [Fact]
    public async Task IdleGrpcSessionStream_Ends()
    {
        using var call = service.Sessions.Run();
        await call.RequestStream.WriteAsync(new Command { Open = new SessionOptions { IdleTimeoutMs = 200 } });
        Assert.True(await call.ResponseStream.MoveNext(default));
        await Task.Delay(600);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(default));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
    }
}
