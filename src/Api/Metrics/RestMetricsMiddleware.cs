using System.Diagnostics;

namespace AutogradService.Api.Metrics;

/// <summary>
/// Times every REST request under /v1 and /v2 (the Open Inference Protocol) and counts it by route and result code; logs a client that went away (at
/// Information: ASP.NET's exception handler answers those 499 itself, at Debug, without calling ours).
/// </summary>
public sealed class RestMetricsMiddleware(RequestDelegate next, ServiceMetrics metrics, ILogger<RestMetricsMiddleware> log)
{
    public const string CodeKey = "autograd.code";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v1") && !context.Request.Path.StartsWithSegments("/v2"))
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        catch (Exception e)
        {
            // The exception handler runs outside this middleware, so record the code it will answer with.
            context.Items[CodeKey] = Errors.ApiError.From(e, Errors.ClientCancellation.WentAway(context)).Code;
            throw;
        }
        finally
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            var code = context.Items.TryGetValue(CodeKey, out var c) && c is string s ? s : context.Response.StatusCode < 400 ? "ok" : "error";
            metrics.Record("rest", $"{context.Request.Method} {route}", code, Stopwatch.GetElapsedTime(started));
            if (code == Errors.ErrorCatalog.Cancelled) Errors.ErrorLog.Cancelled(log, $"{context.Request.Method} {context.Request.Path}");
        }
    }
}
