using System.Runtime.InteropServices;
using AutogradService.Contracts.V1;
using Google.Protobuf;
using NumericsTensor = System.Numerics.Tensors.Tensor;

namespace AutogradService.Client;

/// <summary>
/// The contract's <see cref="Tensor"/> from and to .NET arrays, spans and <see cref="System.Numerics.Tensors.Tensor{T}"/>.
/// Values travel as raw little-endian bytes (one copy, exact); reading accepts whichever field the server filled.
/// </summary>
public static class Tensors
{
    public static Tensor Scalar(float value) => From([value], []);

    public static Tensor Scalar(double value) => From([value], []);

    public static Tensor Scalar(long value) => From([value], []);

    /// <summary>A float32 tensor; with no shape, a vector of the data's length.</summary>
    public static Tensor From(ReadOnlySpan<float> data, params ReadOnlySpan<long> shape) => Raw(DType.Float32, MemoryMarshal.AsBytes(data), data.Length, shape);

    public static Tensor From(ReadOnlySpan<double> data, params ReadOnlySpan<long> shape) => Raw(DType.Float64, MemoryMarshal.AsBytes(data), data.Length, shape);

    public static Tensor From(ReadOnlySpan<long> data, params ReadOnlySpan<long> shape) => Raw(DType.Int64, MemoryMarshal.AsBytes(data), data.Length, shape);

    public static Tensor From(ReadOnlySpan<bool> data, params ReadOnlySpan<long> shape) => Raw(DType.Bool, MemoryMarshal.AsBytes(data), data.Length, shape);

    public static Tensor From(float[] data, params long[] shape) => From(data.AsSpan(), shape.AsSpan());

    public static Tensor From(double[] data, params long[] shape) => From(data.AsSpan(), shape.AsSpan());

    public static Tensor From(long[] data, params long[] shape) => From(data.AsSpan(), shape.AsSpan());

    public static Tensor From(bool[] data, params long[] shape) => From(data.AsSpan(), shape.AsSpan());

    /// <summary>A row-major 2-D array as a [rows, columns] tensor.</summary>
    public static Tensor From(float[,] data) => From(MemoryMarshal.CreateReadOnlySpan(ref data[0, 0], data.Length), data.GetLongLength(0), data.GetLongLength(1));

    public static Tensor From(double[,] data) => From(MemoryMarshal.CreateReadOnlySpan(ref data[0, 0], data.Length), data.GetLongLength(0), data.GetLongLength(1));

    /// <summary>A System.Numerics.Tensors tensor (float32), its lengths as the shape.</summary>
    public static Tensor From(System.Numerics.Tensors.Tensor<float> tensor)
    {
        var data = new float[tensor.FlattenedLength];
        tensor.FlattenTo(data);
        return From(data.AsSpan(), Lengths(tensor.Lengths));
    }

    public static Tensor From(System.Numerics.Tensors.Tensor<double> tensor)
    {
        var data = new double[tensor.FlattenedLength];
        tensor.FlattenTo(data);
        return From(data.AsSpan(), Lengths(tensor.Lengths));
    }

    /// <summary>A type without values (for inspect): dtype and shape only.</summary>
    public static Tensor Spec(DType dtype, params long[] shape)
    {
        var t = new Tensor { Dtype = dtype };
        t.Shape.Add(shape);
        return t;
    }

    private static long[] Lengths(ReadOnlySpan<nint> lengths)
    {
        var shape = new long[lengths.Length];
        for (int i = 0; i < shape.Length; i++) shape[i] = lengths[i];
        return shape;
    }

    private static Tensor Raw(DType dtype, ReadOnlySpan<byte> bytes, int length, ReadOnlySpan<long> shape)
    {
        var t = new Tensor { Dtype = dtype };
        if (shape.IsEmpty && length != 1)
            t.Shape.Add(length); // a vector unless it is one element, which reads as a scalar
        else
            foreach (var d in shape) t.Shape.Add(d);
        long expected = 1;
        foreach (var d in t.Shape) expected *= d;
        if (expected != length)
            throw new ArgumentException($"the shape [{string.Join(", ", t.Shape)}] holds {expected} elements, the data {length}");
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the wire format is little-endian");
        t.Raw = ByteString.CopyFrom(bytes);
        return t;
    }

    /// <summary>The number of elements the shape holds.</summary>
    public static long ElementCount(this Tensor tensor)
    {
        long n = 1;
        foreach (var d in tensor.Shape) n *= d;
        return n;
    }

    /// <summary>The shape as an int array (for .NET arrays and spans).</summary>
    public static int[] Dimensions(this Tensor tensor) => tensor.Shape.Select(d => checked((int)d)).ToArray();

    public static float[] ToFloatArray(this Tensor tensor)
    {
        var result = new float[tensor.ElementCount()];
        tensor.CopyTo(result.AsSpan());
        return result;
    }

    public static double[] ToDoubleArray(this Tensor tensor)
    {
        var result = new double[tensor.ElementCount()];
        tensor.CopyTo(result.AsSpan());
        return result;
    }

    public static long[] ToInt64Array(this Tensor tensor)
    {
        var result = new long[tensor.ElementCount()];
        tensor.CopyTo(result.AsSpan());
        return result;
    }

    public static bool[] ToBoolArray(this Tensor tensor)
    {
        var result = new bool[tensor.ElementCount()];
        tensor.CopyTo(result.AsSpan());
        return result;
    }

    /// <summary>The one element of a scalar (or one-element) tensor, whatever its dtype, as a double.</summary>
    public static double ToScalar(this Tensor tensor)
    {
        if (tensor.ElementCount() != 1)
            throw new InvalidOperationException($"a scalar has one element; this tensor has shape [{string.Join(", ", tensor.Shape)}]");
        return tensor.Dtype switch
        {
            DType.Float32 => tensor.ToFloatArray()[0],
            DType.Float64 => tensor.ToDoubleArray()[0],
            DType.Int64 => tensor.ToInt64Array()[0],
            DType.Bool => tensor.ToBoolArray()[0] ? 1 : 0,
            _ => throw new NotSupportedException($"dtype {tensor.Dtype}"),
        };
    }

    public static System.Numerics.Tensors.Tensor<float> ToNumericsTensor(this Tensor tensor) =>
        NumericsTensor.Create(tensor.ToFloatArray(), tensor.Shape.Select(d => checked((nint)d)).ToArray());

    public static System.Numerics.Tensors.Tensor<double> ToNumericsTensorOfDouble(this Tensor tensor) =>
        NumericsTensor.Create(tensor.ToDoubleArray(), tensor.Shape.Select(d => checked((nint)d)).ToArray());

    public static void CopyTo(this Tensor tensor, Span<float> destination) =>
        Copy(tensor, DType.Float32, destination, t => t.FloatData);

    public static void CopyTo(this Tensor tensor, Span<double> destination) =>
        Copy(tensor, DType.Float64, destination, t => t.DoubleData);

    public static void CopyTo(this Tensor tensor, Span<long> destination) =>
        Copy(tensor, DType.Int64, destination, t => t.Int64Data);

    public static void CopyTo(this Tensor tensor, Span<bool> destination) =>
        Copy(tensor, DType.Bool, destination, t => t.BoolData);

    private static void Copy<T>(Tensor tensor, DType dtype, Span<T> destination, Func<Tensor, IList<T>> typed) where T : struct
    {
        if (tensor.Dtype != dtype)
            throw new InvalidOperationException($"the tensor is {Name(tensor.Dtype)}, not {Name(dtype)}");
        long count = tensor.ElementCount();
        if (destination.Length < count)
            throw new ArgumentException($"the destination holds {destination.Length} elements, the tensor {count}");
        if (!tensor.Raw.IsEmpty)
        {
            var raw = tensor.Raw.Span;
            if (raw.Length != count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>())
                throw new InvalidOperationException($"raw data of {raw.Length} bytes does not hold {count} {Name(dtype)} elements");
            MemoryMarshal.Cast<byte, T>(raw).CopyTo(destination);
            return;
        }
        var values = typed(tensor);
        if (values.Count != count)
            throw new InvalidOperationException($"{values.Count} values do not fill the shape [{string.Join(", ", tensor.Shape)}]");
        for (int i = 0; i < values.Count; i++) destination[i] = values[i];
    }

    internal static string Name(DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Int64 => "int64",
        DType.Bool => "bool",
        _ => dtype.ToString(),
    };

    internal static DType Parse(string? name) => name switch
    {
        null or "float32" => DType.Float32,
        "float64" => DType.Float64,
        "int64" => DType.Int64,
        "bool" => DType.Bool,
        _ => throw new AutogradException("invalid_tensor", $"unknown dtype '{name}'"),
    };

}
