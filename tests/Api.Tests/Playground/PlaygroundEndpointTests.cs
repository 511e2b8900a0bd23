using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Api.Tests.Security;

namespace AutogradService.Api.Tests.Playground;

/// <summary>
/// /playground is served from the assembly (no files on disk, no CDN): the page, every module it imports, the
/// headers that keep it to its own origin, revalidation, and refusals. The page itself runs in a real browser in
/// tests/Playground.Tests.
/// </summary>
public sealed partial class PlaygroundEndpointTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient(new() { AllowAutoRedirect = false });

    [Fact]
    public async Task The_bare_path_redirects_to_the_folder_so_relative_module_urls_resolve()
    {
        using var response = await _client.GetAsync("/playground?x=1");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/playground/?x=1", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task The_page_is_served_with_a_same_origin_content_security_policy()
    {
        using var response = await _client.GetAsync("/playground/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet);
        var csp = string.Join(' ', response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", string.Join(',', response.Headers.GetValues("X-Content-Type-Options")));
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("<script type=\"module\" src=\"main.js\"></script>", html, StringComparison.Ordinal);
        // Nothing is fetched from anywhere else: no absolute URLs in the page.
        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_module_the_page_imports_is_served_as_javascript_and_none_reaches_another_origin()
    {
        var pending = new Queue<string>(["main.js"]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.TryDequeue(out var module))
        {
            if (!seen.Add(module)) continue;
            using var response = await _client.GetAsync($"/playground/{module}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{module}: {response.StatusCode}");
            Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
            var text = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("https://", text.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal), StringComparison.Ordinal);
            foreach (Match m in ImportPattern().Matches(text)) pending.Enqueue(m.Groups[1].Value);
        }
        Assert.Superset(new HashSet<string>(["main.js", "api.js", "editor.js", "plot.js", "graph.js", "cases.js"]), seen);
        using var css = await _client.GetAsync("/playground/playground.css");
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_repeated_request_with_the_etag_is_answered_not_modified()
    {
        using var first = await _client.GetAsync("/playground/graph.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());
        using var request = new HttpRequestMessage(HttpMethod.Get, "/playground/graph.js");
        request.Headers.IfNoneMatch.Add(etag);
        using var second = await _client.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
        using var stale = new HttpRequestMessage(HttpMethod.Get, "/playground/graph.js");
        stale.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"0000000000000000\""));
        using var third = await _client.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
    }

    [Theory]
    [InlineData("/playground/missing.js")]
    [InlineData("/playground/%2e%2e/appsettings.json")]
    [InlineData("/playground/..%2fappsettings.json")]
    [InlineData("/playground/PlaygroundEndpoints.cs")]
    [InlineData("/playground/MAIN.JS")]
    public async Task Anything_but_the_page_s_own_files_is_not_found(string path)
    {
        using var response = await _client.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Only_GET_is_answered()
    {
        using var response = await _client.PostAsync("/playground/main.js", new StringContent(""));
        // Routing answers 404 or 405 depending on what else matches the path; never the file.
        Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed, $"got {response.StatusCode}");
    }

    [GeneratedRegex("from '\\./([a-z]+\\.js)'")]
    private static partial Regex ImportPattern();
}

/// <summary>With security on the page stays anonymous, like the API page; the API calls it makes need a key.</summary>
public sealed class SecurePlaygroundTests(SecureService service) : IClassFixture<SecureService>
{
    [Fact]
    public async Task The_page_loads_without_a_credential_while_the_api_still_requires_one()
    {
        using var client = service.CreateClient();
        using var page = await client.GetAsync("/playground/main.js");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using var api = await client.PostAsync("/v1/evaluate", new StringContent("{\"program\": \"y = 2 * x\", \"inputs\": {\"x\": 1}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
    }
}
