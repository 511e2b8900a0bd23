using AutogradService.Engine;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using Onnx;

namespace AutogradService.Onnx;

/// <summary>Converts one ONNX node: returns a value per ONNX output (trailing optional ones may be left out).</summary>
internal delegate Val[] Converter(NodeContext c);

/// <summary>What a converter sees of its node: inputs as import values, attributes, and ways to emit engine ops.</summary>
internal sealed class NodeContext(IImportContext importer, NodeProto node, Val?[] inputs, GraphScope scope, long opset, string display)
{
    public IImportContext Importer => importer;
    public NodeProto Node => node;
    public GraphScope Scope => scope;
    public long Opset => opset;
    public string Display => display;
    public int InputCount => inputs.Length;

    public Val In(int i) => i < inputs.Length && inputs[i] is { } v ? v : throw Invalid($"input {i} is required");

    public Val? Opt(int i) => i < inputs.Length ? inputs[i] : null;

    public IEnumerable<Val> Present => inputs.Where(v => v is not null)!;

    public bool Wants(int output) => output < node.Output.Count && node.Output[output].Length > 0;

    public int OutputCount => node.Output.Count;

    private AttributeProto? Attr(string name)
    {
        foreach (var a in node.Attribute) if (a.Name == name) return a;
        return null;
    }

    public bool Has(string name) => Attr(name) is not null;
    public long Int(string name, long fallback) => Attr(name) is { } a ? a.I : fallback;
    public double Float(string name, double fallback) => Attr(name) is { } a ? a.F : fallback;
    public string Str(string name, string fallback) => Attr(name) is { } a ? a.S.ToStringUtf8() : fallback;
    public long[]? Ints(string name) => Attr(name) is { } a ? a.Ints.ToArray() : null;
    public float[]? Floats(string name) => Attr(name) is { } a ? a.Floats.ToArray() : null;
    public TensorProto? TensorAttr(string name) => Attr(name)?.T;
    public GraphProto? GraphAttr(string name) => Attr(name)?.G;

    public Val Emit(string op, params Val[] ins) => importer.Emit(scope, op, Attributes.Empty, ins);

    public Val Emit(string op, Attributes attrs, params Val[] ins) => importer.Emit(scope, op, attrs, ins);

    public static Val Const(HostTensor t) => Val.Of(t);

    public static Val Scalar(double value, DType dtype) => Val.Of(HostTensor.Scalar(value, dtype));

    /// <summary>Integer contents known at import (shapes, axes, indices), or <c>unsupported_op</c> saying why they must be.</summary>
    public long[] StaticInts(Val v, string what)
    {
        if (v.Value is not { } h) throw Unsupported($"needs {what} known at import, but it is computed at run time");
        return h.Data switch
        {
            long[] l => (long[])l.Clone(),
            bool[] b => Array.ConvertAll(b, x => x ? 1L : 0L),
            _ => Array.ConvertAll(h.ToDoubles(), x => (long)x),
        };
    }

    /// <summary>A 0-D or 1-D integer value's elements as far as import knows them (null: a size known only at run time).</summary>
    public static long?[]? KnownInts(Val v) => v.IsConst && v.Value!.Shape.Rank <= 1 && v.DType == DType.Int64
        ? Array.ConvertAll((long[])v.Value.Data, x => (long?)x)
        : v.Known;

    public double[] StaticDoubles(Val v, string what) =>
        v.Value is { } h ? h.ToDoubles() : throw Unsupported($"needs {what} known at import, but it is computed at run time");

    /// <summary>Every size of a value's shape, or <c>unsupported_op</c>: the conversion needs them at import.</summary>
    public int[] Dims(Val v, string what) => v.Shape?.ToArray()
        ?? throw Unsupported($"needs the shape of {what} known at import; give the model's inputs fixed sizes (or fix its symbolic dims at upload)");

    public int Rank(Val v, string what) => v.Rank
        ?? throw Unsupported($"needs the rank of {what} known at import");

    public int Axis(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1)) throw Invalid($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }

    /// <summary>Claims room for a value this conversion computes: <paramref name="elements"/> of <paramref name="dtype"/>.</summary>
    public void Reserve(long elements, DType dtype, string what) => importer.Reserve(elements * dtype.SizeOf(), $"{what} of node '{display}' ({node.OpType})");

    public EngineException Unsupported(string why) =>
        OnnxErrors.UnsupportedOp(node.OpType, node.Domain ?? "", opset, display, why);

    public EngineException Invalid(string message) => OnnxErrors.Invalid($"node '{display}' ({node.OpType}): {message}", display);
}
