using AutogradService.Contracts.V1;
using CsCheck;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace AutogradService.Api.Tests.Properties;

/// <summary>
/// gRPC calls carrying bytes as they are, so a message the client library would never produce (truncated, bit-flipped,
/// nested past any limit) reaches the server's own deserialization and service.
/// </summary>
public static class GrpcRaw
{
    /// <summary>The Autodiff RPCs in the order of the fuzz harness's selector byte (FuzzTargets.ProtoRpc).</summary>
    public static readonly string[] Rpcs = ["Evaluate", "Gradient", "Jvp", "Jacobian", "Hessian", "Inspect", "GradientStream"];

    private static readonly MessageParser[] Parsers =
    [
        EvaluateRequest.Parser, GradientRequest.Parser, JvpRequest.Parser, JacobianRequest.Parser, HessianRequest.Parser,
        InspectRequest.Parser, GradientRequest.Parser,
    ];

    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    /// <summary>The call's final status (OK for a result).</summary>
    public static async Task<StatusCode> Call(GrpcChannel channel, int rpc, byte[] message)
    {
        var invoker = channel.CreateCallInvoker();
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30));
        try
        {
            if (Rpcs[rpc] == "GradientStream")
            {
                var method = new Method<byte[], byte[]>(MethodType.ServerStreaming, "autograd.v1.Autodiff", Rpcs[rpc], Bytes, Bytes);
                using var call = invoker.AsyncServerStreamingCall(method, null, options, message);
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            else
            {
                var method = new Method<byte[], byte[]>(MethodType.Unary, "autograd.v1.Autodiff", Rpcs[rpc], Bytes, Bytes);
                using var call = invoker.AsyncUnaryCall(method, null, options, message);
                await call.ResponseAsync;
            }
            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            Assert.DoesNotContain("   at ", e.Status.Detail);
            return e.StatusCode;
        }
    }

    /// <summary>
    /// A session stream of raw command messages: sends them all, then reads every reply. The call's final status, and
    /// the error codes of the replies that carry one.
    /// </summary>
    public static async Task<(StatusCode Status, List<string> Codes)> Session(GrpcChannel channel, IReadOnlyList<byte[]> commands)
    {
        var method = new Method<byte[], byte[]>(MethodType.DuplexStreaming, "autograd.v1.Sessions", "Run", Bytes, Bytes);
        var codes = new List<string>();
        try
        {
            using var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30)));
            foreach (var c in commands) await call.RequestStream.WriteAsync(c);
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                var reply = Reply.Parser.ParseFrom(call.ResponseStream.Current);
                if (reply.Error is { } error) codes.Add(error.Code);
            }
            return (StatusCode.OK, codes);
        }
        catch (RpcException e)
        {
            Assert.DoesNotContain("   at ", e.Status.Detail);
            return (e.StatusCode, codes);
        }
    }

    /// <summary>Whether protobuf itself accepts the bytes as the RPC's request.</summary>
    public static bool Parses(int rpc, byte[] message)
    {
        try
        {
            Parsers[rpc].ParseFrom(message);
            return true;
        }
        catch (InvalidProtocolBufferException)
        {
            return false;
        }
    }

    /// <summary>
    /// The message mutated as a tree: its protobuf JSON form gets the same mutations as REST bodies, and is encoded
    /// again. Null when the mutated JSON no longer maps to the message (the byte mutations then apply instead).
    /// </summary>
    public static byte[]? Mutate(int rpc, byte[] message, RequestMutation[] mutations) => Mutate(Parsers[rpc], message, mutations);

    public static byte[]? Mutate(MessageParser messageParser, byte[] message, RequestMutation[] mutations)
    {
        try
        {
            var parsed = messageParser.ParseFrom(message);
            var tree = JsonTree.Parse(JsonFormatter.Default.Format(parsed));
            foreach (var m in mutations) m.Apply(tree);
            var parser = new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
            return parser.Parse(tree.Write(), parsed.Descriptor).ToByteArray();
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException or InvalidOperationException
                                     or System.Text.Json.JsonException or OverflowException or ArgumentException)
        {
            return null;
        }
    }
}

/// <summary>A change to a serialized message: bit flips, random bytes, insertions, deletions, truncation, repeats.</summary>
public readonly record struct ByteMutation(int Kind, uint Where, uint What)
{
    public static Gen<ByteMutation[]> Several { get; } =
        Gen.Select(Gen.Int[0, 5], Gen.UInt, Gen.UInt, (k, w, v) => new ByteMutation(k, w, v)).Array[1, 4];

    public byte[] Apply(byte[] message)
    {
        if (message.Length == 0) return [(byte)What];
        int at = (int)(Where % (uint)message.Length);
        var list = message.ToList();
        switch (Kind)
        {
            case 0: list[at] ^= (byte)(1 << (int)(What % 8)); break;
            case 1: list[at] = (byte)What; break;
            case 2: list.InsertRange(at, BitConverter.GetBytes(What)); break;
            case 3: list.RemoveRange(at, (int)Math.Min(What % 8 + 1, (uint)(list.Count - at))); break;
            case 4: return message[..at];
            default: list.InsertRange(at, message.Skip(at).Take(1 + (int)(What % 32)).SelectMany(b => new[] { b, b })); break;
        }
        return list.ToArray();
    }

    public override string ToString() => $"byte{Kind}({Where}, {What})";
}
