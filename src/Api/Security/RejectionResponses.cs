using System.Globalization;
using System.Text;
using AutogradService.Api.Errors;
using AutogradService.Api.Grpc;
using AutogradService.Api.Metrics;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.IdentityModel.Tokens;

namespace AutogradService.Api.Security;

/// <summary>
/// Answers a request that middleware refused before any endpoint ran (authentication, rate limiting) in its own
/// transport's error form: REST gets problem details, gRPC and gRPC-Web a trailers-only response with the status, the
/// detail and the same <c>ErrorInfo</c> (and <c>RetryInfo</c>) the gRPC services send.
/// </summary>
public static class RejectionResponses
{
    public static bool IsGrpc(HttpContext context) =>
        context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;

    public static async Task WriteAsync(HttpContext context, ApiError error)
    {
        if (IsGrpc(context))
        {
            WriteGrpc(context, error);
            return;
        }
        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        await ProblemDetailsExceptionHandler.WriteAsync(context, error, problems);
    }

    private static void WriteGrpc(HttpContext context, ApiError error)
    {
        var rpc = ErrorInterceptor.ToRpcException(error);
        var response = context.Response;
        // gRPC reports failures with HTTP 200; a trailers-only response carries the status in its headers.
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)rpc.StatusCode).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = PercentEncode(rpc.Status.Detail);
        foreach (var entry in rpc.Trailers)
            response.Headers[entry.Key] = entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes) : entry.Value;
        context.RequestServices.GetRequiredService<ServiceMetrics>().Record("grpc", context.Request.Path.Value ?? "", error.Code, TimeSpan.Zero);
    }

    /// <summary>grpc-message is percent-encoded UTF-8 (the gRPC HTTP/2 protocol): printable ASCII but '%' as is.</summary>
    private static string PercentEncode(string message)
    {
        var builder = new StringBuilder(message.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%') builder.Append((char)b);
            else builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }
}

/// <summary>
/// Turns the authorization middleware's refusals into the contract's errors: no or a rejected credential is
/// <c>unauthenticated</c> (401 / UNAUTHENTICATED), an authenticated caller a policy refuses is <c>permission_denied</c>.
/// </summary>
public sealed class AuthorizationRejectionHandler : IAuthorizationMiddlewareResultHandler
{
    public const string MissingCredential =
        "this endpoint needs a credential: an API key (x-api-key or authorization: Bearer KEY) or a JWT bearer token";

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded)
        {
            await next(context);
            return;
        }
        if (authorizeResult.Forbidden)
        {
            await RejectionResponses.WriteAsync(context, new ApiError(ErrorCatalog.PermissionDenied, "this caller may not use this endpoint"));
            return;
        }
        // The authentication middleware already ran the default scheme; this reads its cached result for the reason.
        var authenticated = await context.AuthenticateAsync();
        var detail = authenticated.Failure is { } failure ? $"the credential was not accepted: {Reason(failure)}" : MissingCredential;
        if (!RejectionResponses.IsGrpc(context)) context.Response.Headers.WWWAuthenticate = "Bearer";
        await RejectionResponses.WriteAsync(context, new ApiError(ErrorCatalog.Unauthenticated, detail));
    }

    /// <summary>Says why without echoing token contents or the validator's internals.</summary>
    private static string Reason(Exception failure) => failure switch
    {
        SecurityTokenExpiredException => "the token has expired",
        SecurityTokenNotYetValidException => "the token is not valid yet",
        SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "the token's signature does not verify",
        SecurityTokenInvalidAudienceException => "the token is for another audience",
        SecurityTokenInvalidIssuerException => "the token is from another issuer",
        SecurityTokenException or ArgumentException => "the token is not valid",
        AuthenticationFailureException => failure.Message, // the API key handler's own words
        _ => "the credential could not be checked",
    };
}
