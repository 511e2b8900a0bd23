namespace AutogradService.Api.Errors;

/// <summary>
/// What the operator's log gets of a failed request: an unexpected failure at Error with its exception (the client sees
/// only <c>internal</c>), a client that went away at Information (routine, not an error of ours). Contract errors are
/// the client's own and are only counted in the metrics.
/// </summary>
public static class ErrorLog
{
    /// <summary>Maps <paramref name="e"/> to the error the client gets, logging it as above.</summary>
    public static ApiError Report(Exception e, bool clientWentAway, ILogger log, string where)
    {
        var error = ApiError.From(e, clientWentAway);
        if (error.Code == ErrorCatalog.Internal) log.LogError(e, "unhandled error in {Where}", where);
        else if (error.Code == ErrorCatalog.Cancelled) Cancelled(log, where);
        return error;
    }

    public static void Cancelled(ILogger log, string where) =>
        log.LogInformation("{Where}: the client went away; its computation was stopped (cancelled)", where);
}
