using AutogradService.Api.Errors;
using Microsoft.AspNetCore.Http.Features;

namespace AutogradService.Api.Hosting;

/// <summary>
/// A REST body whose declared length is over <c>Limits:MaxRequestBodyBytes</c> is refused with 413 before it is parsed.
/// Most clients (Python's urllib, curl without <c>Expect: 100-continue</c>) write the whole body before they read
/// anything; closing the connection on them mid-body makes their write fail (a broken pipe or a reset) and the answer is
/// never read. So the body is read and discarded first, up to twice the limit and for at most
/// <see cref="DrainTime"/>, and the 413 goes out with <c>Connection: close</c>. Past that bound the answer is sent
/// at once and the connection closed: a client sending that much more than allowed is not waited for.
/// </summary>
public static class OversizeBody
{
    public static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(10);

    public static async Task RefuseAsync(HttpContext context, long declared, long limit, IProblemDetailsService problems)
    {
        context.Response.Headers.Connection = "close";
        if (declared <= 2 * limit) await DrainAsync(context);
        var facts = new Dictionary<string, object> { ["limit_bytes"] = limit, ["request_bytes"] = declared };
        await ProblemDetailsExceptionHandler.WriteAsync(context,
            new ApiError(ErrorCatalog.RequestTooLarge, $"the request body is {declared} bytes, over the server's limit of {limit} bytes", Facts: facts),
            problems);
    }

    private static async Task DrainAsync(HttpContext context)
    {
        // Kestrel enforces MaxRequestBodySize on reads; lifted for this request only, to discard what it sends.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(DrainTime);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (await context.Request.Body.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException)
        {
            // The client stopped sending or went away: answer anyway.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
