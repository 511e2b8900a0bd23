using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;

namespace AutogradService.Api.Rest;

/// <summary><c>GET /v1/ops</c>: the op catalog, generated from the engine's registry.</summary>
public static class CatalogEndpoints
{
    public static IEndpointRouteBuilder MapCatalogEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/ops", () => Results.Json(new { ops = Catalog().Select(Describe) }))
            .WithTags("Catalog").WithName("listOps")
            .WithSummary("Every op with its inputs, attributes, output rule and whether it is differentiable.");
        app.MapGet("/v1/devices", (Devices devices) => Results.Json(new
        {
            devices = devices.List().Select(d => new
            {
                name = d.Name, kind = d.Kind, memory_bytes = d.MemoryBytes, units = d.Units, description = d.Description,
            }),
            default_device = devices.Default,
        }))
            .WithTags("Catalog").WithName("listDevices")
            .WithSummary("The devices this server computes on (a request's device field names one) and the default device.");
        return app;
    }

    /// <summary>The registry's ops plus the graph-level control flow (while, if), which the interpreter runs itself.</summary>
    public static IEnumerable<OpSchema> Catalog() => OpRegistry.Default.Describe().Concat(ControlFlow.Schemas);

    public static object Describe(OpSchema s) => new
    {
        name = s.Name,
        category = s.Category,
        summary = s.Summary,
        aliases = s.Aliases,
        inputs = s.Inputs.Select(i => new { name = i.Name, variadic = i.Variadic, differentiable = i.Differentiable && s.Differentiable }),
        attributes = s.Attributes.Select(a => new
        {
            name = a.Name,
            kind = a.Kind.ToString().ToLowerInvariant(),
            required = a.Required,
            description = a.Description,
            @default = a.Default,
        }),
        output = s.OutputRule,
        differentiable = s.Differentiable,
    };
}
