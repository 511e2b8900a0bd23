using System.Globalization;
using Google.Protobuf;
using Proto = AutogradService.Contracts.V1;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>A graph input: shape null = any rank, -1 = any size.</summary>
public sealed record GInput(string Name, string DType = "float32", int[]? Shape = null);

/// <summary>
/// A node. Inputs are value names (strings) or number literals (doubles): JSON sends literals as numbers, protobuf as
/// their text (which the engine reads as a literal). Attribute values: long, double, bool, string, long[], double[], TestGraph.
/// </summary>
public sealed record GNode(string Op, object[] Inputs, string[] Outputs, Dictionary<string, object>? Attrs = null, string? Name = null);

/// <summary>A graph written once in the test and sent as JSON (REST) or protobuf (gRPC).</summary>
public sealed record TestGraph(GInput[] Inputs, GNode[] Nodes, string[] Outputs)
{
    public Dictionary<string, object?> ToJson()
    {
        var json = new Dictionary<string, object?>
        {
            ["inputs"] = Inputs.Select(i =>
            {
                var p = new Dictionary<string, object?> { ["name"] = i.Name, ["dtype"] = i.DType };
                if (i.Shape is not null) p["shape"] = i.Shape;
                return p;
            }).ToArray(),
            ["nodes"] = Nodes.Select(n =>
            {
                var node = new Dictionary<string, object?>
                {
                    ["op"] = n.Op,
                    ["inputs"] = n.Inputs,
                    ["outputs"] = n.Outputs,
                };
                if (n.Name is not null) node["name"] = n.Name;
                if (n.Attrs is not null) node["attrs"] = n.Attrs.ToDictionary(kv => kv.Key, kv => kv.Value is TestGraph g ? g.ToJson() : kv.Value);
                return node;
            }).ToArray(),
            ["outputs"] = Outputs,
        };
        return json;
    }

    public Proto.Graph ToProto()
    {
        var g = new Proto.Graph();
        foreach (var i in Inputs)
        {
            var p = new Proto.Parameter { Name = i.Name, Dtype = Tensors.ProtoDType(i.DType), HasShape = i.Shape is not null };
            if (i.Shape is not null) p.Shape.Add(i.Shape.Select(d => (long)d));
            g.Inputs.Add(p);
        }
        foreach (var n in Nodes)
        {
            var node = new Proto.Node { Op = n.Op, Name = n.Name ?? "" };
            node.Inputs.Add(n.Inputs.Select(i => i as string ?? Convert.ToDouble(i, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture)));
            node.Outputs.Add(n.Outputs);
            foreach (var (k, v) in n.Attrs ?? []) node.Attrs[k] = Attr(v);
            g.Nodes.Add(node);
        }
        g.Outputs.Add(Outputs);
        return g;
    }

    private static Proto.Attribute Attr(object v) => v switch
    {
        long l => new Proto.Attribute { I = l },
        int i => new Proto.Attribute { I = i },
        double d => new Proto.Attribute { F = d },
        bool b => new Proto.Attribute { B = b },
        string s => new Proto.Attribute { S = s },
        long[] ls => new Proto.Attribute { Ints = new Proto.IntList { Values = { ls } } },
        int[] ints => new Proto.Attribute { Ints = new Proto.IntList { Values = { ints.Select(x => (long)x) } } },
        double[] ds => new Proto.Attribute { Floats = new Proto.FloatList { Values = { ds } } },
        TestGraph g => new Proto.Attribute { Graph = g.ToProto() },
        _ => throw new ArgumentException($"unsupported attribute {v.GetType()}"),
    };

    public static GNode N(string op, object[] inputs, string output, Dictionary<string, object>? attrs = null, string? name = null) =>
        new(op, inputs, [output], attrs, name);
}

/// <summary>Protobuf tensors for the gRPC tests: raw bytes or typed fields.</summary>
public static class Tensors
{
    public static Proto.DType ProtoDType(string dtype) => dtype switch
    {
        "float32" => Proto.DType.Float32,
        "float64" => Proto.DType.Float64,
        "int64" => Proto.DType.Int64,
        "bool" => Proto.DType.Bool,
        _ => throw new ArgumentException(dtype),
    };

    public static Proto.Tensor F32(float[] values, params long[] shape)
    {
        var t = new Proto.Tensor { Dtype = Proto.DType.Float32 };
        t.Shape.Add(shape.Length == 0 && values.Length != 1 ? [values.Length] : shape);
        t.FloatData.Add(values);
        return t;
    }

    public static Proto.Tensor F32Scalar(float value)
    {
        var t = new Proto.Tensor { Dtype = Proto.DType.Float32 };
        t.FloatData.Add(value);
        return t;
    }

    public static Proto.Tensor F64(double[] values)
    {
        var t = new Proto.Tensor { Dtype = Proto.DType.Float64 };
        t.Shape.Add(values.Length);
        t.DoubleData.Add(values);
        return t;
    }

    public static Proto.Tensor I64(long[] values)
    {
        var t = new Proto.Tensor { Dtype = Proto.DType.Int64 };
        t.Shape.Add(values.Length);
        t.Int64Data.Add(values);
        return t;
    }

    /// <summary>float32 as little-endian raw bytes.</summary>
    public static Proto.Tensor F32Raw(float[] values)
    {
        var t = new Proto.Tensor { Dtype = Proto.DType.Float32, Raw = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())) };
        t.Shape.Add(values.Length);
        return t;
    }

    /// <summary>The values of a response tensor, whichever field carries them.</summary>
    public static double[] Values(Proto.Tensor t)
    {
        if (!t.Raw.IsEmpty)
        {
            var span = t.Raw.Span;
            return t.Dtype switch
            {
                Proto.DType.Float32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span).ToArray().Select(v => (double)v).ToArray(),
                Proto.DType.Float64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(span).ToArray(),
                Proto.DType.Int64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(span).ToArray().Select(v => (double)v).ToArray(),
                _ => span.ToArray().Select(b => (double)b).ToArray(),
            };
        }
        if (t.FloatData.Count > 0) return t.FloatData.Select(v => (double)v).ToArray();
        if (t.DoubleData.Count > 0) return t.DoubleData.ToArray();
        if (t.Int64Data.Count > 0) return t.Int64Data.Select(v => (double)v).ToArray();
        return t.BoolData.Select(b => b ? 1.0 : 0.0).ToArray();
    }

    public static double One(Proto.Tensor t) => Assert.Single(Values(t));
}
