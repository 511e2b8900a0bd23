using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>REST bodies of the stateless transforms to <see cref="TransformRequest"/>, and results back to JSON.</summary>
public static class TransformJson
{
    public static TransformRequest ReadRequest(TransformKind kind, JsonElement body, long maxElements)
    {
        if (body.ValueKind != JsonValueKind.Object) throw EngineException.InvalidArgument("the request body must be a JSON object");
        return new TransformRequest
        {
            Kind = kind,
            Source = ReadSource(body),
            Inputs = Tensors(body, "inputs", maxElements) ?? new Dictionary<string, HostTensor>(),
            Outputs = Strings(body, "outputs"),
            MemoryBytes = body.TryGetProperty("limits", out var l) && l.TryGetProperty("memory_bytes", out var m) ? m.GetInt64() : null,
            TimeoutMs = body.TryGetProperty("limits", out var l2) && l2.TryGetProperty("timeout_ms", out var t) ? t.GetInt32() : null,
            Device = body.TryGetProperty("device", out var d) ? d.GetString() : null,
            Wrt = Strings(body, "wrt"),
            Seeds = Tensors(body, "seeds", maxElements),
            Intermediates = Strings(body, "intermediates"),
            Tangents = Tensors(body, "tangents", maxElements),
            Mode = body.TryGetProperty("mode", out var mode) ? ParseMode(mode.GetString()) : JacobianMode.Auto,
            Vector = Tensors(body, "vector", maxElements),
        };
    }

    public static ComputationSource ReadSource(JsonElement body)
    {
        int given = (body.TryGetProperty("graph", out var g) ? 1 : 0) + (body.TryGetProperty("program", out var p) ? 1 : 0)
            + (body.TryGetProperty("model", out var m) ? 1 : 0);
        if (given != 1) throw EngineException.InvalidArgument("give exactly one of graph, program or model");
        if (g.ValueKind != JsonValueKind.Undefined) return new ComputationSource(Graph: GraphJson.Read(g));
        if (p.ValueKind != JsonValueKind.Undefined)
            return new ComputationSource(Program: p.GetString() ?? throw EngineException.InvalidArgument("program must be a string"));
        return new ComputationSource(Model: m.GetString() ?? throw EngineException.InvalidArgument("model must be a string"));
    }

    public static JacobianMode ParseMode(string? mode) => mode?.ToLowerInvariant() switch
    {
        null or "" or "auto" => JacobianMode.Auto,
        "forward" or "fwd" => JacobianMode.Forward,
        "reverse" or "rev" => JacobianMode.Reverse,
        _ => throw EngineException.InvalidArgument($"mode must be auto, forward or reverse, got '{mode}'"),
    };

    public static string ModeName(JacobianMode mode) => mode switch
    {
        JacobianMode.Forward => "forward",
        JacobianMode.Reverse => "reverse",
        _ => "auto",
    };

    private static Dictionary<string, HostTensor>? Tensors(JsonElement body, string property, long maxElements)
    {
        if (!body.TryGetProperty(property, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Object) throw EngineException.InvalidArgument($"{property} must be an object of name: tensor");
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) result[p.Name] = TensorJson.Read(p.Value, p.Name, maxElements);
        return result;
    }

    public static List<string>? Strings(JsonElement body, string property)
    {
        if (!body.TryGetProperty(property, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind == JsonValueKind.String) return [e.GetString()!];
        if (e.ValueKind != JsonValueKind.Array) throw EngineException.InvalidArgument($"{property} must be a list of names");
        return e.EnumerateArray().Select(s => s.GetString() ?? throw EngineException.InvalidArgument($"{property} must be a list of names")).ToList();
    }

    public static void WriteResult(Utf8JsonWriter w, TransformResult r, bool base64)
    {
        w.WriteStartObject();
        WriteTensors(w, "outputs", r.Outputs, base64);
        if (r.Gradients is not null) WriteTensors(w, "gradients", r.Gradients, base64);
        if (r.Intermediates is not null)
        {
            w.WriteStartObject("intermediates");
            foreach (var (name, (value, adjoint)) in r.Intermediates)
            {
                w.WriteStartObject(name);
                w.WritePropertyName("value");
                TensorJson.Write(w, value, base64);
                w.WritePropertyName("adjoint");
                TensorJson.Write(w, adjoint, base64);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        if (r.TangentsOut is not null) WriteTensors(w, "tangents_out", r.TangentsOut, base64);
        if (r.Jacobians is not null) WriteNested(w, "jacobians", r.Jacobians, base64);
        if (r.ModeUsed is { } mode) w.WriteString("mode_used", ModeName(mode));
        if (r.Hessians is not null) WriteNested(w, "hessians", r.Hessians, base64);
        if (r.Hvp is not null) WriteTensors(w, "hvp", r.Hvp, base64);
        w.WritePropertyName("stats");
        WriteStats(w, r.Stats);
        w.WriteEndObject();
    }

    public static void WriteStats(Utf8JsonWriter w, TransformStats s)
    {
        w.WriteStartObject();
        w.WriteNumber("forward_ms", Math.Round(s.ForwardMs, 3));
        w.WriteNumber("backward_ms", Math.Round(s.BackwardMs, 3));
        w.WriteNumber("peak_bytes", s.PeakBytes);
        w.WriteNumber("nodes_executed", s.NodesExecuted);
        w.WriteEndObject();
    }

    private static void WriteTensors(Utf8JsonWriter w, string property, IReadOnlyDictionary<string, HostTensor> tensors, bool base64)
    {
        w.WriteStartObject(property);
        foreach (var (name, t) in tensors)
        {
            w.WritePropertyName(name);
            TensorJson.Write(w, t, base64);
        }
        w.WriteEndObject();
    }

    private static void WriteNested(Utf8JsonWriter w, string property, IReadOnlyDictionary<string, IReadOnlyDictionary<string, HostTensor>> nested, bool base64)
    {
        w.WriteStartObject(property);
        foreach (var (name, inner) in nested) WriteTensors(w, name, inner, base64);
        w.WriteEndObject();
    }
}
