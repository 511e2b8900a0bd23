using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

/// <summary>
/// One (op, example) pair of the registry, named "sin #0", with deterministic sampling of its inputs: the seed
/// comes from the name, so a failing case fails the same way on every run and machine.
/// </summary>
internal sealed class OpCase
{
    private OpCase(Op op, int index)
    {
        Op = op;
        Index = index;
        Example = op.Examples[index];
        Random = new Random(StableHash($"{op.Name} #{index}"));
    }

    public Op Op { get; }
    public int Index { get; }
    public OpExample Example { get; }
    public Random Random { get; }
    public Attributes Attrs => Example.Attrs;

    public override string ToString() => $"{Op.Name} #{Index}";

    /// <summary>Every (op, example) pair of the default registry, as its display name.</summary>
    public static IEnumerable<object[]> All()
    {
        foreach (var op in OpRegistry.Default.All)
            for (int i = 0; i < op.Examples.Count; i++)
                yield return [$"{op.Name} #{i}"];
    }

    public static OpCase Parse(string name)
    {
        int hash = name.LastIndexOf(" #", StringComparison.Ordinal);
        return new OpCase(OpRegistry.Default.Get(name[..hash]), int.Parse(name[(hash + 2)..]));
    }

    /// <summary>The example's inputs, floats sampled in float64 from their domain; int64 and bool as declared.</summary>
    public Tensor[] Sample(ExecutionScope scope)
    {
        var inputs = new Tensor[Example.Inputs.Count];
        for (int i = 0; i < inputs.Length; i++)
        {
            var spec = Example.Inputs[i];
            var dims = spec.Shape.ToArray();
            int n = (int)spec.Shape.ElementCount;
            if (spec.DType == DType.Bool || spec.Domain == InputDomain.Bool)
            {
                var b = new bool[n];
                for (int k = 0; k < n; k++) b[k] = Random.Next(2) == 1;
                inputs[i] = scope.FromSpan<bool>(b, dims);
            }
            else if (spec.DType == DType.Int64 || spec.Domain == InputDomain.Index)
            {
                var l = new long[n];
                for (int k = 0; k < n; k++) l[k] = spec.Domain == InputDomain.Index ? Random.Next(spec.Bound) : Random.Next(-5, 6);
                inputs[i] = scope.FromSpan<long>(l, dims);
            }
            else
            {
                var d = new double[n];
                for (int k = 0; k < n; k++) d[k] = Value(spec.Domain);
                inputs[i] = scope.FromSpan<double>(d, dims);
            }
        }
        return inputs;
    }

    private double Value(InputDomain domain) => domain switch
    {
        InputDomain.Positive => Uniform(0.5, 2),
        InputDomain.NonZero => Uniform(0.5, 2) * (Random.Next(2) == 1 ? 1 : -1),
        InputDomain.Unit => Uniform(-0.9, 0.9),
        _ => Normal(),
    };

    private double Uniform(double low, double high) => low + (high - low) * Random.NextDouble();

    public double Normal() => Math.Sqrt(-2 * Math.Log(1 - Random.NextDouble())) * Math.Cos(2 * Math.PI * Random.NextDouble());

    /// <summary>A float64 tensor of standard normal values shaped like <paramref name="like"/> (a direction or cotangent).</summary>
    public Tensor NormalLike(Tensor like)
    {
        var d = new double[like.ElementCount];
        for (int k = 0; k < d.Length; k++) d[k] = Normal();
        return like.Scope.FromSpan<double>(d, like.Shape.ToArray());
    }

    /// <summary>Whether input i is differentiated: a float value the schema marks differentiable.</summary>
    public bool IsDifferentiable(int i, Tensor input)
    {
        var specs = Op.Schema.Inputs;
        var spec = i < specs.Count ? specs[i] : specs[^1];
        return Op.Schema.Differentiable && spec.Differentiable && input.DType.IsFloating();
    }

    public Tensor Run(ExecutionScope scope, Tensor[] inputs) => Dispatcher.Apply(scope, Op, inputs, Attrs);

    /// <summary>FNV-1a: string.GetHashCode is randomised per process.</summary>
    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return (int)(h & 0x7FFFFFFF);
    }
}

/// <summary>Plain double arithmetic on tensor values, outside the engine, for the checks to trust.</summary>
internal static class Numeric
{
    public static double Dot(Tensor a, Tensor b) => Dot(a.ToDoubles(), b.ToDoubles());

    public static double Dot(double[] a, double[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>Sum of |a_i b_i|: the size of the terms of a dot product, against which its rounding is judged.</summary>
    public static double AbsDot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += Math.Abs(a[i] * b[i]);
        return s;
    }

    /// <summary>x + h v as a new float64 leaf of x's shape.</summary>
    public static Tensor Step(Tensor x, Tensor v, double h)
    {
        var xs = x.ToDoubles();
        var vs = v.ToDoubles();
        for (int i = 0; i < xs.Length; i++) xs[i] += h * vs[i];
        return x.Scope.FromSpan<double>(xs, x.Shape.ToArray());
    }

    public static void Close(double expected, double actual, double tolerance, string what)
    {
        Assert.True(Math.Abs(expected - actual) <= tolerance,
            $"{what}: expected {expected:R}, got {actual:R} (difference {Math.Abs(expected - actual):E3}, tolerance {tolerance:E3})");
    }
}
