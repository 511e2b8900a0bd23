using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Api.Json;
using AutogradService.Api.OpenApi;
using AutogradService.Api.Options;
using AutogradService.Engine.Tensors;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Rest;

/// <summary>REST: <c>POST /v1/{evaluate,gradient,jvp,jacobian,hessian,inspect}</c>; NDJSON streaming for gradient.</summary>
public static class TransformEndpoints
{
    public const string NdJson = "application/x-ndjson";

    /// <summary>Largest chunk of a streamed tensor, in bytes of raw elements.</summary>
    public const int ChunkBytes = ResultChunks.ChunkBytes;

    public static IEndpointRouteBuilder MapTransformEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Transforms");
        Map(group, "evaluate", TransformKind.Evaluate, "Forward pass only: the outputs.");
        Map(group, "gradient", TransformKind.Gradient,
            "Values and reverse-mode gradients (VJP) w.r.t. `wrt`, seeded by `seeds` (default ones: the gradient of the sum of the outputs); " +
            "`intermediates` returns per-value values and adjoints. With `Accept: application/x-ndjson` results stream as they are final.");
        Map(group, "jvp", TransformKind.Jvp, "Forward mode: output tangents for the input `tangents`.");
        Map(group, "jacobian", TransformKind.Jacobian, "Full Jacobians; `mode` auto picks forward when inputs are smaller than outputs.");
        Map(group, "hessian", TransformKind.Hessian, "Second derivatives of a scalar output, or a Hessian-vector product with `vector`.");
        group.MapPost("/inspect", InspectAsync).WithName("inspect")
            .WithSummary("Validates a graph or program and reports shapes, dtypes, FLOPs, peak bytes, DOT and Mermaid.")
            .Errors(400, 404, 413, 415, 429, 499, 504);
        return app;
    }

    private static void Map(RouteGroupBuilder group, string name, TransformKind kind, string summary) =>
        group.MapPost($"/{name}", (HttpContext http, TransformService service, IOptions<LimitsOptions> limits) =>
                HandleAsync(http, service, limits.Value, kind))
            .WithName(name).WithSummary(summary)
            .Errors(400, 404, 413, 415, 422, 429, 499, 504);

    private static async Task HandleAsync(HttpContext http, TransformService service, LimitsOptions limits, TransformKind kind)
    {
        using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted, TransformJson.TensorFields(limits));
        var request = TransformJson.ReadRequest(kind, body, limits);
        bool base64 = TransformJson.WantsBase64(body.RootElement);

        if (kind == TransformKind.Gradient && AcceptsNdJson(http.Request))
        {
            await StreamAsync(http, service, request);
            return;
        }
        var result = await service.RunAsync(request, http.RequestAborted);
        if (BinaryTensorBody.AcceptsFramed(http.Request) || TransformJson.WantsBinary(body.RootElement))
        {
            var answer = new BinaryTensorBody.Answer();
            var header = new System.Buffers.ArrayBufferWriter<byte>();
            await using (var w = new Utf8JsonWriter(header)) TransformJson.WriteResult(w, result, answer.Write);
            await answer.SendAsync(http.Response, header.WrittenMemory, http.RequestAborted);
            return;
        }
        http.Response.ContentType = "application/json";
        await TransformJson.WriteResultAsync(http.Response.BodyWriter, result, base64, http.RequestAborted);
    }

    private static bool AcceptsNdJson(HttpRequest request) =>
        request.Headers.Accept.Any(a => a is not null && a.Contains(NdJson, StringComparison.OrdinalIgnoreCase));

    private static async Task StreamAsync(HttpContext http, TransformService service, TransformRequest request)
    {
        var events = service.StreamGradientAsync(request, http.RequestAborted);
        await using var enumerator = events.GetAsyncEnumerator(http.RequestAborted);
        // The first event decides the status: an error before any result is still a problem-details response.
        if (!await enumerator.MoveNextAsync()) return;
        http.Response.ContentType = NdJson;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        do
        {
            foreach (var line in Lines(enumerator.Current))
            {
                buffer.Clear();
                await using (var w = new Utf8JsonWriter(buffer)) line(w);
                await http.Response.Body.WriteAsync(buffer.WrittenMemory, http.RequestAborted);
                await http.Response.Body.WriteAsync("\n"u8.ToArray(), http.RequestAborted);
            }
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
        while (await enumerator.MoveNextAsync());
    }

    /// <summary>One NDJSON line per chunk of a tensor (at most <see cref="ChunkBytes"/> of elements), or the stats line.</summary>
    private static IEnumerable<Action<Utf8JsonWriter>> Lines(StreamEvent e)
    {
        if (e is StreamEvent.Done done)
        {
            yield return w =>
            {
                w.WriteStartObject();
                w.WritePropertyName("stats");
                TransformJson.WriteStats(w, done.Stats);
                w.WriteEndObject();
            };
            yield break;
        }
        var t = (StreamEvent.Tensor)e;
        foreach (var (start, count) in ResultChunks.Of(t.Value))
        {
            yield return w =>
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("role", t.Role);
                w.WriteString("dtype", t.Value.DType.WireName());
                w.WriteStartArray("shape");
                foreach (var d in t.Value.Shape.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteNumber("offset", start);
                w.WritePropertyName("data");
                TensorJson.WriteValues(w, t.Value.Data, start, count);
                w.WriteBoolean("last", start + count >= t.Value.Shape.ElementCount);
                w.WriteEndObject();
            };
        }
    }

    internal static readonly HashSet<string> InspectFields = ["graph", "program", "model", "inputs"];

    private static async Task InspectAsync(HttpContext http, TransformService service, IOptions<LimitsOptions> limits)
    {
        using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        var root = body.RootElement;
        JsonFields.ExpectObject(root, "", InspectFields);
        var source = TransformJson.ReadSource(root, limits.Value.Graph());
        var types = new Dictionary<string, TensorType>(StringComparer.Ordinal);
        if (JsonFields.Object(root, "inputs", "") is { } inputs)
        {
            foreach (var p in inputs.EnumerateObject())
                types[p.Name] = InspectJson.ReadType(p.Value, p.Name, limits.Value.MaxTensorElements);
        }
        var report = await service.InspectAsync(source, types, http.RequestAborted);
        http.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(http.Response.Body);
        InspectJson.Write(writer, report);
    }
}
