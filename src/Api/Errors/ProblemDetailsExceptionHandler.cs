using AutogradService.Api.Metrics;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace AutogradService.Api.Errors;

/// <summary>
/// Every REST failure becomes RFC 9457 problem details with the contract's stable <c>code</c> and, where known, the
/// node, op and input at fault, and the request's <c>trace_id</c>. Unexpected exceptions are logged and answered with <c>internal</c>, never a stack trace.
/// </summary>
public sealed class ProblemDetailsExceptionHandler(IProblemDetailsService problems, ILogger<ProblemDetailsExceptionHandler> log) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        // A client that went away is logged by RestMetricsMiddleware, which sees every /v1 request end.
        var error = ApiError.From(exception, ClientCancellation.WentAway(context));
        if (error.Code == ErrorCatalog.Internal) log.LogError(exception, "unhandled error on {Path}", context.Request.Path);
        await WriteAsync(context, error, problems);
        return true;
    }

    public static async Task WriteAsync(HttpContext context, ApiError error, IProblemDetailsService problems)
    {
        error = error.ForClient(ClientCancellation.WentAway(context));
        context.Items[RestMetricsMiddleware.CodeKey] = error.Code;
        context.Response.StatusCode = error.HttpStatus;
        if (error.RetryAfter is { } retry)
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (Inference.OipErrors.Applies(context))
        {
            await Inference.OipErrors.WriteAsync(context, error);
            return;
        }
        var details = new ProblemDetails
        {
            Status = error.HttpStatus,
            Title = ErrorCatalog.Title(error.Code),
            Detail = error.Detail,
            Type = $"https://autograd.dev/errors/{error.Code}",
        };
        details.Extensions["code"] = error.Code;
        details.Extensions[Operations.TraceIds.ProblemDetailsKey] = Operations.TraceIds.For(context);
        if (error.Node is not null) details.Extensions["node"] = error.Node;
        if (error.Op is not null) details.Extensions["op"] = error.Op;
        if (error.Input is not null) details.Extensions["input"] = error.Input;
        if (error.Facts is not null)
            foreach (var (k, v) in error.Facts) details.Extensions[k] = v;
        // The problem-details writer declines when Accept names only another type (e.g. application/x-ndjson for a
        // streamed gradient); the error is still answered as problem+json rather than failing the handler.
        if (!await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = details }))
            await context.Response.WriteAsJsonAsync(details, options: null, contentType: "application/problem+json");
    }
}
