using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.PyTorch;

/// <summary>A generator's choice cannot be used here (a kink, a blow-up, no fitting operand): pick another op.</summary>
internal sealed class RejectedException(string why) : Exception(why);

/// <summary>The engine's schema does not have what a generator entry assumes (an attribute, an input count).</summary>
internal sealed class NotCoveredException(string op, string why) : Exception($"'{op}': {why}")
{
    public string Op { get; } = op;
}

/// <summary>The engine refused or failed a step the generator believed valid: a bug on one side, reported as such.</summary>
internal sealed class EngineStepException(CaseStep step, Exception inner) : Exception($"the engine failed on {step}: {inner.Message}", inner);

/// <summary>A value of the program: its name, the engine's tensor (null in dry runs past an unregistered op) and its type.</summary>
internal sealed class Value(string name, Tensor? tensor, Shape shape, DType dtype)
{
    private double[]? _data;

    public string Name { get; } = name;
    public Tensor? Tensor { get; } = tensor;
    public Shape Shape { get; } = shape;
    public DType DType { get; } = dtype;
    public int Rank => Shape.Rank;
    public int[] Dims => Shape.ToArray();

    /// <summary>The engine's values, for the generators' kink and range checks.</summary>
    public double[] Data => _data ??= Tensor?.ToDoubles() ?? throw new RejectedException($"{Name} has no values in a dry run");

    public double MinAbs() => Data.Length == 0 ? double.PositiveInfinity : Data.Min(Math.Abs);
    public double MaxAbs() => Data.Length == 0 ? 0 : Data.Max(Math.Abs);
    public double Min() => Data.Min();

    public override string ToString() => $"{Name}:{DType.WireName()}{Shape}";
}

/// <summary>
/// Attributes of one call in two spellings: the canonical names the Python oracle reads, and the names the engine's
/// schema uses (each canonical attribute lists the engine names it may go by; the first one the schema has wins).
/// </summary>
internal sealed class CallAttrs
{
    public SortedDictionary<string, object> Canonical { get; } = new(StringComparer.Ordinal);
    public List<(string Canonical, object Value, string[] EngineNames)> Entries { get; } = [];

    public CallAttrs Set(string canonical, object value, params string[] engineNames)
    {
        Canonical[canonical] = value;
        return EngineOnly(canonical, value, engineNames);
    }

    /// <summary>An attribute only the engine sees (when its spelling differs in kind from the canonical one).</summary>
    public CallAttrs EngineOnly(string canonical, object value, params string[] engineNames)
    {
        Entries.Add((canonical, value, engineNames.Length == 0 ? [canonical] : engineNames));
        return this;
    }

    /// <summary>An attribute Python needs but the engine may not have (used when the schema lacks every engine name).</summary>
    public CallAttrs Hint(string canonical, object value)
    {
        Canonical[canonical] = value;
        return this;
    }

    public static AttrValue ToAttr(object v) => v switch
    {
        long l => AttrValue.Int(l),
        int i => AttrValue.Int(i),
        double d => AttrValue.Float(d),
        bool b => AttrValue.Bool(b),
        string s => AttrValue.String(s),
        long[] l => AttrValue.Ints(l),
        _ => throw new ArgumentException($"unsupported attribute value {v.GetType().Name}"),
    };
}

/// <summary>
/// Builds one random program while running it in the engine, so each generator sees the current values (to pick
/// valid shapes and keep away from kinks) and every step is checked the moment it is added.
/// </summary>
internal sealed class ProgramBuilder
{
    /// <summary>Values kept at least this far from a kink (0 for relu/abs/sign, ties for max/min/maximum).</summary>
    public const double KinkMargin = 0.05;

    /// <summary>
    /// Steps producing larger magnitudes are rejected, keeping float32 comparisons meaningful (the rounding of a
    /// value near 100 already moves sin or cos of it by 1e-5).
    /// </summary>
    public const double MagnitudeLimit = 100;

    public const int MaxFloatInputs = 4;

    /// <summary>Keeps programs small (broadcast_to, outer and batched matmul can grow them).</summary>
    public const int MaxElements = 400;

    private readonly ExecutionScope _scope;
    private readonly OpRegistry _registry;
    private readonly bool _dryRun;
    private readonly List<Value> _pool = [];
    private int _counter;

    public ProgramBuilder(ExecutionScope scope, OpRegistry registry, DiffCase @case, Random rng, bool dryRun = false)
    {
        _scope = scope;
        _registry = registry;
        Case = @case;
        Rng = rng;
        _dryRun = dryRun;
    }

    public DiffCase Case { get; }
    public Random Rng { get; }
    public DType DType => Case.DType;
    public Value? Last { get; private set; }
    public Dictionary<string, string> Shapes { get; } = [];
    public Dictionary<string, Value> Values { get; } = [];
    public List<Tensor> WrtTensors { get; } = [];
    public int FloatInputs => Case.Inputs.Count(i => i.Wrt);

    /// <summary>The float values steps may take as operands.</summary>
    public IReadOnlyList<Value> Pool => _pool;

    public bool IsRegistered(string op) => _registry.TryGet(op, out _);

    // ---- inputs ----

    /// <summary>A random shape of rank 0–3 with dims 1–5.</summary>
    public Shape RandomShape(int maxRank = 3)
    {
        var dims = new int[Rng.Next(maxRank + 1)];
        for (int i = 0; i < dims.Length; i++) dims[i] = Rng.Next(1, 6);
        return new Shape(dims);
    }

    /// <summary>Values in ±[0.5, 2], away from the kinks at 0 and from each other in the typical case.</summary>
    public double RandomValue() => (Rng.Next(2) == 0 ? -1 : 1) * (0.5 + 1.5 * Rng.NextDouble());

    /// <summary>A new float input: differentiated when there is room for one, else a constant.</summary>
    public Value AddFloatInput(Shape shape, bool? wrt = null, Func<double>? sample = null)
    {
        bool isWrt = wrt ?? FloatInputs < MaxFloatInputs;
        var data = new double[shape.ElementCount];
        for (int i = 0; i < data.Length; i++) data[i] = Round((sample ?? RandomValue)());
        return AddInput(isWrt ? "x" : "c", shape, DType, data, isWrt);
    }

    /// <summary>A differentiated float input with the given data (for fixed programs).</summary>
    public Value AddFloatInput(Shape shape, double[] data) => AddInput("x", shape, DType, Array.ConvertAll(data, Round), true);

    public Value AddIndexInput(Shape shape, int bound)
    {
        var data = new double[shape.ElementCount];
        for (int i = 0; i < data.Length; i++) data[i] = Rng.Next(bound);
        return AddInput("i", shape, DType.Int64, data, false);
    }

    public Value AddBoolInput(Shape shape)
    {
        var data = new double[shape.ElementCount];
        for (int i = 0; i < data.Length; i++) data[i] = Rng.Next(2);
        return AddInput("m", shape, DType.Bool, data, false);
    }

    private double Round(double v) => DType == DType.Float32 ? (float)v : v;

    private Value AddInput(string prefix, Shape shape, DType dtype, double[] data, bool wrt)
    {
        string name = $"{prefix}{Case.Inputs.Count}";
        Case.Inputs.Add(new CaseInput(name, shape, dtype, data, wrt));
        var dims = shape.ToArray();
        var tensor = dtype switch
        {
            DType.Float32 => _scope.FromSpan<float>(Array.ConvertAll(data, v => (float)v), dims),
            DType.Float64 => _scope.FromSpan<double>(data, dims),
            DType.Int64 => _scope.FromSpan<long>(Array.ConvertAll(data, v => (long)v), dims),
            _ => _scope.FromSpan<bool>(Array.ConvertAll(data, v => v != 0), dims),
        };
        if (wrt)
        {
            tensor.RequireGrad();
            WrtTensors.Add(tensor);
        }
        var value = new Value(name, tensor, shape, dtype);
        Values[name] = value;
        Shapes[name] = shape.ToString();
        if (dtype.IsFloating()) _pool.Add(value);
        return value;
    }

    // ---- operands ----

    /// <summary>An operand: the latest value most of the time (so programs chain), else any value that fits.</summary>
    public Value? Pick(Func<Value, bool>? fits = null)
    {
        fits ??= _ => true;
        if (Last is { } last && fits(last) && Rng.NextDouble() < 0.6) return last;
        var candidates = _pool.Where(fits).ToList();
        return candidates.Count == 0 ? null : candidates[Rng.Next(candidates.Count)];
    }

    public Value PickAny() => Pick() ?? throw new RejectedException("no float value yet");

    // ---- steps ----

    /// <summary>Applies an op in the engine and records the step; operands are values or number literals.</summary>
    public Value Emit(string opName, object[] operands, CallAttrs? attrs = null, bool checkRange = true)
    {
        attrs ??= new CallAttrs();
        var inputs = Array.ConvertAll(operands, o => o is Value v ? (object)v.Name : Convert.ToDouble(o, System.Globalization.CultureInfo.InvariantCulture));
        string output = $"v{_counter++}";
        var step = new CaseStep(opName, inputs, attrs.Canonical, output);

        if (!_registry.TryGet(opName, out var op))
        {
            if (!_dryRun) throw new NotCoveredException(opName, "not registered");
            Case.Steps.Add(step);
            return Last = new Value(output, null, default, DType);
        }

        var engineAttrs = Resolve(op, operands.Length, attrs);
        var tensors = new Tensor[operands.Length];
        var like = operands.OfType<Value>().FirstOrDefault()?.DType ?? DType;
        for (int i = 0; i < operands.Length; i++)
            tensors[i] = operands[i] is Value v ? v.Tensor! : _scope.Scalar(Convert.ToDouble(operands[i], System.Globalization.CultureInfo.InvariantCulture), like);

        Tensor result;
        try
        {
            result = Dispatcher.Apply(_scope, op, tensors, engineAttrs);
        }
        catch (Exception e)
        {
            throw new EngineStepException(step, e);
        }
        var value = new Value(output, result, result.Shape, result.DType);
        if (checkRange && result.ElementCount > MaxElements)
            throw new RejectedException($"{step} has {result.ElementCount} elements");
        if (checkRange && result.DType.IsFloating())
        {
            var data = value.Data;
            foreach (var x in data)
                if (!double.IsFinite(x) || Math.Abs(x) > MagnitudeLimit)
                    throw new RejectedException($"{step} reaches {x}");
        }
        Case.Steps.Add(step);
        Values[output] = value;
        Shapes[output] = $"{result.DType.WireName()}{result.Shape}";
        if (result.DType.IsFloating()) _pool.Add(value);
        return Last = value;
    }

    private static Attributes Resolve(Op op, int inputCount, CallAttrs attrs)
    {
        var schema = op.Schema;
        bool variadic = schema.Inputs.Count > 0 && schema.Inputs[^1].Variadic;
        if (variadic ? inputCount < schema.Inputs.Count - 1 : inputCount != schema.Inputs.Count)
            throw new NotCoveredException(op.Name, $"the generator passes {inputCount} input(s), the schema declares {schema.Inputs.Count}");
        var pairs = new List<(string, AttrValue)>();
        foreach (var (canonical, value, names) in attrs.Entries)
        {
            var spec = FindAttribute(schema, names)
                ?? throw new NotCoveredException(op.Name, $"the schema has none of the attributes [{string.Join(", ", names)}] for '{canonical}'");
            // A single axis where the schema takes one int, a list where it takes several.
            var v = (spec.Kind, value) switch
            {
                (AttrKind.Int, long[] { Length: 1 } one) => one[0],
                (AttrKind.Int, long[] many) => throw new NotCoveredException(op.Name, $"'{spec.Name}' takes one int, the generator gives {many.Length}"),
                (AttrKind.Ints, long one) => new[] { one },
                _ => value,
            };
            pairs.Add((spec.Name, CallAttrs.ToAttr(v)));
        }
        foreach (var a in schema.Attributes)
            if (a.Required && !pairs.Any(p => p.Item1 == a.Name))
                throw new NotCoveredException(op.Name, $"the schema requires attribute '{a.Name}', which the generator does not set");
        return Attributes.Of(pairs.ToArray());
    }

    private static OpAttribute? FindAttribute(OpSchema schema, string[] names)
    {
        foreach (var n in names)
            foreach (var a in schema.Attributes)
                if (a.Name == n) return a;
        return null;
    }

    /// <summary>The registered op's schema (null when the op is not registered: dry runs).</summary>
    public OpSchema? SchemaOf(string op) => _registry.TryGet(op, out var o) ? o.Schema : null;

    /// <summary>Which of <paramref name="names"/> the op's schema has (the first), or null; null also for unregistered ops.</summary>
    public OpAttribute? AttributeOf(string op, params string[] names) => SchemaOf(op) is { } s ? FindAttribute(s, names) : null;

    // ---- shaping helpers used by several generators ----

    /// <summary>x, or a version of x that is at least <paramref name="min"/> everywhere (for log, sqrt, pow bases).</summary>
    public Value Positive(Value x, double min = 0.1)
    {
        if (x.Min() >= min) return x;
        var lifted = x.MinAbs() >= KinkMargin ? Emit("abs", [x]) : Emit("square", [x]);
        return Emit("add", [lifted, 0.5]);
    }

    /// <summary>x, or a version of x kept away from zero (for divisors).</summary>
    public Value AwayFromZero(Value x, double min = 0.2) => x.MinAbs() >= min ? x : Emit("add", [Emit("square", [x]), 0.5]);

    /// <summary>
    /// x, or x scaled by a literal to stay within ±<paramref name="bound"/>. Linear on purpose: squashing with tanh
    /// would put later derivatives where they are computed by cancellation (1 − tanh²), which float32 cannot resolve.
    /// </summary>
    public Value Bounded(Value x, double bound)
    {
        double max = x.MaxAbs();
        return max <= bound ? x : Emit("mul", [x, Math.Round(bound / max, 3, MidpointRounding.ToZero)]);
    }

    /// <summary>A value in the pool broadcast-compatible with x (result shape no larger than x's rank + 1), or null.</summary>
    public Value? Partner(Value x, Func<Value, bool>? fits = null) =>
        Pick(v => Shape.TryBroadcast(v.Shape, x.Shape) is { } s && s.ElementCount <= MaxElements && (fits?.Invoke(v) ?? true));

    /// <summary>
    /// A shape broadcast-compatible with x: x's trailing dims with some set to 1, or all of them and a new leading dim.
    /// </summary>
    public Shape CompatibleShape(Shape x)
    {
        int skip = Rng.Next(x.Rank + 1) / 2;
        var dims = x.ToArray().Skip(skip).Select(d => Rng.Next(3) == 0 ? 1 : d).ToList();
        // A new leading axis only where all of x's axes are kept, so it lines up in front of them.
        if (skip == 0 && x.Rank < 3 && Rng.Next(5) == 0) dims.Insert(0, Rng.Next(1, 4));
        return new Shape(dims.ToArray());
    }

    /// <summary>Random distinct axes of a rank-r value (null = all), sorted, sometimes negative.</summary>
    public long[]? RandomAxes(int rank)
    {
        if (rank == 0 || Rng.Next(4) == 0) return null;
        var axes = Enumerable.Range(0, rank).Where(_ => Rng.Next(2) == 0).ToList();
        if (axes.Count == 0) axes.Add(Rng.Next(rank));
        return axes.Select(a => (long)(Rng.Next(3) == 0 ? a - rank : a)).ToArray();
    }
}
