using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

/// <summary>
/// Checks one function's derivatives against float64 central differences along random directions: the JVP (forward
/// mode), the VJP through &lt;vjp(w), v&gt; = &lt;w, J v&gt;, the VJP's own VJP with respect to the cotangent
/// (double backward: d/dw &lt;vjp(w), u&gt; = J u), and the second derivative d/dx &lt;vjp(w), u&gt; · v.
/// Float64 inputs are differentiated; others (int64 indices) pass through unchanged.
/// </summary>
internal static class LocalGradCheck
{
    private const double H = 1e-6;

    public static void Check(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        var scope = inputs[0].Scope;
        var rng = new Random(20240601);
        var diff = Enumerable.Range(0, inputs.Length).Where(i => inputs[i].DType == DType.Float64).ToArray();
        var x = inputs.Select(t => t.DType == DType.Float64 ? t.ToDoubles() : null).ToArray();
        var v = x.Select(a => a is null ? null : Random(rng, a.Length)).ToArray();
        var u = x.Select(a => a is null ? null : Random(rng, a.Length)).ToArray();

        Tensor[] Make(double[]?[] values, bool grad) => inputs.Select((t, i) =>
            values[i] is { } a ? scope.FromSpan<double>(a, t.Shape.ToArray()).RequireGrad(grad) : t).ToArray();
        double[] Eval(double[]?[] values)
        {
            using (scope.NoGrad()) return f(Make(values, false)).ToDoubles();
        }
        double[] Directional(double[]?[] dir) => Sub(Eval(Step(x, dir, H)), Eval(Step(x, dir, -H)), 1 / (2 * H));

        var y = Eval(x);
        var shape = f(Make(x, false)).Shape.ToArray();
        var jv = Directional(v);
        var ju = Directional(u);
        var w = Random(rng, y.Length);

        // Forward mode.
        var tangents = inputs.Select((t, i) => v[i] is { } d ? scope.FromSpan<double>(d, t.Shape.ToArray()) : null).ToArray();
        var (_, outTangents) = ForwardMode.Jvp(ts => [f(ts)], Make(x, false), tangents);
        AssertClose(jv, outTangents[0].ToDoubles(), "JVP");

        // Reverse mode: <vjp(w), v> == <w, J v>.
        var leaves = Make(x, true);
        var seed = scope.FromSpan<double>(w, shape);
        var grads = ReverseMode.Grad([f(leaves)], [seed], diff.Select(i => leaves[i]).ToArray());
        double lhs = diff.Select((i, k) => Dot(grads[k].ToDoubles(), v[i]!)).Sum();
        AssertClose([Dot(w, jv)], [lhs], "VJP");

        // Double backward: s(w, x) = <vjp(w), u>; ds/dw = J u, and ds/dx · v against differences of s along v.
        var s = S(x, w, create: true, out var wLeaf, out var xLeaves);
        var second = ReverseMode.Grad([s], null, [wLeaf, .. xLeaves]);
        AssertClose(ju, second[0].ToDoubles(), "VJP of VJP (w.r.t. the cotangent)");
        double dsdxV = diff.Select((i, k) => Dot(second[k + 1].ToDoubles(), v[i]!)).Sum();
        double sPlus = S(Step(x, v, H), w, false, out _, out _).ToScalar();
        double sMinus = S(Step(x, v, -H), w, false, out _, out _).ToScalar();
        AssertClose([(sPlus - sMinus) / (2 * H)], [dsdxV], "second derivative (w.r.t. the inputs)");

        Tensor S(double[]?[] at, double[] cotangent, bool create, out Tensor wl, out Tensor[] xl)
        {
            var all = Make(at, true);
            xl = diff.Select(i => all[i]).ToArray();
            wl = scope.FromSpan<double>(cotangent, shape).RequireGrad();
            var g = ReverseMode.Grad([f(all)], [wl], xl, new BackwardOptions { CreateGraph = create });
            Tensor total = scope.Scalar(0, DType.Float64);
            for (int k = 0; k < diff.Length; k++)
                total = total + F.Sum(g[k] * scope.FromSpan<double>(u[diff[k]]!, inputs[diff[k]].Shape.ToArray()));
            return total;
        }
    }

    private static double[] Random(Random rng, int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();

    private static double[]?[] Step(double[]?[] x, double[]?[] dir, double h) =>
        x.Select((a, i) => a is null ? null : a.Select((value, j) => value + h * dir[i]![j]).ToArray()).ToArray();

    private static double[] Sub(double[] a, double[] b, double scale) => a.Select((value, i) => (value - b[i]) * scale).ToArray();

    private static double Dot(double[] a, double[] b) => a.Select((value, i) => value * b[i]).Sum();

    public static void AssertClose(double[] expected, double[] actual, string what, double tol = 1e-6)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]);
            Assert.True(err <= tol * (1 + Math.Abs(expected[i])), $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }
}
