using System.Text.Json.Nodes;
using AutogradService.Api.Errors;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi.Reader;
using AutogradService.Api.Security;

namespace AutogradService.Api.OpenApi;

/// <summary>
/// Types the OpenAPI document. REST bodies are read by hand (Json/), so ASP.NET cannot infer their schemas; they are
/// written once, as JSON Schema, in <c>OpenApi/schemas.json</c>, and each operation's bodies, success responses and
/// examples (the chapter's cases) in <c>OpenApi/operations.json</c>. Error responses come from each endpoint's
/// <see cref="ErrorResponses"/>, described from the error table (plus 401 and 429 for every operation when security is
/// on). Tests hold the schemas to the binders' field lists and send every example to the running service.
/// Request bodies are declared here rather than with ASP.NET's <c>Accepts</c>, which would make routing match on the
/// content type: a request with another type would fall through to an empty 404 instead of <c>unsupported_media_type</c>.
/// </summary>
public sealed class ApiBodies(IOptions<SecurityOptions> security) : IOpenApiDocumentTransformer
{
    public const string ProblemSchema = "Problem";
    private const string ProblemJson = "application/problem+json";

    private static readonly Dictionary<string, string> TagDescriptions = new()
    {
        ["Transforms"] = "Stateless: one request is one computation over a graph, a program or a registered model.",
        ["Sessions"] = "Define-by-run: the client's own code drives the loop; the session records what it applies.",
        ["Models"] = "Graphs and programs registered once (validated, planned) and run by name; they survive restarts.",
        ["Catalog"] = "What the engine offers, generated from its registry.",
        ["Open Inference Protocol"] = "KServe v2 over the registered models, with the gradient extension (vjp, jvp, jacobian); docs/OIP.md.",
    };

    public static JsonObject Schemas { get; } = Load("schemas.json");

    public static JsonObject Operations { get; } = Load("operations.json");

    private static JsonObject Load(string file)
    {
        using var stream = typeof(ApiBodies).Assembly.GetManifestResourceStream($"AutogradService.Api.OpenApi.{file}")
            ?? throw new InvalidOperationException($"the embedded resource OpenApi/{file} is missing");
        return JsonNode.Parse(stream)!.AsObject();
    }

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        foreach (var (name, schema) in Schemas)
            document.Components.Schemas[name] = Parse(schema!, document, name);

        foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
            tag.Description ??= TagDescriptions.GetValueOrDefault(tag.Name ?? "");

        var errorsByOperation = context.DescriptionGroups.SelectMany(g => g.Items)
            .Where(d => d.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().Any())
            .ToDictionary(d => d.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().First().EndpointName,
                d => d.ActionDescriptor.EndpointMetadata.OfType<ErrorResponses>().FirstOrDefault());
        foreach (var path in document.Paths.Values)
        {
            foreach (var operation in path.Operations?.Values ?? Enumerable.Empty<OpenApiOperation>())
            {
                if (operation.OperationId is not { } id) continue;
                if (Operations[id] is JsonObject described) Describe(operation, described, document);
                var statuses = errorsByOperation.GetValueOrDefault(id)?.Statuses ?? [];
                // With security on, every API operation may refuse the caller (401) or its rate quota (429).
                if (security.Value.Enabled) statuses = [.. statuses.Union([401, 429]).Order()];
                AddErrors(operation, statuses, document);
                if (Operations[id]?["errors"] is JsonObject errorExamples) AddErrorExamples(operation, errorExamples);
            }
        }
        return Task.CompletedTask;
    }

    private static OpenApiSchema Parse(JsonNode schema, OpenApiDocument document, string name)
    {
        var parsed = OpenApiModelFactory.Parse<OpenApiSchema>(schema.ToJsonString(), OpenApiSpecVersion.OpenApi3_1, document, out var diagnostic, "json");
        if (parsed is null || diagnostic?.Errors.Count > 0)
            throw new InvalidOperationException($"OpenApi/schemas.json: schema {name} does not parse: {string.Join("; ", diagnostic?.Errors.Select(e => e.Message) ?? [])}");
        return parsed;
    }

    private static void Describe(OpenApiOperation operation, JsonObject described, OpenApiDocument document)
    {
        var examples = described["examples"] as JsonObject;
        if (described["request"] is JsonValue request)
        {
            var media = new OpenApiMediaType { Schema = new OpenApiSchemaReference(request.GetValue<string>(), document) };
            if (examples is not null)
                media.Examples = examples.ToDictionary(e => e.Key, e => (IOpenApiExample)Example(e.Value!, "request"));
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = described["request_required"]?.GetValue<bool>() ?? true,
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = media },
            };
        }
        if (described["parameters"] is JsonObject parameters)
        {
            foreach (var parameter in operation.Parameters ?? [])
                if (parameter is OpenApiParameter p && parameters[p.Name!] is { } example) p.Example = example.DeepClone();
        }
        if (described["responses"] is not JsonObject responses) return;
        operation.Responses ??= new OpenApiResponses();
        foreach (var (status, r) in responses)
        {
            var response = new OpenApiResponse { Description = r!["description"]!.GetValue<string>() };
            if (r["schema"] is JsonValue schema)
            {
                var media = new OpenApiMediaType { Schema = new OpenApiSchemaReference(schema.GetValue<string>(), document) };
                var withResponses = examples?.Where(e => e.Value!["response"] is not null).ToList() ?? [];
                if (withResponses.Count > 0)
                    media.Examples = withResponses.ToDictionary(e => e.Key, e => (IOpenApiExample)Example(e.Value!, "response"));
                response.Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = media };
                if (r["ndjson"] is JsonValue lines)
                    response.Content["application/x-ndjson"] = new OpenApiMediaType
                    {
                        Schema = new OpenApiSchemaReference(lines.GetValue<string>(), document),
                    };
            }
            operation.Responses[status] = response;
        }
        // ASP.NET's default "200 OK" stays only where the operation really answers 200.
        if (!responses.ContainsKey("200")) operation.Responses.Remove("200");
    }

    private static OpenApiExample Example(JsonNode example, string part) => new()
    {
        Summary = example["summary"]?.GetValue<string>(),
        Value = example[part]!.DeepClone(),
    };

    /// <summary>
    /// Problem examples, each with the request that gets it in <c>x-request</c> (so the test that runs the document's
    /// examples can send it and check the answer).
    /// </summary>
    private static void AddErrorExamples(OpenApiOperation operation, JsonObject byStatus)
    {
        foreach (var (status, examples) in byStatus)
        {
            if (operation.Responses?.GetValueOrDefault(status) is not OpenApiResponse { Content: { } content } || !content.TryGetValue(ProblemJson, out var media))
                throw new InvalidOperationException($"OpenApi/operations.json: {operation.OperationId} has {status} examples but does not declare {status}");
            media.Examples = examples!.AsObject().ToDictionary(e => e.Key, e =>
            {
                var example = Example(e.Value!, "value");
                example.Extensions = new Dictionary<string, IOpenApiExtension> { ["x-request"] = new JsonNodeExtension(e.Value!["x-request"]!.DeepClone()) };
                return (IOpenApiExample)example;
            });
        }
    }

    private static void AddErrors(OpenApiOperation operation, IReadOnlyList<int> statuses, OpenApiDocument document)
    {
        operation.Responses ??= new OpenApiResponses();
        foreach (var status in statuses)
        {
            var codes = ErrorCatalog.AllCodes.Where(c => ErrorCatalog.StatusFor(c).Http == status).ToList();
            var response = new OpenApiResponse
            {
                Description = codes.Count > 0 ? $"Problem details; code: {string.Join(", ", codes)}." : "Problem details.",
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [ProblemJson] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
                },
            };
            if (status is 429 or 503)
                response.Headers = new Dictionary<string, IOpenApiHeader>
                {
                    ["Retry-After"] = new OpenApiHeader { Description = "Seconds to wait before retrying.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } },
                };
            operation.Responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = response;
        }
    }
}

/// <summary>The error statuses an endpoint really answers with (problem details), for the OpenAPI document.</summary>
public sealed record ErrorResponses(IReadOnlyList<int> Statuses);

public static class ErrorResponsesExtensions
{
    /// <summary>Declares the endpoint's error statuses; <see cref="ApiBodies"/> describes each from the error table.</summary>
    public static TBuilder Errors<TBuilder>(this TBuilder builder, params int[] statuses) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ErrorResponses(statuses));
}
