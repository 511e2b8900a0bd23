using AutogradService.Engine;

namespace AutogradService.Api.Errors;

/// <summary>What every transport needs to report an error: the code, its human detail and where it happened.</summary>
public sealed record ApiError(string Code, string Detail, string? Node = null, string? Op = null, string? Input = null,
    TimeSpan? RetryAfter = null, IReadOnlyDictionary<string, object>? Facts = null)
{
    public int HttpStatus => ErrorCatalog.StatusFor(Code).Http;

    /// <summary>Maps any exception to an error a client may see: known failures keep their facts; anything else
    /// becomes <c>internal</c> with no stack trace.</summary>
    public static ApiError From(Exception e) => e switch
    {
        EngineException ee => new ApiError(ee.Code, ee.Detail, ee.Node, ee.Op, ee.Input, Facts: ee.Facts),
        ServiceException se => new ApiError(se.Code, se.Message, RetryAfter: se.RetryAfter, Facts: se.Facts),
        OperationCanceledException => new ApiError(ErrorCodes.DeadlineExceeded, "the request was cancelled: its deadline passed or the client went away"),
        Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: 413 } => new ApiError(ErrorCatalog.RequestTooLarge, "the request body is over the server's limit"),
        Google.Protobuf.InvalidProtocolBufferException pe => new ApiError(ErrorCodes.InvalidArgument, $"malformed protobuf message: {pe.Message}"),
        System.Text.Json.JsonException je => new ApiError(ErrorCodes.InvalidArgument, $"malformed JSON: {je.Message}"),
        _ => new ApiError(ErrorCatalog.Internal, "an internal error occurred; it has been logged"),
    };

    /// <summary>
    /// As <see cref="From(Exception)"/>, but a cancellation (or the broken connection it leaves) while the client has gone
    /// away is <c>cancelled</c>, not <c>deadline_exceeded</c>: only the request's own deadline passing is a timeout.
    /// </summary>
    public static ApiError From(Exception e, bool clientWentAway) =>
        clientWentAway && e is IOException ? ClientWentAway : From(e).ForClient(clientWentAway);

    /// <summary>This error, or <c>cancelled</c> where it is a cancellation and the client has gone away.</summary>
    public ApiError ForClient(bool clientWentAway) => clientWentAway && Code == ErrorCodes.DeadlineExceeded ? ClientWentAway : this;

    private static ApiError ClientWentAway => new(ErrorCatalog.Cancelled, "the client went away; the computation was stopped");
}
