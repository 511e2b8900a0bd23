using System.Text;

namespace AutogradService.Engine.Tensors;

/// <summary>
/// An immutable row-major shape of rank 0 to <see cref="MaxRank"/>. Equality is by dimensions.
/// </summary>
public readonly struct Shape : IEquatable<Shape>
{
    public const int MaxRank = 8;

    private static readonly int[] Empty = [];
    private readonly int[]? _dims;

    public Shape(params int[] dims)
    {
        if (dims.Length > MaxRank)
            throw EngineException.InvalidTensor($"rank {dims.Length} is over the maximum of {MaxRank}");
        foreach (var d in dims)
            if (d < 0) throw EngineException.InvalidTensor($"negative dimension {d} in shape [{string.Join(", ", dims)}]");
        _dims = (int[])dims.Clone();
    }

    private Shape(int[] dims, bool _) => _dims = dims;

    /// <summary>Wraps an array the caller promises not to mutate.</summary>
    internal static Shape Own(int[] dims) => new(dims, true);

    public static Shape Scalar => new(Empty, true);

    public static Shape Vector(int n) => new(new[] { n }, true);

    public ReadOnlySpan<int> Dims => _dims ?? Empty;

    public int Rank => Dims.Length;

    public int this[int axis] => Dims[axis];

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Dims) n *= d;
            return n;
        }
    }

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
        int r = Rank;
        int a = axis < 0 ? axis + r : axis;
        if (a < 0 || a >= Math.Max(r, 1) || (r == 0 && a != 0))
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

    public override string ToString()
    {
        var sb = new StringBuilder("[");
        var dims = Dims;
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
