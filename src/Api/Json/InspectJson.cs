using System.Text.Json;
using AutogradService.Api.Execution;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>Inspect's input types (a tensor, or just <c>{dtype, shape}</c>) and its report.</summary>
public static class InspectJson
{
    public static TensorType ReadType(JsonElement json, string name, long maxElements)
    {
        if (json.ValueKind == JsonValueKind.Object && !json.TryGetProperty("data", out _) && !json.TryGetProperty("b64", out _))
        {
            var dtype = json.TryGetProperty("dtype", out var d) ? DTypes.Parse(d.GetString() ?? "") : DType.Float32;
            var dims = json.TryGetProperty("shape", out var s) && s.ValueKind == JsonValueKind.Array
                ? s.EnumerateArray().Select(e => e.GetInt32()).ToArray()
                : [];
            return new TensorType(new Shape(dims), dtype);
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
        w.WriteNumber("node_count", plan.NodeCount);
        w.WriteString("dot", report.Dot);
        w.WriteString("mermaid", report.Mermaid);
        w.WriteEndObject();
    }
}
