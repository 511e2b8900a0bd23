using System.Text.Json;
using AutogradService.Api.Json;
using AutogradService.Api.OpenApi;
using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using AutogradService.Onnx;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Rest;

/// <summary>REST models: <c>PUT/GET/DELETE /v1/models/{name}</c> and <c>GET /v1/models</c>.</summary>
public static class ModelEndpoints
{
    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/models").WithTags("Models");
        group.MapPut("/{name}", PutAsync).WithName("putModel")
            .WithSummary("Registers {graph}, {program} or an ONNX model (an application/onnx body, or {format: \"onnx\", onnx: base64}): validated, shape-inferred and planned once; survives restarts.")
            .Errors(400, 413, 415);
        group.MapGet("", (Caller caller, ModelRepository repo) => Results.Json(new { models = repo.Visible(caller).Select(Describe) }))
            .WithName("listModels").WithSummary("The caller's registered models (an admin's list has every caller's).");
        group.MapGet("/{name}", (string name, Caller caller, ModelRepository repo) => Results.Json(Describe(repo.Get(name, caller))))
            .WithName("getModel").WithSummary("A model's format, inputs, outputs, parameters, op histogram, node count, estimated FLOPs and peak bytes.").Errors(404);
        group.MapDelete("/{name}", (string name, Caller caller, ModelRepository repo) =>
            {
                repo.Delete(name, caller);
                return Results.NoContent();
            })
            .WithName("deleteModel").WithSummary("Removes a model: 204 with no body, or 404 not_found.").Errors(404);
        return app;
    }

    /// <summary>The media type of an ONNX file body (application/octet-stream is taken as the same).</summary>
    public const string OnnxMediaType = "application/onnx";

    internal static readonly HashSet<string> PutFields = ["graph", "program", "outputs", "format", "onnx", "dims"];

    private static async Task<IResult> PutAsync(string name, HttpContext http, Caller caller, ModelRepository repo, IOptions<LimitsOptions> limits)
    {
        var graphLimits = limits.Value.Graph(http.RequestAborted);
        if (IsOnnxBody(http.Request))
        {
            var bytes = await ReadAllAsync(http.Request, http.RequestAborted);
            var dims = QueryDims(http.Request.Query["dims"].ToString());
            return Results.Json(Describe(repo.PutOnnx(name, Import(bytes, dims, graphLimits), bytes, caller)));
        }
        using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        var root = body.RootElement;
        JsonFields.ExpectObject(root, "", PutFields);
        var format = JsonFields.String(root, "format", "") ?? (JsonFields.Get(root, "onnx") is not null ? "onnx" : "graph");
        if (format == "onnx")
        {
            var encoded = JsonFields.Get(root, "onnx") ?? throw JsonFields.Invalid("onnx", "is required with format \"onnx\" (the model file in base64)");
            if (encoded.ValueKind != JsonValueKind.String || !encoded.TryGetBytesFromBase64(out var bytes))
                throw JsonFields.Invalid("onnx", "must be the model file in base64");
            var dims = new Dictionary<string, int>(StringComparer.Ordinal);
            if (JsonFields.Get(root, "dims") is { } d)
            {
                if (d.ValueKind != JsonValueKind.Object) throw JsonFields.Invalid("dims", "must be an object of symbolic dimension sizes, e.g. {\"batch\": 4}");
                foreach (var p in d.EnumerateObject())
                    dims[p.Name] = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var size) && size >= 0
                        ? size : throw JsonFields.Invalid($"dims.{p.Name}", "must be an integer ≥ 0");
            }
            return Results.Json(Describe(repo.PutOnnx(name, Import(bytes, dims, graphLimits), bytes, caller)));
        }
        if (format != "graph") throw JsonFields.Invalid("format", $"must be graph or onnx, got '{EngineException.Clip(format)}'");
        var program = JsonFields.String(root, "program", "");
        Graph graph = JsonFields.Get(root, "graph") is { } g ? GraphJson.Read(g, graphLimits)
            : program is not null ? ProgramParser.Parse(program, JsonFields.Names(root, "outputs", ""), limits: graphLimits)
            : throw EngineException.InvalidArgument("give a graph or a program");
        return Results.Json(Describe(repo.Put(name, graph, caller)));
    }

    private static OnnxImport Import(byte[] bytes, IReadOnlyDictionary<string, int> dims, GraphLimits graphLimits) =>
        OnnxImporter.Import(bytes, new OnnxImportOptions { Limits = graphLimits, Dims = dims });

    private static bool IsOnnxBody(HttpRequest request) =>
        request.ContentType is { } type && (type.StartsWith(OnnxMediaType, StringComparison.OrdinalIgnoreCase) ||
                                            type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase));

    /// <summary>"batch:4,seq:8" → sizes for the model's symbolic dimensions.</summary>
    private static Dictionary<string, int> QueryDims(string text)
    {
        var dims = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split(':');
            if (pieces.Length != 2 || pieces[0].Length == 0 || !int.TryParse(pieces[1], out var size) || size < 0)
                throw JsonFields.Invalid("dims", $"must read name:size[,name:size...], got '{EngineException.Clip(part)}'");
            dims[pieces[0]] = size;
        }
        return dims;
    }

    /// <summary>The whole body (Kestrel's MaxRequestBodySize bounds it).</summary>
    private static async Task<byte[]> ReadAllAsync(HttpRequest request, CancellationToken cancellation)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellation);
        return buffer.ToArray();
    }

    public static object Describe(RegisteredModel m) => new
    {
        name = m.Name,
        format = m.Format,
        inputs = m.Graph.Inputs.Select(i => new { name = i.Name, dtype = i.DType.WireName(), shape = i.Shape }),
        outputs = m.Graph.Outputs,
        parameters = (m.Onnx?.Parameters ?? []).Select(p => m.Graph.ConstantValues[p])
            .Select((t, i) => new { name = m.Onnx!.Parameters[i], dtype = t.DType.WireName(), shape = t.Shape.ToArray() }),
        op_histogram = OpHistogram(m),
        opsets = m.Onnx?.Opsets,
        producer = m.Onnx?.Producer,
        node_count = m.Plan.NodeCount,
        flops = m.Plan.Estimates.Flops,
        peak_bytes = m.Plan.Estimates.PeakBytes,
    };

    /// <summary>An ONNX model's ops by op_type, or a graph's engine ops, by count.</summary>
    public static IReadOnlyDictionary<string, int> OpHistogram(RegisteredModel m) => m.Onnx?.OpHistogram ?? EngineOpHistogram(m.Graph);

    /// <summary>How many nodes of each op a graph has, subgraphs included, most used first.</summary>
    private static Dictionary<string, int> EngineOpHistogram(Graph graph)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        void Count(Graph g)
        {
            foreach (var node in g.Nodes)
            {
                counts[node.Op] = counts.GetValueOrDefault(node.Op) + 1;
                foreach (var attr in node.Attributes.Values)
                    if (attr.Value is Graph sub) Count(sub);
            }
        }
        Count(graph);
        return counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }
}
