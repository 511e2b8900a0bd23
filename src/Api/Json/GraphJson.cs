using System.Text.Json;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>
/// Graphs in JSON: <c>{inputs: [{name, dtype, shape}], nodes: [{op, inputs, outputs, attrs, name}], outputs, constants}</c>.
/// A number literal among a node's inputs is a weakly typed literal (<see cref="GraphLiterals"/>), as in programs.
/// </summary>
public static class GraphJson
{
    public static Graph Read(JsonElement json, int depth = 0)
    {
        if (json.ValueKind != JsonValueKind.Object) throw Invalid("a graph must be a JSON object");
        if (depth > 16) throw Invalid("subgraphs are nested more than 16 deep");

        var inputs = new List<Parameter>();
        if (json.TryGetProperty("inputs", out var ins))
        {
            foreach (var p in Array(ins, "inputs"))
            {
                var name = p.ValueKind == JsonValueKind.String ? p.GetString()! : RequiredString(p, "name", "graph input");
                var dtype = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("dtype", out var d) ? DTypes.Parse(d.GetString() ?? "") : DType.Float32;
                IReadOnlyList<int>? shape = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("shape", out var s) && s.ValueKind == JsonValueKind.Array
                    ? s.EnumerateArray().Select(e => e.TryGetInt32(out int v) && v >= -1 ? v : throw Invalid($"bad dimension {e.GetRawText()} in input '{name}'")).ToArray()
                    : null;
                // any_dtype: the input takes whatever dtype it is given (program inputs); kept so stored models keep it.
                bool anyDType = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("any_dtype", out var any) && any.ValueKind == JsonValueKind.True;
                inputs.Add(new Parameter(name, dtype, shape) { AnyDType = anyDType });
            }
        }

        var constants = new Dictionary<string, HostTensor>();
        if (json.TryGetProperty("constants", out var cs))
        {
            if (cs.ValueKind != JsonValueKind.Object) throw Invalid("constants must be an object of name: tensor");
            foreach (var c in cs.EnumerateObject()) constants[c.Name] = TensorJson.Read(c.Value, c.Name);
        }

        var nodes = new List<Node>();
        if (json.TryGetProperty("nodes", out var ns))
        {
            foreach (var n in Array(ns, "nodes"))
            {
                if (n.ValueKind != JsonValueKind.Object) throw Invalid("each node must be an object");
                var op = RequiredString(n, "op", "node");
                var nodeInputs = new List<string>();
                if (n.TryGetProperty("inputs", out var ni))
                {
                    foreach (var i in Array(ni, "node inputs"))
                    {
                        if (i.ValueKind == JsonValueKind.String)
                        {
                            nodeInputs.Add(i.GetString()!);
                            continue;
                        }
                        if (i.ValueKind != JsonValueKind.Number) throw Invalid($"node '{op}': an input must be a value name or a number");
                        // A literal, weakly typed as in programs: x * 0.1 stays exact in float64, n + 1 stays int64.
                        nodeInputs.Add(GraphLiterals.Format(i.GetDouble()));
                    }
                }
                var outputs = n.TryGetProperty("outputs", out var no)
                    ? Array(no, "node outputs").Select(o => o.GetString() ?? throw Invalid("node outputs must be strings")).ToList()
                    : n.TryGetProperty("output", out var single) ? [single.GetString() ?? throw Invalid("node output must be a string")] : [];
                var attrs = n.TryGetProperty("attrs", out var a) ? ReadAttributes(a, depth) : Attributes.Empty;
                var nodeName = n.TryGetProperty("name", out var nn) ? nn.GetString() : null;
                nodes.Add(new Node(op, nodeInputs, outputs, attrs, nodeName));
            }
        }

        var graphOutputs = json.TryGetProperty("outputs", out var os)
            ? Array(os, "outputs").Select(o => o.GetString() ?? throw Invalid("graph outputs must be strings")).ToList()
            : [];
        return new Graph(inputs, nodes, graphOutputs, constants);
    }

    public static Attributes ReadAttributes(JsonElement json, int depth = 0)
    {
        if (json.ValueKind != JsonValueKind.Object) throw Invalid("attrs must be an object");
        var values = new List<KeyValuePair<string, AttrValue>>();
        foreach (var p in json.EnumerateObject()) values.Add(KeyValuePair.Create(p.Name, ReadAttribute(p.Name, p.Value, depth)));
        return new Attributes(values);
    }

    private static AttrValue ReadAttribute(string name, JsonElement v, int depth)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.True: return AttrValue.Bool(true);
            case JsonValueKind.False: return AttrValue.Bool(false);
            case JsonValueKind.String:
                return v.GetString() switch
                {
                    "Infinity" or "inf" => AttrValue.Float(double.PositiveInfinity),
                    "-Infinity" or "-inf" => AttrValue.Float(double.NegativeInfinity),
                    var s => AttrValue.String(s!),
                };
            case JsonValueKind.Number:
                return IsIntegerToken(v) && v.TryGetInt64(out long l) ? AttrValue.Int(l) : AttrValue.Float(v.GetDouble());
            case JsonValueKind.Array:
                var items = v.EnumerateArray().ToArray();
                if (items.All(i => i.ValueKind == JsonValueKind.Number && IsIntegerToken(i) && i.TryGetInt64(out _)))
                    return AttrValue.Ints(items.Select(i => i.GetInt64()).ToArray());
                if (items.All(i => i.ValueKind == JsonValueKind.Number))
                    return AttrValue.Floats(items.Select(i => i.GetDouble()).ToArray());
                throw Invalid($"attribute '{name}': a list must hold only numbers");
            case JsonValueKind.Object:
                if (v.TryGetProperty("nodes", out _) || v.TryGetProperty("outputs", out _)) return AttrValue.Graph(Read(v, depth + 1));
                return AttrValue.Tensor(TensorJson.Read(v, name));
            default:
                throw Invalid($"attribute '{name}' has no value");
        }
    }

    private static bool IsIntegerToken(JsonElement v)
    {
        var raw = v.GetRawText();
        return raw.IndexOfAny(['.', 'e', 'E']) < 0;
    }

    /// <summary>Writes a graph in the same JSON form <see cref="Read"/> accepts (used by the model repository).</summary>
    public static void Write(Utf8JsonWriter w, Graph g)
    {
        w.WriteStartObject();
        w.WriteStartArray("inputs");
        foreach (var p in g.Inputs)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteString("dtype", p.DType.WireName());
            if (p.AnyDType) w.WriteBoolean("any_dtype", true);
            if (p.Shape is { } shape)
            {
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("nodes");
        foreach (var n in g.Nodes)
        {
            w.WriteStartObject();
            w.WriteString("op", n.Op);
            if (n.Name is not null) w.WriteString("name", n.Name);
            w.WriteStartArray("inputs");
            foreach (var i in n.Inputs) w.WriteStringValue(i);
            w.WriteEndArray();
            w.WriteStartArray("outputs");
            foreach (var o in n.Outputs) w.WriteStringValue(o);
            w.WriteEndArray();
            w.WriteStartObject("attrs");
            foreach (var (k, v) in n.Attributes)
            {
                w.WritePropertyName(k);
                WriteAttribute(w, v);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("outputs");
        foreach (var o in g.Outputs) w.WriteStringValue(o);
        w.WriteEndArray();
        w.WriteStartObject("constants");
        foreach (var (k, v) in g.ConstantValues)
        {
            w.WritePropertyName(k);
            TensorJson.Write(w, v, base64: true);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteAttribute(Utf8JsonWriter w, AttrValue v)
    {
        switch (v.Value)
        {
            case long l: w.WriteNumberValue(l); break;
            case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
            case double d: w.WriteStringValue(d > 0 ? "Infinity" : d < 0 ? "-Infinity" : "NaN"); break;
            case bool b: w.WriteBooleanValue(b); break;
            case string s: w.WriteStringValue(s); break;
            case long[] ls: w.WriteStartArray(); foreach (var x in ls) w.WriteNumberValue(x); w.WriteEndArray(); break;
            case double[] ds: w.WriteStartArray(); foreach (var x in ds) w.WriteNumberValue(x); w.WriteEndArray(); break;
            case HostTensor t: TensorJson.Write(w, t, base64: true); break;
            case Graph g: Write(w, g); break;
        }
    }

    private static JsonElement.ArrayEnumerator Array(JsonElement e, string what) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : throw Invalid($"{what} must be an array");

    private static string RequiredString(JsonElement e, string property, string what) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Invalid($"{what} needs a string '{property}'");

    private static EngineException Invalid(string message) => EngineException.InvalidGraph(message);
}
