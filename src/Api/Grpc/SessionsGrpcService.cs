using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Api.Sessions;
using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Sessions;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Grpc;

/// <summary>
/// gRPC sessions: the bidirectional stream is the session. An optional first <c>open</c> sets its options; every
/// other command gets one reply, in order. A failed command replies with its error and the session goes on, as a
/// client's own exception handling would expect.
/// </summary>
public sealed class SessionsGrpcService(SessionStore store, EngineGate gate, IOptions<LimitsOptions> limits, IHostApplicationLifetime lifetime)
    : Contracts.V1.Sessions.SessionsBase
{
    public override async Task Run(IAsyncStreamReader<Command> requestStream, IServerStreamWriter<Reply> responseStream, ServerCallContext context)
    {
        using var slot = store.OpenStream(Caller.From(context.GetHttpContext()));
        Session? session = null;
        var idle = store.IdleTimeoutFor(0);
        long index = 0;
        try
        {
            while (await NextAsync(requestStream, idle, lifetime.ApplicationStopping, context.CancellationToken))
            {
                var command = requestStream.Current;
                var reply = new Reply { CommandIndex = index++ };
                try
                {
                    if (command.KindCase == Command.KindOneofCase.Open)
                    {
                        if (session is not null) throw EngineException.InvalidArgument("open must be the first message of the stream");
                        var o = command.Open;
                        session = new Session(store.SettingsFor(o.GradientMode == GradientMode.Overwrite ? Engine.Autodiff.GradientMode.Overwrite
                            : Engine.Autodiff.GradientMode.Accumulate, o.MemoryBytes, o.StrictScalarSeed, o.Device) with { DetectAnomaly = o.DetectAnomaly });
                        idle = store.IdleTimeoutFor(o.IdleTimeoutMs);
                        reply.SessionId = Guid.NewGuid().ToString("N");
                    }
                    else
                    {
                        session ??= new Session(store.SettingsFor(Engine.Autodiff.GradientMode.Accumulate, 0, false));
                        var mapped = SessionProto.ToEngine(command, limits.Value.MaxTensorElements, limits.Value.Graph(context.CancellationToken));
                        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
                        timeout.CancelAfter(limits.Value.TimeoutMs);
                        var s = session;
                        var value = await gate.RunAsync(ct => s.ExecuteBatch([mapped], ct)[0], timeout.Token);
                        if (value is not null) reply.Value = ProtoMapping.ToProto(value);
                    }
                }
                catch (Exception e) when (e is EngineException or SessionBatchException or ServiceException or OperationCanceledException)
                {
                    var error = ApiError.From(e is SessionBatchException b ? b.Error : e);
                    if (context.CancellationToken.IsCancellationRequested) throw;
                    reply.Error = new CommandError { Code = error.Code, Detail = error.Detail, Node = error.Node ?? "", Op = error.Op ?? "", Input = error.Input ?? "" };
                }
                await responseStream.WriteAsync(reply, context.CancellationToken);
            }
        }
        catch (Exception e) when (context.CancellationToken.IsCancellationRequested && e is not RpcException)
        {
            // The client went away: a command cut short or a reply it can no longer receive is its leaving, not a fault.
            throw new OperationCanceledException("the client ended the session stream", e, context.CancellationToken);
        }
        finally
        {
            session?.Dispose();
        }
    }

    /// <summary>
    /// Reads the next command, ending the session when the client stays silent past the idle timeout, or when the server
    /// is shutting down: a command already running finishes, but an open stream would otherwise hold the drain until the
    /// host's shutdown timeout and then be cut; the client reopens its session on another instance.
    /// </summary>
    private static async Task<bool> NextAsync(IAsyncStreamReader<Command> stream, TimeSpan idle, CancellationToken stopping, CancellationToken cancellation)
    {
        using var idleTimer = CancellationTokenSource.CreateLinkedTokenSource(cancellation, stopping);
        idleTimer.CancelAfter(idle);
        try
        {
            return await stream.MoveNext(idleTimer.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !cancellation.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the server is shutting down; the session has ended, open a new one"));
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"the session was idle for more than {idle.TotalSeconds:0} s and has ended"));
        }
    }
}
