using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Security;

/// <summary>
/// API keys as an ASP.NET Core authentication scheme. The key travels as <c>x-api-key</c> or
/// <c>authorization: Bearer KEY</c> (HTTP headers and gRPC metadata alike); the server holds only SHA-256 hashes, so a
/// leaked configuration reveals no key.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyDirectory keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string Header = "x-api-key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (ReadKey(Request) is not { } key) return Task.FromResult(AuthenticateResult.NoResult());
        if (keys.Find(key) is not { } entry) return Task.FromResult(AuthenticateResult.Fail("the API key is not recognised"));
        var principal = CallerClaims.Principal(entry.Name, entry.Roles, SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    /// <summary>The key in <c>x-api-key</c>, else the token of <c>authorization: Bearer</c>.</summary>
    public static string? ReadKey(HttpRequest request)
    {
        var header = request.Headers[Header].ToString();
        if (header.Length > 0) return header.Trim();
        return BearerToken(request);
    }

    public static string? BearerToken(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization.Length > 7 ? authorization[7..].Trim() : null;
    }
}

/// <summary>The configured API keys, keyed by hash: looking a presented key up by its hash reveals nothing about the stored ones.</summary>
public sealed class ApiKeyDirectory(IOptions<SecurityOptions> security)
{
    private readonly Dictionary<string, ApiKeyEntry> _byHash =
        security.Value.ApiKeys.ToDictionary(k => k.Sha256.ToLowerInvariant(), StringComparer.Ordinal);

    public ApiKeyEntry? Find(string key) => _byHash.GetValueOrDefault(ApiKeyHash.Of(key));
}

/// <summary>
/// <c>dotnet AutogradService.Api.dll --hash-api-key KEY</c> (or the key on standard input) prints the SHA-256 hex that
/// goes in <c>Security:ApiKeys:N:Sha256</c>.
/// </summary>
public static class ApiKeyHash
{
    public const string Flag = "--hash-api-key";

    public static string Of(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static bool IsHash(string? value) => value is { Length: 64 } && value.All(char.IsAsciiHexDigit);

    public static int Print(string[] args)
    {
        // Reading from standard input keeps the key out of shell history and process listings.
        var key = args.Length > 0 && args[0] != "-" ? args[0] : Console.In.ReadLine();
        if (string.IsNullOrEmpty(key))
        {
            Console.Error.WriteLine($"usage: {Flag} KEY   (or the key on standard input)");
            return 2;
        }
        Console.WriteLine(Of(key.Trim()));
        return 0;
    }
}
