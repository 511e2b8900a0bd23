using System.Runtime.InteropServices;

namespace AutogradService.Engine.Tensors;

/// <summary>
/// A tensor held in managed memory outside any scope: graph constants, tensor attributes, stored models, and
/// values crossing the API boundary. <see cref="Data"/> is a float[], double[], long[] or bool[] matching the dtype.
/// </summary>
public sealed class HostTensor
{
    public HostTensor(DType dtype, Shape shape, Array data)
    {
        if (data.LongLength != shape.ElementCount)
            throw EngineException.InvalidTensor($"{data.LongLength} values do not fill shape {shape} ({shape.ElementCount} elements)");
        var expected = dtype switch
        {
            DType.Float32 => typeof(float[]),
            DType.Float64 => typeof(double[]),
            DType.Int64 => typeof(long[]),
            _ => typeof(bool[]),
        };
        if (data.GetType() != expected)
            throw EngineException.InvalidTensor($"{dtype.WireName()} data must be a {expected.Name}, got {data.GetType().Name}");
        DType = dtype;
        Shape = shape;
        Data = data;
    }

    public DType DType { get; }
    public Shape Shape { get; }
    public Array Data { get; }
    public TensorType Type => new(Shape, DType);

    public static HostTensor Scalar(double value, DType dtype = DType.Float32) => FromDoubles(dtype, Shape.Scalar, [value]);

    public static HostTensor Of(float[] data, params int[] shape) => new(DType.Float32, shape.Length == 0 && data.Length != 1 ? Shape.Vector(data.Length) : new Shape(shape), data);

    public static HostTensor Of(double[] data, params int[] shape) => new(DType.Float64, shape.Length == 0 && data.Length != 1 ? Shape.Vector(data.Length) : new Shape(shape), data);

    public static HostTensor Of(long[] data, params int[] shape) => new(DType.Int64, shape.Length == 0 && data.Length != 1 ? Shape.Vector(data.Length) : new Shape(shape), data);

    /// <summary>Builds a tensor of any dtype from doubles (narrowing as the dtype requires).</summary>
    public static HostTensor FromDoubles(DType dtype, Shape shape, ReadOnlySpan<double> values)
    {
        Array data = dtype switch
        {
            DType.Float32 => ConvertAll(values, v => (float)v),
            DType.Float64 => values.ToArray(),
            DType.Int64 => ConvertAll(values, v => (long)v),
            _ => ConvertAll(values, v => v != 0),
        };
        return new HostTensor(dtype, shape, data);
    }

    private static T[] ConvertAll<T>(ReadOnlySpan<double> values, Func<double, T> f)
    {
        var r = new T[values.Length];
        for (int i = 0; i < r.Length; i++) r[i] = f(values[i]);
        return r;
    }

    /// <summary>
    /// A tensor whose array is not cleared first, for a decoder that writes every element (through
    /// <see cref="WritableBytes"/> or <see cref="Data"/>) before anyone else sees it: large inputs skip a pass over memory.
    /// </summary>
    public static HostTensor Uninitialized(DType dtype, Shape shape) => new(dtype, shape, dtype switch
    {
        DType.Float32 => GC.AllocateUninitializedArray<float>((int)shape.ElementCount),
        DType.Float64 => GC.AllocateUninitializedArray<double>((int)shape.ElementCount),
        DType.Int64 => GC.AllocateUninitializedArray<long>((int)shape.ElementCount),
        _ => GC.AllocateUninitializedArray<bool>((int)shape.ElementCount),
    });

    /// <summary>
    /// The tensor's wire bytes: little-endian elements, a bool as one byte 0 or 1 (which is how .NET holds a bool).
    /// This is the one byte codec behind gRPC's <c>raw</c>, JSON's <c>b64</c> and the binary REST body. A view, no copy.
    /// </summary>
    public ReadOnlySpan<byte> LittleEndianBytes => WritableBytes;

    /// <summary>
    /// The wire bytes as memory over the tensor's own array, valid as long as the tensor: for a message that wraps its
    /// bytes instead of copying them (gRPC's <c>raw</c> in answers). A tensor's values never change once it is made,
    /// so the wrapped bytes cannot change under the message.
    /// </summary>
    public ReadOnlyMemory<byte> LittleEndianMemory => new ArrayBytes(Data, (int)ByteCount).Memory;

    /// <summary>Number of wire bytes: elements × element size (exact: shapes are held to <see cref="Shape.MaxElements"/>).</summary>
    public long ByteCount => Shape.ElementCount * DType.SizeOf();

    /// <summary>The bytes of <see cref="Data"/>, for a decoder filling a tensor it just made with <see cref="Uninitialized"/>.</summary>
    public Span<byte> WritableBytes
    {
        get
        {
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
            return MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(Data), (int)ByteCount);
        }
    }

    /// <summary>
    /// A tensor from its wire bytes (<see cref="LittleEndianBytes"/>), copied once; the length must be exactly what
    /// the shape and dtype need. Bool bytes other than 0 are true.
    /// </summary>
    public static HostTensor FromLittleEndian(DType dtype, Shape shape, ReadOnlySpan<byte> bytes)
    {
        long expected = shape.ElementCount * dtype.SizeOf();
        if (bytes.Length != expected)
            throw EngineException.InvalidTensor($"{bytes.Length} bytes do not fill shape {shape} of {dtype.WireName()} ({expected} bytes)");
        var t = Uninitialized(dtype, shape);
        bytes.CopyTo(t.WritableBytes);
        if (dtype == DType.Bool) t.NormalizeBools();
        return t;
    }

    /// <summary>Makes every bool byte 0 or 1 after raw bytes were written into a bool tensor (any non-zero byte is true).</summary>
    public void NormalizeBools()
    {
        if (Data is not bool[]) return;
        var bytes = WritableBytes;
        for (int i = 0; i < bytes.Length; i++) bytes[i] = bytes[i] != 0 ? (byte)1 : (byte)0;
    }

    public double[] ToDoubles() => Data switch
    {
        float[] f => Array.ConvertAll(f, v => (double)v),
        double[] d => (double[])d.Clone(),
        long[] l => Array.ConvertAll(l, v => (double)v),
        bool[] b => Array.ConvertAll(b, v => v ? 1.0 : 0.0),
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Copies the values into a new tensor of <paramref name="scope"/>.</summary>
    public Tensor ToTensor(ExecutionScope scope)
    {
        var t = scope.Allocate(Shape, DType);
        ReadOnlySpan<byte> bytes = Data switch
        {
            float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
            double[] d => MemoryMarshal.AsBytes(d.AsSpan()),
            long[] l => MemoryMarshal.AsBytes(l.AsSpan()),
            bool[] b => MemoryMarshal.AsBytes(b.AsSpan()),
            _ => throw new InvalidOperationException(),
        };
        scope.Backend.Upload(bytes, t);
        return t;
    }

    /// <summary>Copies a scope tensor out into managed memory.</summary>
    public static HostTensor From(Tensor t) => t.DType switch
    {
        DType.Float32 => new HostTensor(t.DType, t.Shape, t.ToArray<float>()),
        DType.Float64 => new HostTensor(t.DType, t.Shape, t.ToArray<double>()),
        DType.Int64 => new HostTensor(t.DType, t.Shape, t.ToArray<long>()),
        _ => new HostTensor(t.DType, t.Shape, t.ToArray<bool>()),
    };

    public override string ToString() => $"HostTensor({Type})";

    /// <summary>An array of any element type seen as its bytes, pinned only while a reader holds it pinned.</summary>
    private sealed class ArrayBytes(Array array, int length) : System.Buffers.MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(array), length);

        public override unsafe System.Buffers.MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
            return new System.Buffers.MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
