using System.Net;
using System.Net.Http.Headers;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Errors;

/// <summary>
/// The HTTP edges of every REST route: a wrong method is 405 with Allow, a missing or wrong content type 415, and an
/// unknown field is refused by name — all as problem details. The over-size body read by a client that writes it whole
/// is in Interop.Tests (OversizeBodyTests), which needs real sockets.
/// </summary>
public sealed class HttpHygieneTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private async Task<string> OpenSessionAsync() => (await _client.Post("/v1/sessions", new { })).Ok().Str("id");

    [Theory]
    [InlineData("GET", "/v1/evaluate", "POST")]
    [InlineData("GET", "/v1/gradient", "POST")]
    [InlineData("DELETE", "/v1/jvp", "POST")]
    [InlineData("PUT", "/v1/jacobian", "POST")]
    [InlineData("GET", "/v1/hessian", "POST")]
    [InlineData("PUT", "/v1/inspect", "POST")]
    [InlineData("POST", "/v1/ops", "GET")]
    [InlineData("GET", "/v1/sessions", "POST")]
    [InlineData("POST", "/v1/sessions/abc", "DELETE")]
    [InlineData("GET", "/v1/sessions/abc/commands", "POST")]
    [InlineData("POST", "/v1/models", "GET")]
    [InlineData("PATCH", "/v1/models/c1", "DELETE, GET, PUT")]
    public async Task WrongMethod_Is405_WithAllow(string method, string path, string allow)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        using var response = await _client.SendAsync(request);
        // .NET files Allow among the content headers.
        Assert.Equal(allow, string.Join(", ", response.Content.Headers.Allow));
        using var again = new HttpRequestMessage(new HttpMethod(method), path);
        var r = (await SendAsync(_client, again)).Problem(405, "method_not_allowed");
        Assert.Equal(allow.Split(", "), r.Body.GetProperty("allowed").EnumerateArray().Select(m => m.GetString()));
        Assert.Contains(method, r.Str("detail"));
    }

    [Fact]
    public async Task UnknownPath_IsStill404()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/nothing/here");
        Assert.Equal(HttpStatusCode.NotFound, (await _client.SendAsync(request)).StatusCode);
    }

    public static TheoryData<string, string> BodyRoutes => new()
    {
        { "POST", "/v1/evaluate" }, { "POST", "/v1/gradient" }, { "POST", "/v1/jvp" }, { "POST", "/v1/jacobian" }, { "POST", "/v1/hessian" },
        { "POST", "/v1/inspect" }, { "POST", "/v1/sessions" }, { "POST", "/v1/sessions/{id}/commands" }, { "PUT", "/v1/models/c1" },
    };

    [Theory]
    [MemberData(nameof(BodyRoutes))]
    public async Task MissingOrWrongContentType_Is415_OnEveryBodyRoute(string method, string path)
    {
        if (path.Contains("{id}")) path = path.Replace("{id}", await OpenSessionAsync());
        foreach (var contentType in new[] { null, "text/plain", "application/x-www-form-urlencoded" })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent("""{"program": "y = x"}"""u8.ToArray()) };
            if (contentType is not null) request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            (await SendAsync(_client, request)).Problem(415, "unsupported_media_type");
        }
    }

    [Theory]
    [InlineData("/v1/evaluate", """{"program": "y = x", "inputs": {"x": 1}, "input": {"x": 1}}""", "input")]
    [InlineData("/v1/gradient", """{"program": "y = x", "input": {"x": 1}}""", "input")]
    [InlineData("/v1/gradient", """{"program": "y = x", "inputs": {"x": 1}, "tangents": {"x": 1}}""", "tangents")]
    [InlineData("/v1/jvp", """{"program": "y = x", "inputs": {"x": 1}, "wrt": ["x"]}""", "wrt")]
    [InlineData("/v1/jacobian", """{"program": "y = x", "inputs": {"x": 1}, "seeds": {"y": 1}}""", "seeds")]
    [InlineData("/v1/hessian", """{"program": "y = x", "inputs": {"x": 1}, "mode": "reverse"}""", "mode")]
    [InlineData("/v1/inspect", """{"program": "y = x", "wrt": ["x"]}""", "wrt")]
    [InlineData("/v1/evaluate", """{"program": "y = x", "inputs": {"x": 1}, "limits": {"timeout": 5}}""", "limits.timeout")]
    [InlineData("/v1/sessions", """{"gradient": "overwrite"}""", "gradient")]
    public async Task UnknownField_IsRefused_Naming_It(string path, string body, string field)
    {
        var r = (await _client.Post(path, body)).Problem(400, "invalid_argument");
        Assert.Equal(field, r.Str("field"));
        Assert.Contains($"'{field}'", r.Str("detail"));
    }

    [Fact]
    public async Task InputInsteadOfInputs_NamesTheField_NotAMissingInput()
    {
        // The case: the typo was ignored and the error blamed a missing x.
        var r = (await _client.Post("/v1/gradient", new { program = "y = 2 * dot(x, x)", input = new { x = new[] { 0, 1, 2, 3 } } })).Problem(400, "invalid_argument");
        Assert.Equal("input", r.Str("field"));
        Assert.Contains("inputs", r.Str("detail")); // the known fields are listed
    }

    [Fact]
    public async Task UnknownFields_OfModelsAndSessionBatchesAndCommands_AreRefused()
    {
        var model = (await _client.Put("/v1/models/c1", """{"program": "y = x", "output": "y"}""")).Problem(400, "invalid_argument");
        Assert.Equal("output", model.Str("field"));

        var id = await OpenSessionAsync();
        var batch = (await _client.Post($"/v1/sessions/{id}/commands", """{"commands": [], "command": 1}""")).Problem(400, "invalid_argument");
        Assert.Equal("command", batch.Str("field"));

        var command = (await _client.Post($"/v1/sessions/{id}/commands",
            """{"commands": [{"variable": {"name": "x", "value": 1}}, {"backward": {"output": "x", "retain": true}}]}""")).Problem(400, "invalid_argument");
        Assert.Equal("backward.retain", command.Str("field"));
        Assert.Equal(1, command.Body.GetProperty("command_index").GetInt32());

        var flat = (await _client.Post($"/v1/sessions/{id}/commands", """{"commands": [{"command": "fetch", "name": "x", "nmae": "y"}]}""")).Problem(400, "invalid_argument");
        Assert.Equal("nmae", flat.Str("field"));
        (await _client.Post($"/v1/sessions/{id}/commands",
            """{"commands": [{"command": "variable", "name": "x", "value": 2}, {"command": "fetch", "name": "x"}]}""")).Ok();
    }

    [Fact]
    public async Task DeleteSession_Is204WithNoBody_ThenNotFound()
    {
        var id = await OpenSessionAsync();
        var closed = await _client.Delete($"/v1/sessions/{id}");
        Assert.Equal(HttpStatusCode.NoContent, closed.Status);
        Assert.Equal("", closed.Text);
        (await _client.Delete($"/v1/sessions/{id}")).Problem(404, "not_found");
        (await _client.Post($"/v1/sessions/{id}/commands", """{"commands": []}""")).Problem(404, "not_found");
    }
}
