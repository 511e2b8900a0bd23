using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>Inspect's input types (a tensor, or just <c>{dtype, shape}</c>) and its report.</summary>
public static class InspectJson
{
    internal static readonly HashSet<string> TypeFields = ["dtype", "shape"];

    public static TensorType ReadType(JsonElement json, string name, long maxElements)
    {
        if (json.ValueKind == JsonValueKind.Object && !json.TryGetProperty("data", out _) && !json.TryGetProperty("b64", out _))
        {
            // Just {dtype, shape}: the shape is checked like any tensor's, though no data will be allocated.
            var path = $"inputs.{Engine.EngineException.Clip(name)}";
            JsonFields.ExpectObject(json, path, TypeFields);
            var dtype = JsonFields.String(json, "dtype", path) is { } d ? DTypes.Parse(d) : DType.Float32;
            var dims = new List<long>();
            if (JsonFields.Get(json, "shape") is { } s)
            {
                if (s.ValueKind != JsonValueKind.Array) throw JsonFields.WrongType($"{path}.shape", "a list of dimensions", s);
                foreach (var e in s.EnumerateArray()) dims.Add(JsonFields.AsInteger(e, $"{path}.shape", 0, int.MaxValue));
            }
            // Only a type: nothing is allocated, so it may describe inputs larger than a request could send.
            return new TensorType(Shape.FromLongs(dims.ToArray(), $"the shape of '{path}'"), dtype);
        }
        return TensorJson.Read(json, name, maxElements).Type;
    }

    public static void Write(Utf8JsonWriter w, InspectReport report)
    {
        var plan = report.Plan;
        w.WriteStartObject();
        w.WriteBoolean("valid", true);
        w.WriteStartObject("values");
        foreach (var (name, type) in plan.ValueTypes)
        {
            w.WriteStartObject(name);
            w.WriteString("dtype", type.DType?.WireName());
            if (type.Dims is { } dims)
            {
                w.WriteStartArray("shape");
                foreach (var d in dims) w.WriteNumberValue(d);
                w.WriteEndArray();
            }
            else
            {
                w.WriteNull("shape");
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteNumber("flops", plan.Estimates.Flops);
        w.WriteNumber("peak_bytes", plan.Estimates.PeakBytes);
        w.WriteBoolean("peak_bytes_exact", plan.Estimates.Complete);
        if (plan.Estimates.Caveat is { } caveat) w.WriteString("peak_bytes_caveat", caveat);
        w.WriteNumber("node_count", plan.NodeCount);
        w.WriteString("dot", report.Dot);
        w.WriteString("mermaid", report.Mermaid);
        w.WriteEndObject();
    }
}
