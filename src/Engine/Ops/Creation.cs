using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// An op that makes a tensor from attributes alone (no tensor inputs): apply it with
/// <c>Dispatcher.Apply(scope, op, [], attrs)</c>. Its output is a constant, so it is not differentiable.
/// </summary>
public abstract class CreationOp : PrimitiveOp
{
    protected static readonly OpAttribute ShapeAttr = new("shape", AttrKind.Ints, true, "the output shape");

    /// <summary>PyTorch infers int64 for <c>arange(4)</c>; here the dtype is always what the attribute says (float32 by default).</summary>
    protected static readonly OpAttribute DTypeAttr = new("dtype", AttrKind.String, false, "float32, float64, int64 or bool", "float32");

    protected static readonly OpAttribute FloatDTypeAttr = new("dtype", AttrKind.String, false, "float32 or float64", "float32");

    protected static OpSchema Describe(string name, string summary, params OpAttribute[] attributes) =>
        new(name, "creation", summary, [], attributes, "the given shape and dtype", false);

    /// <summary>The <c>shape</c> attribute, checked like every shape (rank, dimensions, element count).</summary>
    protected Shape ShapeOf(Attributes attrs)
    {
        try
        {
            return attrs.GetShape("shape");
        }
        catch (EngineException e)
        {
            throw e.At(null, Name);
        }
    }

    protected DType DTypeOf(Attributes attrs, bool floatOnly = false)
    {
        var dtype = DTypes.Parse(attrs.GetString("dtype", "float32"));
        if (floatOnly && !dtype.IsFloating())
            throw EngineException.DTypeMismatch($"'{Name}' makes float32 or float64 tensors, not {dtype.WireName()}", op: Name);
        return dtype;
    }

    protected double FiniteAttr(Attributes attrs, string name, double? fallback = null)
    {
        double v = attrs.GetFloat(name, fallback);
        return double.IsFinite(v) ? v : throw EngineException.InvalidGraph($"attribute '{name}' must be finite, got {v}", op: Name);
    }
}

/// <summary><c>arange(start=0, stop, step=1)</c>: start, start + step, ... up to but excluding stop.</summary>
public sealed class ArangeOp : CreationOp
{
    public static readonly ArangeOp Instance = new();

    public override OpSchema Schema { get; } = Describe("arange", "evenly spaced values in [start, stop) (float32 unless dtype says otherwise)",
        new OpAttribute("start", AttrKind.Float, false, "first value", "0"),
        new OpAttribute("stop", AttrKind.Float, true, "end of the interval (excluded)"),
        new OpAttribute("step", AttrKind.Float, false, "spacing, non-zero (negative counts down)", "1"),
        DTypeAttr);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([], Attributes.Of(("stop", 5))),
        new([], Attributes.Of(("start", 1), ("stop", 4), ("step", 0.5), ("dtype", "float64"))),
        new([], Attributes.Of(("start", 5), ("stop", 0), ("step", -1), ("dtype", "int64"))),
        new([], Attributes.Of(("start", 3), ("stop", 3))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 0);
        var (start, stop, step) = Range(attrs);
        var dtype = DTypeOf(attrs);
        if (dtype == DType.Bool)
            throw EngineException.DTypeMismatch($"'{Name}' makes numbers, not bool", op: Name);
        double count = Math.Max(0, Math.Ceiling((stop - start) / step));
        if (count > int.MaxValue)
            throw EngineException.InvalidGraph($"arange({start}, {stop}, {step}) would have {count} elements", op: Name);
        return new TensorType(Shape.Vector((int)count), dtype);
    }

    private (double Start, double Stop, double Step) Range(Attributes attrs)
    {
        double step = FiniteAttr(attrs, "step", 1);
        if (step == 0) throw EngineException.InvalidGraph("arange needs a non-zero step", op: Name);
        return (FiniteAttr(attrs, "start", 0), FiniteAttr(attrs, "stop"), step);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        var (start, _, step) = Range(attrs);
        scope.Backend.Arange(output, start, step);
    }
}

/// <summary><c>zeros</c>, <c>ones</c> and <c>full</c>: every element the same value.</summary>
public sealed class FillOp : CreationOp
{
    public static readonly FillOp Zeros = new("zeros", "a tensor of zeros", 0);
    public static readonly FillOp Ones = new("ones", "a tensor of ones", 1);
    public static readonly FillOp Full = new("full", "a tensor filled with one value", null);

    /// <summary>The fixed value, or null when it comes from the <c>value</c> attribute.</summary>
    private readonly double? _value;

    private FillOp(string name, string summary, double? value)
    {
        _value = value;
        Schema = value is null
            ? Describe(name, summary, ShapeAttr, DTypeAttr, new OpAttribute("value", AttrKind.Float, true, "the value of every element"))
            : Describe(name, summary, ShapeAttr, DTypeAttr);
    }

    public override OpSchema Schema { get; }

    public override IReadOnlyList<OpExample> Examples => _value is null
        ?
        [
            new([], Attributes.Of(("shape", new[] { 2, 2 }), ("value", 3.5))),
            new([], Attributes.Of(("shape", new[] { 3 }), ("value", 7), ("dtype", "int64"))),
            new([], Attributes.Of(("shape", new[] { 2 }), ("value", 1), ("dtype", "bool"))),
        ]
        :
        [
            new([], Attributes.Of(("shape", new[] { 2, 3 }))),
            new([], Attributes.Of(("shape", new[] { 4 }), ("dtype", "float64"))),
            new([], Attributes.Of(("shape", Array.Empty<int>()), ("dtype", "int64"))),
            new([], Attributes.Of(("shape", new[] { 0, 3 }))),
        ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 0);
        if (_value is null) attrs.GetFloat("value");
        return new TensorType(ShapeOf(attrs), DTypeOf(attrs));
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Fill(output, _value ?? attrs.GetFloat("value"));
}

/// <summary>
/// <c>random_normal</c> and <c>random_uniform</c>: reproducible random tensors. The same seed gives the same values
/// on every machine and every run (the generator is integer-only SplitMix64, the transforms use only IEEE-exact
/// arithmetic), so a client can rebuild an initialisation from its seed.
/// </summary>
public sealed class RandomOp : CreationOp
{
    // Declared before the instances: static fields initialise in text order, and the constructors read this one.
    private static readonly OpAttribute Seed = new("seed", AttrKind.Int, true, "the generator's seed (same seed, same values)");

    public static readonly RandomOp Normal = new(normal: true);
    public static readonly RandomOp Uniform = new(normal: false);

    private readonly bool _normal;

    private RandomOp(bool normal)
    {
        _normal = normal;
        Schema = normal
            ? Describe("random_normal", "samples of a normal distribution N(mean, std^2)", ShapeAttr, FloatDTypeAttr, Seed,
                new OpAttribute("mean", AttrKind.Float, false, "mean", "0"),
                new OpAttribute("std", AttrKind.Float, false, "standard deviation, at least 0", "1"))
            : Describe("random_uniform", "samples of the uniform distribution on [low, high)", ShapeAttr, FloatDTypeAttr, Seed,
                new OpAttribute("low", AttrKind.Float, false, "lower bound (included)", "0"),
                new OpAttribute("high", AttrKind.Float, false, "upper bound (excluded), at least low", "1"));
    }

    public override OpSchema Schema { get; }

    public override IReadOnlyList<OpExample> Examples => _normal
        ?
        [
            new([], Attributes.Of(("shape", new[] { 3, 4 }), ("seed", 42))),
            new([], Attributes.Of(("shape", new[] { 5 }), ("seed", 7), ("mean", 2.0), ("std", 0.5), ("dtype", "float64"))),
        ]
        :
        [
            new([], Attributes.Of(("shape", new[] { 3, 4 }), ("seed", 42))),
            new([], Attributes.Of(("shape", new[] { 5 }), ("seed", -3), ("low", -1.0), ("high", 2.0), ("dtype", "float64"))),
        ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 0);
        attrs.GetInt("seed");
        Parameters(attrs);
        return new TensorType(ShapeOf(attrs), DTypeOf(attrs, floatOnly: true));
    }

    /// <summary>(mean, std) or (low, high), checked.</summary>
    private (double, double) Parameters(Attributes attrs)
    {
        if (_normal)
        {
            double std = FiniteAttr(attrs, "std", 1);
            if (std < 0) throw EngineException.InvalidGraph($"std must be at least 0, got {std}", op: Name);
            return (FiniteAttr(attrs, "mean", 0), std);
        }
        double low = FiniteAttr(attrs, "low", 0), high = FiniteAttr(attrs, "high", 1);
        if (high < low) throw EngineException.InvalidGraph($"low ({low}) must not be above high ({high})", op: Name);
        return (low, high);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        long seed = attrs.GetInt("seed");
        var (p, q) = Parameters(attrs);
        if (_normal) scope.Backend.RandomNormal(output, seed, p, q);
        else scope.Backend.RandomUniform(output, seed, p, q);
    }
}

public static class CreationOps
{
    internal static IEnumerable<Op> All => [ArangeOp.Instance, FillOp.Zeros, FillOp.Ones, FillOp.Full, RandomOp.Normal, RandomOp.Uniform];
}

public static partial class F
{
    /// <summary>start, start + step, ... below stop (above it for a negative step). Float32 unless asked: PyTorch would pick int64 for integer arguments.</summary>
    public static Tensor Arange(ExecutionScope scope, double stop, double start = 0, double step = 1, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, ArangeOp.Instance, [],
            Attributes.Of(("start", start), ("stop", stop), ("step", step), ("dtype", dtype.WireName())));

    public static Tensor Zeros(ExecutionScope scope, Shape shape, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, FillOp.Zeros, [], ShapeAndType(shape, dtype));

    public static Tensor Ones(ExecutionScope scope, Shape shape, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, FillOp.Ones, [], ShapeAndType(shape, dtype));

    public static Tensor Full(ExecutionScope scope, Shape shape, double value, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, FillOp.Full, [], ShapeAndType(shape, dtype).With("value", value));

    public static Tensor RandomNormal(ExecutionScope scope, Shape shape, long seed, double mean = 0, double std = 1, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, RandomOp.Normal, [], ShapeAndType(shape, dtype).With("seed", seed).With("mean", mean).With("std", std));

    public static Tensor RandomUniform(ExecutionScope scope, Shape shape, long seed, double low = 0, double high = 1, DType dtype = DType.Float32) =>
        Dispatcher.Apply(scope, RandomOp.Uniform, [], ShapeAndType(shape, dtype).With("seed", seed).With("low", low).With("high", high));

    private static Attributes ShapeAndType(Shape shape, DType dtype) =>
        Attributes.Of(("shape", shape.ToArray()), ("dtype", dtype.WireName()));
}
