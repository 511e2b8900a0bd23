using System.Text.Json;
using AutogradService.Api.Errors;
using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Inference;

/// <summary>
/// The Open Inference Protocol's REST endpoints under <c>/v2</c> (KServe v2), with the gradient extension's
/// <c>vjp</c>, <c>jvp</c> and <c>jacobian</c> beside <c>infer</c>. Errors are the protocol's <c>{"error": "..."}</c>
/// (with the service's stable <c>code</c> added), written by <see cref="OipErrors"/>.
/// </summary>
public static class InferenceEndpoints
{
    /// <summary>Server metadata and health: outside the caller group, anonymous as /healthz is (unless Security:AnonymousOperations=false).</summary>
    public static IEndpointRouteBuilder MapInferenceServerEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v2").WithTags("Open Inference Protocol");
        group.MapGet("", () => Results.Json(new
            {
                name = InferenceService.ServerName,
                version = InferenceService.ServerVersion,
                extensions = InferenceService.Extensions,
            }))
            .WithName("oipServerMetadata").WithSummary("Server name, version and the protocol extensions served (\"gradient\" among them).");
        group.MapGet("/health/live", () => Results.Json(new { live = true }))
            .WithName("oipServerLive").WithSummary("Liveness: 200 while the process answers.");
        group.MapGet("/health/ready", async (InferenceService inference, CancellationToken ct) =>
                await inference.ServerReadyAsync(ct) ? Results.Json(new { ready = true }) : Results.Json(new { ready = false }, statusCode: 503))
            .WithName("oipServerReady").WithSummary("Readiness as /readyz: 503 while stopping or while the engine queue is full.");
        return app;
    }

    /// <summary>Model endpoints, in the caller group: the same credentials, ownership and rate quotas as /v1.</summary>
    public static IEndpointRouteBuilder MapInferenceModelEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v2/models").WithTags("Open Inference Protocol");
        foreach (var prefix in new[] { "/{model}", "/{model}/versions/{version}" })
        {
            bool versioned = prefix.Contains("version", StringComparison.Ordinal);
            string suffix = versioned ? "Version" : "";
            group.MapGet(prefix, (string model, string? version, Caller caller, InferenceService inference) =>
                {
                    var metadata = inference.Metadata(model, version, caller);
                    return Write(w => OipJson.WriteMetadata(w, metadata));
                })
                .WithName("oipModelMetadata" + suffix).WithSummary("A model's versions, platform, inputs and outputs (-1: a dimension of any size).");
            group.MapGet(prefix + "/ready", (string model, string? version, Caller caller, InferenceService inference) =>
                {
                    inference.Find(model, version, caller); // not_found answers 404, the protocol's "not ready"
                    return Results.Json(new { name = model, ready = true });
                })
                .WithName("oipModelReady" + suffix).WithSummary("200 when the model can be inferred by this caller, else 404.");
            MapCall(group, prefix, "infer", InferenceKind.Infer, suffix, "Inference: outputs for the inputs.");
            MapCall(group, prefix, "vjp", InferenceKind.Vjp, suffix,
                "Gradient extension: vector-Jacobian products of the outputs' `cotangents` with respect to `wrt`; a leading batch axis on cotangents gives a batch of VJPs.");
            MapCall(group, prefix, "jvp", InferenceKind.Jvp, suffix, "Gradient extension: output tangents for the input `tangents`.");
            MapCall(group, prefix, "jacobian", InferenceKind.Jacobian, suffix, "Gradient extension: Jacobians of `of` with respect to `wrt`.");
        }
        return app;
    }

    private static void MapCall(RouteGroupBuilder group, string prefix, string verb, InferenceKind kind, string suffix, string summary) =>
        group.MapPost($"{prefix}/{verb}", async (HttpContext http, string model, string? version, Caller caller, InferenceService inference,
                IOptions<LimitsOptions> limits) =>
            {
                inference.Find(model, version, caller); // an unknown model or version is 404 before its body is read
                CheckContentType(http.Request);
                using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted, contentTypeChecked: true, binary: true);
                var call = OipJson.ReadCall(kind, model, version, body.RootElement, limits.Value, body.Binary, out var binary);
                var reply = await inference.RunAsync(call, caller, http.RequestAborted);
                bool derivatives = kind != InferenceKind.Infer;
                if (binary.Any)
                {
                    // The binary tensor extension's answer: the JSON header, then the selected tensors' bytes.
                    var answer = new BinaryTensorBody.Answer();
                    var header = new System.Buffers.ArrayBufferWriter<byte>();
                    using (var headerWriter = new Utf8JsonWriter(header)) OipJson.WriteReply(headerWriter, reply, derivatives, binary, answer);
                    await answer.SendAsync(http.Response, header.WrittenMemory, http.RequestAborted);
                    return;
                }
                http.Response.ContentType = "application/json";
                await using var writer = new Utf8JsonWriter(http.Response.Body);
                OipJson.WriteReply(writer, reply, derivatives);
            })
            .WithName($"oip{char.ToUpperInvariant(verb[0])}{verb[1..]}{suffix}").WithSummary(summary);

    /// <summary>
    /// Protocol clients send JSON with application/json, with no content type, or (curl -d, as KServe's own examples
    /// do) with the form type; a body framed by the binary tensor extension (<c>Inference-Header-Content-Length</c>)
    /// may also be application/octet-stream. Anything else is refused by name.
    /// </summary>
    private static void CheckContentType(HttpRequest request)
    {
        var type = request.ContentType;
        if (string.IsNullOrEmpty(type) || request.HasJsonContentType() ||
            type.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase)) return;
        if (BinaryTensorBody.IsFramed(request) && type.StartsWith(BinaryTensorBody.ContentType, StringComparison.OrdinalIgnoreCase)) return;
        throw new ServiceException(ErrorCatalog.UnsupportedMediaType,
            $"the body must be a JSON inference request (content-type: application/json), got '{Engine.EngineException.Clip(type, 60)}'");
    }

    private static IResult Write(Action<Utf8JsonWriter> write) => Results.Stream(async stream =>
    {
        await using var writer = new Utf8JsonWriter(stream);
        write(writer);
    }, "application/json");
}

/// <summary>
/// The protocol's error body for everything under <c>/v2</c>: <c>{"error": detail, "code": code}</c> with the status
/// of the service's error table, whichever layer refused (endpoint, body limit, authentication, rate limit).
/// </summary>
public static class OipErrors
{
    public static bool Applies(HttpContext context) => context.Request.Path.StartsWithSegments("/v2");

    public static async Task WriteAsync(HttpContext context, ApiError error)
    {
        context.Response.ContentType = "application/json";
        // Details quote names ('x'): written as they are, not as \u0027.
        await using var writer = new Utf8JsonWriter(context.Response.Body,
            new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.WriteStartObject();
        writer.WriteString("error", error.Detail);
        writer.WriteString("code", error.Code);
        writer.WriteEndObject();
    }
}
