using System.Globalization;
using System.Threading.RateLimiting;
using AutogradService.Api.Errors;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AutogradService.Api.Security;

/// <summary>
/// Identities and quotas with ASP.NET Core's own parts: an authentication policy scheme that picks the API key handler
/// or the JwtBearer handler from the request's headers, an authorization policy on the API's endpoints (REST, gRPC and
/// gRPC-Web alike), and a rate limiter partitioned by caller. With <c>Security:Enabled</c> false none of it is
/// registered and the service behaves as it did before identities.
/// </summary>
public static class SecuritySetup
{
    public const string CredentialScheme = "Credential";
    public const string CallerPolicy = "caller";
    public const string RatePolicy = "per-caller";

    public static WebApplicationBuilder AddAutogradSecurity(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<SecurityOptions>().BindConfiguration(SecurityOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SecurityOptions>, SecurityOptionsValidator>();
        services.AddOptions<QuotaOptions>().BindConfiguration(QuotaOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddHttpContextAccessor();
        services.AddSingleton<CallerAccessor>();
        services.Configure<OpenApiOptions>("v1", o => o.AddDocumentTransformer<SecuritySchemesTransformer>());

        var security = builder.Configuration.GetSection(SecurityOptions.Section).Get<SecurityOptions>() ?? new SecurityOptions();
        if (!security.Enabled) return builder;

        services.AddSingleton<ApiKeyDirectory>();
        bool jwt = security.Jwt.Configured;
        var authentication = services.AddAuthentication(CredentialScheme)
            .AddPolicyScheme(CredentialScheme, "API key or JWT bearer token", o => o.ForwardDefaultSelector = context => SchemeFor(context, jwt))
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (jwt) authentication.AddJwtBearer(o => ConfigureJwt(o, security.Jwt));

        services.AddAuthorization(o =>
        {
            o.AddPolicy(CallerPolicy, p => p.RequireAuthenticatedUser());
            // Endpoints outside the API's group (health, metrics, reflection, the API page) follow the fallback policy.
            if (!security.AnonymousOperations) o.FallbackPolicy = o.GetPolicy(CallerPolicy);
        });
        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, AuthorizationRejectionHandler>();
        services.AddRateLimiter(o =>
        {
            o.AddPolicy(RatePolicy, PartitionByCaller);
            o.OnRejected = OnRateLimitedAsync;
        });
        return builder;
    }

    /// <summary>Authentication, authorization and rate limiting, after routing (they read the endpoint's policies).</summary>
    public static WebApplication UseAutogradSecurity(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value.Enabled) return app;
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    /// <summary>The group every API endpoint (REST resources and gRPC services) is mapped in: a caller is required and
    /// rate-limited when security is on.</summary>
    public static RouteGroupBuilder MapCallerGroup(this WebApplication app)
    {
        var group = app.MapGroup("");
        if (app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value.Enabled)
            group.RequireAuthorization(CallerPolicy).RequireRateLimiting(RatePolicy);
        return group;
    }

    /// <summary>
    /// An <c>x-api-key</c> header is an API key; a bearer token shaped like a JWT (three dot-separated parts) goes to the
    /// JwtBearer handler; any other bearer token is taken as an API key. API keys therefore contain no dots.
    /// </summary>
    private static string SchemeFor(HttpContext context, bool jwt)
    {
        if (context.Request.Headers.ContainsKey(ApiKeyAuthenticationHandler.Header)) return ApiKeyAuthenticationHandler.SchemeName;
        return jwt && ApiKeyAuthenticationHandler.BearerToken(context.Request) is { } token && token.Count(c => c == '.') == 2
            ? JwtBearerDefaults.AuthenticationScheme
            : ApiKeyAuthenticationHandler.SchemeName;
    }

    private static void ConfigureJwt(JwtBearerOptions o, JwtSettings jwt)
    {
        // Claims keep their JWT names ("sub", "role"), the ones the settings name.
        o.MapInboundClaims = false;
        o.Audience = jwt.Audience;
        o.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
        o.TokenValidationParameters.NameClaimType = jwt.NameClaim;
        o.TokenValidationParameters.RoleClaimType = jwt.RoleClaim;
        o.TokenValidationParameters.ValidAudience = jwt.Audience;
        if (!string.IsNullOrWhiteSpace(jwt.Authority)) o.Authority = jwt.Authority;
        if (!string.IsNullOrEmpty(jwt.SigningKey))
        {
            o.TokenValidationParameters.IssuerSigningKey = new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(jwt.SigningKey));
            o.TokenValidationParameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256, SecurityAlgorithms.HmacSha384, SecurityAlgorithms.HmacSha512];
        }
        if (!string.IsNullOrWhiteSpace(jwt.Issuer)) o.TokenValidationParameters.ValidIssuer = jwt.Issuer;
    }

    private static RateLimitPartition<string> PartitionByCaller(HttpContext context)
    {
        // The authorization policy ran first, so every request here has a caller.
        var caller = context.User.Identity?.Name ?? "";
        var quotas = context.RequestServices.GetRequiredService<IOptions<QuotaOptions>>().Value;
        return RateLimitPartition.GetFixedWindowLimiter(caller, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = quotas.RequestsPerWindow,
            Window = TimeSpan.FromSeconds(quotas.RequestWindowSeconds),
            QueueLimit = 0,
        });
    }

    private static async ValueTask OnRateLimitedAsync(OnRejectedContext rejected, CancellationToken cancellation)
    {
        var quotas = rejected.HttpContext.RequestServices.GetRequiredService<IOptions<QuotaOptions>>().Value;
        var retry = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(quotas.RequestWindowSeconds);
        var exceeded = Quotas.Exceeded(Quotas.Requests, quotas.RequestsPerWindow, retry,
            string.Create(CultureInfo.InvariantCulture,
                $"this caller has made {quotas.RequestsPerWindow} requests in {quotas.RequestWindowSeconds} s, its quota; retry after the indicated delay"));
        await RejectionResponses.WriteAsync(rejected.HttpContext, ApiError.From(exceeded));
    }
}
