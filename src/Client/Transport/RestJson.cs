using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using AutogradService.Contracts.V1;
using Google.Protobuf;

namespace AutogradService.Client.Transport;

/// <summary>The contract's messages in the REST API's JSON forms (tensors as base64 both ways: exact and compact).</summary>
internal static class RestJson
{
    // Requests.

    public static void WriteComputation(Utf8JsonWriter w, Computation? c)
    {
        switch (c?.SourceCase)
        {
            case Computation.SourceOneofCase.Program: w.WriteString("program", c.Program); break;
            case Computation.SourceOneofCase.Model: w.WriteString("model", c.Model); break;
            case Computation.SourceOneofCase.Graph:
                w.WritePropertyName("graph");
                WriteGraph(w, c.Graph);
                break;
            default: throw new ArgumentException("a request needs a computation: a program, a graph or a model");
        }
    }

    public static void WriteTensors(Utf8JsonWriter w, string property, IDictionary<string, Tensor> tensors, bool typeOnly = false)
    {
        if (tensors.Count == 0) return;
        w.WriteStartObject(property);
        foreach (var (name, t) in tensors)
        {
            w.WritePropertyName(name);
            WriteTensor(w, t, typeOnly);
        }
        w.WriteEndObject();
    }

    public static void WriteNames(Utf8JsonWriter w, string property, IEnumerable<string> names)
    {
        var list = names.ToList();
        if (list.Count == 0) return;
        w.WriteStartArray(property);
        foreach (var n in list) w.WriteStringValue(n);
        w.WriteEndArray();
    }

    public static void WriteCommon(Utf8JsonWriter w, Computation computation, IDictionary<string, Tensor> inputs, IEnumerable<string> outputs,
        RequestLimits? limits, string device, bool detectAnomaly)
    {
        WriteComputation(w, computation);
        WriteTensors(w, "inputs", inputs);
        WriteNames(w, "outputs", outputs);
        if (limits is not null && (limits.MemoryBytes > 0 || limits.TimeoutMs > 0))
        {
            w.WriteStartObject("limits");
            if (limits.MemoryBytes > 0) w.WriteNumber("memory_bytes", limits.MemoryBytes);
            if (limits.TimeoutMs > 0) w.WriteNumber("timeout_ms", limits.TimeoutMs);
            w.WriteEndObject();
        }
        if (!string.IsNullOrEmpty(device)) w.WriteString("device", device);
        if (detectAnomaly) w.WriteBoolean("detect_anomaly", true);
        w.WriteString("tensor_encoding", "b64");
    }

    /// <summary>{dtype, shape, b64}; with <paramref name="typeOnly"/> (inspect) just {dtype, shape}.</summary>
    public static void WriteTensor(Utf8JsonWriter w, Tensor t, bool typeOnly = false)
    {
        w.WriteStartObject();
        w.WriteString("dtype", Tensors.Name(t.Dtype));
        w.WriteStartArray("shape");
        foreach (var d in t.Shape) w.WriteNumberValue(d);
        w.WriteEndArray();
        if (!typeOnly || HasData(t)) w.WriteBase64String("b64", RawBytes(t));
        w.WriteEndObject();
    }

    private static bool HasData(Tensor t) =>
        !t.Raw.IsEmpty || t.FloatData.Count > 0 || t.DoubleData.Count > 0 || t.Int64Data.Count > 0 || t.BoolData.Count > 0;

    private static ReadOnlySpan<byte> RawBytes(Tensor t)
    {
        if (!t.Raw.IsEmpty) return t.Raw.Span;
        return t.Dtype switch
        {
            DType.Float32 => MemoryMarshal.AsBytes(t.ToFloatArray().AsSpan()),
            DType.Float64 => MemoryMarshal.AsBytes(t.ToDoubleArray().AsSpan()),
            DType.Int64 => MemoryMarshal.AsBytes(t.ToInt64Array().AsSpan()),
            _ => MemoryMarshal.AsBytes(t.ToBoolArray().AsSpan()),
        };
    }

    public static void WriteGraph(Utf8JsonWriter w, Graph g)
    {
        w.WriteStartObject();
        w.WriteStartArray("inputs");
        foreach (var p in g.Inputs)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteString("dtype", Tensors.Name(p.Dtype));
            if (p.HasShape)
            {
                w.WriteStartArray("shape");
                foreach (var d in p.Shape) w.WriteNumberValue(d);
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
            WriteNames(w, "inputs", n.Inputs);
            WriteNames(w, "outputs", n.Outputs);
            if (n.Attrs.Count > 0)
            {
                w.WritePropertyName("attrs");
                WriteAttributes(w, n.Attrs);
            }
            if (!string.IsNullOrEmpty(n.Name)) w.WriteString("name", n.Name);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        WriteNames(w, "outputs", g.Outputs);
        WriteTensors(w, "constants", g.Constants);
        w.WriteEndObject();
    }

    public static void WriteAttributes(Utf8JsonWriter w, IDictionary<string, Contracts.V1.Attribute> attrs)
    {
        w.WriteStartObject();
        foreach (var (name, a) in attrs)
        {
            w.WritePropertyName(name);
            switch (a.ValueCase)
            {
                case Contracts.V1.Attribute.ValueOneofCase.I: w.WriteNumberValue(a.I); break;
                case Contracts.V1.Attribute.ValueOneofCase.F: WriteFloat(w, a.F); break;
                case Contracts.V1.Attribute.ValueOneofCase.S: w.WriteStringValue(a.S); break;
                case Contracts.V1.Attribute.ValueOneofCase.B: w.WriteBooleanValue(a.B); break;
                case Contracts.V1.Attribute.ValueOneofCase.Ints:
                    w.WriteStartArray();
                    foreach (var v in a.Ints.Values) w.WriteNumberValue(v);
                    w.WriteEndArray();
                    break;
                case Contracts.V1.Attribute.ValueOneofCase.Floats:
                    w.WriteStartArray();
                    foreach (var v in a.Floats.Values) WriteFloat(w, v);
                    w.WriteEndArray();
                    break;
                case Contracts.V1.Attribute.ValueOneofCase.Tensor:
                    w.WriteStartObject();
                    w.WritePropertyName("tensor");
                    WriteTensor(w, a.Tensor);
                    w.WriteEndObject();
                    break;
                case Contracts.V1.Attribute.ValueOneofCase.Graph:
                    w.WriteStartObject();
                    w.WritePropertyName("graph");
                    WriteGraph(w, a.Graph);
                    w.WriteEndObject();
                    break;
                default: throw new ArgumentException($"attribute '{name}' has no value");
            }
        }
        w.WriteEndObject();
    }

    /// <summary>A float attribute keeps a decimal point, so the service reads 2.0 as a float, not as the int 2.</summary>
    private static void WriteFloat(Utf8JsonWriter w, double v)
    {
        if (double.IsPositiveInfinity(v)) w.WriteStringValue("Infinity");
        else if (double.IsNegativeInfinity(v)) w.WriteStringValue("-Infinity");
        else if (double.IsNaN(v)) throw new ArgumentException("a NaN attribute cannot travel as JSON");
        else
        {
            var text = v.ToString("R", CultureInfo.InvariantCulture);
            w.WriteRawValue(text.Contains('.') || text.Contains('E') ? text : text + ".0");
        }
    }

    public static void WriteCommand(Utf8JsonWriter w, Command c)
    {
        w.WriteStartObject();
        switch (c.KindCase)
        {
            case Command.KindOneofCase.Variable:
                w.WriteStartObject("variable");
                w.WriteString("name", c.Variable.Name);
                w.WritePropertyName("value");
                WriteTensor(w, c.Variable.Value);
                // The proto's default is false; REST's is true: say it either way.
                w.WriteBoolean("requires_grad", c.Variable.RequiresGrad);
                break;
            case Command.KindOneofCase.Constant:
                w.WriteStartObject("constant");
                w.WriteString("name", c.Constant.Name);
                w.WritePropertyName("value");
                WriteTensor(w, c.Constant.Value);
                break;
            case Command.KindOneofCase.Apply when !string.IsNullOrEmpty(c.Apply.Program):
                w.WriteStartObject("apply");
                w.WriteString("program", c.Apply.Program);
                break;
            case Command.KindOneofCase.Apply:
                w.WriteStartObject("apply");
                w.WriteString("op", c.Apply.Op);
                w.WriteStartArray("inputs");
                foreach (var i in c.Apply.Inputs) w.WriteStringValue(i);
                w.WriteEndArray();
                if (c.Apply.Attrs.Count > 0)
                {
                    w.WritePropertyName("attrs");
                    WriteAttributes(w, c.Apply.Attrs);
                }
                w.WriteString("output", c.Apply.Output);
                break;
            case Command.KindOneofCase.Fetch:
                w.WriteStartObject("fetch");
                w.WriteString("name", c.Fetch.Name);
                break;
            case Command.KindOneofCase.Backward:
                w.WriteStartObject("backward");
                w.WriteString("output", c.Backward.Output);
                if (c.Backward.Seed is { } seed)
                {
                    w.WritePropertyName("seed");
                    WriteTensor(w, seed);
                }
                if (c.Backward.RetainGraph) w.WriteBoolean("retain_graph", true);
                if (c.Backward.CreateGraph) w.WriteBoolean("create_graph", true);
                break;
            case Command.KindOneofCase.Grad:
                w.WriteStartObject("grad");
                w.WriteString("name", c.Grad.Name);
                if (!string.IsNullOrEmpty(c.Grad.Output)) w.WriteString("output", c.Grad.Output);
                break;
            case Command.KindOneofCase.ZeroGrad:
                w.WriteStartObject("zero_grad");
                WriteNames(w, "names", c.ZeroGrad.Names);
                break;
            case Command.KindOneofCase.Detach:
                w.WriteStartObject("detach");
                w.WriteString("name", c.Detach.Name);
                w.WriteString("output", c.Detach.Output);
                break;
            case Command.KindOneofCase.NoGrad:
                w.WriteStartObject("no_grad");
                w.WriteBoolean("enabled", c.NoGrad.Enabled);
                break;
            case Command.KindOneofCase.Release:
                w.WriteStartObject("release");
                WriteNames(w, "names", c.Release.Names);
                break;
            default: throw new ArgumentException($"a session command of kind {c.KindCase} has no REST form");
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // Responses.

    public static Tensor ReadTensor(JsonElement e)
    {
        var t = new Tensor { Dtype = Tensors.Parse(e.TryGetProperty("dtype", out var d) ? d.GetString() : null) };
        if (e.TryGetProperty("shape", out var shape) && shape.ValueKind == JsonValueKind.Array)
            foreach (var s in shape.EnumerateArray()) t.Shape.Add(s.GetInt64());
        if (e.TryGetProperty("b64", out var b64))
        {
            t.Raw = ByteString.CopyFrom(b64.GetBytesFromBase64());
            return t;
        }
        if (!e.TryGetProperty("data", out var data)) return t;
        foreach (var v in data.EnumerateArray())
        {
            switch (t.Dtype)
            {
                case DType.Float32: t.FloatData.Add((float)Number(v)); break;
                case DType.Float64: t.DoubleData.Add(Number(v)); break;
                case DType.Int64: t.Int64Data.Add(v.GetInt64()); break;
                default: t.BoolData.Add(v.ValueKind == JsonValueKind.True); break;
            }
        }
        return t;
    }

    private static double Number(JsonElement v) => v.ValueKind == JsonValueKind.String
        ? v.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var s => double.Parse(s!, CultureInfo.InvariantCulture),
        }
        : v.GetDouble();

    public static void ReadTensors(JsonElement body, string property, IDictionary<string, Tensor> into)
    {
        if (!body.TryGetProperty(property, out var map) || map.ValueKind != JsonValueKind.Object) return;
        foreach (var p in map.EnumerateObject()) into[p.Name] = ReadTensor(p.Value);
    }

    public static void ReadRows(JsonElement body, string property, IDictionary<string, JacobianRow> into)
    {
        if (!body.TryGetProperty(property, out var map) || map.ValueKind != JsonValueKind.Object) return;
        foreach (var p in map.EnumerateObject())
        {
            var row = new JacobianRow();
            foreach (var q in p.Value.EnumerateObject()) row.ByInput[q.Name] = ReadTensor(q.Value);
            into[p.Name] = row;
        }
    }

    public static Stats ReadStats(JsonElement body)
    {
        if (!body.TryGetProperty("stats", out var s)) return new Stats();
        return new Stats
        {
            ForwardMs = s.TryGetProperty("forward_ms", out var f) ? f.GetDouble() : 0,
            BackwardMs = s.TryGetProperty("backward_ms", out var b) ? b.GetDouble() : 0,
            PeakBytes = s.TryGetProperty("peak_bytes", out var p) ? p.GetInt64() : 0,
            NodesExecuted = s.TryGetProperty("nodes_executed", out var n) ? n.GetInt64() : 0,
            Device = s.TryGetProperty("device", out var d) ? d.GetString() ?? "" : "",
        };
    }

    public static ModelInfo ReadModel(JsonElement m)
    {
        var info = new ModelInfo
        {
            Name = m.GetProperty("name").GetString(),
            NodeCount = m.TryGetProperty("node_count", out var nc) ? nc.GetInt64() : 0,
            Flops = m.TryGetProperty("flops", out var f) ? f.GetInt64() : 0,
            PeakBytes = m.TryGetProperty("peak_bytes", out var pb) ? pb.GetInt64() : 0,
        };
        if (m.TryGetProperty("outputs", out var outs))
            foreach (var o in outs.EnumerateArray()) info.Outputs.Add(o.GetString());
        if (m.TryGetProperty("inputs", out var ins))
        {
            foreach (var i in ins.EnumerateArray())
            {
                var p = new Parameter { Name = i.GetProperty("name").GetString(), Dtype = Tensors.Parse(i.TryGetProperty("dtype", out var dt) ? dt.GetString() : null) };
                if (i.TryGetProperty("shape", out var shape) && shape.ValueKind == JsonValueKind.Array)
                {
                    p.HasShape = true;
                    foreach (var d in shape.EnumerateArray()) p.Shape.Add(d.ValueKind == JsonValueKind.Number ? d.GetInt64() : -1);
                }
                info.Inputs.Add(p);
            }
        }
        return info;
    }

    public static ListDevicesResponse ReadDevices(JsonElement body)
    {
        var response = new ListDevicesResponse { DefaultDevice = Str(body, "default_device") };
        foreach (var d in body.GetProperty("devices").EnumerateArray())
            response.Devices.Add(new DeviceInfo
            {
                Name = Str(d, "name"), Kind = Str(d, "kind"), MemoryBytes = d.GetProperty("memory_bytes").GetInt64(),
                Units = d.GetProperty("units").GetInt32(), Description = Str(d, "description"),
            });
        return response;
    }

    public static ListOpsResponse ReadOps(JsonElement body)
    {
        var response = new ListOpsResponse();
        foreach (var o in body.GetProperty("ops").EnumerateArray())
        {
            var op = new OpInfo
            {
                Name = o.GetProperty("name").GetString(),
                Category = Str(o, "category"),
                Summary = Str(o, "summary"),
                OutputRule = Str(o, "output"),
                Differentiable = o.TryGetProperty("differentiable", out var d) && d.ValueKind == JsonValueKind.True,
            };
            if (o.TryGetProperty("aliases", out var aliases))
                foreach (var a in aliases.EnumerateArray()) op.Aliases.Add(a.GetString());
            if (o.TryGetProperty("inputs", out var inputs))
                foreach (var i in inputs.EnumerateArray())
                    op.Inputs.Add(new OpInputInfo
                    {
                        Name = Str(i, "name"),
                        Variadic = i.TryGetProperty("variadic", out var v) && v.ValueKind == JsonValueKind.True,
                        Differentiable = i.TryGetProperty("differentiable", out var di) && di.ValueKind == JsonValueKind.True,
                    });
            if (o.TryGetProperty("attributes", out var attrs))
                foreach (var a in attrs.EnumerateArray())
                    op.Attributes.Add(new OpAttributeInfo { Name = Str(a, "name"), Kind = Str(a, "kind"), Description = Str(a, "description") });
            response.Ops.Add(op);
        }
        return response;
    }

    private static string Str(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
}
