using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json;
using AutogradService.Contracts.V1;

namespace AutogradService.Container.Tests;

/// <summary>Small helpers for the REST JSON and protobuf tensors the tests read.</summary>
public static class Wire
{
    /// <summary>Case C1 of the chapter: y = 2 * dot(x, x) at x = [0, 1, 2, 3] is 28 with gradient [0, 4, 8, 12].</summary>
    public const string C1Program = "y = 2 * dot(x, x)";

    public static readonly float[] C1Input = [0, 1, 2, 3];

    public static async Task<(int Status, JsonElement Body)> PostAsync(HttpClient http, string path, object body, CancellationToken ct = default)
    {
        using var response = await http.PostAsJsonAsync(path, body, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        using var doc = JsonDocument.Parse(text.Length == 0 ? "{}" : text);
        return ((int)response.StatusCode, doc.RootElement.Clone());
    }

    public static double[] Data(JsonElement tensor) => tensor.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();

    public static Tensor Floats(params float[] values)
    {
        var t = new Tensor { Dtype = DType.Float32 };
        t.Shape.Add(values.Length);
        t.FloatData.Add(values);
        return t;
    }

    public static float[] Floats(Tensor t) =>
        t.FloatData.Count > 0 || t.Raw.IsEmpty ? t.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(t.Raw.Span).ToArray();
}
