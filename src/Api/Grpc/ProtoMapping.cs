using AutogradService.Api.Json;
using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using Google.Protobuf;
using ProtoGraph = AutogradService.Contracts.V1.Graph;
using ProtoTensor = AutogradService.Contracts.V1.Tensor;

namespace AutogradService.Api.Grpc;

/// <summary>Protobuf messages to engine types and back. Nothing else in the gRPC layer touches tensor data.</summary>
public static class ProtoMapping
{
    public static Engine.Tensors.DType ToEngine(Contracts.V1.DType d) => d switch
    {
        Contracts.V1.DType.Float32 => Engine.Tensors.DType.Float32,
        Contracts.V1.DType.Float64 => Engine.Tensors.DType.Float64,
        Contracts.V1.DType.Int64 => Engine.Tensors.DType.Int64,
        Contracts.V1.DType.Bool => Engine.Tensors.DType.Bool,
        _ => throw EngineException.InvalidTensor($"unknown dtype {(int)d}"),
    };

    public static Contracts.V1.DType ToProto(Engine.Tensors.DType d) => d switch
    {
        Engine.Tensors.DType.Float32 => Contracts.V1.DType.Float32,
        Engine.Tensors.DType.Float64 => Contracts.V1.DType.Float64,
        Engine.Tensors.DType.Int64 => Contracts.V1.DType.Int64,
        _ => Contracts.V1.DType.Bool,
    };

    public static HostTensor ToEngine(ProtoTensor t, string name, long maxElements = long.MaxValue)
    {
        try
        {
            var dtype = ToEngine(t.Dtype);
            var shape = Shape.FromLongs(t.Shape.ToArray());
            if (shape.ElementCount > maxElements)
                throw EngineException.InvalidTensor($"tensor '{name}' has {shape.ElementCount} elements, over the limit of {maxElements}", name);

            int fields = (t.Raw.IsEmpty ? 0 : 1) + (t.FloatData.Count > 0 ? 1 : 0) + (t.DoubleData.Count > 0 ? 1 : 0)
                + (t.Int64Data.Count > 0 ? 1 : 0) + (t.BoolData.Count > 0 ? 1 : 0);
            if (fields > 1) throw EngineException.InvalidTensor($"tensor '{name}' sets more than one data field", name);
            if (!t.Raw.IsEmpty)
            {
                long expected = shape.ElementCount * dtype.SizeOf(); // exact: shapes are held to Shape.MaxElements
                if (t.Raw.Length != expected)
                    throw EngineException.InvalidTensor($"tensor '{name}': {t.Raw.Length} raw bytes do not fill shape {shape} of {dtype.WireName()} ({expected} bytes)", name);
                return HostTensor.FromLittleEndian(dtype, shape, t.Raw.Span);
            }
            Array data = dtype switch
            {
                Engine.Tensors.DType.Float32 => Typed(t.FloatData, t, name, "float_data"),
                Engine.Tensors.DType.Float64 => Typed(t.DoubleData, t, name, "double_data"),
                Engine.Tensors.DType.Int64 => Typed(t.Int64Data, t, name, "int64_data"),
                _ => Typed(t.BoolData, t, name, "bool_data"),
            };
            if (data.LongLength != shape.ElementCount)
                throw EngineException.InvalidTensor($"tensor '{name}': {data.LongLength} values do not fill shape {shape} ({shape.ElementCount} elements)", name);
            return new HostTensor(dtype, shape, data);
        }
        catch (EngineException e) when (e.Input is null)
        {
            var shown = Clip(name);
            throw EngineException.InvalidTensor($"tensor '{shown}': {e.Detail}", shown);
        }
    }

    private static T[] Typed<T>(Google.Protobuf.Collections.RepeatedField<T> field, ProtoTensor t, string name, string expected)
    {
        bool otherSet = (t.FloatData.Count + t.DoubleData.Count + t.Int64Data.Count + t.BoolData.Count) > field.Count;
        if (otherSet)
            throw EngineException.InvalidTensor($"tensor '{name}' is {ToEngine(t.Dtype).WireName()}; its values belong in {expected} or raw", name);
        return field.ToArray();
    }

    /// <summary>A tensor as protobuf: raw bytes by default (compact), or typed repeated fields.</summary>
    public static ProtoTensor ToProto(HostTensor t, bool typed = false)
    {
        var p = new ProtoTensor { Dtype = ToProto(t.DType) };
        foreach (var d in t.Shape.Dims) p.Shape.Add(d);
        if (!typed)
        {
            p.Raw = UnsafeByteOperations.UnsafeWrap(t.LittleEndianMemory); // the tensor's own bytes, not a copy: it never changes
            return p;
        }
        switch (t.Data)
        {
            case float[] f: p.FloatData.Add(f); break;
            case double[] d: p.DoubleData.Add(d); break;
            case long[] l: p.Int64Data.Add(l); break;
            case bool[] b: p.BoolData.Add(b); break;
        }
        return p;
    }

    /// <summary>A protobuf graph, refused as soon as it passes a limit (nodes, names, nesting) of <paramref name="limits"/>.</summary>
    public static Engine.Graphs.Graph ToEngine(ProtoGraph g, GraphLimits? limits = null) => ToEngine(g, (limits ?? GraphLimits.Default).Guard());

    private static Engine.Graphs.Graph ToEngine(ProtoGraph g, GraphSizeGuard guard)
    {
        var inputs = new List<Engine.Graphs.Parameter>(g.Inputs.Count);
        foreach (var p in g.Inputs)
        {
            guard.Name(p.Name);
            if (p.Shape.Count > Shape.MaxRank)
                throw EngineException.InvalidGraph($"input '{Clip(p.Name)}': shape has rank {p.Shape.Count}, over the maximum of {Shape.MaxRank}");
            var shape = p.HasShape || p.Shape.Count > 0
                ? p.Shape.Select(d => d is >= -1 and <= int.MaxValue ? (int)d : throw EngineException.InvalidGraph($"bad dimension {d} in input '{Clip(p.Name)}'")).ToArray()
                : null;
            inputs.Add(new Engine.Graphs.Parameter(p.Name, ToEngine(p.Dtype), shape));
        }
        var constants = new Dictionary<string, HostTensor>(g.Constants.Count);
        foreach (var (name, value) in g.Constants)
        {
            guard.Name(name);
            constants[name] = ToEngine(value, name);
        }
        var nodes = new List<Engine.Graphs.Node>(g.Nodes.Count);
        foreach (var n in g.Nodes)
        {
            guard.Node();
            guard.CheckLength(n.Op, "an op name");
            foreach (var name in n.Inputs) guard.CheckLength(name, "an input name");
            foreach (var name in n.Outputs) guard.CheckLength(name, "an output name");
            nodes.Add(new Engine.Graphs.Node(n.Op, n.Inputs.ToList(), n.Outputs.ToList(), ToEngine(n.Attrs, guard),
                string.IsNullOrEmpty(n.Name) ? null : n.Name));
        }
        return new Engine.Graphs.Graph(inputs, nodes, g.Outputs.ToList(), constants);
    }

    /// <summary>Attributes of a node or a session's apply command (subgraphs counted by <paramref name="guard"/>).</summary>
    public static Attributes ToEngine(IDictionary<string, Contracts.V1.Attribute> attrs, GraphSizeGuard? guard = null)
    {
        if (attrs.Count == 0) return Attributes.Empty;
        guard ??= GraphLimits.Default.Guard();
        var values = new List<KeyValuePair<string, AttrValue>>(attrs.Count);
        foreach (var (key, a) in attrs)
        {
            guard.CheckLength(key, "an attribute name");
            values.Add(KeyValuePair.Create(key, a.ValueCase switch
            {
                Contracts.V1.Attribute.ValueOneofCase.I => AttrValue.Int(a.I),
                Contracts.V1.Attribute.ValueOneofCase.F => AttrValue.Float(a.F),
                Contracts.V1.Attribute.ValueOneofCase.S => AttrValue.String(a.S),
                Contracts.V1.Attribute.ValueOneofCase.B => AttrValue.Bool(a.B),
                Contracts.V1.Attribute.ValueOneofCase.Ints => AttrValue.Ints(a.Ints.Values.ToArray()),
                Contracts.V1.Attribute.ValueOneofCase.Floats => AttrValue.Floats(a.Floats.Values.ToArray()),
                Contracts.V1.Attribute.ValueOneofCase.Tensor => AttrValue.Tensor(ToEngine(a.Tensor, key)),
                Contracts.V1.Attribute.ValueOneofCase.Graph => Subgraph(a.Graph, guard),
                _ => throw EngineException.InvalidGraph($"attribute '{Clip(key)}' has no value"),
            }));
        }
        return new Attributes(values);
    }

    private static AttrValue Subgraph(ProtoGraph g, GraphSizeGuard guard)
    {
        using var level = guard.Subgraph();
        return AttrValue.Graph(ToEngine(g, guard));
    }

    private static string Clip(string s) => EngineException.Clip(s);

    public static Dictionary<string, HostTensor> ToEngine(IDictionary<string, ProtoTensor> tensors, long maxElements) =>
        tensors.ToDictionary(kv => kv.Key, kv => ToEngine(kv.Value, kv.Key, maxElements));
}
