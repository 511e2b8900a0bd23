using Microsoft.Extensions.Options;

namespace AutogradService.Api.Security;

/// <summary>
/// Who may call (configuration section <c>Security</c>). Off by default: local use needs no credentials and every
/// request is the one anonymous caller. <c>Security:Enabled=true</c> requires an API key or a JWT bearer token on every
/// REST, gRPC and gRPC-Web call, and makes sessions and models belong to the caller that created them.
/// </summary>
public sealed class SecurityOptions
{
    public const string Section = "Security";

    public bool Enabled { get; set; }

    /// <summary>Health (<c>/healthz</c>, <c>/readyz</c>, gRPC health), <c>/metrics</c>, gRPC reflection and the API page
    /// (<c>/openapi</c>, <c>/scalar</c>) answer without credentials; false puts them behind authentication too.</summary>
    public bool AnonymousOperations { get; set; } = true;

    /// <summary>The role that may see, replace and delete every caller's models.</summary>
    public string AdminRole { get; set; } = "admin";

    /// <summary>Accepted API keys; only their SHA-256 is stored (<c>--hash-api-key</c> prints it).</summary>
    public List<ApiKeyEntry> ApiKeys { get; set; } = [];

    public JwtSettings Jwt { get; set; } = new();
}

/// <summary>One API key: the caller it identifies, the key's SHA-256 (64 hex digits) and the caller's roles.</summary>
public sealed class ApiKeyEntry
{
    public string Name { get; set; } = "";

    public string Sha256 { get; set; } = "";

    public List<string> Roles { get; set; } = [];
}

/// <summary>
/// JWT bearer tokens, validated by ASP.NET Core's JwtBearer handler: either an OpenID Connect <see cref="Authority"/>
/// (keys and issuer from its metadata) or a symmetric <see cref="SigningKey"/> with a fixed <see cref="Issuer"/>.
/// The audience is always checked.
/// </summary>
public sealed class JwtSettings
{
    public string? Authority { get; set; }

    public string? Audience { get; set; }

    public string? Issuer { get; set; }

    /// <summary>HMAC-SHA256 key as text, at least 32 bytes in UTF-8.</summary>
    public string? SigningKey { get; set; }

    /// <summary>The claim that names the caller (owner of its sessions and models).</summary>
    public string NameClaim { get; set; } = "sub";

    public string RoleClaim { get; set; } = "role";

    /// <summary>Lets an Authority be plain http (a test identity provider); never in production.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public bool Configured => !string.IsNullOrWhiteSpace(Authority) || !string.IsNullOrEmpty(SigningKey);
}

/// <summary>Checks what data annotations cannot: the settings that only matter together.</summary>
public sealed class SecurityOptionsValidator : IValidateOptions<SecurityOptions>
{
    public ValidateOptionsResult Validate(string? name, SecurityOptions options)
    {
        var failures = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var hashes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < options.ApiKeys.Count; i++)
        {
            var key = options.ApiKeys[i];
            if (string.IsNullOrWhiteSpace(key.Name)) failures.Add($"Security:ApiKeys:{i}:Name is required");
            else if (!names.Add(key.Name)) failures.Add($"Security:ApiKeys:{i}:Name '{key.Name}' is given twice");
            if (!ApiKeyHash.IsHash(key.Sha256))
                failures.Add($"Security:ApiKeys:{i}:Sha256 must be 64 hex digits (the key's SHA-256; --hash-api-key prints it)");
            else if (!hashes.Add(key.Sha256)) failures.Add($"Security:ApiKeys:{i}:Sha256 is the same key as an earlier entry");
        }
        var jwt = options.Jwt;
        if (jwt.Configured)
        {
            if (string.IsNullOrWhiteSpace(jwt.Audience)) failures.Add("Security:Jwt:Audience is required when JWT bearer tokens are accepted");
            if (!string.IsNullOrEmpty(jwt.SigningKey))
            {
                if (System.Text.Encoding.UTF8.GetByteCount(jwt.SigningKey) < 32) failures.Add("Security:Jwt:SigningKey must be at least 32 bytes");
                if (string.IsNullOrWhiteSpace(jwt.Issuer)) failures.Add("Security:Jwt:Issuer is required with Security:Jwt:SigningKey");
            }
            if (!string.IsNullOrWhiteSpace(jwt.Authority) && !Uri.TryCreate(jwt.Authority, UriKind.Absolute, out _))
                failures.Add("Security:Jwt:Authority must be an absolute URL");
        }
        if (options.Enabled && options.ApiKeys.Count == 0 && !jwt.Configured)
            failures.Add("Security:Enabled is true but no Security:ApiKeys or Security:Jwt is configured: no caller could authenticate");
        if (string.IsNullOrWhiteSpace(options.AdminRole)) failures.Add("Security:AdminRole must not be empty");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
