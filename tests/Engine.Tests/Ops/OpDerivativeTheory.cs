using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

/// <summary>
/// The generic checks every registered op gets from its examples alone: the forward output has the type
/// InferType promises, float32 agrees with float64, and for differentiable ops the VJP and the JVP match float64
/// central differences along a random direction, are adjoint to each other, and (for smooth ops) the derivative of
/// the recorded gradient matches central differences of the gradient.
/// </summary>
public class OpDerivativeTheory
{
    private const double H = 1e-6;

    public static IEnumerable<object[]> Cases => OpCase.All();

    [Fact]
    public void EveryRegisteredOpHasExamples()
    {
        var missing = OpRegistry.Default.All.Where(op => op.Examples.Count == 0).Select(op => op.Name).ToArray();
        Assert.True(missing.Length == 0, "ops without examples (the generic checks cannot cover them): " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardHasTheInferredType(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope();
        var x = c.Sample(scope);
        foreach (var t in x) if (t.DType.IsFloating()) t.RequireGrad();
        var expected = c.Op.InferType(x.Select(t => t.Type).ToArray(), c.Attrs);
        var y = c.Run(scope, x);
        Assert.Equal(expected, y.Type);
        if (!c.Op.Schema.Differentiable)
            Assert.False(y.RequiresGrad, "a non-differentiable op must not record a gradient path");
        else if (y.DType.IsFloating() && Enumerable.Range(0, x.Length).Any(i => c.IsDifferentiable(i, x[i])))
            Assert.True(y.RequiresGrad, "a differentiable op of a tensor that requires a gradient must record one");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Float32AgreesWithFloat64(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope();
        var x = c.Sample(scope);
        if (x.Length == 0)
        {
            CreationIsDeterministicAcrossDTypes(c, scope);
            return;
        }
        // Both runs see exactly the same values: the float32 ones, widened for the float64 run.
        var x32 = x.Select(t => t.DType == DType.Float64 ? ToFloat32(t) : t).ToArray();
        var x64 = x32.Select(t => t.DType == DType.Float32 ? scope.FromSpan<double>(t.ToDoubles(), t.Shape.ToArray()) : t).ToArray();
        var y32 = c.Run(scope, x32);
        var y64 = c.Run(scope, x64);
        Assert.Equal(c.Op.InferType(x32.Select(t => t.Type).ToArray(), c.Attrs), y32.Type);
        Assert.Equal(y64.Shape, y32.Shape);
        AssertClose(y64.ToDoubles(), y32.ToDoubles(), 1e-5, 1e-6);
    }

    private static void CreationIsDeterministicAcrossDTypes(OpCase c, ExecutionScope scope)
    {
        var first = c.Run(scope, []).ToDoubles();
        Assert.Equal(first, c.Run(scope, []).ToDoubles());
        if (c.Attrs.Has("dtype") && c.Attrs.GetString("dtype") == "float64")
        {
            var y32 = Dispatcher.Apply(scope, c.Op, [], c.Attrs.With("dtype", "float32"));
            Assert.Equal(DType.Float32, y32.DType);
            AssertClose(first, y32.ToDoubles(), 1e-7, 0);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void VjpMatchesCentralDifferences(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope();
        if (!Prepare(c, scope, out var x, out var diff, out var y, out var w, out var v)) return;
        foreach (int i in diff) x[i].RequireGrad();
        var recorded = c.Run(scope, x);
        var grads = ReverseMode.Grad([recorded], [w], diff.Select(i => x[i]).ToArray());
        double vjp = 0, terms = 0;
        for (int k = 0; k < diff.Length; k++)
        {
            Assert.Equal(x[diff[k]].Type, grads[k].Type);
            vjp += Numeric.Dot(grads[k], v[k]);
            terms += Numeric.AbsDot(grads[k].ToDoubles(), v[k].ToDoubles());
        }
        var fd = CentralDifference(c, scope, x, diff, v, w, y);
        Numeric.Close(fd.Value, vjp, fd.Tolerance(terms), $"{c}: <VJP(w), v> against central differences");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void JvpMatchesCentralDifferences(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope();
        if (!Prepare(c, scope, out var x, out var diff, out var y, out var w, out var v)) return;
        var tangent = Jvp(c, scope, x, diff, v);
        Assert.Equal(y.Shape, tangent.Shape);
        var fd = CentralDifference(c, scope, x, diff, v, w, y);
        Numeric.Close(fd.Value, Numeric.Dot(tangent, w), fd.Tolerance(Numeric.AbsDot(tangent.ToDoubles(), w.ToDoubles())),
            $"{c}: <w, JVP(v)> against central differences");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void VjpAndJvpAreAdjoint(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope();
        if (!Prepare(c, scope, out var x, out var diff, out var y, out var w, out var v)) return;
        var leaves = x.Select(t => scope.Import(t)).ToArray();
        foreach (int i in diff) leaves[i].RequireGrad();
        var grads = ReverseMode.Grad([c.Run(scope, leaves)], [w], diff.Select(i => leaves[i]).ToArray());
        double vjp = 0, terms = 0;
        for (int k = 0; k < diff.Length; k++)
        {
            vjp += Numeric.Dot(grads[k], v[k]);
            terms += Numeric.AbsDot(grads[k].ToDoubles(), v[k].ToDoubles());
        }
        var tangent = Jvp(c, scope, x, diff, v);
        double jvp = Numeric.Dot(w, tangent);
        terms += Numeric.AbsDot(w.ToDoubles(), tangent.ToDoubles());
        double rtol = y.DType == DType.Float64 ? 1e-10 : 1e-5;
        Numeric.Close(vjp, jvp, rtol * terms + 1e-300, $"{c}: <VJP(w), v> against <w, JVP(v)>");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SecondDerivativeMatchesCentralDifferences(string @case)
    {
        var c = OpCase.Parse(@case);
        if (!c.Op.Schema.Smooth) return;
        using var scope = new ExecutionScope();
        if (!Prepare(c, scope, out var x, out var diff, out var y, out var w, out var v)) return;
        var u = diff.Select(i => c.NormalLike(x[i])).ToArray();

        // Analytic: d/dx <grad(x), u> along v, by differentiating the recorded backward pass.
        var leaves = x.Select(t => scope.Import(t)).ToArray();
        foreach (int i in diff) leaves[i].RequireGrad();
        var wrt = diff.Select(i => leaves[i]).ToArray();
        var grads = ReverseMode.Grad([c.Run(scope, leaves)], [w], wrt, new BackwardOptions { CreateGraph = true });
        Tensor? s = null;
        for (int k = 0; k < diff.Length; k++)
        {
            var term = F.Sum(grads[k] * u[k]);
            s = s is null ? term : s + term;
        }
        double analytic = 0, terms = 0;
        if (s!.RequiresGrad)
        {
            var second = ReverseMode.Grad([s], null, wrt);
            for (int k = 0; k < diff.Length; k++)
            {
                analytic += Numeric.Dot(second[k], v[k]);
                terms += Numeric.AbsDot(second[k].ToDoubles(), v[k].ToDoubles());
            }
        }

        // Central differences of <grad(x), u>, each gradient a plain first-order backward pass.
        double h = StepFor(y.DType);
        var (plus, plusScale) = GradientDot(c, scope, Shift(x, diff, v, h), diff, w, u);
        var (minus, minusScale) = GradientDot(c, scope, Shift(x, diff, v, -h), diff, w, u);
        double fd = (plus - minus) / (2 * h);
        double tolerance = RelTolFor(y.DType) * 10 * (terms + Math.Abs(fd)) + 100 * Eps(y.DType) / h * (1 + plusScale + minusScale);
        Numeric.Close(fd, analytic, tolerance, $"{c}: second derivative against central differences of the gradient");
    }

    /// <summary>Samples inputs, a cotangent w and directions v; false when there is nothing to differentiate.</summary>
    private static bool Prepare(OpCase c, ExecutionScope scope, out Tensor[] x, out int[] diff, out Tensor y, out Tensor w, out Tensor[] v)
    {
        x = c.Sample(scope);
        var inputs = x;
        diff = Enumerable.Range(0, x.Length).Where(i => c.IsDifferentiable(i, inputs[i])).ToArray();
        using (scope.NoGrad()) y = c.Run(scope, x);
        w = y;
        v = [];
        if (diff.Length == 0 || !y.DType.IsFloating()) return false;
        w = c.NormalLike(y);
        v = diff.Select(i => c.NormalLike(inputs[i])).ToArray();
        return true;
    }

    private static Tensor Jvp(OpCase c, ExecutionScope scope, Tensor[] x, int[] diff, Tensor[] v)
    {
        var tangents = new Tensor?[x.Length];
        for (int k = 0; k < diff.Length; k++) tangents[diff[k]] = v[k];
        using var noGrad = scope.NoGrad();
        var (_, outTangents) = ForwardMode.Jvp(xs => [c.Run(scope, xs)], x.Select(t => scope.Import(t)).ToArray(), tangents);
        return outTangents[0];
    }

    private readonly record struct Difference(double Value, double Terms, double Rounding, double RelTol)
    {
        /// <summary>Truncation (relative to the size of the terms) plus rounding of f divided by the step.</summary>
        public double Tolerance(double otherTerms) => RelTol * (Terms + otherTerms) + Rounding;
    }

    /// <summary>(f(x + h v) - f(x - h v)) / 2h dotted with w, with the error it may carry.</summary>
    private static Difference CentralDifference(OpCase c, ExecutionScope scope, Tensor[] x, int[] diff, Tensor[] v, Tensor w, Tensor y)
    {
        double h = StepFor(y.DType);
        double[] plus, minus;
        using (scope.NoGrad())
        {
            plus = c.Run(scope, Shift(x, diff, v, h)).ToDoubles();
            minus = c.Run(scope, Shift(x, diff, v, -h)).ToDoubles();
        }
        var ws = w.ToDoubles();
        var ys = y.ToDoubles();
        var slope = new double[plus.Length];
        for (int j = 0; j < slope.Length; j++) slope[j] = (plus[j] - minus[j]) / (2 * h);
        double rounding = 0;
        for (int j = 0; j < ws.Length; j++) rounding += Math.Abs(ws[j]) * (1 + Math.Abs(ys[j]));
        return new Difference(Numeric.Dot(slope, ws), Numeric.AbsDot(slope, ws), 10 * Eps(y.DType) / h * rounding, RelTolFor(y.DType));
    }

    /// <summary>&lt;grad of &lt;f(x), w&gt;, u&gt; by one first-order backward pass, and the size of its terms.</summary>
    private static (double Value, double Terms) GradientDot(OpCase c, ExecutionScope scope, Tensor[] x, int[] diff, Tensor w, Tensor[] u)
    {
        foreach (int i in diff) x[i].RequireGrad();
        var grads = ReverseMode.Grad([c.Run(scope, x)], [w], diff.Select(i => x[i]).ToArray());
        double value = 0, terms = 0;
        for (int k = 0; k < diff.Length; k++)
        {
            value += Numeric.Dot(grads[k], u[k]);
            terms += Numeric.AbsDot(grads[k].ToDoubles(), u[k].ToDoubles());
        }
        return (value, terms);
    }

    /// <summary>The inputs with x + h v in the differentiated places (fresh leaves) and the others as they are.</summary>
    private static Tensor[] Shift(Tensor[] x, int[] diff, Tensor[] v, double h)
    {
        var shifted = (Tensor[])x.Clone();
        for (int k = 0; k < diff.Length; k++) shifted[diff[k]] = Numeric.Step(x[diff[k]], v[k], h);
        return shifted;
    }

    // Checks run in float64; an op whose output is float32 (cast) is differenced with a wider step.
    private static double StepFor(DType output) => output == DType.Float64 ? H : 1e-2;

    private static double RelTolFor(DType output) => output == DType.Float64 ? 1e-6 : 1e-3;

    private static double Eps(DType output) => output == DType.Float64 ? 2.2e-16 : 1.2e-7;

    private static Tensor ToFloat32(Tensor t) => t.Scope.FromSpan<float>(t.ToDoubles().Select(d => (float)d).ToArray(), t.Shape.ToArray());

    private static void AssertClose(double[] expected, double[] actual, double rtol, double atol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNaN(expected[i]) && double.IsNaN(actual[i])) continue;
            Assert.True(Math.Abs(expected[i] - actual[i]) <= atol + rtol * Math.Abs(expected[i]),
                $"element {i}: float64 gives {expected[i]:R}, float32 gives {actual[i]:R}");
        }
    }
}
