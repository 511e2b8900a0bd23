using System.Text.Json;
using static AutogradService.Load.Soak.Numbers;

namespace AutogradService.Load.Soak;

/// <summary>
/// The REST requests: the d2l chapter's cases with random inputs (checked against numbers computed here), the
/// server's limits passed on purpose, and malformed bodies; each expects the contract's code.
/// </summary>
public static class RestCases
{
    public static IEnumerable<Case> All()
    {
        // Valid: every transform, programs and JSON graphs, JSON numbers and base64, a model, a session, NDJSON streaming.
        yield return Case.Valid("rest.gradient.c1", "rest", 10, c => C1Async(c, $"\"program\":{JsonSerializer.Serialize(Fixtures.C1)}"));
        yield return Case.Valid("rest.gradient.c1_graph", "rest", 6, c => C1Async(c, $"\"graph\":{Fixtures.C1GraphJson}"));
        yield return Case.Valid("rest.gradient.c1_model", "rest", 4, c => C1Async(c, $"\"model\":\"{c.Fixtures.ModelName}\""));
        yield return Case.Valid("rest.gradient.e6", "rest", 6, E6Async);
        yield return Case.Valid("rest.gradient.loop", "rest", 4, LoopAsync);
        yield return Case.Valid("rest.jvp", "rest", 5, JvpAsync);
        yield return Case.Valid("rest.jacobian", "rest", 4, JacobianAsync);
        yield return Case.Valid("rest.hessian", "rest", 4, HessianAsync);
        yield return Case.Valid("rest.session", "rest", 5, SessionAsync);
        yield return Case.Valid("rest.gradient.ndjson", "rest", 2, StreamAsync);

        // Over a limit.
        yield return Case.OverLimit("rest.limit.nodes_program", "rest", 1, "invalid_graph",
            c => CodeAsync(c, "/v1/evaluate", c.Fixtures.TooManyNodesProgramRestBody));
        yield return Case.OverLimit("rest.limit.nodes_graph", "rest", 1, "invalid_graph",
            c => CodeAsync(c, "/v1/evaluate", c.Fixtures.TooManyNodesRestBody));
        yield return Case.OverLimit("rest.limit.tensor_elements", "rest", 3, "invalid_tensor", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"y = sum(x)\",\"inputs\":{{\"x\":{{\"shape\":[{4100 + c.Rng.Next(1000)},4100],\"b64\":\"\"}}}}}}"));
        yield return Case.OverLimit("rest.limit.shape_elements", "rest", 2, "invalid_graph", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"y = sum(zeros(shape=[{50_000 + c.Rng.Next(1000)},50000]))\"}}"));
        yield return Case.OverLimit("rest.limit.deadline", "rest", 3, Case.DeadlineOrIterationLimit, c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"graph\":{Fixtures.CountingLoopJson()},\"inputs\":{{\"i0\":0,\"n\":1e9}},\"limits\":{{\"timeout_ms\":{1 + c.Rng.Next(3)}}}}}"));
        yield return Case.OverLimit("rest.limit.memory", "rest", 3, "memory_limit_exceeded", c =>
            CodeAsync(c, "/v1/gradient", $"{{\"program\":\"y = 2 * dot(x, x)\",\"inputs\":{{\"x\":{Json(Vector(c.Rng, 1000), c.Rng.Next(2) == 0)}}},\"wrt\":[\"x\"],\"limits\":{{\"memory_bytes\":{64 + c.Rng.Next(1000)}}}}}"));
        yield return Case.OverLimit("rest.limit.iterations", "rest", 2, "iteration_limit_exceeded", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"graph\":{Fixtures.CountingLoopJson(maxIterations: 10)},\"inputs\":{{\"i0\":0,\"n\":{20 + c.Rng.Next(100)}}}}}"));
        yield return Case.OverLimit("rest.limit.session_memory", "rest", 2, "memory_limit_exceeded", SessionMemoryAsync);
        yield return Case.OverLimit("rest.limit.program_nesting", "rest", 1, "invalid_graph", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"{c.Fixtures.DeepParentheses}\",\"inputs\":{{\"x\":1}}}}"));
        yield return Case.OverLimit("rest.limit.json_depth", "rest", 1, "invalid_argument", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"y = x\",\"inputs\":{{\"x\":{new string('[', 200)}1{new string(']', 200)}}}}}"));

        // Malformed.
        yield return Case.Malformed("rest.bad.json", "rest", 3, "invalid_argument", c =>
            CodeAsync(c, "/v1/gradient", Truncated[c.Rng.Next(Truncated.Length)]));
        yield return Case.Malformed("rest.bad.field_type", "rest", 4, "invalid_argument", c =>
            CodeAsync(c, "/v1/gradient", $"{{\"program\":\"y = 2 * dot(x, x)\",\"inputs\":{{\"x\":[1,2]}},{WrongTypes[c.Rng.Next(WrongTypes.Length)]}}}"));
        yield return Case.Malformed("rest.bad.unknown_field", "rest", 1, "invalid_argument", c =>
            CodeAsync(c, "/v1/evaluate", "{\"program\":\"y = x\",\"inputs\":{\"x\":1},\"wrtt\":[\"x\"]}"));
        yield return Case.Malformed("rest.bad.program", "rest", 3, "invalid_graph", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":{JsonSerializer.Serialize(BadPrograms[c.Rng.Next(BadPrograms.Length)])},\"inputs\":{{\"x\":[1,2]}}}}"));
        yield return Case.Malformed("rest.bad.tensor", "rest", 3, "invalid_tensor", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"y = sum(x)\",\"inputs\":{{\"x\":{BadTensors[c.Rng.Next(BadTensors.Length)]}}}}}"));
        yield return Case.Malformed("rest.bad.shape_mismatch", "rest", 2, "shape_mismatch", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"program\":\"y = dot(x, z)\",\"inputs\":{{\"x\":{Json(Vector(c.Rng, 3), false)},\"z\":{Json(Vector(c.Rng, 4), false)}}}}}"));
        yield return Case.Malformed("rest.bad.not_differentiable", "rest", 1, "not_differentiable", c =>
            CodeAsync(c, "/v1/gradient", "{\"program\":\"y = sum(k * 2)\",\"inputs\":{\"k\":{\"dtype\":\"int64\",\"shape\":[2],\"data\":[1,2]}},\"wrt\":[\"k\"]}"));
        yield return Case.Malformed("rest.bad.unknown_model", "rest", 1, "not_found", c =>
            CodeAsync(c, "/v1/evaluate", $"{{\"model\":\"no-such-model-{c.Rng.Next()}\",\"inputs\":{{\"x\":[1]}}}}"));
        yield return Case.Malformed("rest.bad.unknown_session", "rest", 1, "not_found", c =>
            CodeAsync(c, $"/v1/sessions/no-such-session-{c.Rng.Next()}/commands", "{\"commands\":[{\"fetch\":{\"name\":\"x\"}}]}"));
        yield return Case.Malformed("rest.bad.backward_twice", "rest", 2, "graph_freed", BackwardTwiceAsync);
        yield return Case.Malformed("rest.bad.session_command", "rest", 1, "invalid_argument", BadCommandAsync);
        yield return Case.Malformed("rest.bad.device", "rest", 1, "device_unavailable", c =>
            CodeAsync(c, "/v1/evaluate", "{\"program\":\"y = x\",\"inputs\":{\"x\":1},\"device\":\"gpu\"}"));
        yield return Case.Malformed("rest.bad.utf8", "rest", 1, "invalid_argument", c =>
            CodeAsync(c, "/v1/evaluate", [.. Utf8("{\"program\":\"y = x"), 0xff, 0xfe, .. Utf8("\",\"inputs\":{\"x\":1}}")]));
        yield return Case.Malformed("rest.bad.session_options", "rest", 1, "invalid_argument", c =>
            CodeAsync(c, "/v1/sessions", SessionOptionTypes[c.Rng.Next(SessionOptionTypes.Length)]));
        yield return Case.Malformed("rest.bad.session_body", "rest", 1, "invalid_argument", SessionBodyAsync);
        yield return Case.Malformed("rest.bad.model_body", "rest", 1, "invalid_argument", async c =>
        {
            using var a = await c.SendAsync(HttpMethod.Put, $"/v1/models/load-bad-{c.Rng.Next()}", Utf8("{\"program\":5}"), "application/json");
            return new Outcome(a.Code, 1, Detail: DetailOf(a));
        });
        yield return Case.Malformed("rest.bad.content_type", "rest", 1, "unsupported_media_type", async c =>
        {
            using var a = await c.SendAsync(HttpMethod.Post, "/v1/evaluate", Utf8("{\"program\":\"y = x\",\"inputs\":{\"x\":1}}"), c.Rng.Next(2) == 0 ? null : "text/plain");
            return new Outcome(a.Code, 1, Detail: DetailOf(a));
        });
    }

    private static readonly string[] Truncated =
    [
        "{\"program\":\"y = 2 * dot(x, x)\",\"inputs\":{\"x\":[1,2]",
        "{\"program\":\"y = x\",,}",
        "not json at all",
        "{\"program\":'y = x'}",
        "",
    ];

    // Fields of the wrong type or range; each must be refused naming the field (the issue's list of former 500s).
    private static readonly string[] WrongTypes =
    [
        "\"wrt\":[5]", "\"wrt\":5", "\"limits\":5", "\"device\":5", "\"outputs\":{}", "\"limits\":{\"timeout_ms\":\"x\"}",
        "\"limits\":{\"memory_bytes\":-1}", "\"limits\":{\"timeout_ms\":0.5}", "\"seeds\":[1]", "\"intermediates\":true",
        "\"tensor_encoding\":5", "\"tensor_encoding\":\"hex\"", "\"mode\":\"sideways\"",
    ];

    private static readonly string[] BadPrograms =
    [
        "y = 2 * dot(x, x", "y = foo(x)", "y = x +", "= x", "y = sum(x, axes=[0, keepdims=true)", "y = x ** ** 2", "y = )",
    ];

    private static readonly string[] BadTensors =
    [
        "[[1,2],[3]]", "{\"shape\":[2],\"b64\":\"!!!\"}", "{\"shape\":[3],\"data\":[1,2]}", "{\"dtype\":\"float17\",\"data\":[1]}",
        "{\"dtype\":5,\"data\":[1]}", "{\"shape\":[-2],\"data\":[]}", "[1,\"two\"]", "{\"shape\":[2],\"b64\":\"AAAA\"}",
    ];

    private static readonly string[] SessionOptionTypes =
    [
        "{\"memory_bytes\":\"x\"}", "{\"gradient_mode\":5}", "{\"strict_scalar_seed\":\"yes\"}", "{\"idle_timeout_ms\":[]}",
    ];

    public static string? DetailOf(CaseContext.RestAnswer a) =>
        a.Body.ValueKind == JsonValueKind.Object && a.Body.TryGetProperty("detail", out var d) ? d.ToString() : null;

    private static Task<Outcome> CodeAsync(CaseContext c, string path, string body) => CodeAsync(c, path, Utf8(body));

    private static async Task<Outcome> CodeAsync(CaseContext c, string path, byte[] body)
    {
        using var a = await c.SendAsync(HttpMethod.Post, path, body, "application/json");
        return new Outcome(a.Code, 1, Detail: DetailOf(a));
    }

    /// <summary>Posts a body expected to succeed and checks its answer; an unreadable answer is a wrong answer.</summary>
    private static async Task<Outcome> CheckAsync(CaseContext c, string path, string body, Func<JsonElement, string?> check)
    {
        using var a = await c.PostAsync(path, body);
        if (!a.Ok) return new Outcome(a.Code, 1, Detail: DetailOf(a));
        return new Outcome("ok", 1, Guard(() => check(a.Body)));
    }

    public static string? Guard(Func<string?> check)
    {
        try
        {
            return check();
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException or NullReferenceException)
        {
            return $"unreadable answer: {e.Message}";
        }
    }

    private static double[] T(JsonElement body, string group, string name) => FromJson(body.GetProperty(group).GetProperty(name));

    private static string Encoding(CaseContext c) => c.Rng.Next(2) == 0 ? "" : ",\"tensor_encoding\":\"b64\"";

    private static Task<Outcome> C1Async(CaseContext c, string source)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var body = $"{{{source},\"inputs\":{{\"x\":{Json(x, c.Rng.Next(2) == 0)}}},\"wrt\":[\"x\"]{Encoding(c)}}}";
        return CheckAsync(c, "/v1/gradient", body, r => First(
            Compare("y", T(r, "outputs", "y"), [2 * x.Sum(v => v * v)]),
            Compare("dy/dx", T(r, "gradients", "x"), Map(x, v => 4 * v))));
    }

    private static Task<Outcome> E6Async(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8), away: 0.1);
        var body = $"{{\"program\":{JsonSerializer.Serialize(Fixtures.E6)},\"inputs\":{{\"x\":{Json(x, c.Rng.Next(2) == 0, "float64")}}},\"wrt\":[\"x\"]{Encoding(c)}}}";
        return CheckAsync(c, "/v1/gradient", body, r => First(
            Compare("f", T(r, "outputs", "f"), Map(x, v => Math.Log(v * v) * Math.Sin(v) + 1 / v), 1e-9),
            Compare("f'", T(r, "gradients", "x"), Map(x, v => 2 * Math.Sin(v) / v + Math.Log(v * v) * Math.Cos(v) - 1 / (v * v)), 1e-9)));
    }

    private static Task<Outcome> LoopAsync(CaseContext c)
    {
        int n = 1 + c.Rng.Next(50);
        var body = $"{{\"graph\":{Fixtures.CountingLoopJson()},\"inputs\":{{\"i0\":0,\"n\":{n}}},\"wrt\":[\"i0\"]}}";
        return CheckAsync(c, "/v1/gradient", body, r => First(
            Compare("i", T(r, "outputs", "i"), [n]),
            Compare("di/di0", T(r, "gradients", "i0"), [1])));
    }

    private static Task<Outcome> JvpAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var t = Vector(c.Rng, x.Length);
        var body = $"{{\"program\":\"y = sin(x) * x\",\"inputs\":{{\"x\":{Json(x, c.Rng.Next(2) == 0)}}},\"tangents\":{{\"x\":{Json(t, c.Rng.Next(2) == 0)}}}{Encoding(c)}}}";
        return CheckAsync(c, "/v1/jvp", body, r => First(
            Compare("y", T(r, "outputs", "y"), Map(x, v => Math.Sin(v) * v)),
            Compare("tangent", T(r, "tangents_out", "y"), x.Select((v, i) => (Math.Cos(v) * v + Math.Sin(v)) * t[i]).ToArray())));
    }

    private static Task<Outcome> JacobianAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        var mode = new[] { "auto", "forward", "reverse" }[c.Rng.Next(3)];
        var body = $"{{\"program\":\"y = x * x\",\"inputs\":{{\"x\":{Json(x, false)}}},\"wrt\":[\"x\"],\"mode\":\"{mode}\"}}";
        return CheckAsync(c, "/v1/jacobian", body, r =>
            Compare("dy/dx", FromJson(r.GetProperty("jacobians").GetProperty("y").GetProperty("x")), Diagonal(Map(x, v => 2 * v))));
    }

    private static Task<Outcome> HessianAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        const string program = "\"program\":\"y = sum(x * x * x)\"";
        if (c.Rng.Next(2) == 0)
        {
            return CheckAsync(c, "/v1/hessian", $"{{{program},\"inputs\":{{\"x\":{Json(x, false)}}},\"wrt\":[\"x\"]}}", r =>
                Compare("d2y/dx2", FromJson(r.GetProperty("hessians").GetProperty("x").GetProperty("x")), Diagonal(Map(x, v => 6 * v))));
        }
        var v = Vector(c.Rng, x.Length);
        return CheckAsync(c, "/v1/hessian", $"{{{program},\"inputs\":{{\"x\":{Json(x, false)}}},\"wrt\":[\"x\"],\"vector\":{{\"x\":{Json(v, false)}}}}}", r =>
            Compare("hvp", T(r, "hvp", "x"), x.Select((xi, i) => 6 * xi * v[i]).ToArray()));
    }

    /// <summary>C1 then C2 in a session: 4x, then sum(x)'s gradient accumulated (4x + 1) or overwritten (1).</summary>
    private static async Task<Outcome> SessionAsync(CaseContext c)
    {
        bool accumulate = c.Rng.Next(2) == 0;
        var x = Vector(c.Rng, 1 + c.Rng.Next(8));
        return await InSessionAsync(c, $"{{\"gradient_mode\":\"{(accumulate ? "accumulate" : "overwrite")}\"}}", async id =>
        {
            var path = $"/v1/sessions/{id}/commands";
            using (var a = await c.PostAsync(path,
                $"{{\"commands\":[{{\"variable\":{{\"name\":\"x\",\"value\":{Json(x, c.Rng.Next(2) == 0)}}}}},{{\"apply\":{{\"program\":\"y = 2 * dot(x, x)\"}}}}," +
                "{\"backward\":{\"output\":\"y\"}},{\"grad\":{\"name\":\"x\"}}]}"))
            {
                if (!a.Ok) return new Outcome(a.Code, 1, Detail: DetailOf(a));
                if (Guard(() => Compare("grad", FromJson(a.Body.GetProperty("results")[3].GetProperty("value")), Map(x, v => 4 * v))) is { } wrong)
                    return new Outcome("ok", 1, wrong);
            }
            using var b = await c.PostAsync(path,
                "{\"commands\":[{\"apply\":{\"program\":\"y = sum(x)\"}},{\"backward\":{\"output\":\"y\"}},{\"grad\":{\"name\":\"x\"}},{\"fetch\":{\"name\":\"y\"}}]}");
            if (!b.Ok) return new Outcome(b.Code, 2, Detail: DetailOf(b));
            return new Outcome("ok", 2, Guard(() => First(
                Compare("grad after C2", FromJson(b.Body.GetProperty("results")[2].GetProperty("value")), Map(x, v => accumulate ? 4 * v + 1 : 1)),
                Compare("sum", FromJson(b.Body.GetProperty("results")[3].GetProperty("value")), [x.Sum()]))));
        });
    }

    /// <summary>A session-open body that is not an object must be refused; a session opened anyway is closed again so it holds no slot.</summary>
    private static async Task<Outcome> SessionBodyAsync(CaseContext c)
    {
        using var a = await c.PostAsync("/v1/sessions", NotObjects[c.Rng.Next(NotObjects.Length)]);
        if (a.Status != 201) return new Outcome(a.Code, 1, Detail: DetailOf(a));
        using var close = await c.SendAsync(HttpMethod.Delete, $"/v1/sessions/{a.Body.GetProperty("id").GetString()}", null, null);
        return new Outcome("created_201", 2, Detail: "a session was opened for a body that is not an object");
    }

    private static readonly string[] NotObjects = ["[1]", "5", "\"accumulate\"", "null"];

    private static Task<Outcome> SessionMemoryAsync(CaseContext c) =>
        InSessionAsync(c, "{\"memory_bytes\":4096}", async id =>
        {
            using var a = await c.PostAsync($"/v1/sessions/{id}/commands",
                $"{{\"commands\":[{{\"variable\":{{\"name\":\"x\",\"value\":{Json(Vector(c.Rng, 2048 + c.Rng.Next(2048)), true)}}}}}]}}");
            return new Outcome(a.Code, 1, Detail: DetailOf(a));
        });

    private static Task<Outcome> BackwardTwiceAsync(CaseContext c) =>
        InSessionAsync(c, "{}", async id =>
        {
            using var a = await c.PostAsync($"/v1/sessions/{id}/commands",
                $"{{\"commands\":[{{\"variable\":{{\"name\":\"x\",\"value\":{Json(Vector(c.Rng, 4), false)}}}}},{{\"apply\":{{\"program\":\"y = 2 * dot(x, x)\"}}}}," +
                "{\"backward\":{\"output\":\"y\"}},{\"backward\":{\"output\":\"y\"}}]}");
            return new Outcome(a.Code, 1, Detail: DetailOf(a));
        });

    private static Task<Outcome> BadCommandAsync(CaseContext c) =>
        InSessionAsync(c, "{}", async id =>
        {
            using var a = await c.PostAsync($"/v1/sessions/{id}/commands", "{\"commands\":[{\"variable\":{\"name\":5,\"value\":1}}]}");
            return new Outcome(a.Code, 1, Detail: DetailOf(a));
        });

    /// <summary>Opens a session, runs <paramref name="body"/>, and always closes it; open and close must answer 201 and 204.</summary>
    private static async Task<Outcome> InSessionAsync(CaseContext c, string options, Func<string, Task<Outcome>> body)
    {
        string id;
        using (var open = await c.PostAsync("/v1/sessions", options))
        {
            if (open.Status != 201) return new Outcome(open.Code == "ok" ? $"open:http_{open.Status}" : open.Code, 1, Detail: DetailOf(open));
            id = open.Body.GetProperty("id").GetString()!;
        }
        Outcome outcome;
        try
        {
            outcome = await body(id);
        }
        catch
        {
            // Still close it, so a failed run does not hold one of the server's session slots until it expires.
            (await c.SendAsync(HttpMethod.Delete, $"/v1/sessions/{id}", null, null)).Dispose();
            throw;
        }
        using var close = await c.SendAsync(HttpMethod.Delete, $"/v1/sessions/{id}", null, null);
        if (close.Status != 204) return new Outcome($"close:{close.Code}", outcome.Requests + 2, Detail: DetailOf(close));
        return outcome with { Requests = outcome.Requests + 2 };
    }

    /// <summary>C1 as NDJSON: outputs, then the gradient, then stats, one JSON object a line.</summary>
    private static async Task<Outcome> StreamAsync(CaseContext c)
    {
        var x = Vector(c.Rng, 1 + c.Rng.Next(16));
        var body = $"{{\"program\":\"y = 2 * dot(x, x)\",\"inputs\":{{\"x\":{Json(x, false)}}},\"wrt\":[\"x\"]}}";
        var (status, text) = await c.PostNdJsonAsync("/v1/gradient", body);
        if (status != 200) return new Outcome(Contract.RestCode(status, TryCode(text)), 1, Detail: text.Length > 200 ? text[..200] : text);
        return new Outcome("ok", 1, Guard(() =>
        {
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var y = lines.Single(l => l.TryGetProperty("name", out var n) && n.GetString() == "y");
            var g = lines.Single(l => l.TryGetProperty("name", out var n) && n.GetString() == "x");
            return First(
                Compare("y", FromJson(y), [2 * x.Sum(v => v * v)]),
                Compare("dy/dx", FromJson(g), Map(x, v => 4 * v)),
                lines[^1].TryGetProperty("stats", out _) ? null : "the last line is not stats");
        }));
    }

    private static string? TryCode(string text)
    {
        try
        {
            using var d = JsonDocument.Parse(text);
            return d.RootElement.TryGetProperty("code", out var code) ? code.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
