using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace AutogradService.Api.Operations;

/// <summary>
/// The W3C trace id of the request being served: in every error body (REST problem details' <c>trace_id</c>, the gRPC
/// <c>trace-id</c> trailer) and in every log line's scope (<c>TraceId</c>), so a client's error report finds the server's
/// log lines and spans. A caller that sends <c>traceparent</c> gets its own trace id back.
/// </summary>
public static class TraceIds
{
    /// <summary>
    /// ASP.NET's problem details writer adds <c>traceId</c> under the API's snake_case naming policy, so as
    /// <c>trace_id</c>, holding the whole <c>traceparent</c> id; this key overrides it with the trace id alone, as log
    /// scopes and trace stores show it.
    /// </summary>
    public const string ProblemDetailsKey = "trace_id";
    public const string GrpcTrailer = "trace-id";

    /// <summary>The current request's trace id (32 hex digits), or null outside a traced request.</summary>
    public static string? Current => Activity.Current is { IdFormat: ActivityIdFormat.W3C } a ? a.TraceId.ToHexString() : null;

    /// <summary>The trace id, else ASP.NET's request id (which the log scope's <c>RequestId</c> also carries).</summary>
    public static string For(HttpContext http) => Current ?? http.TraceIdentifier;

    /// <summary>Applied to every problem details ASP.NET writes (ours, the framework's, other handlers').</summary>
    public static void Stamp(ProblemDetailsContext context) =>
        context.ProblemDetails.Extensions[ProblemDetailsKey] = For(context.HttpContext);
}
