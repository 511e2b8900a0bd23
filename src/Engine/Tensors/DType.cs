namespace AutogradService.Engine.Tensors;

/// <summary>Element types a tensor can hold. Bool is stored as one byte per element.</summary>
public enum DType
{
    Float32,
    Float64,
    Int64,
    Bool,
}

public static class DTypes
{
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Float64 => 8,
        DType.Int64 => 8,
        DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    public static bool IsFloating(this DType dtype) => dtype is DType.Float32 or DType.Float64;

    /// <summary>The wire name used by the API (<c>float32</c>, <c>float64</c>, <c>int64</c>, <c>bool</c>).</summary>
    public static string WireName(this DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Int64 => "int64",
        DType.Bool => "bool",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    public static bool TryParse(string? name, out DType dtype)
    {
        switch (name?.ToLowerInvariant())
        {
            case "float32" or "float" or "f32": dtype = DType.Float32; return true;
            case "float64" or "double" or "f64": dtype = DType.Float64; return true;
            case "int64" or "long" or "i64": dtype = DType.Int64; return true;
            case "bool" or "boolean": dtype = DType.Bool; return true;
            default: dtype = DType.Float32; return false;
        }
    }

    public static DType Parse(string name) =>
        TryParse(name, out var dtype) ? dtype
            : throw EngineException.InvalidTensor($"unknown dtype '{EngineException.Clip(name)}' (expected float32, float64, int64 or bool)");

    /// <summary>The wider of two dtypes in the order bool &lt; int64 &lt; float32 &lt; float64.</summary>
    public static DType Promote(DType a, DType b) => Rank(a) >= Rank(b) ? a : b;

    /// <summary>
    /// The dtype mixed operands are computed in, by PyTorch's rule: tensors with dimensions decide; a 0-d tensor only
    /// matters when it is of a higher kind (bool &lt; integer &lt; float), and then lifts the result to that kind's
    /// default (int64, float32). So <c>float32[4] * float64[]</c> stays float32, and <c>int64[4] * 0.5</c> is float32.
    /// </summary>
    public static DType ResultType(IEnumerable<TensorType> operands) => ResultType(operands.Select(t => (t.DType, t.Shape.Rank == 0)));

    /// <summary><see cref="ResultType(IEnumerable{TensorType})"/> from dtypes and whether each operand is 0-d.</summary>
    public static DType ResultType(IEnumerable<(DType DType, bool IsScalar)> operands)
    {
        DType? dimensioned = null, scalar = null;
        foreach (var (dtype, isScalar) in operands)
        {
            if (!isScalar) dimensioned = dimensioned is { } d ? Promote(d, dtype) : dtype;
            else scalar = scalar is { } s ? Promote(s, dtype) : dtype;
        }
        if (dimensioned is not { } result) return scalar ?? DType.Float32;
        if (scalar is { } z && Kind(z) > Kind(result)) return Kind(z) == 2 ? DType.Float32 : DType.Int64;
        return result;
    }

    private static int Kind(DType d) => d switch
    {
        DType.Bool => 0,
        DType.Int64 => 1,
        _ => 2,
    };

    private static int Rank(DType d) => d switch
    {
        DType.Bool => 0,
        DType.Int64 => 1,
        DType.Float32 => 2,
        DType.Float64 => 3,
        _ => 0,
    };

    /// <summary>The dtype of a Type parameter used by generic kernels.</summary>
    public static DType Of<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new NotSupportedException($"no dtype for {typeof(T)}");
    }
}
