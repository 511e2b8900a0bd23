using System.Text.Json;
using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Api.Json;
using AutogradService.Api.OpenApi;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Api.Sessions;
using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Sessions;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Rest;

/// <summary>REST sessions: <c>POST /v1/sessions</c>, <c>POST /v1/sessions/{id}/commands</c>, <c>DELETE /v1/sessions/{id}</c>.</summary>
public static class SessionEndpoints
{
    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sessions").WithTags("Sessions");
        group.MapPost("", OpenAsync).WithName("openSession")
            .WithSummary("Opens a define-by-run session: {gradient_mode: accumulate|overwrite, memory_bytes, idle_timeout_ms, strict_scalar_seed, detect_anomaly}.")
            .Errors(400, 413, 415, 429);
        group.MapPost("/{id}/commands", RunAsync).WithName("runCommands")
            .WithSummary("Runs {commands: [...]} in order; results[i] answers commands[i]. The first failure stops the batch and names its command_index.")
            .Errors(400, 404, 409, 413, 415, 422, 429, 499, 504);
        group.MapDelete("/{id}", async (string id, Caller caller, SessionStore store) =>
                await store.CloseAsync(id, caller) ? Results.NoContent() : throw new EngineException(ErrorCodes.NotFound, "no such session"))
            .WithName("closeSession")
            .WithSummary("Closes a session and frees its memory: 204 with no body, or 404 not_found for an unknown, expired or already closed session (or another caller's). A batch running on it stops and answers not_found.")
            .Errors(404);
        return app;
    }

    internal static readonly HashSet<string> OpenFields = ["gradient_mode", "memory_bytes", "idle_timeout_ms", "strict_scalar_seed", "detect_anomaly", "device"];

    private static async Task<IResult> OpenAsync(HttpContext http, Caller caller, SessionStore store)
    {
        var mode = GradientMode.Accumulate;
        long memory = 0, idle = 0;
        bool strict = false, anomaly = false;
        string? device = null;
        if (http.Request.ContentLength is > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
            var o = body.RootElement;
            JsonFields.ExpectObject(o, "", OpenFields);
            mode = ParseMode(JsonFields.String(o, "gradient_mode", ""));
            memory = JsonFields.Integer(o, "memory_bytes", "", min: 0) ?? 0;
            idle = JsonFields.Integer(o, "idle_timeout_ms", "", min: 0) ?? 0;
            strict = JsonFields.Bool(o, "strict_scalar_seed", "") ?? false;
            anomaly = JsonFields.Bool(o, "detect_anomaly", "") ?? false;
            device = JsonFields.String(o, "device", "");
        }
        var entry = store.Open(store.SettingsFor(mode, memory, strict, device) with { DetectAnomaly = anomaly }, store.IdleTimeoutFor(idle), caller);
        return Results.Json(new { id = entry.Id, expires_at = entry.ExpiresAt, gradient_mode = mode == GradientMode.Overwrite ? "overwrite" : "accumulate" },
            statusCode: 201);
    }

    public static GradientMode ParseMode(string? mode) => mode?.ToLowerInvariant() switch
    {
        null or "" or "accumulate" => GradientMode.Accumulate,
        "overwrite" => GradientMode.Overwrite,
        _ => throw JsonFields.Invalid("gradient_mode", $"must be accumulate or overwrite, got '{EngineException.Clip(mode)}'"),
    };

    private static async Task RunAsync(string id, HttpContext http, Caller caller, SessionStore store, EngineGate gate, IOptions<LimitsOptions> limits,
        Microsoft.AspNetCore.Http.IProblemDetailsService problems)
    {
        store.Get(id, caller); // an unknown session is not_found before its body is read
        using var body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        timeout.CancelAfter(limits.Value.TimeoutMs);
        IReadOnlyList<Engine.Tensors.HostTensor?> results;
        try
        {
            var commands = SessionJson.ReadCommands(body.RootElement, limits.Value);
            results = await store.RunAsync(id, caller, (session, ct) => gate.RunAsync(c => session.ExecuteBatch(commands, c), ct), timeout.Token);
        }
        catch (SessionBatchException e)
        {
            var error = ApiError.From(e.Error);
            var facts = new Dictionary<string, object>(error.Facts ?? new Dictionary<string, object>()) { ["command_index"] = e.CommandIndex };
            await ProblemDetailsExceptionHandler.WriteAsync(http, error with { Facts = facts }, problems);
            return;
        }
        http.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(http.Response.Body);
        w.WriteStartObject();
        w.WriteStartArray("results");
        foreach (var r in results)
        {
            w.WriteStartObject();
            if (r is not null)
            {
                w.WritePropertyName("value");
                TensorJson.Write(w, r);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
