using System.Security.Claims;
using System.Text;
using AutogradService.Api.Security;
using AutogradService.Api.Tests.Infrastructure;
using Grpc.Core;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AutogradService.Api.Tests.Security;

/// <summary>The credentials the secure test services accept, and clients that send them.</summary>
public static class Credentials
{
    public const string SigningKey = "a-test-signing-key-that-is-32-bytes-or-more";
    public const string Issuer = "https://issuer.test";
    public const string Audience = "autograd-tests";

    /// <summary>The key of an API-key caller named <paramref name="name"/> (keys contain no dots).</summary>
    public static string KeyOf(string name) => $"key-{name}-0123456789abcdef";

    /// <summary>Settings that turn security on with an API key per name (roles after a colon: "root:admin") and JWTs.</summary>
    public static Dictionary<string, string?> Settings(string[] callers, IReadOnlyDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Security:Enabled"] = "true",
            ["Security:Jwt:SigningKey"] = SigningKey,
            ["Security:Jwt:Issuer"] = Issuer,
            ["Security:Jwt:Audience"] = Audience,
        };
        for (int i = 0; i < callers.Length; i++)
        {
            var parts = callers[i].Split(':');
            settings[$"Security:ApiKeys:{i}:Name"] = parts[0];
            settings[$"Security:ApiKeys:{i}:Sha256"] = ApiKeyHash.Of(KeyOf(parts[0]));
            for (int r = 1; r < parts.Length; r++) settings[$"Security:ApiKeys:{i}:Roles:{r - 1}"] = parts[r];
        }
        foreach (var (k, v) in more ?? new Dictionary<string, string?>()) settings[k] = v;
        return settings;
    }

    /// <summary>A signed JWT as an identity provider would issue it.</summary>
    public static string Jwt(string subject, string[]? roles = null, TimeSpan? expiresIn = null, string signingKey = SigningKey, string audience = Audience)
    {
        var expires = DateTime.UtcNow + (expiresIn ?? TimeSpan.FromMinutes(10));
        var claims = new List<Claim> { new("sub", subject) };
        claims.AddRange((roles ?? []).Select(r => new Claim("role", r)));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            Subject = new ClaimsIdentity(claims),
            IssuedAt = expires - TimeSpan.FromHours(2),
            NotBefore = expires - TimeSpan.FromHours(2),
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(signingKey)), SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>A REST client that sends the caller's API key in <c>x-api-key</c>.</summary>
    public static HttpClient RestAs(this ServiceFactory service, string caller)
    {
        var client = service.CreateClient();
        client.DefaultRequestHeaders.Add(ApiKeyAuthenticationHandler.Header, KeyOf(caller));
        return client;
    }

    /// <summary>A REST client that sends <c>authorization: Bearer TOKEN</c> (an API key or a JWT).</summary>
    public static HttpClient RestWithBearer(this ServiceFactory service, string token)
    {
        var client = service.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>gRPC call metadata with the caller's API key.</summary>
    public static Metadata GrpcAs(string caller) => new() { { ApiKeyAuthenticationHandler.Header, KeyOf(caller) } };

    public static Metadata GrpcBearer(string token) => new() { { "authorization", $"Bearer {token}" } };
}

/// <summary>Security on: API-key callers alice, bob and root (an admin), and JWTs; quotas far away.</summary>
public sealed class SecureService() : ServiceFactory(Credentials.Settings(["alice", "bob", "root:admin"]));

/// <summary>Security on with small quotas: two sessions, two models and 2 KiB of models per caller.</summary>
public sealed class SmallQuotasService() : ServiceFactory(Credentials.Settings(
    ["s-rest", "s-grpc", "m-rest", "m-grpc", "b-rest", "b-grpc", "other"],
    new Dictionary<string, string?>
    {
        ["Quotas:SessionsPerCaller"] = "2",
        ["Quotas:ModelsPerCaller"] = "2",
        ["Quotas:ModelBytesPerCaller"] = "2048",
    }));

/// <summary>Security on with a rate quota of three requests an hour per caller.</summary>
public sealed class RateLimitedService() : ServiceFactory(Credentials.Settings(
    ["r-rest", "r-grpc", "other"],
    new Dictionary<string, string?> { ["Quotas:RequestsPerWindow"] = "3", ["Quotas:RequestWindowSeconds"] = "3600" }));

/// <summary>Security on with health, metrics and the API page behind authentication too.</summary>
public sealed class ClosedOperationsService() : ServiceFactory(Credentials.Settings(
    ["alice"], new Dictionary<string, string?> { ["Security:AnonymousOperations"] = "false" }));
