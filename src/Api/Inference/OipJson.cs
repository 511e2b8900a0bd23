using System.Text.Json;
using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Inference;

/// <summary>
/// The Open Inference Protocol's REST JSON: inference requests (with the gradient extension's fields), tensors as
/// <c>{name, shape, datatype, parameters?, data}</c> with <c>data</c> flat or nested (row-major either way), responses,
/// and <c>{"error": "..."}</c> bodies. Every field is checked here, so a bad one is <c>invalid_argument</c> naming it.
/// </summary>
public static class OipJson
{
    private static readonly HashSet<string> InferFields = ["id", "parameters", "inputs", "outputs"];
    private static readonly HashSet<string> VjpFields = [.. InferFields, "cotangents", "wrt", "of"];
    private static readonly HashSet<string> JvpFields = [.. InferFields, "tangents", "of"];
    private static readonly HashSet<string> JacobianFields = [.. InferFields, "wrt", "of"];
    private static readonly HashSet<string> TensorFields = ["name", "shape", "datatype", "parameters", "data"];
    private static readonly HashSet<string> OutputFields = ["name", "parameters"];

    /// <summary>The binary tensor extension's parameter: its framing is not read by this endpoint (yet).</summary>
    public const string BinaryDataSize = "binary_data_size";

    public static InferenceCall ReadCall(InferenceKind kind, string model, string? version, JsonElement root, LimitsOptions limits)
    {
        JsonFields.ExpectObject(root, "", kind switch
        {
            InferenceKind.Vjp => VjpFields,
            InferenceKind.Jvp => JvpFields,
            InferenceKind.Jacobian => JacobianFields,
            _ => InferFields,
        });
        ReadParameters(root, "");
        var inputs = ReadTensors(root, "inputs", limits) ?? throw JsonFields.Invalid("inputs", "is required: a list of input tensors");
        List<string>? outputs = null;
        if (JsonFields.Get(root, "outputs") is { } requested)
        {
            if (requested.ValueKind != JsonValueKind.Array) throw JsonFields.WrongType("outputs", "a list of {name, parameters}", requested);
            outputs = [];
            int i = 0;
            foreach (var o in requested.EnumerateArray())
            {
                var path = $"outputs[{i++}]";
                JsonFields.ExpectObject(o, path, OutputFields);
                ReadParameters(o, path);
                var name = JsonFields.RequiredString(o, "name", path);
                if (outputs.Contains(name)) throw JsonFields.Invalid(path + ".name", $"asks for '{OipDataTypes.Clip(name)}' twice");
                outputs.Add(name);
            }
        }
        return new InferenceCall
        {
            Kind = kind,
            Model = model,
            Version = version,
            Id = JsonFields.String(root, "id", ""),
            Inputs = inputs,
            Outputs = outputs,
            Cotangents = ReadTensors(root, "cotangents", limits),
            Tangents = ReadTensors(root, "tangents", limits),
            Wrt = JsonFields.Names(root, "wrt", ""),
            Of = JsonFields.Names(root, "of", ""),
        };
    }

    /// <summary>Parameters are a map of scalars (bool, number, string), as the protocol defines them; their values are not used.</summary>
    private static void ReadParameters(JsonElement obj, string parentPath)
    {
        var path = JsonFields.Join(parentPath, "parameters");
        if (JsonFields.Get(obj, "parameters") is not { } p) return;
        if (p.ValueKind != JsonValueKind.Object) throw JsonFields.WrongType(path, "an object of parameters", p);
        foreach (var entry in p.EnumerateObject())
        {
            if (entry.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                throw JsonFields.WrongType(JsonFields.Join(path, entry.Name), "a bool, number or string", entry.Value);
        }
    }

    private static Dictionary<string, HostTensor>? ReadTensors(JsonElement root, string field, LimitsOptions limits)
    {
        if (JsonFields.Get(root, field) is not { } list) return null;
        if (list.ValueKind != JsonValueKind.Array) throw JsonFields.WrongType(field, "a list of tensors", list);
        var tensors = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        int i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var path = $"{field}[{i++}]";
            var (name, tensor) = ReadTensor(item, path, limits);
            if (!tensors.TryAdd(name, tensor)) throw JsonFields.Invalid(path + ".name", $"names '{OipDataTypes.Clip(name)}' a second time");
        }
        return tensors;
    }

    public static (string Name, HostTensor Tensor) ReadTensor(JsonElement json, string path, LimitsOptions limits)
    {
        JsonFields.ExpectObject(json, path, TensorFields);
        var name = JsonFields.RequiredString(json, "name", path);
        var dtype = OipDataTypes.Parse(JsonFields.String(json, "datatype", path), JsonFields.Join(path, "datatype"));
        ReadParameters(json, path);
        if (JsonFields.Object(json, "parameters", path) is { } p && p.TryGetProperty(BinaryDataSize, out _))
            throw JsonFields.Invalid(JsonFields.Join(path, "parameters." + BinaryDataSize),
                "asks for the binary tensor extension, which this server does not read yet; send the values in 'data'");
        var shapePath = JsonFields.Join(path, "shape");
        if (JsonFields.Get(json, "shape") is not { ValueKind: JsonValueKind.Array } shapeJson)
            throw JsonFields.Invalid(shapePath, "is required: a list of dimensions");
        var dims = new List<long>();
        int d = 0;
        foreach (var dim in shapeJson.EnumerateArray()) dims.Add(JsonFields.AsInteger(dim, $"{shapePath}[{d++}]", 0, int.MaxValue));
        var shape = OipDataTypes.ReadShape(dims, name, shapePath, limits);
        var data = JsonFields.Get(json, "data") ?? throw JsonFields.Invalid(JsonFields.Join(path, "data"), "is required: the values, flat or nested");
        return (name, new HostTensor(dtype, shape, ReadData(data, dtype, checked((int)shape.ElementCount), name)));
    }

    /// <summary>The values of <paramref name="data"/>, flat or nested to any depth, in row-major order; exactly <paramref name="count"/> of them.</summary>
    private static Array ReadData(JsonElement data, DType dtype, int count, string name)
    {
        Array values = dtype switch
        {
            DType.Float32 => new float[count],
            DType.Float64 => new double[count],
            DType.Int64 => new long[count],
            _ => new bool[count],
        };
        int at = 0;
        Fill(data, values, ref at, name);
        if (at != count)
            throw EngineException.InvalidTensor($"tensor '{OipDataTypes.Clip(name)}' has {at} values for its shape's {count}", OipDataTypes.Clip(name));
        return values;
    }

    private static void Fill(JsonElement v, Array values, ref int at, string name)
    {
        if (v.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in v.EnumerateArray()) Fill(item, values, ref at, name);
            return;
        }
        if (at >= values.Length)
            throw EngineException.InvalidTensor($"tensor '{OipDataTypes.Clip(name)}' has more values than its shape's {values.Length}", OipDataTypes.Clip(name));
        switch (values)
        {
            case float[] f: f[at] = (float)Number(v, name); break;
            case double[] d: d[at] = Number(v, name); break;
            case long[] l:
                l[at] = v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) ? x
                    : throw Bad(name, $"INT64 values must be integers, got {Describe(v)}");
                break;
            case bool[] b:
                b[at] = v.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw Bad(name, $"BOOL values must be true or false, got {Describe(v)}"),
                };
                break;
        }
        at++;
    }

    private static double Number(JsonElement v, string name) => v.ValueKind switch
    {
        JsonValueKind.Number when v.TryGetDouble(out double d) && double.IsFinite(d) => d,
        JsonValueKind.String => v.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => throw Bad(name, $"{Describe(v)} is not a number (NaN and infinities are \"NaN\", \"Infinity\", \"-Infinity\")"),
        },
        _ => throw Bad(name, $"values must be numbers, got {Describe(v)}"),
    };

    private static string Describe(JsonElement v) => v.ValueKind is JsonValueKind.Number or JsonValueKind.String
        ? EngineException.Clip(v.GetRawText(), 40)
        : JsonFields.Describe(v);

    private static EngineException Bad(string name, string message) =>
        EngineException.InvalidTensor($"tensor '{OipDataTypes.Clip(name)}': {message}", OipDataTypes.Clip(name));

    public static void WriteReply(Utf8JsonWriter w, InferenceReply reply, bool withDerivatives)
    {
        w.WriteStartObject();
        w.WriteString("model_name", reply.Model);
        w.WriteString("model_version", reply.Version);
        if (reply.Id is not null) w.WriteString("id", reply.Id);
        if (reply.Parameters.Count > 0) WriteParameters(w, reply.Parameters);
        WriteTensors(w, "outputs", reply.Outputs);
        if (withDerivatives) WriteTensors(w, "derivatives", reply.Derivatives);
        w.WriteEndObject();
    }

    private static void WriteTensors(Utf8JsonWriter w, string field, IReadOnlyList<NamedTensor> tensors)
    {
        w.WriteStartArray(field);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("datatype", OipDataTypes.Name(t.Value.DType));
            w.WriteStartArray("shape");
            foreach (var d in t.Value.Shape.Dims) w.WriteNumberValue(d);
            w.WriteEndArray();
            if (t.Parameters is { Count: > 0 } p) WriteParameters(w, p);
            w.WritePropertyName("data");
            TensorJson.WriteValues(w, t.Value.Data); // the array, flat

            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteParameters(Utf8JsonWriter w, IReadOnlyDictionary<string, object> parameters)
    {
        w.WriteStartObject("parameters");
        foreach (var (key, value) in parameters)
        {
            switch (value)
            {
                case bool b: w.WriteBoolean(key, b); break;
                case long l: w.WriteNumber(key, l); break;
                case double d: w.WriteNumber(key, d); break;
                default: w.WriteString(key, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            }
        }
        w.WriteEndObject();
    }

    public static void WriteMetadata(Utf8JsonWriter w, ModelMetadata m)
    {
        w.WriteStartObject();
        w.WriteString("name", m.Name);
        w.WriteStartArray("versions");
        foreach (var v in m.Versions) w.WriteStringValue(v);
        w.WriteEndArray();
        w.WriteString("platform", m.Platform);
        WriteSignature(w, "inputs", m.Inputs);
        WriteSignature(w, "outputs", m.Outputs);
        w.WriteEndObject();
    }

    private static void WriteSignature(Utf8JsonWriter w, string field, IReadOnlyList<TensorMetadata> tensors)
    {
        w.WriteStartArray(field);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("datatype", t.Datatype);
            w.WriteStartArray("shape");
            foreach (var d in t.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
