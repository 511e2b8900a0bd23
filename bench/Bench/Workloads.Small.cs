using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>W1: <c>x = arange(4)</c>, <c>y = 2 * dot(x, x)</c>, dy/dx — the graph built on every call.</summary>
internal sealed class TinyDot : Workload
{
    // Until F.Dot lands, sum(x * x) computes the same value with one more op (mul + sum instead of dot).
    private static readonly Func<Tensor, Tensor, Tensor> DotOrSum = OptionalOps.Dot ?? ((a, b) => F.Sum(a * b));

    public override string Id => "W1";

    public override string Title => "tiny: y = 2*dot(x,x), x = arange(4), graph built per call";

    public override string Variant => OptionalOps.Dot is null ? "sum(x*x) in place of dot (F.Dot not in this engine yet)" : "";

    protected override Tensor[] Import(ExecutionScope scope) => [];

    protected override double Compute(ExecutionScope scope, Tensor[] inputs)
    {
        var x = F.Arange(scope, 4).RequireGrad();
        var y = 2.0 * DotOrSum(x, x);
        return ReverseMode.Grad(y, x).Span<float>()[3];
    }

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var x = F.Arange(scope, 4).RequireGrad();
        var y = 2.0 * DotOrSum(x, x);
        var g = ReverseMode.Grad(y, x).ToDoubles();
        Expect(y.ToScalar() == 28 && g is [0, 4, 8, 12], $"y = {y.ToScalar()}, dy/dx = [{string.Join(", ", g)}]");
    }
}

/// <summary>
/// W2: the chapter's <c>f(a)</c> — <c>b = 2a; while norm(b) &lt; 1000: b = 2b; c = b if sum(b) &gt; 0 else 100b</c> — and
/// dc/da, on a fresh random scalar each call (about ten loop trips).
/// </summary>
internal sealed class ControlFlow : Workload
{
    private long _seed;

    public override string Id => "W2";

    public override string Title => "control flow: chapter's f(a) on a fresh random scalar";

    protected override Tensor[] Import(ExecutionScope scope) => [];

    protected override double Compute(ExecutionScope scope, Tensor[] inputs)
    {
        var a = F.RandomNormal(scope, Shape.Scalar, ++_seed).RequireGrad();
        return ReverseMode.Grad(Chapter(a), a).ToScalar();
    }

    internal static Tensor Chapter(Tensor a)
    {
        var b = a * 2.0;
        while (F.Norm(b).ToScalar() < 1000) b = b * 2.0;
        return F.Sum(b).ToScalar() > 0 ? b : 100.0 * b;
    }

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        for (int i = 0; i < 8; i++)
        {
            var a = F.RandomNormal(scope, Shape.Scalar, 1000 + i).RequireGrad();
            var c = Chapter(a);
            double grad = ReverseMode.Grad(c, a).ToScalar(), expected = c.ToScalar() / a.ToScalar();
            Expect(Near(grad, expected, 1e-5), $"dc/da = {grad}, c/a = {expected}");
        }
    }
}
