using AutogradService.Api.Errors;
using Microsoft.AspNetCore.Routing.Patterns;

namespace AutogradService.Api.Hosting;

/// <summary>
/// A REST path asked with a method it does not take answers 405 problem details with <c>Allow</c>. Routing alone
/// answers an empty 404 for most of them: gRPC's catch-all routes for unknown services also match two-segment paths
/// such as <c>/v1/evaluate</c>, so the method check never runs. The REST routes are matched here by their patterns.
/// </summary>
public sealed class MethodNotAllowed(EndpointDataSource endpoints, IProblemDetailsService problems) : IMiddleware
{
    private IReadOnlyList<(RoutePattern Pattern, IReadOnlyList<string> Methods)>? _routes;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var endpoint = context.GetEndpoint();
        bool unmatched = endpoint is null || endpoint.DisplayName?.StartsWith("405", StringComparison.Ordinal) == true;
        if (!unmatched || !context.Request.Path.StartsWithSegments("/v1"))
        {
            await next(context);
            return;
        }
        var allowed = Allowed(context.Request.Path.Value ?? "");
        if (allowed.Count == 0)
        {
            await next(context);
            return;
        }
        context.Response.Headers.Allow = string.Join(", ", allowed);
        var facts = new Dictionary<string, object> { ["allowed"] = allowed.ToArray() };
        await ProblemDetailsExceptionHandler.WriteAsync(context,
            new ApiError(ErrorCatalog.MethodNotAllowed, $"{context.Request.Method} is not a method of {context.Request.Path}; it takes {string.Join(", ", allowed)}", Facts: facts),
            problems);
    }

    /// <summary>The methods of the REST routes whose pattern matches <paramref name="path"/>.</summary>
    public IReadOnlyList<string> Allowed(string path)
    {
        _routes ??= endpoints.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/v1/", StringComparison.Ordinal) == true)
            .Select(e => (e.RoutePattern, e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []))
            .Where(r => r.Item2.Count > 0)
            .ToList();
        var segments = path.Trim('/').Split('/');
        return _routes.Where(r => Matches(r.Pattern, segments)).SelectMany(r => r.Methods).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    private static bool Matches(RoutePattern pattern, string[] segments)
    {
        if (pattern.PathSegments.Count != segments.Length) return false;
        for (int i = 0; i < segments.Length; i++)
        {
            var parts = pattern.PathSegments[i].Parts;
            if (parts.Count != 1) return false;
            bool ok = parts[0] switch
            {
                RoutePatternLiteralPart literal => string.Equals(literal.Content, segments[i], StringComparison.OrdinalIgnoreCase),
                RoutePatternParameterPart => segments[i].Length > 0,
                _ => false,
            };
            if (!ok) return false;
        }
        return true;
    }
}
