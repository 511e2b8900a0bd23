using System.Text;
using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Api.Grpc;
using AutogradService.Api.Inference;
using AutogradService.Api.Json;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Graphs;
using Graph = AutogradService.Engine.Graphs.Graph;
using GradientRequest = AutogradService.Contracts.V1.GradientRequest;
using AutogradService.Engine.Sessions;
using AutogradService.Engine.Tensors;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace AutogradService.Fuzz.Harness;

/// <summary>One decoder under test: its name (the corpus folder and the command-line argument) and what it runs.</summary>
public sealed record FuzzTarget(string Name, string Decoder, Func<byte[], string> Run)
{
    public Outcome Execute(byte[] input) => Classifier.Run(() => Run(input));
}

/// <summary>
/// Every decoder a client's bytes reach, each followed by the engine where that is cheap: JSON tensors, JSON graphs,
/// whole JSON transform requests, text programs, protobuf transform requests (through the gRPC service's own
/// methods), and session command streams in JSON and protobuf.
/// </summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("tensor-json", "TensorJson.Read, then TensorJson.Write round trip and a small program over the tensor", TensorJsonTarget),
        new("graph-json", "GraphJson.Read, GraphJson.Write round trip, then every transform with synthetic inputs", GraphJsonTarget),
        new("transform-json", "TransformJson.ReadRequest over a body whose tensor maps TensorBodyReader read, then each of the five transforms", TransformJsonTarget),
        new("transform-binary", "a framed binary body (2-byte little-endian JSON length, then the body) through JsonBody and BinaryTensorBody, then evaluate and gradient with a framed answer", TransformBinaryTarget),
        new("program", "ProgramParser.Parse under GraphLimits, DOT/Mermaid export, then every transform", ProgramTarget),
        new("proto", "autodiff.proto requests (first byte picks the RPC) through AutodiffGrpcService's methods", ProtoTarget),
        new("session-json", "SessionJson.ReadCommands, then the batch in a session", SessionJsonTarget),
        new("session-proto", "length-delimited Command messages through SessionsGrpcService.Run", SessionProtoTarget),
        new("oip-json", "OipJson.ReadCall as infer, vjp, jvp and jacobian, each call on a small MLP, then OipJson.WriteReply", OipJsonTarget),
    ];

    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"unknown target '{name}' ({string.Join(", ", All.Select(t => t.Name))})");

    /// <summary>Elementwise, reduction, movement and linear-algebra kernels over whatever tensor decoded.</summary>
    private static readonly Lazy<Graph> TensorProgram = new(() => ProgramParser.Parse(
        "a = exp(-abs(x)) * x\nb = sum(a) + mean(x * x)\nf = reshape(x, shape=[-1])\nc = dot(f, f)\ny = b + c"));

    private static string TensorJsonTarget(byte[] input)
    {
        using var doc = JsonBody.Parse(new System.Buffers.ReadOnlySequence<byte>(input)); // as the REST endpoints read a body
        var tensor = TensorJson.Read(doc.RootElement, "x", FuzzHost.Limits.MaxTensorElements);
        RoundTrip(tensor, base64: false);
        RoundTrip(tensor, base64: true);
        var transforms = FuzzHost.Shared.NewTransforms();
        var inputs = new Dictionary<string, HostTensor> { ["x"] = tensor };
        return $"{tensor.Type}; " + FuzzHost.Steps(
            ("evaluate", () => FuzzHost.Run(transforms, Request(TransformKind.Evaluate, TensorProgram.Value, inputs))),
            ("gradient", () => FuzzHost.Run(transforms, Request(TransformKind.Gradient, TensorProgram.Value, inputs))));
    }

    /// <summary>What the service writes, it must read back as the same values (b64 bit for bit).</summary>
    private static void RoundTrip(HostTensor tensor, bool base64)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) TensorJson.Write(w, tensor, base64);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        var back = TensorJson.Read(doc.RootElement, "x");
        if (back.DType != tensor.DType || back.Shape != tensor.Shape)
            throw new InvalidOperationException($"round trip ({(base64 ? "b64" : "data")}) changed {tensor.Type} into {back.Type}");
        var (a, b) = (tensor.ToDoubles(), back.ToDoubles());
        for (int i = 0; i < a.Length; i++)
        {
            if (!a[i].Equals(b[i]) && !(double.IsNaN(a[i]) && double.IsNaN(b[i])))
                throw new InvalidOperationException($"round trip ({(base64 ? "b64" : "data")}) changed element {i} of {tensor.Type}: {a[i]:R} became {b[i]:R}");
        }
    }

    private static string GraphJsonTarget(byte[] input)
    {
        using var doc = JsonBody.Parse(new System.Buffers.ReadOnlySequence<byte>(input)); // as the REST endpoints read a body
        var graph = GraphJson.Read(doc.RootElement, FuzzHost.Limits.Graph());
        // Models are stored with GraphJson.Write and read back at start-up: what was accepted must read back.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) GraphJson.Write(w, graph);
        using (var written = JsonDocument.Parse(buffer.WrittenMemory, JsonFields.Document)) GraphJson.Read(written.RootElement, FuzzHost.Limits.Graph());
        return FuzzHost.Shared.Exercise(graph);
    }

    private static string TransformJsonTarget(byte[] input)
    {
        // As the transform endpoints read a body: tensor maps from the bytes, the rest as a document. Each transform
        // refuses the others' fields: read the body as the first transform that takes all of them.
        using var doc = JsonBody.Parse(new System.Buffers.ReadOnlySequence<byte>(input), TransformJson.TensorFields(FuzzHost.Limits));
        var body = doc.RootElement;
        var readAs = TransformJson.RequestFields.Keys.FirstOrDefault(k =>
            body.ValueKind != JsonValueKind.Object || body.EnumerateObject().All(p => TransformJson.RequestFields[k].Contains(p.Name)));
        var request = TransformJson.ReadRequest(readAs, doc, FuzzHost.Limits);
        bool base64 = TransformJson.WantsBase64(doc.RootElement);
        var transforms = FuzzHost.Shared.NewTransforms();
        var steps = Enum.GetValues<TransformKind>().Select(kind => (kind.ToString().ToLowerInvariant(), (Action)(() =>
        {
            var result = FuzzHost.Run(transforms, request with { Kind = kind });
            using var w = new Utf8JsonWriter(System.IO.Stream.Null);
            TransformJson.WriteResult(w, result, base64);
        })));
        return FuzzHost.Steps([.. steps]);
    }

    private static string TransformBinaryTarget(byte[] input)
    {
        if (input.Length < 2) return "too short";
        int jsonLength = input[0] | input[1] << 8;
        var body = new System.Buffers.ReadOnlySequence<byte>(input, 2, input.Length - 2);
        if (jsonLength < 2 || jsonLength > body.Length) return "header length out of range"; // BinaryTensorBody.JsonLength refuses these
        using var doc = JsonBody.Parse(body, TransformJson.TensorFields(FuzzHost.Limits), jsonLength);
        var request = TransformJson.ReadRequest(TransformKind.Evaluate, doc, FuzzHost.Limits);
        var transforms = FuzzHost.Shared.NewTransforms();
        var steps = new[] { TransformKind.Evaluate, TransformKind.Gradient }.Select(kind => (kind.ToString().ToLowerInvariant(), (Action)(() =>
        {
            var result = FuzzHost.Run(transforms, request with { Kind = kind });
            var answer = new BinaryTensorBody.Answer();
            using var w = new Utf8JsonWriter(System.IO.Stream.Null);
            TransformJson.WriteResult(w, result, answer.Write);
        })));
        return FuzzHost.Steps([.. steps]);
    }

    private static string ProgramTarget(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        using var deadline = FuzzHost.Deadline();
        var graph = ProgramParser.Parse(text, limits: FuzzHost.Limits.Graph(deadline.Token));
        GraphExport.ToDot(graph);
        GraphExport.ToMermaid(graph);
        return FuzzHost.Shared.Exercise(graph);
    }

    /// <summary>The RPCs of autodiff.proto a request may reach, picked by the input's first byte.</summary>
    public enum ProtoRpc : byte
    {
        Evaluate,
        Gradient,
        Jvp,
        Jacobian,
        Hessian,
        Inspect,
        GradientStream,
    }

    private static string ProtoTarget(byte[] input)
    {
        if (input.Length == 0) return "empty";
        var rpc = (ProtoRpc)(input[0] % 7);
        var service = new AutodiffGrpcService(FuzzHost.Shared.NewTransforms(), FuzzHost.Shared.Devices, Options.Create(FuzzHost.Limits));
        using var deadline = FuzzHost.Deadline();
        var call = new FuzzCallContext(deadline.Token);
        IMessage? response = rpc switch
        {
            ProtoRpc.Evaluate => Parse(EvaluateRequest.Parser, input) is { } r ? service.Evaluate(r, call).GetAwaiter().GetResult() : null,
            ProtoRpc.Gradient => Parse(GradientRequest.Parser, input) is { } r ? service.Gradient(r, call).GetAwaiter().GetResult() : null,
            ProtoRpc.Jvp => Parse(JvpRequest.Parser, input) is { } r ? service.Jvp(r, call).GetAwaiter().GetResult() : null,
            ProtoRpc.Jacobian => Parse(JacobianRequest.Parser, input) is { } r ? service.Jacobian(r, call).GetAwaiter().GetResult() : null,
            ProtoRpc.Hessian => Parse(HessianRequest.Parser, input) is { } r ? service.Hessian(r, call).GetAwaiter().GetResult() : null,
            ProtoRpc.Inspect => Parse(InspectRequest.Parser, input) is { } r ? service.Inspect(r, call).GetAwaiter().GetResult() : null,
            _ => StreamGradient(service, Parse(GradientRequest.Parser, input), call),
        };
        if (response is null) return $"{rpc}: rejected by the protobuf parser (invalid_argument)";
        response.ToByteArray();
        return $"{rpc}: result";
    }

    private static IMessage? StreamGradient(AutodiffGrpcService service, GradientRequest? request, FuzzCallContext call)
    {
        if (request is null) return null;
        var writer = new ListWriter<ResultChunk>();
        service.GradientStream(request, writer, call).GetAwaiter().GetResult();
        var response = new GradientResponse();
        foreach (var chunk in writer.Written) chunk.ToByteArray();
        return response;
    }

    /// <summary>A message from the input after its selector byte; null when protobuf refuses the bytes, as gRPC would before the service.</summary>
    private static T? Parse<T>(MessageParser<T> parser, byte[] input) where T : class, IMessage<T>
    {
        try
        {
            return parser.ParseFrom(input, 1, input.Length - 1);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private static string SessionJsonTarget(byte[] input)
    {
        // As the REST endpoint reads a command batch.
        using var doc = JsonBody.Parse(new System.Buffers.ReadOnlySequence<byte>(input));
        var commands = SessionJson.ReadCommands(doc.RootElement, FuzzHost.Limits);
        var host = FuzzHost.Shared;
        using var session = new Session(host.Sessions.SettingsFor(Engine.Autodiff.GradientMode.Accumulate, 0, false));
        using var deadline = FuzzHost.Deadline();
        var results = host.Gate.RunAsync(ct => session.ExecuteBatch(commands, ct), deadline.Token).GetAwaiter().GetResult();
        using var w = new Utf8JsonWriter(System.IO.Stream.Null);
        w.WriteStartArray();
        foreach (var r in results)
            if (r is not null) TensorJson.Write(w, r);
        w.WriteEndArray();
        return $"{commands.Count} commands: result";
    }

    private static string SessionProtoTarget(byte[] input)
    {
        var commands = new List<Command>();
        using (var stream = new MemoryStream(input))
        {
            try
            {
                while (stream.Position < stream.Length) commands.Add(Command.Parser.ParseDelimitedFrom(stream));
            }
            catch (InvalidProtocolBufferException)
            {
                return "rejected by the protobuf parser (invalid_argument)";
            }
        }
        var host = FuzzHost.Shared;
        var service = new SessionsGrpcService(host.Sessions, host.Gate, Options.Create(FuzzHost.Limits), new RunningLifetime());
        var replies = new ListWriter<Reply>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        service.Run(new ListReader<Command>(commands), replies, new FuzzCallContext(deadline.Token)).GetAwaiter().GetResult();
        foreach (var reply in replies.Written)
        {
            if (reply.Error is { } error && Api.Errors.ErrorCatalog.StatusFor(error.Code).Http == 500)
                throw new InvalidOperationException($"command {reply.CommandIndex} was answered with code '{error.Code}': {error.Detail}");
            reply.ToByteArray();
        }
        return $"{commands.Count} commands, {replies.Written.Count(r => r.Error is not null)} failed";
    }

    /// <summary>The model Open Inference Protocol requests run on: elementwise ops, a broadcast bias, matmul and a
    /// reduction, so batched cotangents reach both the one-pass and the row-by-row backward.</summary>
    private static readonly Lazy<Graph> OipModel = new(() => ProgramParser.Parse("y = tanh(x @ w + b) * 2\nz = sum(y * y)", ["y", "z"]));

    private static string OipJsonTarget(byte[] input)
    {
        using var doc = JsonBody.Parse(new System.Buffers.ReadOnlySequence<byte>(input)); // as the /v2 endpoints read a body
        var transforms = FuzzHost.Shared.NewTransforms();
        var steps = Enum.GetValues<InferenceKind>().Select(kind => (kind.ToString().ToLowerInvariant(), (Action)(() =>
        {
            var call = OipJson.ReadCall(kind, "fuzz", null, doc.RootElement, FuzzHost.Limits, binary: null, out _);
            var request = InferenceService.ToRequest(call, new ComputationSource(Graph: OipModel.Value));
            var result = FuzzHost.Run(transforms, request);
            using var w = new Utf8JsonWriter(System.IO.Stream.Null);
            OipJson.WriteReply(w, InferenceService.ToReply(call, request, result, "fuzz", OipModel.Value.Outputs), withDerivatives: true);
        })));
        return FuzzHost.Steps([.. steps]);
    }

    private static TransformRequest Request(TransformKind kind, Graph graph, IReadOnlyDictionary<string, HostTensor> inputs) =>
        new() { Kind = kind, Source = new ComputationSource(Graph: graph), Inputs = inputs };
}
