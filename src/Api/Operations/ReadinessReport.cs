using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AutogradService.Api.Operations;

/// <summary>
/// <c>/readyz</c>'s body: the status word (what probes and load balancers read), or, for a client that accepts JSON,
/// each check with its description and data — engine workers and queue, the devices and the default device.
/// </summary>
public static class ReadinessReport
{
    public static Task WriteAsync(HttpContext http, HealthReport report)
    {
        var accept = http.Request.GetTypedHeaders().Accept;
        if (!accept.Any(a => a.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)))
        {
            http.Response.ContentType = "text/plain";
            return http.Response.WriteAsync(report.Status.ToString());
        }
        http.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(http.Response.Body, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        }, cancellationToken: http.RequestAborted);
    }
}
