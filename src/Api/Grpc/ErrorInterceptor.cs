using System.Diagnostics;
using AutogradService.Api.Errors;
using AutogradService.Api.Metrics;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AutogradService.Api.Grpc;

/// <summary>
/// Turns every failure of a gRPC call into the matching status with the contract's code as an <c>ErrorInfo</c> rich
/// detail (Grpc.StatusProto), never a stack trace; and times each call for the metrics.
/// </summary>
public sealed class ErrorInterceptor(ServiceMetrics metrics, ILogger<ErrorInterceptor> log) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation) =>
        await Guard(context, () => continuation(request, context));

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        await Guard(context, async () => { await continuation(request, responseStream, context); return 0; });

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        await Guard(context, async () => { await continuation(requestStream, responseStream, context); return 0; });

    private async Task<T> Guard<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        string code = "ok";
        try
        {
            return await call();
        }
        catch (RpcException)
        {
            code = ClientCancellation.WentAway(context) ? ErrorCatalog.Cancelled : "rpc";
            throw;
        }
        catch (Exception e)
        {
            var error = ErrorLog.Report(e, ClientCancellation.WentAway(context), log, context.Method);
            code = error.Code;
            throw ToRpcException(error);
        }
        finally
        {
            metrics.Record("grpc", context.Method, code, Stopwatch.GetElapsedTime(started));
        }
    }

    public static RpcException ToRpcException(ApiError error)
    {
        var info = new ErrorInfo { Reason = error.Code, Domain = "autograd.v1" };
        if (error.Node is not null) info.Metadata["node"] = error.Node;
        if (error.Op is not null) info.Metadata["op"] = error.Op;
        if (error.Input is not null) info.Metadata["input"] = error.Input;
        if (error.Facts is not null)
            foreach (var (k, v) in error.Facts) info.Metadata[k] = MetadataValue(v);
        var status = new Google.Rpc.Status
        {
            Code = (int)ErrorCatalog.StatusFor(error.Code).Grpc,
            Message = error.Detail,
        };
        status.Details.Add(Any.Pack(info));
        if (error.RetryAfter is { } retry)
            status.Details.Add(Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(retry) }));
        var exception = status.ToRpcException();
        exception.Trailers.Add("autograd-code", error.Code);
        if (Operations.TraceIds.Current is { } traceId) exception.Trailers.Add(Operations.TraceIds.GrpcTrailer, traceId);
        return exception;
    }

    /// <summary>
    /// ErrorInfo metadata holds strings only: a string fact travels as itself, a number or bool as its JSON text, and a
    /// list as a JSON array (<c>["float32[3]","float32[4]"]</c>, the same values REST's problem details carry), never
    /// as a .NET type name.
    /// </summary>
    public static string MetadataValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable number => number.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => System.Text.Json.JsonSerializer.Serialize(value, value.GetType(), MetadataJson),
    };

    private static readonly System.Text.Json.JsonSerializerOptions MetadataJson = new()
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
