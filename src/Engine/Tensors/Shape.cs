using System.Text;

namespace AutogradService.Engine.Tensors;

/// <summary>
/// An immutable row-major shape of rank 0 to <see cref="MaxRank"/>. Equality is by dimensions. Every shape is checked
/// when it is made: no negative dimension, and at most <see cref="MaxElements"/> elements, so its element count, byte
/// count and strides are exact (never wrapped) and a tensor's claimed size always matches the buffer behind it.
/// </summary>
public readonly struct Shape : IEquatable<Shape>
{
    public const int MaxRank = 8;

    /// <summary>
    /// The most elements any tensor may have: its bytes (at most 8 per element) still fit a span's int length. The
    /// product of the non-zero dimensions is held to it too, so strides stay small even when a dimension is 0.
    /// </summary>
    public const long MaxElements = int.MaxValue / 8;

    private static readonly int[] Empty = [];
    private readonly int[]? _dims;
    private readonly long _elements;

    public Shape(params int[] dims)
        : this((int[])dims.Clone(), Count(dims))
    {
    }

    private Shape(int[] dims, long elements)
    {
        _dims = dims;
        _elements = elements;
    }

    /// <summary>Wraps an array the caller promises not to mutate (checked like every shape).</summary>
    internal static Shape Own(int[] dims) => new(dims, Count(dims));

    /// <summary>
    /// A shape from a list of 64-bit dimensions (an attribute, a wire message): each must be 0 to int.MaxValue and
    /// the whole within the limits above; errors name <paramref name="what"/>.
    /// </summary>
    public static Shape FromLongs(ReadOnlySpan<long> dims, string what = "shape")
    {
        if (dims.Length > MaxRank)
            throw EngineException.InvalidTensor($"{what} has rank {dims.Length}, over the maximum of {MaxRank}");
        var ints = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue)
                throw EngineException.InvalidTensor($"bad dimension {dims[i]} in {what} [{string.Join(", ", dims.ToArray())}]");
            ints[i] = (int)dims[i];
        }
        return Own(ints);
    }

    /// <summary>The element count of <paramref name="dims"/>, refusing negative dimensions and overlarge products.</summary>
    private static long Count(ReadOnlySpan<int> dims)
    {
        if (dims.Length > MaxRank)
            throw EngineException.InvalidTensor($"rank {dims.Length} is over the maximum of {MaxRank}");
        long nonZero = 1;
        bool empty = false;
        foreach (var d in dims)
        {
            if (d < 0) throw EngineException.InvalidTensor($"negative dimension {d} in shape {Format(dims)}");
            if (d == 0)
            {
                empty = true;
                continue;
            }
            // nonZero is at most MaxElements (< 2^28) and d below 2^31, so the product fits a long before the test.
            nonZero *= d;
            if (nonZero > MaxElements)
                throw EngineException.InvalidTensor($"shape {Format(dims)} has more than {MaxElements} elements, the most a tensor may have");
        }
        return empty ? 0 : nonZero;
    }

    public static Shape Scalar => new(Empty, 1);

    public static Shape Vector(int n) => new(new[] { n }, Count([n]));

    public ReadOnlySpan<int> Dims => _dims ?? Empty;

    public int Rank => Dims.Length;

    public int this[int axis] => Dims[axis];

    /// <summary>The number of elements (1 for a scalar), exact: at most <see cref="MaxElements"/>.</summary>
    public long ElementCount => _dims is null ? 1 : _elements;

    public int[] ToArray() => Dims.ToArray();

    /// <summary>Row-major strides in elements.</summary>
    public long[] Strides()
    {
        var dims = Dims;
        var strides = new long[dims.Length];
        long s = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= dims[i];
        }
        return strides;
    }

    /// <summary>Maps a possibly negative axis into [0, rank).</summary>
    public int NormalizeAxis(int axis, string? op = null)
    {
        int n = Math.Max(Rank, 1); // a scalar takes axis 0 or -1, as in PyTorch
        int a = axis < 0 ? axis + n : axis;
        if (a < 0 || a >= n)
            throw EngineException.InvalidGraph($"axis {axis} is out of range for shape {this}", op: op);
        return a;
    }

    /// <summary>NumPy broadcasting of two shapes; null when they are incompatible.</summary>
    public static Shape? TryBroadcast(Shape a, Shape b)
    {
        // The common cases share the operand's (immutable) dims instead of building new ones.
        if (b.Rank == 0 || a == b) return a;
        if (a.Rank == 0) return b;
        int rank = Math.Max(a.Rank, b.Rank);
        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Rank ? 1 : a[i - (rank - a.Rank)];
            int db = i < rank - b.Rank ? 1 : b[i - (rank - b.Rank)];
            if (da == db || db == 1) dims[i] = da;
            else if (da == 1) dims[i] = db;
            else return null;
        }
        return Own(dims);
    }

    public static Shape Broadcast(Shape a, Shape b, string? op = null) =>
        TryBroadcast(a, b) ?? throw EngineException.ShapeMismatch($"shapes {a} and {b} cannot be broadcast together", op: op);

    /// <summary>True when a tensor of this shape can be broadcast to <paramref name="target"/>.</summary>
    public bool BroadcastsTo(Shape target)
    {
        if (Rank > target.Rank) return false;
        int offset = target.Rank - Rank;
        for (int i = 0; i < Rank; i++)
            if (this[i] != 1 && this[i] != target[i + offset]) return false;
        return true;
    }

    public bool Equals(Shape other) => Dims.SequenceEqual(other.Dims);

    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dims) h.Add(d);
        return h.ToHashCode();
    }

    public static bool operator ==(Shape a, Shape b) => a.Equals(b);

    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    public override string ToString() => Format(Dims);

    private static string Format(ReadOnlySpan<int> dims)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < dims.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(dims[i]);
        }
        return sb.Append(']').ToString();
    }
}

/// <summary>What shape inference knows of a value: its shape and dtype.</summary>
public readonly record struct TensorType(Shape Shape, DType DType)
{
    public override string ToString() => $"{DType.WireName()}{Shape}";
}
