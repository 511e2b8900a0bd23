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
            if (t.Shape.Count > Shape.MaxRank)
                throw EngineException.InvalidTensor($"tensor '{name}': rank {t.Shape.Count} is over the maximum of {Shape.MaxRank}", name);
            var dims = new int[t.Shape.Count];
            for (int i = 0; i < dims.Length; i++)
                dims[i] = t.Shape[i] is >= 0 and <= int.MaxValue ? (int)t.Shape[i] : throw EngineException.InvalidTensor($"tensor '{name}': bad dimension {t.Shape[i]}", name);
            var shape = new Shape(dims);
            if (shape.ElementCount > maxElements)
                throw EngineException.InvalidTensor($"tensor '{name}' has {shape.ElementCount} elements, over the limit of {maxElements}", name);

            int fields = (t.Raw.IsEmpty ? 0 : 1) + (t.FloatData.Count > 0 ? 1 : 0) + (t.DoubleData.Count > 0 ? 1 : 0)
                + (t.Int64Data.Count > 0 ? 1 : 0) + (t.BoolData.Count > 0 ? 1 : 0);
            if (fields > 1) throw EngineException.InvalidTensor($"tensor '{name}' sets more than one data field", name);
            if (!t.Raw.IsEmpty)
            {
                long expected = shape.ElementCount * dtype.SizeOf();
                if (t.Raw.Length != expected)
                    throw EngineException.InvalidTensor($"tensor '{name}': {t.Raw.Length} raw bytes do not fill shape {shape} of {dtype.WireName()} ({expected} bytes)", name);
                return TensorJson.FromRaw(dtype, shape, t.Raw.Span);
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
            throw EngineException.InvalidTensor($"tensor '{name}': {e.Detail}", name);
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
            p.Raw = ByteString.CopyFrom(TensorJson.ToRaw(t));
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

    public static Engine.Graphs.Graph ToEngine(ProtoGraph g, int depth = 0)
    {
        if (depth > 16) throw EngineException.InvalidGraph("subgraphs are nested more than 16 deep");
        var inputs = g.Inputs.Select(p => new Engine.Graphs.Parameter(p.Name, ToEngine(p.Dtype),
            p.HasShape || p.Shape.Count > 0 ? p.Shape.Select(d => d is >= -1 and <= int.MaxValue ? (int)d : throw EngineException.InvalidGraph($"bad dimension {d} in input '{p.Name}'")).ToArray() : null)).ToList();
        var nodes = g.Nodes.Select(n => new Engine.Graphs.Node(n.Op, n.Inputs.ToList(), n.Outputs.ToList(), ToEngine(n.Attrs, depth),
            string.IsNullOrEmpty(n.Name) ? null : n.Name)).ToList();
        var constants = g.Constants.ToDictionary(kv => kv.Key, kv => ToEngine(kv.Value, kv.Key));
        return new Engine.Graphs.Graph(inputs, nodes, g.Outputs.ToList(), constants);
    }

    public static Attributes ToEngine(IDictionary<string, Contracts.V1.Attribute> attrs, int depth = 0)
    {
        if (attrs.Count == 0) return Attributes.Empty;
        return new Attributes(attrs.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ValueCase switch
        {
            Contracts.V1.Attribute.ValueOneofCase.I => AttrValue.Int(kv.Value.I),
            Contracts.V1.Attribute.ValueOneofCase.F => AttrValue.Float(kv.Value.F),
            Contracts.V1.Attribute.ValueOneofCase.S => AttrValue.String(kv.Value.S),
            Contracts.V1.Attribute.ValueOneofCase.B => AttrValue.Bool(kv.Value.B),
            Contracts.V1.Attribute.ValueOneofCase.Ints => AttrValue.Ints(kv.Value.Ints.Values.ToArray()),
            Contracts.V1.Attribute.ValueOneofCase.Floats => AttrValue.Floats(kv.Value.Floats.Values.ToArray()),
            Contracts.V1.Attribute.ValueOneofCase.Tensor => AttrValue.Tensor(ToEngine(kv.Value.Tensor, kv.Key)),
            Contracts.V1.Attribute.ValueOneofCase.Graph => AttrValue.Graph(ToEngine(kv.Value.Graph, depth + 1)),
            _ => throw EngineException.InvalidGraph($"attribute '{kv.Key}' has no value"),
        })));
    }

    public static Dictionary<string, HostTensor> ToEngine(IDictionary<string, ProtoTensor> tensors, long maxElements) =>
        tensors.ToDictionary(kv => kv.Key, kv => ToEngine(kv.Value, kv.Key, maxElements));
}
