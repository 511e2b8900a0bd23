using System.Security.Claims;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Security;

/// <summary>
/// Who is calling: the owner of the sessions and models a request creates, and whose quotas it uses. With security
/// off every request is <see cref="Anonymous"/>, which owns everything (as before identities existed).
/// </summary>
public sealed record Caller(string Id, bool IsAdmin, bool IsAuthenticated)
{
    public const string AnonymousId = "anonymous";

    public static readonly Caller Anonymous = new(AnonymousId, IsAdmin: true, IsAuthenticated: false);

    /// <summary>Whether this caller may see and change something <paramref name="owner"/> created.</summary>
    public bool MaySee(string owner) => IsAdmin || string.Equals(owner, Id, StringComparison.Ordinal);

    /// <summary>Per-caller quotas bind authenticated callers; the anonymous caller exists only with security off.</summary>
    public bool HasQuotas => IsAuthenticated;

    /// <summary>
    /// The caller of an HTTP request or gRPC call, as authentication left it on <see cref="HttpContext.User"/>. With
    /// security on, a request that reached here unauthenticated is refused rather than treated as anonymous: the
    /// anonymous caller owns everything, so failing open would hand out every caller's data.
    /// </summary>
    public static Caller From(HttpContext context) =>
        From(context.User, context.RequestServices.GetRequiredService<IOptions<SecurityOptions>>().Value);

    public static Caller From(ClaimsPrincipal? user, SecurityOptions security)
    {
        if (user?.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name })
            return new Caller(name, user.IsInRole(security.AdminRole), IsAuthenticated: true);
        if (!security.Enabled) return Anonymous;
        throw new Errors.ServiceException(Errors.ErrorCatalog.Unauthenticated, "this request carries no accepted credential");
    }

    /// <summary>Minimal API binding: an endpoint handler takes a <see cref="Caller"/> parameter.</summary>
    public static ValueTask<Caller?> BindAsync(HttpContext context) => ValueTask.FromResult<Caller?>(From(context));
}

/// <summary>The current request's caller, for code that runs inside a request but is not handed it (a transform
/// resolving a model by name). Outside any request it is what an unauthenticated request would be.</summary>
public sealed class CallerAccessor(IHttpContextAccessor http, IOptions<SecurityOptions> security)
{
    public Caller Current => Caller.From(http.HttpContext?.User, security.Value);
}

/// <summary>Claims an authentication handler gives a caller, whatever the credential.</summary>
public static class CallerClaims
{
    public const string Name = "sub";
    public const string Role = "role";

    public static ClaimsPrincipal Principal(string name, IEnumerable<string> roles, string scheme)
    {
        var identity = new ClaimsIdentity(scheme, Name, Role);
        identity.AddClaim(new Claim(Name, name));
        foreach (var role in roles) identity.AddClaim(new Claim(Role, role));
        return new ClaimsPrincipal(identity);
    }
}
