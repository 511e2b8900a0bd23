using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AutogradService.Api.Tests.Infrastructure;

namespace AutogradService.Api.Tests.Docs;

/// <summary>
/// docs/API.md's requests run: each <c>```http</c> block (a "METHOD /path" line, then the JSON body) is sent, must
/// succeed, and must answer what the <c>```json</c> block right after it shows (stats aside, numbers to float rounding).
/// A path's <c>{id}</c> is a session opened for it.
/// </summary>
public sealed partial class ApiDocExamplesTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static string DocPath => Path.Combine(AppContext.BaseDirectory, "docs", "API.md");

    [GeneratedRegex("```(?<lang>[a-z]*)\\n(?<body>.*?)```(?<gap>\\s*)", RegexOptions.Singleline)]
    private static partial Regex Fence();

    public static IEnumerable<(string Method, string Path, string Body, string? Expected)> Requests()
    {
        var blocks = Fence().Matches(File.ReadAllText(DocPath)).ToList();
        for (int i = 0; i < blocks.Count; i++)
        {
            if (blocks[i].Groups["lang"].Value != "http") continue;
            var text = blocks[i].Groups["body"].Value;
            var firstLine = text[..text.IndexOf('\n')].Split(' ');
            // The answer is the json block that follows with nothing but blank lines between.
            bool adjacent = i + 1 < blocks.Count && blocks[i + 1].Groups["lang"].Value == "json" && blocks[i].Index + blocks[i].Length == blocks[i + 1].Index;
            yield return (firstLine[0], firstLine[1], text[(text.IndexOf('\n') + 1)..], adjacent ? blocks[i + 1].Groups["body"].Value : null);
        }
    }

    [Fact]
    public async Task EveryRequestOfApiMd_RunsAndAnswersAsShown()
    {
        var requests = Requests().ToList();
        Assert.True(requests.Count >= 5, $"only {requests.Count} http blocks found in {DocPath}");
        foreach (var (method, template, body, expected) in requests)
        {
            var path = template;
            if (path.Contains("{id}"))
                path = path.Replace("{id}", (await _client.Post("/v1/sessions", new { })).Ok().Str("id"));
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body, Encoding.UTF8) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await _client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{method} {template} from API.md: {(int)response.StatusCode} {text}");
            if (expected is not null) Match(JsonNode.Parse(expected), JsonNode.Parse(text), $"{method} {template}");
        }
    }

    private static void Match(JsonNode? expected, JsonNode? actual, string at)
    {
        switch (expected)
        {
            case JsonObject e:
                var a = Assert.IsType<JsonObject>(actual);
                Assert.Equal(e.Select(p => p.Key).Order(), a.Select(p => p.Key).Order());
                foreach (var (key, value) in e)
                    if (key != "stats") Match(value, a[key], $"{at}.{key}");
                break;
            case JsonArray e:
                var array = Assert.IsType<JsonArray>(actual);
                Assert.True(e.Count == array.Count, $"{at}: {e.Count} items shown, {array.Count} answered");
                for (int i = 0; i < e.Count; i++) Match(e[i], array[i], $"{at}[{i}]");
                break;
            case JsonValue e when e.GetValueKind() == JsonValueKind.Number:
                double x = e.GetValue<double>(), y = actual!.GetValue<double>();
                Assert.True(Math.Abs(x - y) <= 1e-6 * Math.Max(1, Math.Abs(x)), $"{at}: {x} shown, {y} answered");
                break;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual), $"{at}: {expected?.ToJsonString()} shown, {actual?.ToJsonString()} answered");
                break;
        }
    }
}
