using System.IO.Pipelines;
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
    private static readonly string[] CommonFields =
        ["graph", "program", "model", "inputs", "outputs", "limits", "device", "tensor_encoding", "detect_anomaly", "strict_inputs", "parameters", "allow_tf32"];

    /// <summary>
    /// The fields each transform reads; any other is refused by name (a field meant for another transform, such as
    /// <c>tangents</c> sent to gradient, would otherwise be silently ignored). The OpenAPI schemas list the same.
    /// </summary>
    public static readonly IReadOnlyDictionary<TransformKind, HashSet<string>> RequestFields = new Dictionary<TransformKind, HashSet<string>>
    {
        [TransformKind.Evaluate] = [.. CommonFields],
        [TransformKind.Gradient] = [.. CommonFields, "wrt", "seeds", "intermediates"],
        [TransformKind.Jvp] = [.. CommonFields, "tangents"],
        [TransformKind.Jacobian] = [.. CommonFields, "wrt", "mode"],
        [TransformKind.Hessian] = [.. CommonFields, "wrt", "vector"],
    };

    internal static readonly HashSet<string> LimitFields = ["memory_bytes", "timeout_ms"];

    private static readonly HashSet<string> ParameterFields = [BinaryDataOutput];

    /// <summary>The request parameter (binary tensor extension) asking for the answer's tensors as binary data.</summary>
    public const string BinaryDataOutput = "binary_data_output";

    /// <summary>A transform's body, every field checked for type and range (errors name the field); unknown fields are refused.</summary>
    /// <summary>The tensor maps of a transform's body, read straight from its bytes (<see cref="JsonBody.Tensors"/>).</summary>
    public static TensorFieldsToRead TensorFields(LimitsOptions limits) => new(TensorMaps, limits.MaxTensorElements);

    private static readonly HashSet<string> TensorMaps = ["inputs", "seeds", "tangents", "vector"];

    /// <summary>Reads a transform's body; its tensor maps come from <see cref="JsonBody.Tensors"/> where it has them.</summary>
    public static TransformRequest ReadRequest(TransformKind kind, JsonBody body, LimitsOptions limits) =>
        ReadRequest(kind, body.RootElement, limits, body.Tensors);

    public static TransformRequest ReadRequest(TransformKind kind, JsonElement body, LimitsOptions limits,
        IReadOnlyDictionary<string, Dictionary<string, HostTensor>>? read = null)
    {
        JsonFields.ExpectObject(body, "", RequestFields[kind]);
        long? memoryBytes = null, timeoutMs = null;
        if (JsonFields.Object(body, "limits", "") is { } requested)
        {
            // A request may only lower the server's limits: larger values are capped by the service, not refused.
            JsonFields.ExpectObject(requested, "limits", LimitFields);
            memoryBytes = JsonFields.Integer(requested, "memory_bytes", "limits", min: 1);
            timeoutMs = JsonFields.Integer(requested, "timeout_ms", "limits", min: 1);
        }
        if (JsonFields.Object(body, "parameters", "") is { } parameters)
        {
            JsonFields.ExpectObject(parameters, "parameters", ParameterFields);
            JsonFields.Bool(parameters, BinaryDataOutput, "parameters");
        }
        long maxElements = limits.MaxTensorElements;
        return new TransformRequest
        {
            Kind = kind,
            Source = ReadSource(body, limits.Graph()),
            Inputs = Tensors(body, "inputs", maxElements, read) ?? new Dictionary<string, HostTensor>(),
            Outputs = JsonFields.Names(body, "outputs", ""),
            MemoryBytes = memoryBytes,
            TimeoutMs = timeoutMs is { } ms ? (int)Math.Min(ms, int.MaxValue) : null,
            Device = JsonFields.String(body, "device", ""),
            Wrt = JsonFields.Names(body, "wrt", ""),
            Seeds = Tensors(body, "seeds", maxElements, read),
            Intermediates = JsonFields.Names(body, "intermediates", ""),
            Tangents = Tensors(body, "tangents", maxElements, read),
            Mode = ParseMode(JsonFields.String(body, "mode", "")),
            Vector = Tensors(body, "vector", maxElements, read),
            DetectAnomaly = JsonFields.Bool(body, "detect_anomaly", "") ?? false,
            AllowTf32 = JsonFields.Bool(body, "allow_tf32", "") ?? false,
        };
    }

    /// <summary>Whether the body asks for tensors in base64 (<c>"tensor_encoding": "b64"</c>; the default is JSON numbers).</summary>
    public static bool WantsBase64(JsonElement body) => JsonFields.String(body, "tensor_encoding", "") switch
    {
        null or "json" => false,
        "b64" or "base64" => true,
        var other => throw JsonFields.Invalid("tensor_encoding", $"must be json or b64, got '{Clip(other)}'"),
    };

    /// <summary>Whether the body asks for a framed answer (<c>"parameters": {"binary_data_output": true}</c>).</summary>
    public static bool WantsBinary(JsonElement body) =>
        JsonFields.Object(body, "parameters", "") is { } p && JsonFields.Bool(p, BinaryDataOutput, "parameters") == true;

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

    private static Dictionary<string, HostTensor>? Tensors(JsonElement body, string property, long maxElements,
        IReadOnlyDictionary<string, Dictionary<string, HostTensor>>? read)
    {
        if (JsonFields.Object(body, property, "") is not { } e) return null;
        if (read is not null && read.TryGetValue(property, out var already)) return already;
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) result[p.Name] = TensorJson.Read(p.Value, p.Name, maxElements);
        return result;
    }

    /// <summary>A list of names (a string or an array of strings), or null when absent.</summary>
    public static List<string>? Strings(JsonElement body, string property) => JsonFields.Names(body, property, "");

    private static string Clip(string s) => EngineException.Clip(s);

    public static void WriteResult(Utf8JsonWriter w, TransformResult r, bool base64)
    {
        foreach (var _ in WriteResultSteps(w, r, TensorWriter(base64))) { }
    }

    /// <summary>Writes the result with each tensor written by <paramref name="writeTensor"/> (e.g. a binary answer's header entries).</summary>
    public static void WriteResult(Utf8JsonWriter w, TransformResult r, Action<Utf8JsonWriter, HostTensor> writeTensor)
    {
        foreach (var _ in WriteResultSteps(w, r, writeTensor)) { }
    }

    private static Action<Utf8JsonWriter, HostTensor> TensorWriter(bool base64) =>
        base64 ? static (w, t) => TensorJson.Write(w, t, base64: true) : static (w, t) => TensorJson.Write(w, t);

    /// <summary>Unflushed bytes past which the response pipe is flushed between tensors.</summary>
    private const int FlushBytes = 64 * 1024;

    /// <summary>
    /// Writes the result straight into the response pipe (the writer formats into the pipe's own pooled memory), and
    /// flushes between tensors once enough is written, so a large answer leaves while the rest is formatted and the
    /// whole answer is never held in one buffer.
    /// </summary>
    public static async Task WriteResultAsync(PipeWriter pipe, TransformResult r, bool base64, CancellationToken cancellation)
    {
        await using var w = new Utf8JsonWriter(pipe);
        long flushed = 0;
        foreach (var _ in WriteResultSteps(w, r, TensorWriter(base64)))
        {
            if (w.BytesCommitted + w.BytesPending - flushed < FlushBytes) continue;
            w.Flush();
            flushed = w.BytesCommitted;
            await pipe.FlushAsync(cancellation);
        }
        w.Flush();
    }

    /// <summary>Writes the result, pausing after each tensor (where a caller may flush).</summary>
    private static IEnumerable<bool> WriteResultSteps(Utf8JsonWriter w, TransformResult r, Action<Utf8JsonWriter, HostTensor> writeTensor)
    {
        w.WriteStartObject();
        foreach (var step in WriteTensors(w, "outputs", r.Outputs, writeTensor)) yield return step;
        if (r.Gradients is not null)
        {
            foreach (var step in WriteTensors(w, "gradients", r.Gradients, writeTensor)) yield return step;
        }
        if (r.Intermediates is not null)
        {
            w.WriteStartObject("intermediates");
            foreach (var (name, (value, adjoint)) in r.Intermediates)
            {
                w.WriteStartObject(name);
                w.WritePropertyName("value");
                writeTensor(w, value);
                yield return true;
                w.WritePropertyName("adjoint");
                writeTensor(w, adjoint);
                yield return true;
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        if (r.TangentsOut is not null)
        {
            foreach (var step in WriteTensors(w, "tangents_out", r.TangentsOut, writeTensor)) yield return step;
        }
        if (r.Jacobians is not null)
        {
            foreach (var step in WriteNested(w, "jacobians", r.Jacobians, writeTensor)) yield return step;
        }
        if (r.ModeUsed is { } mode) w.WriteString("mode_used", ModeName(mode));
        if (r.Hessians is not null)
        {
            foreach (var step in WriteNested(w, "hessians", r.Hessians, writeTensor)) yield return step;
        }
        if (r.Hvp is not null)
        {
            foreach (var step in WriteTensors(w, "hvp", r.Hvp, writeTensor)) yield return step;
        }
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
        w.WriteString("device", s.Device);
        w.WriteEndObject();
    }

    private static IEnumerable<bool> WriteTensors(Utf8JsonWriter w, string property, IReadOnlyDictionary<string, HostTensor> tensors, Action<Utf8JsonWriter, HostTensor> writeTensor)
    {
        w.WriteStartObject(property);
        foreach (var (name, t) in tensors)
        {
            w.WritePropertyName(name);
            writeTensor(w, t);
            yield return true;
        }
        w.WriteEndObject();
    }

    private static IEnumerable<bool> WriteNested(Utf8JsonWriter w, string property, IReadOnlyDictionary<string, IReadOnlyDictionary<string, HostTensor>> nested, Action<Utf8JsonWriter, HostTensor> writeTensor)
    {
        w.WriteStartObject(property);
        foreach (var (name, inner) in nested)
        {
            foreach (var step in WriteTensors(w, name, inner, writeTensor)) yield return step;
        }
        w.WriteEndObject();
    }
}
