using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace AutogradService.Interop.Tests;

/// <summary>
/// The OpenAPI document the running service serves: it passes Redocly CLI's lint (tests/Interop/openapi/redocly.yaml,
/// which also checks every example against its schema), and every request example in it is accepted by the service
/// and answers what the document's response example of the same name shows (timings aside).
/// </summary>
public sealed class OpenApiTests(ITestOutputHelper output)
{
    private static readonly string OpenApiDir = Path.Combine(Prerequisites.InteropDir, "openapi");

    private static async Task<string> DocumentAsync(ServerProcess server)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        return await http.GetStringAsync($"{server.RestBase}/openapi/v1.json");
    }

    [Fact]
    public async Task Document_PassesRedoclyLint()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForRedoclyAsync(), output)) return;
        using var server = await ServerProcess.StartAsync();
        var file = Path.Combine(Directory.CreateTempSubdirectory("autograd-openapi-").FullName, "v1.json");
        await File.WriteAllTextAsync(file, await DocumentAsync(server));
        try
        {
            var cli = Path.Combine(OpenApiDir, "node_modules", "@redocly", "cli", "bin", "cli.js");
            // No telemetry and no update check: CI reaches no network but the package registries.
            var environment = new Dictionary<string, string> { ["REDOCLY_TELEMETRY"] = "off", ["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true" };
            var (exitCode, text) = await ChildProcess.RunAsync("node", [cli, "lint", file, "--config", Path.Combine(OpenApiDir, "redocly.yaml"), "--format=stylish"],
                OpenApiDir, TimeSpan.FromMinutes(2), environment);
            output.WriteLine(text);
            Assert.True(exitCode == 0, $"redocly lint exited with {exitCode?.ToString() ?? "a timeout"}:\n{text}");
            Assert.DoesNotContain(" warning ", text);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }

    [Fact]
    public async Task EveryExample_IsAccepted_AndAnswersAsDocumented()
    {
        using var server = await ServerProcess.StartAsync();
        var doc = JsonNode.Parse(await DocumentAsync(server))!;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri(server.RestBase) };
        int sent = 0, compared = 0;
        foreach (var (path, item) in doc["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                if (operation!["requestBody"]?["content"]?["application/json"]?["examples"] is not JsonObject examples) continue;
                var documented = operation["responses"]!.AsObject().FirstOrDefault(r => r.Key.StartsWith('2'));
                var responseExamples = documented.Value?["content"]?["application/json"]?["examples"] as JsonObject;
                foreach (var (name, example) in examples)
                {
                    var url = await ResolvePathAsync(http, path, operation);
                    using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), url)
                    {
                        Content = new StringContent(example!["value"]!.ToJsonString(), Encoding.UTF8, "application/json"),
                    };
                    using var response = await http.SendAsync(request);
                    var text = await response.Content.ReadAsStringAsync();
                    var at = $"{method.ToUpperInvariant()} {path} example '{name}'";
                    Assert.True(response.IsSuccessStatusCode, $"{at}: {(int)response.StatusCode} {text}");
                    Assert.Equal(documented.Key, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    sent++;
                    if (responseExamples?[name]?["value"] is { } expected)
                    {
                        Match(expected, JsonNode.Parse(text), at);
                        compared++;
                    }
                }
            }
        }
        output.WriteLine($"{sent} examples sent, {compared} responses compared with the document's");
        Assert.True(sent >= 20, $"only {sent} request examples in the document");
        Assert.True(compared >= 15, $"only {compared} response examples compared");
    }

    /// <summary>The path with its parameters filled: a new session's id, or the parameter's documented example.</summary>
    private static async Task<string> ResolvePathAsync(HttpClient http, string path, JsonNode operation)
    {
        if (path.Contains("{id}", StringComparison.Ordinal))
        {
            using var open = await http.PostAsync("/v1/sessions", new StringContent("{}", Encoding.UTF8, "application/json"));
            open.EnsureSuccessStatusCode();
            var id = JsonNode.Parse(await open.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
            path = path.Replace("{id}", Uri.EscapeDataString(id), StringComparison.Ordinal);
        }
        foreach (var parameter in operation["parameters"]?.AsArray() ?? [])
        {
            if (parameter!["in"]!.GetValue<string>() != "path" || parameter["example"] is not { } example) continue;
            path = path.Replace($"{{{parameter["name"]!.GetValue<string>()}}}", Uri.EscapeDataString(example.GetValue<string>()), StringComparison.Ordinal);
        }
        Assert.DoesNotContain("{", path);
        return path;
    }

    /// <summary>The same JSON, numbers to float rounding; stats are timings and sizes, so only their fields must match.</summary>
    private static void Match(JsonNode? expected, JsonNode? actual, string at)
    {
        switch (expected)
        {
            case JsonObject e:
                var a = Assert.IsType<JsonObject>(actual);
                Assert.True(e.Select(p => p.Key).Order().SequenceEqual(a.Select(p => p.Key).Order()),
                    $"{at}: fields [{string.Join(", ", e.Select(p => p.Key))}] documented, [{string.Join(", ", a.Select(p => p.Key))}] answered");
                foreach (var (key, value) in e)
                    if (key != "stats") Match(value, a[key], $"{at}.{key}");
                break;
            case JsonArray e:
                var array = Assert.IsType<JsonArray>(actual);
                Assert.True(e.Count == array.Count, $"{at}: {e.Count} items documented, {array.Count} answered");
                for (int i = 0; i < e.Count; i++) Match(e[i], array[i], $"{at}[{i}]");
                break;
            case JsonValue e when e.GetValueKind() == JsonValueKind.Number:
                double x = e.GetValue<double>(), y = actual!.GetValue<double>();
                Assert.True(Math.Abs(x - y) <= 1e-6 * Math.Max(1, Math.Abs(x)), $"{at}: {x} documented, {y} answered");
                break;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual), $"{at}: {expected?.ToJsonString()} documented, {actual?.ToJsonString()} answered");
                break;
        }
    }
}
