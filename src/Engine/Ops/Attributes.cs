using System.Collections;
using System.Globalization;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

public enum AttrKind
{
    Int,
    Float,
    String,
    Bool,
    Ints,
    Floats,
    Tensor,
    Graph,
}

/// <summary>One attribute value: an int, float, string, bool, list of ints or floats, tensor, or subgraph.</summary>
public sealed record AttrValue
{
    private AttrValue(AttrKind kind, object value)
    {
        Kind = kind;
        Value = value;
    }

    public AttrKind Kind { get; }
    public object Value { get; }

    public static AttrValue Int(long v) => new(AttrKind.Int, v);
    public static AttrValue Float(double v) => new(AttrKind.Float, v);
    public static AttrValue String(string v) => new(AttrKind.String, v);
    public static AttrValue Bool(bool v) => new(AttrKind.Bool, v);
    public static AttrValue Ints(params long[] v) => new(AttrKind.Ints, v);
    public static AttrValue Floats(params double[] v) => new(AttrKind.Floats, v);
    public static AttrValue Tensor(HostTensor v) => new(AttrKind.Tensor, v);
    public static AttrValue Graph(Graph v) => new(AttrKind.Graph, v);

    public static implicit operator AttrValue(long v) => Int(v);
    public static implicit operator AttrValue(int v) => Int(v);
    public static implicit operator AttrValue(double v) => Float(v);
    public static implicit operator AttrValue(bool v) => Bool(v);
    public static implicit operator AttrValue(string v) => String(v);
    public static implicit operator AttrValue(long[] v) => Ints(v);
    public static implicit operator AttrValue(int[] v) => Ints(Array.ConvertAll(v, x => (long)x));
    public static implicit operator AttrValue(double[] v) => Floats(v);
    public static implicit operator AttrValue(Graph v) => Graph(v);

    public override string ToString() => Value switch
    {
        long[] l => "[" + string.Join(", ", l) + "]",
        double[] d => "[" + string.Join(", ", d.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        string s => "\"" + s + "\"",
        Graphs.Graph => "<graph>",
        HostTensor t => t.ToString(),
        _ => Value.ToString() ?? "",
    };

    public bool Equals(AttrValue? other) => other is not null && other.Kind == Kind && ToString() == other.ToString() &&
        (Kind != AttrKind.Graph || ReferenceEquals(Value, other.Value));

    public override int GetHashCode() => HashCode.Combine(Kind, ToString());
}

/// <summary>
/// An op's attributes by name, immutable. The typed getters accept the forms JSON naturally produces (an integral
/// float for an int, a single int for a list) and report a bad or missing attribute as <c>invalid_graph</c>.
/// </summary>
public sealed class Attributes : IReadOnlyDictionary<string, AttrValue>
{
    private readonly Dictionary<string, AttrValue> _values;

    public Attributes(IEnumerable<KeyValuePair<string, AttrValue>>? values = null)
    {
        _values = new Dictionary<string, AttrValue>(StringComparer.Ordinal);
        if (values is not null)
            foreach (var (k, v) in values) _values[k] = v;
    }

    public static Attributes Empty { get; } = new();

    /// <summary>Builds attributes from name/value pairs: <c>Attributes.Of(("axes", new[]{0}), ("keepdims", true))</c>.</summary>
    public static Attributes Of(params (string Name, AttrValue Value)[] values)
    {
        var attrs = new Attributes();
        foreach (var (name, value) in values) attrs._values[name] = value;
        return attrs;
    }

    public Attributes With(string name, AttrValue value)
    {
        var copy = new Attributes(_values);
        copy._values[name] = value;
        return copy;
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public long GetInt(string name, long? fallback = null) => Get(name, fallback, v => v.Value switch
    {
        long l => l,
        double d when IsExactInteger(d) => (long)d,
        bool b => b ? 1 : 0,
        _ => (long?)null,
    }, "an integer");

    public double GetFloat(string name, double? fallback = null) => Get(name, fallback, v => v.Value switch
    {
        double d => d,
        long l => l,
        _ => (double?)null,
    }, "a number");

    public bool GetBool(string name, bool? fallback = null) => Get(name, fallback, v => v.Value switch
    {
        bool b => b,
        long l when l is 0 or 1 => l == 1,
        _ => (bool?)null,
    }, "a bool");

    public string GetString(string name, string? fallback = null)
    {
        if (_values.TryGetValue(name, out var v))
            return v.Value as string ?? throw Bad(name, "a string", v);
        return fallback ?? throw Missing(name);
    }

    public long[] GetInts(string name, long[]? fallback = null)
    {
        if (_values.TryGetValue(name, out var v))
        {
            return v.Value switch
            {
                long[] l => l,
                long l => [l],
                double[] d when d.All(IsExactInteger) => Array.ConvertAll(d, x => (long)x),
                double d when IsExactInteger(d) => [(long)d],
                _ => throw Bad(name, "a list of integers", v),
            };
        }
        return fallback ?? throw Missing(name);
    }

    /// <summary>A list of axes as int[], or null when absent (each within int range; ops normalise them).</summary>
    public int[]? GetAxes(string name) => Has(name) ? Array.ConvertAll(GetInts(name), x => ToAxis(name, x)) : null;

    /// <summary>One axis (negative counts from the end; ops normalise it against their input's rank).</summary>
    public int GetAxis(string name, long fallback) => ToAxis(name, GetInt(name, fallback));

    /// <summary>A shape attribute, checked like every <see cref="Shape"/> (dimensions, rank, element count).</summary>
    public Shape GetShape(string name)
    {
        try
        {
            return Shape.FromLongs(GetInts(name), $"attribute '{name}'");
        }
        catch (EngineException e) when (e.Code == ErrorCodes.InvalidTensor)
        {
            throw EngineException.InvalidGraph(e.Detail);
        }
    }

    private static int ToAxis(string name, long axis) =>
        axis is >= -Shape.MaxRank and < Shape.MaxRank ? (int)axis
            : throw EngineException.InvalidGraph($"attribute '{name}' = {axis} is not an axis (a tensor has at most {Shape.MaxRank})");

    /// <summary>A double that is an integer a long holds exactly.</summary>
    private static bool IsExactInteger(double d) => d == Math.Floor(d) && Math.Abs(d) < 9e15;

    public double[] GetFloats(string name, double[]? fallback = null)
    {
        if (_values.TryGetValue(name, out var v))
        {
            return v.Value switch
            {
                double[] d => d,
                long[] l => Array.ConvertAll(l, x => (double)x),
                double d => [d],
                long l => [l],
                _ => throw Bad(name, "a list of numbers", v),
            };
        }
        return fallback ?? throw Missing(name);
    }

    public HostTensor GetTensor(string name) =>
        _values.TryGetValue(name, out var v) ? v.Value as HostTensor ?? throw Bad(name, "a tensor", v) : throw Missing(name);

    public Graph GetGraph(string name) =>
        _values.TryGetValue(name, out var v) ? v.Value as Graph ?? throw Bad(name, "a graph", v) : throw Missing(name);

    private T Get<T>(string name, T? fallback, Func<AttrValue, T?> convert, string what) where T : struct
    {
        if (_values.TryGetValue(name, out var v))
            return convert(v) ?? throw Bad(name, what, v);
        return fallback ?? throw Missing(name);
    }

    private static EngineException Missing(string name) => EngineException.InvalidGraph($"required attribute '{name}' is missing");

    private static EngineException Bad(string name, string what, AttrValue v) =>
        EngineException.InvalidGraph($"attribute '{name}' must be {what}, got {v.Kind.ToString().ToLowerInvariant()} {v}");

    public AttrValue this[string key] => _values[key];
    public IEnumerable<string> Keys => _values.Keys;
    public IEnumerable<AttrValue> Values => _values.Values;
    public int Count => _values.Count;
    public bool ContainsKey(string key) => _values.ContainsKey(key);
    public bool TryGetValue(string key, out AttrValue value) => _values.TryGetValue(key, out value!);
    public IEnumerator<KeyValuePair<string, AttrValue>> GetEnumerator() => _values.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => string.Join(", ", _values.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
}
