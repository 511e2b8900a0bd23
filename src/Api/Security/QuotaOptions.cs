using System.ComponentModel.DataAnnotations;
using AutogradService.Api.Errors;

namespace AutogradService.Api.Security;

/// <summary>
/// What one authenticated caller may use (configuration section <c>Quotas</c>), on top of the server-wide
/// <c>Limits</c>. They apply when <c>Security:Enabled</c> is true; with it off the one anonymous caller is bound by the
/// server-wide limits alone, as before. Counts are per service instance.
/// </summary>
public sealed class QuotaOptions
{
    public const string Section = "Quotas";

    /// <summary>Requests a caller may start in each <see cref="RequestWindowSeconds"/> (ASP.NET Core's fixed-window rate limiter).</summary>
    [Range(1, 1_000_000)]
    public int RequestsPerWindow { get; set; } = 200;

    [Range(1, 3600)]
    public int RequestWindowSeconds { get; set; } = 1;

    /// <summary>Sessions a caller may hold open at once (REST sessions and gRPC session streams together).</summary>
    [Range(0, 100_000)]
    public int SessionsPerCaller { get; set; } = 8;

    [Range(0, 1_000_000)]
    public int ModelsPerCaller { get; set; } = 100;

    /// <summary>Stored bytes of a caller's models (their JSON files) together.</summary>
    [Range(0, 1L << 40)]
    public long ModelBytesPerCaller { get; set; } = 256L << 20;
}

/// <summary>The quotas by the name an error reports (<c>quota</c> in problem details and in the gRPC ErrorInfo).</summary>
public static class Quotas
{
    public const string Requests = "requests";
    public const string Sessions = "sessions";
    public const string Models = "models";
    public const string ModelBytes = "model_bytes";

    /// <summary>
    /// A caller past one of its quotas. Count quotas free up only when the caller closes or deletes something, so their
    /// retry hint is a polite interval rather than a promise.
    /// </summary>
    public static ServiceException Exceeded(string quota, long limit, TimeSpan retryAfter, string detail) =>
        new(ErrorCatalog.QuotaExceeded, detail, retryAfter, new Dictionary<string, object> { ["quota"] = quota, ["limit"] = limit });
}
