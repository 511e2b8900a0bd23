using System.Buffers.Binary;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AutogradService.Onnx;

/// <summary>ONNX element types and <c>TensorProto</c>s as the engine's dtypes and host tensors.</summary>
internal static class OnnxTensors
{
    /// <summary>
    /// The engine's dtype for an ONNX element type. Narrower integer types widen to int64 and float16 is refused: the
    /// engine computes in float32, float64, int64 and bool only.
    /// </summary>
    public static DType ToDType(int elemType, string what) => (DataType)elemType switch
    {
        DataType.Float => DType.Float32,
        DataType.Double => DType.Float64,
        DataType.Int64 or DataType.Int32 or DataType.Int16 or DataType.Int8 or DataType.Uint8 or DataType.Uint16 or DataType.Uint32 => DType.Int64,
        DataType.Bool => DType.Bool,
        var t => throw OnnxErrors.UnsupportedType(t.ToString(), what),
    };

    public static string Name(int elemType) => ((DataType)elemType).ToString().ToLowerInvariant();

    /// <summary>A tensor's values, from whichever field holds them (raw little-endian bytes or the typed lists).</summary>
    public static HostTensor ToHost(TensorProto t, string what)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new EngineException(ErrorCodes.InvalidGraph, $"{what} keeps its data in an external file; save the model with its tensors inside", input: what);
        var dims = new int[t.Dims.Count];
        for (int i = 0; i < dims.Length; i++)
        {
            long d = t.Dims[i];
            if (d < 0 || d > int.MaxValue) throw EngineException.InvalidTensor($"{what} has a bad dimension {d}", what);
            dims[i] = (int)d;
        }
        var shape = new Shape(dims);
        int n = checked((int)shape.ElementCount);
        var type = (DataType)t.DataType;
        var dtype = ToDType(t.DataType, what);
        var raw = t.RawData.Span;
        bool useRaw = !t.RawData.IsEmpty || n == 0;
        Array data;
        switch (type)
        {
            case DataType.Float:
                data = useRaw ? ReadRaw(raw, n, 4, what, b => BinaryPrimitives.ReadSingleLittleEndian(b)) : Exact(t.FloatData, n, what);
                break;
            case DataType.Double:
                data = useRaw ? ReadRaw(raw, n, 8, what, b => BinaryPrimitives.ReadDoubleLittleEndian(b)) : Exact(t.DoubleData, n, what);
                break;
            case DataType.Int64:
                data = useRaw ? ReadRaw(raw, n, 8, what, b => BinaryPrimitives.ReadInt64LittleEndian(b)) : Exact(t.Int64Data, n, what);
                break;
            case DataType.Int32 or DataType.Int16 or DataType.Int8 or DataType.Uint8 or DataType.Uint16:
            {
                int size = type switch { DataType.Int32 => 4, DataType.Int16 or DataType.Uint16 => 2, _ => 1 };
                data = useRaw
                    ? ReadRaw(raw, n, size, what, b => type switch
                    {
                        DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                        DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                        DataType.Uint16 => (long)BinaryPrimitives.ReadUInt16LittleEndian(b),
                        DataType.Int8 => (sbyte)b[0],
                        _ => (long)b[0],
                    })
                    : Array.ConvertAll(Exact(t.Int32Data, n, what), v => (long)v);
                break;
            }
            case DataType.Uint32:
                data = useRaw ? ReadRaw(raw, n, 4, what, b => (long)BinaryPrimitives.ReadUInt32LittleEndian(b))
                    : Array.ConvertAll(Exact(t.Uint64Data, n, what), v => (long)v);
                break;
            case DataType.Bool:
                data = useRaw ? ReadRaw(raw, n, 1, what, b => b[0] != 0) : Array.ConvertAll(Exact(t.Int32Data, n, what), v => v != 0);
                break;
            default:
                throw OnnxErrors.UnsupportedType(type.ToString(), what);
        }
        return new HostTensor(dtype, shape, data);
    }

    private delegate T Reader<T>(ReadOnlySpan<byte> bytes);

    private static T[] ReadRaw<T>(ReadOnlySpan<byte> raw, int n, int size, string what, Reader<T> read)
    {
        if (raw.Length != (long)n * size)
            throw EngineException.InvalidTensor($"{what} holds {raw.Length} bytes of data where its shape needs {(long)n * size}", what);
        var values = new T[n];
        for (int i = 0; i < n; i++) values[i] = read(raw.Slice(i * size, size));
        return values;
    }

    private static T[] Exact<T>(IList<T> values, int n, string what)
    {
        if (values.Count != n)
            throw EngineException.InvalidTensor($"{what} holds {values.Count} values where its shape needs {n}", what);
        return values.ToArray();
    }

    /// <summary>A host tensor as a <c>TensorProto</c> (raw data): how tests and tools write reference data.</summary>
    public static TensorProto FromHost(HostTensor h, string name = "")
    {
        var t = new TensorProto { Name = name };
        foreach (var d in h.Shape.ToArray()) t.Dims.Add(d);
        switch (h.Data)
        {
            case float[] f:
                t.DataType = (int)DataType.Float;
                t.FloatData.AddRange(f);
                break;
            case double[] d:
                t.DataType = (int)DataType.Double;
                t.DoubleData.AddRange(d);
                break;
            case long[] l:
                t.DataType = (int)DataType.Int64;
                t.Int64Data.AddRange(l);
                break;
            case bool[] b:
                t.DataType = (int)DataType.Bool;
                t.Int32Data.AddRange(b.Select(v => v ? 1 : 0));
                break;
        }
        return t;
    }
}
