using System.Text.Json;
using AutogradService.Api.Json;
using AutogradService.Api.OpenApi;
using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Rest;

/// <summary>REST models: <c>PUT/GET/DELETE /v1/models/{name}</c> and <c>GET /v1/models</c>.</summary>
public static class ModelEndpoints
{
    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/models").WithTags("Models");
        group.MapPut("/{name}", PutAsync).WithName("putModel")
            .WithSummary("Registers {graph} or {program}: validated, shape-inferred and planned once; survives restarts.")
            .Errors(400, 413, 415);
        group.MapGet("", (Caller caller, ModelRepository repo) => Results.Json(new { models = repo.Visible(caller).Select(Describe) }))
            .WithName("listModels").WithSummary("The caller's registered models (an admin's list has every caller's).");
        group.MapGet("/{name}", (string name, Caller caller, ModelRepository repo) => Results.Json(Describe(repo.Get(name, caller))))
            .WithName("getModel").WithSummary("A model's inputs, outputs, node count, estimated FLOPs and peak bytes.").Errors(404);
        group.MapDelete("/{name}", (string name, Caller caller, ModelRepository repo) =>
            {
                repo.Delete(name, caller);
                return Results.NoContent();
            })
            .WithName("deleteModel").WithSummary("Removes a model: 204 with no body, or 404 not_found.").Errors(404);
        return app;
    }

    internal static readonly HashSet<string> PutFields = ["graph", "program", "outputs"];

    private static async Task<IResult> PutAsync(string name, HttpContext http, Caller caller, ModelRepository repo, IOptions<LimitsOptions> limits)
    {
        using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        var root = body.RootElement;
        JsonFields.ExpectObject(root, "", PutFields);
        var graphLimits = limits.Value.Graph(http.RequestAborted);
        var program = JsonFields.String(root, "program", "");
        Graph graph = JsonFields.Get(root, "graph") is { } g ? GraphJson.Read(g, graphLimits)
            : program is not null ? ProgramParser.Parse(program, JsonFields.Names(root, "outputs", ""), limits: graphLimits)
            : throw EngineException.InvalidArgument("give a graph or a program");
        return Results.Json(Describe(repo.Put(name, graph, caller)));
    }

    public static object Describe(RegisteredModel m) => new
    {
        name = m.Name,
        inputs = m.Graph.Inputs.Select(i => new { name = i.Name, dtype = i.DType.WireName(), shape = i.Shape }),
        outputs = m.Graph.Outputs,
        node_count = m.Plan.NodeCount,
        flops = m.Plan.Estimates.Flops,
        peak_bytes = m.Plan.Estimates.PeakBytes,
    };
}
