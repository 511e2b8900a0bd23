using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Net.Http.Headers;

namespace AutogradService.Api.Playground;

/// <summary>
/// <c>GET /playground</c>: a page where a person writes a program, runs transforms, plots f, f' and f'' and sees the
/// graph. Its files are embedded in this assembly (Playground/assets), so <c>dotnet run</c>, a published build and
/// the container serve the same page from any working directory, offline, with nothing to install. It calls the
/// public REST API like any other client and does no math of its own.
/// </summary>
public static class PlaygroundEndpoints
{
    public const string Path = "/playground";
    private const string ResourcePrefix = "playground/";

    /// <summary>Only our own files, scripts and styles; responses from the API are fetched from the same origin.</summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Lazy<FrozenDictionary<string, Asset>> Assets = new(LoadAssets);

    /// <summary>The page's files by path under /playground/ ("index.html", "graph.js", ...).</summary>
    internal static IReadOnlyDictionary<string, Asset> Files => Assets.Value;

    public static IEndpointRouteBuilder MapPlayground(this IEndpointRouteBuilder app)
    {
        // Relative URLs in the page resolve under /playground/, so the bare path redirects there (routing matches
        // "/playground" and "/playground/" alike, so the slash is checked here).
        app.MapGet(Path, (HttpContext http) => http.Request.Path.Value!.EndsWith('/')
            ? Serve(http, null)
            : Results.Redirect(http.Request.PathBase + Path + "/" + http.Request.QueryString, permanent: false)).ExcludeFromDescription();
        app.MapGet(Path + "/{**file}", Serve).ExcludeFromDescription();
        return app;
    }

    private static IResult Serve(HttpContext http, string? file)
    {
        var name = string.IsNullOrEmpty(file) ? "index.html" : file;
        if (!Assets.Value.TryGetValue(name, out var asset)) return Results.NotFound();

        var headers = http.Response.Headers;
        headers.ETag = asset.ETag;
        // Revalidated on every load (a 304 is cheap), so a new build's page never mixes with an old cached module.
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["Referrer-Policy"] = "no-referrer";
        var ifNoneMatch = http.Request.Headers.IfNoneMatch;
        if (ifNoneMatch.Count > 0 && EntityTagHeaderValue.TryParseList(ifNoneMatch, out var tags)
            && tags.Any(t => t.Tag == asset.ETag || t.Equals(EntityTagHeaderValue.Any)))
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(asset.Content, asset.ContentType);
    }

    internal sealed record Asset(byte[] Content, string ContentType, string ETag);

    private static FrozenDictionary<string, Asset> LoadAssets()
    {
        var assembly = typeof(PlaygroundEndpoints).Assembly;
        var types = new FileExtensionContentTypeProvider();
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            var name = resource[ResourcePrefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var type = types.TryGetContentType(name, out var t) ? t : "application/octet-stream";
            // Text assets are UTF-8; saying so keeps a browser from guessing.
            if (type.StartsWith("text/", StringComparison.Ordinal) || type == "application/javascript") type += "; charset=utf-8";
            var etag = $"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\"";
            assets[name] = new Asset(content, type, etag);
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
