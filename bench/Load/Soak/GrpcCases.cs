using AutogradService.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;
using static AutogradService.Load.Soak.Numbers;

namespace AutogradService.Load.Soak;

/// <summary>
/// The gRPC requests, through the clients generated from src/Contracts (and, for malformed protobuf, hand-made frames
/// over raw HTTP/2): the same chapter cases, limits and bad inputs as over REST.
/// </summary>
public static class GrpcCases
{
    private const string Evaluate = "/autograd.v1.Autodiff/Evaluate";

    public static IEnumerable<Case> All()
    {
        yield return Case.Valid("grpc.gradient.c1", "grpc", 10, c => C1Async(c, new Computation { Program = Fixtures.C1 }));
        yield return Case.Valid("grpc.gradient.c1_graph", "grpc", 6, c => C1Async(c, new Computation { Graph = Fixtures.C1Graph() }));
        yield return Case.Valid("grpc.gradient.c1_model", "grpc", 4, c => C1Async(c, new Computation { Model = c.Fixtures.ModelName }));
        yield return Case.Valid("grpc.gradient.e6", "grpc", 6, E6Async);
        yield return Case.Valid("grpc.gradient.loop", "grpc", 4, LoopAsync);
        yield return Case.Valid("grpc.jvp", "grpc", 5, JvpAsync);
        yield return Case.Valid("grpc.jacobian", "grpc", 4, JacobianAsync);
        yield return Case.Valid("grpc.hessian", "grpc", 4, HessianAsync);
        yield return Case.Valid("grpc.session", "grpc", 5, SessionAsync);
        yield return Case.Valid("grpc.gradient_stream", "grpc", 2, StreamAsync);

        yield return Case.OverLimit("grpc.limit.nodes_program", "grpc", 1, "invalid_graph", c =>
            CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest { Computation = new() { Program = c.Fixtures.TooManyNodesProgram }, Inputs = { ["x"] = Scalar32(1) } })));
        yield return Case.OverLimit("grpc.limit.tensor_elements", "grpc", 3, "invalid_tensor", c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Program = "y = sum(x)" },
            Inputs = { ["x"] = new Tensor { Dtype = DType.Float32, Shape = { 4100 + c.Rng.Next(1000), 4100 } } },
        })));
        yield return Case.OverLimit("grpc.limit.shape_elements", "grpc", 2, "invalid_graph", c =>
            CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest { Computation = new() { Program = $"y = sum(zeros(shape=[{50_000 + c.Rng.Next(1000)},50000]))" } })));
        yield return Case.OverLimit("grpc.limit.deadline", "grpc", 3, Case.DeadlineOrIterationLimit, c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Graph = Fixtures.CountingLoop() },
            Inputs = { ["i0"] = Scalar32(0), ["n"] = Scalar32(1e9) },
            Limits = new RequestLimits { TimeoutMs = 1 + c.Rng.Next(3) },
        })));
        yield return Case.OverLimit("grpc.limit.memory", "grpc", 3, "memory_limit_exceeded", c => CodeAsync(() => c.Autodiff.GradientAsync(new GradientRequest
        {
            Computation = new() { Program = Fixtures.C1 },
            Inputs = { ["x"] = Proto32(Vector(c.Rng, 1000), c.Rng.Next(2) == 0) },
            Wrt = { "x" },
            Limits = new RequestLimits { MemoryBytes = 64 + c.Rng.Next(1000) },
        })));
        yield return Case.OverLimit("grpc.limit.iterations", "grpc", 2, "iteration_limit_exceeded", c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Graph = Fixtures.CountingLoop(maxIterations: 10) },
            Inputs = { ["i0"] = Scalar32(0), ["n"] = Scalar32(20 + c.Rng.Next(100)) },
        })));
        yield return Case.OverLimit("grpc.limit.session_memory", "grpc", 2, "memory_limit_exceeded", c => SessionErrorAsync(c,
            new Command { Open = new SessionOptions { MemoryBytes = 4096 } },
            new Command { Variable = new VariableCommand { Name = "x", Value = Proto32(Vector(c.Rng, 2048 + c.Rng.Next(2048)), true), RequiresGrad = true } }));
        yield return Case.OverLimit("grpc.limit.program_nesting", "grpc", 1, "invalid_graph", c =>
            CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest { Computation = new() { Program = c.Fixtures.DeepParentheses }, Inputs = { ["x"] = Scalar32(1) } })));
        // A frame that declares 100 MB: Kestrel's gRPC refuses it before the service sees it, so no autograd-code trailer.
        yield return new Case("grpc.limit.message_size", Kind.OverLimit, "grpc", 1, ["request_too_large", "grpc_ResourceExhausted"], async c =>
            new Outcome(await c.RawGrpcAsync(Evaluate, CaseContext.Frame(Utf8("\n\u0003"), declaredLength: 100_000_000)), 1));
        yield return new Case("grpc.limit.protobuf_nesting", Kind.OverLimit, "grpc", 1, ["invalid_argument", "invalid_graph"], async c =>
            new Outcome(await c.RawGrpcAsync(Evaluate, CaseContext.Frame(NestedGraphs(120))), 1));

        yield return Case.Malformed("grpc.bad.protobuf", "grpc", 3, "invalid_argument", async c =>
            new Outcome(await c.RawGrpcAsync(Evaluate, CaseContext.Frame(BadProtobuf[c.Rng.Next(BadProtobuf.Length)])), 1));
        yield return Case.Malformed("grpc.bad.utf8", "grpc", 1, "invalid_argument", async c =>
            new Outcome(await c.RawGrpcAsync(Evaluate, CaseContext.Frame([0x0a, 0x08, 0x12, 0x06, .. Utf8("y = x"), 0xff])), 1));
        yield return Case.Malformed("grpc.bad.program", "grpc", 3, "invalid_graph", c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Program = BadPrograms[c.Rng.Next(BadPrograms.Length)] },
            Inputs = { ["x"] = Proto32([1, 2], false) },
        })));
        yield return Case.Malformed("grpc.bad.tensor", "grpc", 3, "invalid_tensor", c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Program = "y = sum(x)" },
            Inputs = { ["x"] = BadTensor(c.Rng) },
        })));
        yield return Case.Malformed("grpc.bad.shape_mismatch", "grpc", 2, "shape_mismatch", c => CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest
        {
            Computation = new() { Program = "y = dot(x, z)" },
            Inputs = { ["x"] = Proto32(Vector(c.Rng, 3), true), ["z"] = Proto32(Vector(c.Rng, 4), true) },
        })));
        yield return Case.Malformed("grpc.bad.not_differentiable", "grpc", 1, "not_differentiable", c => CodeAsync(() => c.Autodiff.GradientAsync(new GradientRequest
        {
            Computation = new() { Program = "y = sum(k * 2)" },
            Inputs = { ["k"] = new Tensor { Dtype = DType.Int64, Shape = { 2 }, Int64Data = { 1, 2 } } },
            Wrt = { "k" },
        })));
        yield return Case.Malformed("grpc.bad.unknown_model", "grpc", 1, "not_found", c =>
            CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest { Computation = new() { Model = $"no-such-model-{c.Rng.Next()}" } })));
        yield return Case.Malformed("grpc.bad.device", "grpc", 1, "device_unavailable", c =>
            CodeAsync(() => c.Autodiff.EvaluateAsync(new EvaluateRequest { Computation = new() { Program = "y = x" }, Inputs = { ["x"] = Scalar32(1) }, Device = "gpu" })));
        yield return Case.Malformed("grpc.bad.backward_twice", "grpc", 2, "graph_freed", c => SessionErrorAsync(c,
            new Command { Variable = new VariableCommand { Name = "x", Value = Proto32(Vector(c.Rng, 4), false), RequiresGrad = true } },
            new Command { Apply = new ApplyCommand { Program = "y = 2 * dot(x, x)" } },
            new Command { Backward = new BackwardCommand { Output = "y" } },
            new Command { Backward = new BackwardCommand { Output = "y" } }));
        yield return Case.Malformed("grpc.bad.session_open_twice", "grpc", 1, "invalid_argument", c => SessionErrorAsync(c,
            new Command { Open = new SessionOptions() }, new Command { Open = new SessionOptions() }));
    }

    private static readonly string[] BadPrograms = ["y = 2 * dot(x, x", "y = foo(x)", "y = x +", "= x", "y = x ** ** 2"];

    // Malformed protobuf: a length past the end, wire type 7, an 11-byte varint, a truncated nested message, a bad tag 0.
    private static readonly byte[][] BadProtobuf =
    [
        [0x0a, 0x7f, 0x01],
        [0x0f, 0x01],
        [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        [0x0a, 0x05, 0x12, 0x09, 0x79],
        [0x00, 0x01],
    ];

    private static Tensor BadTensor(Random rng) => rng.Next(3) switch
    {
        0 => new Tensor { Dtype = DType.Float32, Shape = { 3 }, Raw = ByteString.CopyFrom(new byte[5]) },
        1 => new Tensor { Dtype = DType.Float32, Shape = { 3 }, FloatData = { 1f, 2f } },
        _ => new Tensor { Dtype = DType.Float32, Shape = { 2 }, FloatData = { 1f, 2f }, DoubleData = { 1, 2 } },
    };

    /// <summary>An evaluate request whose graph nests <paramref name="depth"/> subgraphs (if's then-branch in if's then-branch).</summary>
    private static byte[] NestedGraphs(int depth)
    {
        var graph = new Graph { Outputs = { "x" } };
        for (int i = 0; i < depth; i++)
        {
            var node = new Node { Op = "if", Inputs = { "c", "x" }, Outputs = { "x" } };
            node.Attrs.Add("then", new Contracts.V1.Attribute { Graph = graph });
            graph = new Graph { Nodes = { node }, Outputs = { "x" } };
        }
        return new EvaluateRequest { Computation = new Computation { Graph = graph } }.ToByteArray();
    }

    private static async Task<Outcome> CodeAsync<T>(Func<AsyncUnaryCall<T>> call) where T : class =>
        new((await CaseContext.GrpcAsync(call)).Code, 1);

    private static async Task<Outcome> CheckAsync<T>(Func<AsyncUnaryCall<T>> call, Func<T, string?> check) where T : class
    {
        var (result, code) = await CaseContext.GrpcAsync(call);
        return result is null ? new Outcome(code, 1) : new Outcome("ok", 1, RestCases.Guard(() => check(result)));
    }

    private static Task<Outcome> C1Async(CaseContext c, Computation computation)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var request = new GradientRequest { Computation = computation, Inputs = { ["x"] = Proto32(x, c.Rng.Next(2) == 0) }, Wrt = { "x" } };
        return CheckAsync(() => c.Autodiff.GradientAsync(request), r => First(
            Compare("y", FromProto(r.Outputs["y"]), [2 * x.Sum(v => v * v)]),
            Compare("dy/dx", FromProto(r.Gradients["x"]), Map(x, v => 4 * v))));
    }

    private static Task<Outcome> E6Async(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8), away: 0.1);
        var request = new GradientRequest { Computation = new() { Program = Fixtures.E6 }, Inputs = { ["x"] = Proto64(x, c.Rng.Next(2) == 0) }, Wrt = { "x" } };
        return CheckAsync(() => c.Autodiff.GradientAsync(request), r => First(
            Compare("f", FromProto(r.Outputs["f"]), Map(x, v => Math.Log(v * v) * Math.Sin(v) + 1 / v), 1e-9),
            Compare("f'", FromProto(r.Gradients["x"]), Map(x, v => 2 * Math.Sin(v) / v + Math.Log(v * v) * Math.Cos(v) - 1 / (v * v)), 1e-9)));
    }

    private static Task<Outcome> LoopAsync(CaseContext c)
    {
        int n = 1 + c.Rng.Next(50);
        var request = new GradientRequest { Computation = new() { Graph = Fixtures.CountingLoop() }, Inputs = { ["i0"] = Scalar32(0), ["n"] = Scalar32(n) }, Wrt = { "i0" } };
        return CheckAsync(() => c.Autodiff.GradientAsync(request), r => First(
            Compare("i", FromProto(r.Outputs["i"]), [n]),
            Compare("di/di0", FromProto(r.Gradients["i0"]), [1])));
    }

    private static Task<Outcome> JvpAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var t = Vector(c.Rng, x.Length);
        var request = new JvpRequest { Computation = new() { Program = "y = sin(x) * x" }, Inputs = { ["x"] = Proto32(x, true) }, Tangents = { ["x"] = Proto32(t, false) } };
        return CheckAsync(() => c.Autodiff.JvpAsync(request), r => First(
            Compare("y", FromProto(r.Outputs["y"]), Map(x, v => Math.Sin(v) * v)),
            Compare("tangent", FromProto(r.TangentsOut["y"]), x.Select((v, i) => (Math.Cos(v) * v + Math.Sin(v)) * t[i]).ToArray())));
    }

    private static Task<Outcome> JacobianAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        var request = new JacobianRequest { Computation = new() { Program = "y = x * x" }, Inputs = { ["x"] = Proto32(x, false) }, Wrt = { "x" }, Mode = (JacobianMode)c.Rng.Next(3) };
        return CheckAsync(() => c.Autodiff.JacobianAsync(request), r =>
            Compare("dy/dx", FromProto(r.Jacobians["y"].ByInput["x"]), Diagonal(Map(x, v => 2 * v))));
    }

    private static Task<Outcome> HessianAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        var request = new HessianRequest { Computation = new() { Program = "y = sum(x * x * x)" }, Inputs = { ["x"] = Proto32(x, true) }, Wrt = { "x" } };
        if (c.Rng.Next(2) == 0)
            return CheckAsync(() => c.Autodiff.HessianAsync(request), r => Compare("d2y/dx2", FromProto(r.Hessians["x"].ByInput["x"]), Diagonal(Map(x, v => 6 * v))));
        var v = Vector(c.Rng, x.Length);
        request.Vector.Add("x", Proto32(v, false));
        return CheckAsync(() => c.Autodiff.HessianAsync(request), r => Compare("hvp", FromProto(r.Hvp["x"]), x.Select((xi, i) => 6 * xi * v[i]).ToArray()));
    }

    /// <summary>C1 then C2 on one session stream, a reply read after each command as a define-by-run client does.</summary>
    private static async Task<Outcome> SessionAsync(CaseContext c)
    {
        bool accumulate = c.Rng.Next(2) == 0;
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        Command[] commands =
        [
            new() { Open = new SessionOptions { GradientMode = accumulate ? GradientMode.Accumulate : GradientMode.Overwrite } },
            new() { Variable = new VariableCommand { Name = "x", Value = Proto32(x, c.Rng.Next(2) == 0), RequiresGrad = true } },
            new() { Apply = new ApplyCommand { Program = "y = 2 * dot(x, x)" } },
            new() { Backward = new BackwardCommand { Output = "y" } },
            new() { Grad = new GradCommand { Name = "x" } },
            new() { Apply = new ApplyCommand { Op = "sum", Inputs = { "x" }, Output = "y" } },
            new() { Backward = new BackwardCommand { Output = "y" } },
            new() { Grad = new GradCommand { Name = "x" } },
            new() { Fetch = new FetchCommand { Name = "y" } },
        ];
        var (replies, code) = await ConverseAsync(c, commands);
        if (code != "ok") return new Outcome(code, 1);
        return new Outcome("ok", 1, RestCases.Guard(() => First(
            Compare("grad", FromProto(replies[4].Value), Map(x, v => 4 * v)),
            Compare("grad after C2", FromProto(replies[7].Value), Map(x, v => accumulate ? 4 * v + 1 : 1)),
            Compare("sum", FromProto(replies[8].Value), [x.Sum()]))));
    }

    /// <summary>A session whose last command must fail: the code is that reply's error code; earlier ones must succeed.</summary>
    private static async Task<Outcome> SessionErrorAsync(CaseContext c, params Command[] commands)
    {
        var (replies, code) = await ConverseAsync(c, commands, lastMayFail: true);
        if (code != "ok") return new Outcome(code, 1);
        var last = replies[^1].Error;
        return last is null ? new Outcome("ok", 1) : new Outcome(Known(last.Code), 1, Detail: last.Detail);
    }

    /// <summary>Runs commands on one stream; stops at the first failed reply unless it is the last and may fail.</summary>
    private static async Task<(List<Reply> Replies, string Code)> ConverseAsync(CaseContext c, Command[] commands, bool lastMayFail = false)
    {
        var replies = new List<Reply>();
        try
        {
            using var call = c.Sessions.Run();
            for (int i = 0; i < commands.Length; i++)
            {
                await call.RequestStream.WriteAsync(commands[i]);
                if (!await call.ResponseStream.MoveNext(CancellationToken.None)) return (replies, "session:stream_ended");
                var reply = call.ResponseStream.Current;
                replies.Add(reply);
                if (reply.Error is not null && !(lastMayFail && i == commands.Length - 1))
                {
                    await call.RequestStream.CompleteAsync();
                    while (await call.ResponseStream.MoveNext(CancellationToken.None)) { }
                    return (replies, $"session:{Known(reply.Error.Code)}");
                }
            }
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None)) replies.Add(call.ResponseStream.Current);
            return (replies, "ok");
        }
        catch (RpcException e)
        {
            return (replies, CaseContext.CodeOf(e));
        }
    }

    private static string Known(string code) => Contract.Codes.ContainsKey(code) ? code : $"unknown:{code}";

    /// <summary>C1 streamed: output chunks, then the gradient's, then stats.</summary>
    private static async Task<Outcome> StreamAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var request = new GradientRequest { Computation = new() { Program = Fixtures.C1 }, Inputs = { ["x"] = Proto32(x, true) }, Wrt = { "x" } };
        var chunks = new List<ResultChunk>();
        try
        {
            using var call = c.Autodiff.GradientStream(request);
            while (await call.ResponseStream.MoveNext(CancellationToken.None)) chunks.Add(call.ResponseStream.Current);
        }
        catch (RpcException e)
        {
            return new Outcome(CaseContext.CodeOf(e), 1);
        }
        return new Outcome("ok", 1, RestCases.Guard(() =>
        {
            double[] Values(string name) => chunks.Where(k => k.Tensor?.Name == name)
                .SelectMany(k => FromProto(new Tensor { Dtype = k.Tensor.Dtype, Raw = k.Tensor.Data })).ToArray();
            return First(
                Compare("y", Values("y"), [2 * x.Sum(v => v * v)]),
                Compare("dy/dx", Values("x"), Map(x, v => 4 * v)),
                chunks.Count > 0 && chunks[^1].KindCase == ResultChunk.KindOneofCase.Stats ? null : "the last message is not stats");
        }));
    }
}
