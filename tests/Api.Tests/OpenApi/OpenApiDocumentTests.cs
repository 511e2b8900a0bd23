using System.Text.Json;
using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Api.Json;
using AutogradService.Api.Rest;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Tests.OpenApi;

/// <summary>
/// The OpenAPI document as served: every body typed by a named schema, every error a Problem, and each body's schema
/// listing exactly the fields its binder reads (the binders refuse any other field, so a schema that drifted would
/// document a request the service refuses). Redocly's lint and the examples' run against the real process are in
/// Interop.Tests (OpenApiTests).
/// </summary>
public sealed class OpenApiDocumentTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private async Task<JsonElement> DocumentAsync() => (await _client.Get("/openapi/v1.json")).Ok().Body;

    private static JsonElement Schema(JsonElement doc, string name) => doc.GetProperty("components").GetProperty("schemas").GetProperty(name);

    private static HashSet<string> Properties(JsonElement schema) => schema.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();

    private static void Same(IEnumerable<string> binder, JsonElement schema, string what)
    {
        var documented = Properties(schema);
        Assert.True(documented.SetEquals(binder),
            $"{what}: the schema lists [{string.Join(", ", documented.Order())}] but the binder reads [{string.Join(", ", binder.Order())}]");
        Assert.False(schema.GetProperty("additionalProperties").GetBoolean(), $"{what}: the binder refuses unknown fields, so the schema must too");
    }

    [Fact]
    public async Task EveryBodySchema_ListsExactlyTheFieldsItsBinderReads()
    {
        var doc = await DocumentAsync();
        Same(TransformJson.RequestFields[TransformKind.Evaluate], Schema(doc, "EvaluateRequest"), "evaluate");
        Same(TransformJson.RequestFields[TransformKind.Gradient], Schema(doc, "GradientRequest"), "gradient");
        Same(TransformJson.RequestFields[TransformKind.Jvp], Schema(doc, "JvpRequest"), "jvp");
        Same(TransformJson.RequestFields[TransformKind.Jacobian], Schema(doc, "JacobianRequest"), "jacobian");
        Same(TransformJson.RequestFields[TransformKind.Hessian], Schema(doc, "HessianRequest"), "hessian");
        Same(TransformJson.LimitFields, Schema(doc, "RequestLimits"), "limits");
        Same(TransformEndpoints.InspectFields, Schema(doc, "InspectRequest"), "inspect");
        Same(GraphJson.GraphFields, Schema(doc, "Graph"), "graph");
        Same(GraphJson.NodeFields, Schema(doc, "OpNode"), "node");
        Same(GraphJson.InputFields, Schema(doc, "Parameter").GetProperty("oneOf")[1], "graph input");
        Assert.Equal(TensorJson.ObjectFields.Order(), Properties(Schema(doc, "TypedTensor")).Union(Properties(Schema(doc, "Base64Tensor"))).Order());
        Same(ModelEndpoints.PutFields, Schema(doc, "ModelDefinition"), "model");
        Same(SessionEndpoints.OpenFields, Schema(doc, "SessionOptions"), "session options");
        Same(SessionJson.BatchFields, Schema(doc, "CommandBatch"), "command batch");
    }

    [Fact]
    public async Task EveryCommandSchema_ListsExactlyTheCommandsFields()
    {
        var doc = await DocumentAsync();
        var alternatives = Schema(doc, "Command").GetProperty("oneOf").EnumerateArray().ToList();
        var named = alternatives.Where(a => !a.GetProperty("required")[0].GetString()!.Equals("command")).ToList();
        Assert.Equal(SessionJson.CommandFields.Keys.Order(), named.Select(a => a.GetProperty("required")[0].GetString()!).Order());
        foreach (var alternative in named)
        {
            var kind = alternative.GetProperty("required")[0].GetString()!;
            var fields = alternative.GetProperty("properties").GetProperty(kind);
            // program also takes the bare string: its object form is the second alternative.
            var reference = fields.TryGetProperty("oneOf", out var forms) ? forms[1].GetProperty("$ref") : fields.GetProperty("$ref");
            var schema = Schema(doc, reference.GetString()!.Split('/')[^1]);
            Same(SessionJson.CommandFields[kind], schema, $"command {kind}");
        }
        var flat = alternatives.Single(a => a.GetProperty("required")[0].GetString() == "command");
        Assert.Equal(SessionJson.CommandFields.Keys.Order(),
            flat.GetProperty("properties").GetProperty("command").GetProperty("enum").EnumerateArray().Select(e => e.GetString()!).Order());
    }

    [Fact]
    public async Task ProblemCodes_AreTheErrorTable_AndDTypesAllParse()
    {
        var doc = await DocumentAsync();
        var codes = Schema(doc, "Problem").GetProperty("properties").GetProperty("code").GetProperty("enum").EnumerateArray().Select(e => e.GetString()!);
        Assert.Equal(ErrorCatalog.AllCodes.Order(), codes.Order());
        foreach (var dtype in Schema(doc, "DType").GetProperty("enum").EnumerateArray())
            Assert.True(DTypes.TryParse(dtype.GetString(), out _), dtype.GetString());
    }

    [Fact]
    public async Task EveryOperation_HasTypedBodies_ExamplesAndProblemErrors()
    {
        var doc = await DocumentAsync();
        Assert.False(doc.GetProperty("components").GetProperty("schemas").TryGetProperty("JsonElement", out _), "an untyped body is left");
        int operations = 0;
        foreach (var path in doc.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1/", StringComparison.Ordinal)))
        {
            foreach (var op in path.Value.EnumerateObject())
            {
                operations++;
                var at = $"{op.Name.ToUpperInvariant()} {path.Name}";
                if (op.Name is "post" or "put")
                {
                    var media = op.Value.GetProperty("requestBody").GetProperty("content").GetProperty("application/json");
                    Assert.StartsWith("#/components/schemas/", media.GetProperty("schema").GetProperty("$ref").GetString());
                    Assert.True(media.GetProperty("examples").EnumerateObject().Any(), $"{at}: no example");
                }
                var responses = op.Value.GetProperty("responses").EnumerateObject().ToList();
                Assert.Contains(responses, r => r.Name.StartsWith('2'));
                foreach (var response in responses)
                {
                    if (!response.Value.TryGetProperty("content", out var content)) continue;
                    foreach (var type in content.EnumerateObject())
                    {
                        var reference = type.Value.GetProperty("schema").GetProperty("$ref").GetString();
                        if (response.Name.StartsWith('2')) Assert.NotEqual("#/components/schemas/Problem", reference);
                        else Assert.Equal(("application/problem+json", "#/components/schemas/Problem"), (type.Name, reference));
                    }
                }
            }
        }
        Assert.Equal(15, operations); // six transforms with inspect, the op and device catalogs, three session and four model operations
    }

    [Fact]
    public async Task StatusCodes_AreTheOnesEachEndpointAnswers()
    {
        var doc = await DocumentAsync();
        HashSet<string> Statuses(string path, string method) =>
            doc.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
        Assert.Equal(["200", "400", "404", "413", "415", "422", "429", "499", "504"], Statuses("/v1/gradient", "post").Order());
        Assert.Equal(["200", "400", "404", "409", "413", "415", "422", "429", "499", "504"], Statuses("/v1/sessions/{id}/commands", "post").Order());
        Assert.Equal(["204", "404"], Statuses("/v1/sessions/{id}", "delete").Order());
        Assert.Equal(["201", "400", "413", "415", "429"], Statuses("/v1/sessions", "post").Order());
        Assert.Equal(["200"], Statuses("/v1/ops", "get").Order());
        var notFound = doc.GetProperty("paths").GetProperty("/v1/sessions/{id}").GetProperty("delete").GetProperty("responses").GetProperty("404");
        Assert.Contains("not_found", notFound.GetProperty("description").GetString());
    }
}

/// <summary>With security on, every API operation also documents 401 and 429 (the caller and its rate quota).</summary>
public sealed class SecuredOpenApiDocumentTests(AutogradService.Api.Tests.Security.SecureService service) : IClassFixture<AutogradService.Api.Tests.Security.SecureService>
{
    [Fact]
    public async Task EveryOperation_Documents401And429()
    {
        using var client = service.CreateClient();
        var doc = (await client.Get("/openapi/v1.json")).Ok().Body;
        foreach (var path in doc.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1/", StringComparison.Ordinal)))
        {
            foreach (var op in path.Value.EnumerateObject())
            {
                var responses = op.Value.GetProperty("responses");
                Assert.True(responses.TryGetProperty("401", out var unauthenticated), $"{op.Name} {path.Name}: no 401");
                Assert.Contains("unauthenticated", unauthenticated.GetProperty("description").GetString());
                Assert.True(responses.TryGetProperty("429", out var limited), $"{op.Name} {path.Name}: no 429");
                Assert.Contains("quota_exceeded", limited.GetProperty("description").GetString());
                Assert.True(limited.GetProperty("headers").TryGetProperty("Retry-After", out _));
            }
        }
    }
}
