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
    internal static readonly HashSet<string> GraphFields = ["inputs", "nodes", "outputs", "constants"];
    internal static readonly HashSet<string> InputFields = ["name", "dtype", "shape", "any_dtype"];
    internal static readonly HashSet<string> NodeFields = ["op", "inputs", "outputs", "output", "attrs", "name"];

    /// <summary>Reads a graph, refusing it as soon as it passes a limit (nodes, names, nesting) of <paramref name="limits"/>.</summary>
    public static Graph Read(JsonElement json, GraphLimits? limits = null) => ReadGraph(json, (limits ?? GraphLimits.Default).Guard(), "graph");

    private static Graph ReadGraph(JsonElement json, GraphSizeGuard guard, string path)
    {
        if (json.ValueKind != JsonValueKind.Object) throw Invalid($"{path} must be a JSON object, got {JsonFields.Describe(json)}");
        foreach (var p in json.EnumerateObject())
            if (!GraphFields.Contains(p.Name)) throw Invalid($"'{Clip(p.Name)}' is not a graph field (inputs, nodes, outputs, constants)");

        var inputs = new List<Parameter>();
        if (JsonFields.Get(json, "inputs") is { } ins)
        {
            foreach (var p in Array(ins, $"{path}.inputs"))
            {
                var parameter = ReadInput(p, path);
                guard.Name(parameter.Name);
                inputs.Add(parameter);
            }
        }

        var constants = new Dictionary<string, HostTensor>();
        if (JsonFields.Get(json, "constants") is { } cs)
        {
            if (cs.ValueKind != JsonValueKind.Object) throw Invalid("constants must be an object of name: tensor");
            foreach (var c in cs.EnumerateObject())
            {
                guard.Name(c.Name);
                constants[c.Name] = TensorJson.Read(c.Value, c.Name);
            }
        }

        var nodes = new List<Node>();
        if (JsonFields.Get(json, "nodes") is { } ns)
        {
            foreach (var n in Array(ns, $"{path}.nodes"))
            {
                guard.Node();
                nodes.Add(ReadNode(n, guard, path));
            }
        }

        var graphOutputs = JsonFields.Get(json, "outputs") is { } os ? Strings(os, $"{path}.outputs", guard) : [];
        return new Graph(inputs, nodes, graphOutputs, constants);
    }

    /// <summary>A graph input: a name, or {name, dtype, shape, any_dtype}.</summary>
    private static Parameter ReadInput(JsonElement p, string path)
    {
        if (p.ValueKind == JsonValueKind.String) return new Parameter(p.GetString()!);
        if (p.ValueKind != JsonValueKind.Object) throw Invalid($"a {path} input must be a name or an object {{name, dtype, shape}}, got {JsonFields.Describe(p)}");
        foreach (var f in p.EnumerateObject())
            if (!InputFields.Contains(f.Name)) throw Invalid($"'{Clip(f.Name)}' is not a graph input field (name, dtype, shape, any_dtype)");
        var name = RequiredString(p, "name", "graph input");
        var dtype = JsonFields.Get(p, "dtype") is { } d
            ? d.ValueKind == JsonValueKind.String ? DTypes.Parse(d.GetString()!) : throw Invalid($"input '{Clip(name)}': dtype must be a string")
            : DType.Float32;
        IReadOnlyList<int>? shape = null;
        if (JsonFields.Get(p, "shape") is { } s)
        {
            if (s.ValueKind != JsonValueKind.Array || s.GetArrayLength() > Shape.MaxRank)
                throw Invalid($"input '{Clip(name)}': shape must be a list of at most {Shape.MaxRank} dimensions (-1 = any size)");
            shape = s.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v >= -1 ? v
                : throw Invalid($"bad dimension {Clip(e.GetRawText())} in input '{Clip(name)}'")).ToArray();
        }
        // any_dtype: the input takes whatever dtype it is given (program inputs); kept so stored models keep it.
        bool anyDType = JsonFields.Get(p, "any_dtype") switch
        {
            null => false,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw Invalid($"input '{Clip(name)}': any_dtype must be true or false"),
        };
        return new Parameter(name, dtype, shape) { AnyDType = anyDType };
    }

    private static Node ReadNode(JsonElement n, GraphSizeGuard guard, string path)
    {
        if (n.ValueKind != JsonValueKind.Object) throw Invalid($"each node of {path} must be an object, got {JsonFields.Describe(n)}");
        foreach (var f in n.EnumerateObject())
            if (!NodeFields.Contains(f.Name)) throw Invalid($"'{Clip(f.Name)}' is not a node field (op, inputs, outputs, attrs, name)");
        var op = RequiredString(n, "op", "node");
        guard.CheckLength(op, "an op name");
        var nodeInputs = new List<string>();
        if (JsonFields.Get(n, "inputs") is { } ni)
        {
            foreach (var i in Array(ni, $"inputs of node '{Clip(op)}'"))
            {
                if (i.ValueKind == JsonValueKind.String)
                {
                    var input = i.GetString()!;
                    guard.CheckLength(input, "an input name");
                    nodeInputs.Add(input);
                    continue;
                }
                if (i.ValueKind != JsonValueKind.Number) throw Invalid($"node '{Clip(op)}': an input must be a value name or a number, got {JsonFields.Describe(i)}");
                // A literal, weakly typed as in programs: x * 0.1 stays exact in float64, n + 1 stays int64.
                nodeInputs.Add(GraphLiterals.Format(JsonFields.AsDouble(i, $"inputs of node '{Clip(op)}'")));
            }
        }
        List<string> outputs = JsonFields.Get(n, "outputs") is { } no ? Strings(no, $"outputs of node '{Clip(op)}'", guard)
            : JsonFields.Get(n, "output") is { } single ? [Name(single, $"output of node '{Clip(op)}'", guard)]
            : [];
        var attrs = JsonFields.Get(n, "attrs") is { } a ? ReadAttributes(a, guard, $"{path}/{Clip(op)}") : Attributes.Empty;
        var nodeName = JsonFields.Get(n, "name") is { } nn ? Name(nn, "node name", null) : null;
        if (nodeName is not null) guard.CheckLength(nodeName, "a node name");
        return new Node(op, nodeInputs, outputs, attrs, nodeName);
    }

    /// <summary>Attributes of a node (or of a session's apply command), subgraphs counted by <paramref name="guard"/>.</summary>
    public static Attributes ReadAttributes(JsonElement json, GraphSizeGuard? guard = null, string path = "graph")
    {
        guard ??= GraphLimits.Default.Guard();
        if (json.ValueKind != JsonValueKind.Object) throw Invalid($"attrs must be an object, got {JsonFields.Describe(json)}");
        var values = new List<KeyValuePair<string, AttrValue>>();
        foreach (var p in json.EnumerateObject())
        {
            guard.CheckLength(p.Name, "an attribute name");
            values.Add(KeyValuePair.Create(p.Name, ReadAttribute(p.Name, p.Value, guard, path)));
        }
        return new Attributes(values);
    }

    private static AttrValue ReadAttribute(string name, JsonElement v, GraphSizeGuard guard, string path)
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
                return IsIntegerToken(v) && v.TryGetInt64(out long l) ? AttrValue.Int(l) : AttrValue.Float(JsonFields.AsDouble(v, $"attribute '{Clip(name)}'"));
            case JsonValueKind.Array:
                var items = v.EnumerateArray().ToArray();
                if (items.All(i => i.ValueKind == JsonValueKind.Number && IsIntegerToken(i) && i.TryGetInt64(out _)))
                    return AttrValue.Ints(items.Select(i => i.GetInt64()).ToArray());
                if (items.All(i => i.ValueKind == JsonValueKind.Number))
                    return AttrValue.Floats(items.Select(i => JsonFields.AsDouble(i, $"attribute '{Clip(name)}'")).ToArray());
                throw Invalid($"attribute '{Clip(name)}': a list must hold only numbers");
            case JsonValueKind.Object:
                // An explicit wrapper ({"graph": {...}} as protobuf's JSON writes it, or {"tensor": {...}}), or the bare form.
                if (IsOnly(v, "graph") is { } wrappedGraph) return Subgraph(wrappedGraph, guard, $"{path}.{Clip(name)}");
                if (IsOnly(v, "tensor") is { } wrappedTensor) return AttrValue.Tensor(TensorJson.Read(wrappedTensor, name));
                if (v.TryGetProperty("graph", out _) || v.TryGetProperty("tensor", out _) || v.TryGetProperty("g", out _))
                    throw Invalid($"attribute '{Clip(name)}': {ObjectForms} (a wrapper holds nothing else, and its value is an object); got {Keys(v)}");
                if (v.EnumerateObject().Any(p => GraphFields.Contains(p.Name))) return Subgraph(v, guard, $"{path}.{Clip(name)}");
                if (v.TryGetProperty("data", out _) || v.TryGetProperty("b64", out _)) return AttrValue.Tensor(TensorJson.Read(v, name));
                throw Invalid($"attribute '{Clip(name)}': {ObjectForms}; got {Keys(v)}");
            default:
                throw Invalid($"attribute '{Clip(name)}' has no value");
        }
    }

    /// <summary>What an attribute object may be: every error about one says so, whatever it resembled.</summary>
    private const string ObjectForms =
        "an object attribute is a subgraph, {\"inputs\": [...], \"nodes\": [...], \"outputs\": [...]} or wrapped as {\"graph\": {...}}, " +
        "or a tensor, {\"dtype\", \"shape\", \"data\" or \"b64\"} or wrapped as {\"tensor\": {...}}";

    private static string Keys(JsonElement obj)
    {
        var keys = obj.EnumerateObject().Select(p => Clip(p.Name)).Take(6).ToList();
        return keys.Count == 0 ? "an empty object" : $"an object with {string.Join(", ", keys)}";
    }

    private static AttrValue Subgraph(JsonElement json, GraphSizeGuard guard, string path)
    {
        using var level = guard.Subgraph();
        return AttrValue.Graph(ReadGraph(json, guard, path));
    }

    private static JsonElement? IsOnly(JsonElement obj, string key)
    {
        using var e = obj.EnumerateObject();
        if (!e.MoveNext() || e.Current.Name != key || e.Current.Value.ValueKind != JsonValueKind.Object) return null;
        var value = e.Current.Value;
        return e.MoveNext() ? null : value;
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
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : throw Invalid($"{what} must be an array, got {JsonFields.Describe(e)}");

    private static List<string> Strings(JsonElement e, string what, GraphSizeGuard guard)
    {
        var list = new List<string>();
        foreach (var item in Array(e, what)) list.Add(Name(item, what, guard));
        return list;
    }

    private static string Name(JsonElement e, string what, GraphSizeGuard? guard)
    {
        if (e.ValueKind != JsonValueKind.String) throw Invalid($"{what} must be names (strings), got {JsonFields.Describe(e)}");
        var name = e.GetString()!;
        guard?.CheckLength(name, "a value name");
        return name;
    }

    private static string RequiredString(JsonElement e, string property, string what) =>
        JsonFields.Get(e, property) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : throw Invalid($"{what} needs a string '{property}'");

    private static string Clip(string s) => EngineException.Clip(s);

    private static EngineException Invalid(string message) => EngineException.InvalidGraph(message);
}
