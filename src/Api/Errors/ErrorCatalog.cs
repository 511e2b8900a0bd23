using AutogradService.Engine;
using Grpc.Core;

namespace AutogradService.Api.Errors;

/// <summary>
/// The error table of the API contract in one place: each stable code with its HTTP status and gRPC status.
/// Codes the engine does not raise (overloaded, request_too_large) belong to the service.
/// </summary>
public static class ErrorCatalog
{
    public const string Overloaded = "overloaded";
    public const string RequestTooLarge = "request_too_large";
    public const string Internal = "internal";
    public const string DeviceUnavailable = ErrorCodes.DeviceUnavailable;
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string Unauthenticated = "unauthenticated";
    public const string PermissionDenied = "permission_denied";
    public const string QuotaExceeded = "quota_exceeded";
    public const string MethodNotAllowed = "method_not_allowed";

    /// <summary>The client went away (closed the connection, cancelled the call) before its deadline: not an error of ours.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>Every code a client may see, in the table's order (the OpenAPI document's Problem.code lists them).</summary>
    public static IReadOnlyList<string> AllCodes { get; } =
    [
        ErrorCodes.InvalidGraph, ErrorCodes.ShapeMismatch, ErrorCodes.DTypeMismatch, ErrorCodes.InvalidTensor, ErrorCodes.NotDifferentiable,
        ErrorCodes.InvalidArgument, ErrorCodes.NumericalAnomaly, ErrorCodes.GraphFreed, ErrorCodes.MemoryLimitExceeded,
        ErrorCodes.IterationLimitExceeded, ErrorCodes.DeadlineExceeded, ErrorCodes.NotFound, Overloaded, RequestTooLarge,
        UnsupportedMediaType, MethodNotAllowed, DeviceUnavailable, Cancelled, Unauthenticated, PermissionDenied, QuotaExceeded, Internal,
    ];

    public static (int Http, StatusCode Grpc) StatusFor(string code) => code switch
    {
        ErrorCodes.InvalidGraph or ErrorCodes.ShapeMismatch or ErrorCodes.DTypeMismatch or ErrorCodes.InvalidTensor
            or ErrorCodes.NotDifferentiable or ErrorCodes.InvalidArgument or ErrorCodes.UnsupportedOp => (400, StatusCode.InvalidArgument),
        ErrorCodes.GraphFreed => (409, StatusCode.FailedPrecondition),
        ErrorCodes.NumericalAnomaly => (422, StatusCode.InvalidArgument),
        DeviceUnavailable => (400, StatusCode.FailedPrecondition),
        UnsupportedMediaType => (415, StatusCode.InvalidArgument),
        MethodNotAllowed => (405, StatusCode.Unimplemented), // REST only: gRPC's own routing answers UNIMPLEMENTED
        ErrorCodes.MemoryLimitExceeded => (422, StatusCode.ResourceExhausted),
        ErrorCodes.IterationLimitExceeded => (422, StatusCode.ResourceExhausted),
        ErrorCodes.DeadlineExceeded => (504, StatusCode.DeadlineExceeded),
        ErrorCodes.NotFound => (404, StatusCode.NotFound),
        Overloaded => (429, StatusCode.ResourceExhausted),
        RequestTooLarge => (413, StatusCode.ResourceExhausted),
        Cancelled => (StatusCodes.Status499ClientClosedRequest, StatusCode.Cancelled),
        Unauthenticated => (401, StatusCode.Unauthenticated),
        PermissionDenied => (403, StatusCode.PermissionDenied),
        QuotaExceeded => (429, StatusCode.ResourceExhausted),
        _ => (500, StatusCode.Internal),
    };

    public static string Title(string code) => code switch
    {
        ErrorCodes.InvalidGraph => "Invalid graph",
        ErrorCodes.ShapeMismatch => "Shape mismatch",
        ErrorCodes.DTypeMismatch => "Dtype mismatch",
        ErrorCodes.InvalidTensor => "Invalid tensor",
        ErrorCodes.NotDifferentiable => "Not differentiable",
        ErrorCodes.InvalidArgument => "Invalid argument",
        ErrorCodes.GraphFreed => "Graph freed",
        ErrorCodes.NumericalAnomaly => "Numerical anomaly",
        ErrorCodes.UnsupportedOp => "Unsupported op",
        ErrorCodes.MemoryLimitExceeded => "Memory limit exceeded",
        ErrorCodes.IterationLimitExceeded => "Iteration limit exceeded",
        ErrorCodes.DeadlineExceeded => "Deadline exceeded",
        ErrorCodes.NotFound => "Not found",
        Overloaded => "Overloaded",
        RequestTooLarge => "Request too large",
        DeviceUnavailable => "Device unavailable",
        UnsupportedMediaType => "Unsupported media type",
        MethodNotAllowed => "Method not allowed",
        Cancelled => "Cancelled",
        Unauthenticated => "Unauthenticated",
        PermissionDenied => "Permission denied",
        QuotaExceeded => "Quota exceeded",
        _ => "Internal error",
    };
}

/// <summary>A service-level failure that is not the engine's (overloaded, not found in a store, too large).</summary>
public sealed class ServiceException(string code, string detail, TimeSpan? retryAfter = null, IReadOnlyDictionary<string, object>? facts = null)
    : Exception(detail)
{
    public string Code { get; } = code;
    public TimeSpan? RetryAfter { get; } = retryAfter;
    public IReadOnlyDictionary<string, object>? Facts { get; } = facts;

    public static ServiceException Overloaded(TimeSpan retryAfter) =>
        new(ErrorCatalog.Overloaded, "the engine's queue is full; retry after the indicated delay", retryAfter);
}
