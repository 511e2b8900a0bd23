using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>REST bodies of the stateless transforms to <see cref="TransformRequest"/>, and results back to JSON.</summary>
public static class TransformJson
{
    private static readonly HashSet<string> RequestFields =
    [
        "graph", "program", "model", "inputs", "outputs", "limits", "device", "wrt", "seeds", "intermediates", "tangents", "mode",
        "vector", "tensor_encoding", "detect_anomaly", "strict_inputs",
    ];

    private static readonly HashSet<string> LimitFields = ["memory_bytes", "timeout_ms"];

    /// <summary>A transform's body, every field checked for type and range (errors name the field); unknown fields are refused.</summary>
    public static TransformRequest ReadRequest(TransformKind kind, JsonElement body, LimitsOptions limits)
    {
        JsonFields.ExpectObject(body, "", RequestFields);
        long? memoryBytes = null, timeoutMs = null;
        if (JsonFields.Object(body, "limits", "") is { } requested)
        {
            // A request may only lower the server's limits: larger values are capped by the service, not refused.
            JsonFields.ExpectObject(requested, "limits", LimitFields);
            memoryBytes = JsonFields.Integer(requested, "memory_bytes", "limits", min: 1);
            timeoutMs = JsonFields.Integer(requested, "timeout_ms", "limits", min: 1);
        }
        long maxElements = limits.MaxTensorElements;
        return new TransformRequest
        {
            Kind = kind,
            Source = ReadSource(body, limits.Graph()),
            Inputs = Tensors(body, "inputs", maxElements) ?? new Dictionary<string, HostTensor>(),
            Outputs = JsonFields.Names(body, "outputs", ""),
            MemoryBytes = memoryBytes,
            TimeoutMs = timeoutMs is { } ms ? (int)Math.Min(ms, int.MaxValue) : null,
            Device = JsonFields.String(body, "device", ""),
            Wrt = JsonFields.Names(body, "wrt", ""),
            Seeds = Tensors(body, "seeds", maxElements),
            Intermediates = JsonFields.Names(body, "intermediates", ""),
            Tangents = Tensors(body, "tangents", maxElements),
            Mode = ParseMode(JsonFields.String(body, "mode", "")),
            Vector = Tensors(body, "vector", maxElements),
            DetectAnomaly = JsonFields.Bool(body, "detect_anomaly", "") ?? false,
        };
    }

    /// <summary>Whether the body asks for tensors in base64 (<c>"tensor_encoding": "b64"</c>; the default is JSON numbers).</summary>
    public static bool WantsBase64(JsonElement body) => JsonFields.String(body, "tensor_encoding", "") switch
    {
        null or "json" => false,
        "b64" or "base64" => true,
        var other => throw JsonFields.Invalid("tensor_encoding", $"must be json or b64, got '{Clip(other)}'"),
    };

    /// <summary>Exactly one of graph, program or model; graphs are read under <paramref name="limits"/>.</summary>
    public static ComputationSource ReadSource(JsonElement body, GraphLimits limits)
    {
        var graph = JsonFields.Get(body, "graph");
        var program = JsonFields.String(body, "program", "");
        var model = JsonFields.String(body, "model", "");
        int given = (graph is null ? 0 : 1) + (program is null ? 0 : 1) + (model is null ? 0 : 1);
        if (given != 1) throw EngineException.InvalidArgument("give exactly one of graph, program or model");
        if (graph is { } g) return new ComputationSource(Graph: GraphJson.Read(g, limits));
        var strict = JsonFields.Bool(body, "strict_inputs", "") ?? false;
        return program is not null ? new ComputationSource(Program: program) { StrictInputs = strict } : new ComputationSource(Model: model);
    }

    public static JacobianMode ParseMode(string? mode) => mode?.ToLowerInvariant() switch
    {
        null or "" or "auto" => JacobianMode.Auto,
        "forward" or "fwd" => JacobianMode.Forward,
        "reverse" or "rev" => JacobianMode.Reverse,
        _ => throw JsonFields.Invalid("mode", $"must be auto, forward or reverse, got '{Clip(mode)}'"),
    };

    public static string ModeName(JacobianMode mode) => mode switch
    {
        JacobianMode.Forward => "forward",
        JacobianMode.Reverse => "reverse",
        _ => "auto",
    };

    private static Dictionary<string, HostTensor>? Tensors(JsonElement body, string property, long maxElements)
    {
        if (JsonFields.Object(body, property, "") is not { } e) return null;
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) result[p.Name] = TensorJson.Read(p.Value, p.Name, maxElements);
        return result;
    }

    /// <summary>A list of names (a string or an array of strings), or null when absent.</summary>
    public static List<string>? Strings(JsonElement body, string property) => JsonFields.Names(body, property, "");

    private static string Clip(string s) => EngineException.Clip(s);

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
