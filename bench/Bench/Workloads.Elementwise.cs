using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>W4: <c>sum(sin(x) * exp(-x * x) + tanh(x))</c> and its gradient, on 10M elements by default.</summary>
internal sealed class ElementwiseChain(int elements) : Workload
{
    public const int DefaultElements = 10_000_000;
    private float[] _x = [];

    public int Elements { get; } = elements;

    public override string Id => "W4";

    public override string Title => $"sum(sin(x)*exp(-x*x)+tanh(x)), {Elements:N0} elements";

    public override string Variant => Elements == DefaultElements ? "" : $"{Elements:N0} elements instead of 10M";

    public override void Setup() => _x = Uniform(Elements, -3, 3, 41);

    protected override Tensor[] Import(ExecutionScope scope) => [scope.FromArray(_x).RequireGrad()];

    private static Tensor Gradient(Tensor x) => ReverseMode.Grad(F.Sum(F.Sin(x) * F.Exp(-x * x) + F.Tanh(x)), x);

    protected override double Compute(ExecutionScope scope, Tensor[] inputs) => Gradient(inputs[0]).Span<float>()[0];

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var g = Gradient(inputs[0]).Span<float>();
        foreach (int i in (ReadOnlySpan<int>)[0, 1, Elements / 2, Elements - 1])
        {
            double x = _x[i], t = Math.Tanh(x);
            double expected = (Math.Cos(x) - 2 * x * Math.Sin(x)) * Math.Exp(-x * x) + 1 - t * t;
            Expect(Near(g[i], expected, 1e-5), $"dy/dx[{i}] = {g[i]}, expected {expected}");
        }
    }
}

/// <summary>W6: <c>d²/dx² sum(sin(x))</c> elementwise on 1M elements, by differentiating a recorded gradient (create_graph).</summary>
internal sealed class SecondDerivative : Workload
{
    private const int Elements = 1_000_000;
    private float[] _x = [];

    public override string Id => "W6";

    public override string Title => "d2/dx2 sum(sin(x)), 1M elements, create_graph";

    public override void Setup() => _x = Uniform(Elements, -3, 3, 61);

    protected override Tensor[] Import(ExecutionScope scope) => [scope.FromArray(_x).RequireGrad()];

    private static Tensor Second(Tensor x)
    {
        var first = ReverseMode.Grad(F.Sum(F.Sin(x)), x, new BackwardOptions { CreateGraph = true });
        return ReverseMode.Grad(F.Sum(first), x);
    }

    protected override double Compute(ExecutionScope scope, Tensor[] inputs) => Second(inputs[0]).Span<float>()[0];

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var h = Second(inputs[0]).Span<float>();
        foreach (int i in (ReadOnlySpan<int>)[0, 1, Elements / 2, Elements - 1])
            Expect(Near(h[i], -Math.Sin(_x[i]), 1e-5), $"d2y/dx2[{i}] = {h[i]}, expected {-Math.Sin(_x[i])}");
    }
}
