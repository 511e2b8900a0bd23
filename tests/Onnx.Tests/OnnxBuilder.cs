using AutogradService.Engine.Tensors;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AutogradService.Onnx.Tests;

/// <summary>Writes small ONNX models from C#, with ONNX's own protobuf classes, for tests.</summary>
internal sealed class OnnxBuilder
{
    private readonly ModelProto _model;

    public OnnxBuilder(long opset = 17, string name = "test")
    {
        _model = new ModelProto { IrVersion = 8, ProducerName = "autograd-tests", Graph = new GraphProto { Name = name } };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    public GraphProto Graph => _model.Graph;

    /// <summary>A graph input; -1 sizes become the symbolic dimension "N".</summary>
    public OnnxBuilder Input(string name, DataType type, params long[] dims)
    {
        _model.Graph.Input.Add(ValueInfo(name, type, dims));
        return this;
    }

    public OnnxBuilder Output(string name)
    {
        _model.Graph.Output.Add(new ValueInfoProto { Name = name });
        return this;
    }

    public OnnxBuilder Initializer(string name, HostTensor value)
    {
        _model.Graph.Initializer.Add(OnnxTensors.FromHost(value, name));
        return this;
    }

    public OnnxBuilder Node(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attrs)
    {
        _model.Graph.Node.Add(NodeProto(op, inputs, outputs, attrs));
        return this;
    }

    public byte[] Bytes() => _model.ToByteArray();

    public static ValueInfoProto ValueInfo(string name, DataType type, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(d >= 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public static NodeProto NodeProto(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attrs)
    {
        var node = new NodeProto { OpType = op, Name = outputs.FirstOrDefault() ?? op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        foreach (var (name, value) in attrs) node.Attribute.Add(Attribute(name, value));
        return node;
    }

    /// <summary>A subgraph (If branches, Loop bodies): inputs without shapes, outputs by name.</summary>
    public static GraphProto Subgraph(string name, (string Name, DataType Type)[] inputs, string[] outputs, params NodeProto[] nodes)
    {
        var g = new GraphProto { Name = name };
        foreach (var (n, t) in inputs) g.Input.Add(new ValueInfoProto { Name = n, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)t } } });
        foreach (var o in outputs) g.Output.Add(new ValueInfoProto { Name = o });
        g.Node.AddRange(nodes);
        return g;
    }

    private static AttributeProto Attribute(string name, object value) => value switch
    {
        int i => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = i },
        long l => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = l },
        float f => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = f },
        double d => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)d },
        string s => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(s) },
        long[] ls => WithInts(name, ls),
        GraphProto g => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = g },
        HostTensor t => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = OnnxTensors.FromHost(t) },
        _ => throw new ArgumentException($"no ONNX attribute form for {value.GetType().Name}"),
    };

    private static AttributeProto WithInts(string name, long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>Reproducible float64 values in [-1, 1).</summary>
    public static HostTensor Random(int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var s = new Shape(shape);
        var values = new double[s.ElementCount];
        for (int i = 0; i < values.Length; i++) values[i] = rng.NextDouble() * 2 - 1;
        return new HostTensor(DType.Float64, s, values);
    }

    public static HostTensor Longs(params long[] values) => HostTensor.Of(values, values.Length);
}
