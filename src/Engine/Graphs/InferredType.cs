using System.Text;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// What shape inference knows of a value before it runs: maybe its dtype, maybe its rank, and per dimension its
/// size or -1 (any). Fully known types turn into <see cref="TensorType"/>; the rest is checked at run time.
/// </summary>
public sealed class InferredType : IEquatable<InferredType>
{
    private readonly int[]? _dims;

    public InferredType(DType? dtype, IReadOnlyList<int>? dims)
    {
        DType = dtype;
        if (dims is not null)
        {
            if (dims.Count > Shape.MaxRank)
                throw EngineException.InvalidGraph($"rank {dims.Count} is over the maximum of {Shape.MaxRank}");
            _dims = new int[dims.Count];
            for (int i = 0; i < _dims.Length; i++) _dims[i] = dims[i] < 0 ? -1 : dims[i];
        }
    }

    public static InferredType Unknown { get; } = new(null, null);

    public static InferredType From(TensorType t) => new(t.DType, t.Shape.ToArray());

    public static InferredType From(Parameter p) => new(p.DType, p.Shape);

    public static InferredType OfDType(DType? dtype) => dtype is null ? Unknown : new(dtype, null);

    public DType? DType { get; }

    /// <summary>The dimensions (-1 = any size), or null when even the rank is unknown.</summary>
    public IReadOnlyList<int>? Dims => _dims;

    public int? Rank => _dims?.Length;

    public bool IsKnown => DType is not null && _dims is not null && Array.TrueForAll(_dims, d => d >= 0);

    public TensorType ToTensorType() => IsKnown
        ? new TensorType(new Shape(_dims!), DType!.Value)
        : throw new InvalidOperationException($"type {this} is not fully known");

    /// <summary>A concrete type this one accepts: unknown dims become <paramref name="dim"/>, an unknown rank a scalar, an unknown dtype float32.</summary>
    internal TensorType Assume(int dim) => new(
        _dims is null ? Shape.Scalar : new Shape(Array.ConvertAll(_dims, d => d < 0 ? dim : d)),
        DType ?? Tensors.DType.Float32);

    /// <summary>Element count when the shape is known.</summary>
    public long? ElementCount
    {
        get
        {
            if (_dims is null) return null;
            long n = 1;
            foreach (var d in _dims)
            {
                if (d < 0) return null;
                n *= d;
            }
            return n;
        }
    }

    public long? ByteCount => ElementCount is { } n && DType is { } d ? n * d.SizeOf() : null;

    /// <summary>True when a value of type <paramref name="actual"/> may have this type.</summary>
    public bool Accepts(TensorType actual) => Accepts(From(actual));

    public bool Accepts(InferredType other) =>
        (DType is null || other.DType is null || DType == other.DType) && ShapesCompatible(this, other);

    /// <summary>True when some shape fits both (ignoring dtype).</summary>
    public static bool ShapesCompatible(InferredType a, InferredType b) => a._dims is null || b._dims is null || MeetDims(a._dims, b._dims) is not null;

    /// <summary>The most specific type both describe (null when the shapes conflict); dtypes must agree where known.</summary>
    public static InferredType? Meet(InferredType a, InferredType b)
    {
        if (a.DType is { } da && b.DType is { } db && da != db) return null;
        var dtype = a.DType ?? b.DType;
        if (a._dims is null) return new InferredType(dtype, b._dims);
        if (b._dims is null) return new InferredType(dtype, a._dims);
        var dims = MeetDims(a._dims, b._dims);
        return dims is null ? null : new InferredType(dtype, dims);
    }

    private static int[]? MeetDims(int[] a, int[] b)
    {
        if (a.Length != b.Length) return null;
        var dims = new int[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) return null;
            dims[i] = a[i] >= 0 ? a[i] : b[i];
        }
        return dims;
    }

    /// <summary>The least specific type covering both (for loop-carried values and branch results).</summary>
    public static InferredType Join(InferredType a, InferredType b)
    {
        var dtype = a.DType == b.DType ? a.DType : null;
        if (a._dims is null || b._dims is null || a._dims.Length != b._dims.Length) return new InferredType(dtype, null);
        var dims = new int[a._dims.Length];
        for (int i = 0; i < dims.Length; i++) dims[i] = a._dims[i] == b._dims[i] ? a._dims[i] : -1;
        return new InferredType(dtype, dims);
    }

    public bool Equals(InferredType? other) =>
        other is not null && DType == other.DType &&
        (_dims is null ? other._dims is null : other._dims is not null && _dims.AsSpan().SequenceEqual(other._dims));

    public override bool Equals(object? obj) => Equals(obj as InferredType);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(DType);
        h.Add(_dims?.Length ?? -1);
        if (_dims is not null) foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary><c>float32[2, ?]</c>, <c>float32[*]</c> (any rank), <c>?[3]</c> (unknown dtype).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(DType?.WireName() ?? "?");
        if (_dims is null) return sb.Append("[*]").ToString();
        sb.Append('[');
        for (int i = 0; i < _dims.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(_dims[i] < 0 ? "?" : _dims[i].ToString());
        }
        return sb.Append(']').ToString();
    }
}
