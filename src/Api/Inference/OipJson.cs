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

    /// <summary>The binary tensor extension's request parameter asking for every answer tensor as binary data.</summary>
    public const string BinaryDataOutput = "binary_data_output";

    /// <summary>The binary tensor extension's output parameter asking for that output as binary data.</summary>
    public const string BinaryData = "binary_data";

    /// <summary>
    /// Reads a request. With <paramref name="binary"/> (a framed body, <see cref="BinaryTensorBody"/>), a tensor whose
    /// parameters hold <c>binary_data_size</c> takes its values from those bytes, in the order tensors appear in the
    /// JSON, and every byte must be taken. <paramref name="binaryOutputs"/> says which answer tensors go as binary data.
    /// </summary>
    public static InferenceCall ReadCall(InferenceKind kind, string model, string? version, JsonElement root, LimitsOptions limits,
        BinaryTensorBody.Segment? binary, out BinaryOutputs binaryOutputs)
    {
        JsonFields.ExpectObject(root, "", kind switch
        {
            InferenceKind.Vjp => VjpFields,
            InferenceKind.Jvp => JvpFields,
            InferenceKind.Jacobian => JacobianFields,
            _ => InferFields,
        });
        ReadParameters(root, "");
        // Binary data belongs to tensors in the order they appear in the JSON, so the tensor lists are read in that order.
        var lists = new Dictionary<string, Dictionary<string, HostTensor>>(StringComparer.Ordinal);
        foreach (var field in root.EnumerateObject())
            if (field.Name is "inputs" or "cotangents" or "tangents")
                lists[field.Name] = ReadTensors(field.Value, field.Name, limits, binary);
        binary?.CheckAllTaken();
        var inputs = lists.GetValueOrDefault("inputs") ?? throw JsonFields.Invalid("inputs", "is required: a list of input tensors");
        var binaryNames = new HashSet<string>(StringComparer.Ordinal);
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
                if (BoolParameter(o, path, BinaryData)) binaryNames.Add(name);
            }
        }
        binaryOutputs = new BinaryOutputs(BoolParameter(root, "", BinaryDataOutput), binaryNames);
        return new InferenceCall
        {
            Kind = kind,
            Model = model,
            Version = version,
            Id = JsonFields.String(root, "id", ""),
            Inputs = inputs,
            Outputs = outputs,
            Cotangents = lists.GetValueOrDefault("cotangents"),
            Tangents = lists.GetValueOrDefault("tangents"),
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

    /// <summary>A parameter that must be a bool when present (false when absent).</summary>
    private static bool BoolParameter(JsonElement obj, string parentPath, string name) =>
        JsonFields.Object(obj, "parameters", parentPath) is { } p && JsonFields.Bool(p, name, JsonFields.Join(parentPath, "parameters")) == true;

    private static Dictionary<string, HostTensor> ReadTensors(JsonElement list, string field, LimitsOptions limits, BinaryTensorBody.Segment? binary)
    {
        if (list.ValueKind != JsonValueKind.Array) throw JsonFields.WrongType(field, "a list of tensors", list);
        var tensors = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        int i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var path = $"{field}[{i++}]";
            var (name, tensor) = ReadTensor(item, path, limits, binary);
            if (!tensors.TryAdd(name, tensor)) throw JsonFields.Invalid(path + ".name", $"names '{OipDataTypes.Clip(name)}' a second time");
        }
        return tensors;
    }

    public static (string Name, HostTensor Tensor) ReadTensor(JsonElement json, string path, LimitsOptions limits,
        BinaryTensorBody.Segment? binary = null)
    {
        JsonFields.ExpectObject(json, path, TensorFields);
        var name = JsonFields.RequiredString(json, "name", path);
        var dtype = OipDataTypes.Parse(JsonFields.String(json, "datatype", path), JsonFields.Join(path, "datatype"));
        ReadParameters(json, path);
        long? binarySize = null;
        if (JsonFields.Object(json, "parameters", path) is { } p && p.TryGetProperty(BinaryTensorBody.SizeParameter, out var size))
        {
            var sizePath = JsonFields.Join(path, "parameters." + BinaryTensorBody.SizeParameter);
            if (binary is null)
                throw JsonFields.Invalid(sizePath, $"needs the binary tensor extension's framing: an {BinaryTensorBody.HeaderLength} header and the bytes after the JSON");
            binarySize = JsonFields.AsInteger(size, sizePath, 0, long.MaxValue);
        }
        var shapePath = JsonFields.Join(path, "shape");
        if (JsonFields.Get(json, "shape") is not { ValueKind: JsonValueKind.Array } shapeJson)
            throw JsonFields.Invalid(shapePath, "is required: a list of dimensions");
        var dims = new List<long>();
        int d = 0;
        foreach (var dim in shapeJson.EnumerateArray()) dims.Add(JsonFields.AsInteger(dim, $"{shapePath}[{d++}]", 0, int.MaxValue));
        var shape = OipDataTypes.ReadShape(dims, name, shapePath, limits);
        if (binarySize is { } n)
        {
            if (JsonFields.Get(json, "data") is not null)
                throw JsonFields.Invalid(JsonFields.Join(path, "data"), $"cannot be given with {BinaryTensorBody.SizeParameter}: the values are the binary data");
            try
            {
                return (name, binary!.Take(OipDataTypes.Clip(name), dtype, shape, n));
            }
            catch (EngineException e) when (e.Input is null)
            {
                throw Bad(name, e.Detail);
            }
        }
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

    /// <summary>
    /// Writes a response. Tensors <paramref name="binary"/> selects (with its <paramref name="answer"/>) carry
    /// <c>binary_data_size</c> instead of data, their bytes queued on the answer in the order they are written.
    /// </summary>
    public static void WriteReply(Utf8JsonWriter w, InferenceReply reply, bool withDerivatives,
        BinaryOutputs? binary = null, BinaryTensorBody.Answer? answer = null)
    {
        w.WriteStartObject();
        w.WriteString("model_name", reply.Model);
        w.WriteString("model_version", reply.Version);
        if (reply.Id is not null) w.WriteString("id", reply.Id);
        if (reply.Parameters.Count > 0) WriteParameters(w, reply.Parameters);
        WriteTensors(w, "outputs", reply.Outputs, t => answer is not null && binary!.IsBinary(t.Name), answer);
        if (withDerivatives) WriteTensors(w, "derivatives", reply.Derivatives, _ => answer is not null && binary!.All, answer);
        w.WriteEndObject();
    }

    private static void WriteTensors(Utf8JsonWriter w, string field, IReadOnlyList<NamedTensor> tensors, Func<NamedTensor, bool> asBinary,
        BinaryTensorBody.Answer? answer)
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
            if (asBinary(t))
            {
                var parameters = new Dictionary<string, object>(t.Parameters ?? new Dictionary<string, object>())
                {
                    [BinaryTensorBody.SizeParameter] = answer!.Add(t.Value),
                };
                WriteParameters(w, parameters);
            }
            else
            {
                if (t.Parameters is { Count: > 0 } p) WriteParameters(w, p);
                w.WritePropertyName("data");
                TensorJson.WriteValues(w, t.Value.Data); // the array, flat
            }
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

/// <summary>
/// Which answer tensors a request wants as binary data: all of them (<c>parameters.binary_data_output</c>, derivatives
/// included) or the outputs it named with <c>parameters.binary_data</c>.
/// </summary>
public sealed record BinaryOutputs(bool All, IReadOnlySet<string> Names)
{
    public bool Any => All || Names.Count > 0;

    public bool IsBinary(string output) => All || Names.Contains(output);
}
