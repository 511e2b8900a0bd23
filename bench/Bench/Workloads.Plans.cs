using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>
/// Plan runs, what an <c>evaluate</c> request executes: a text program planned once, run by the interpreter with its
/// elementwise regions fused, on 10M elements. Not issue workloads; they show what fusion buys against PyTorch's
/// eager forward (<c>torch.no_grad()</c>), and the harness also times the same plan node by node
/// (<see cref="Fuse"/> off) in the same process.
/// </summary>
internal sealed class PlanEvaluate(string id, string title, string program, Func<double, double> expected) : Workload
{
    public const int Elements = 10_000_000;
    private float[] _x = [];
    private Plan? _plan;

    /// <summary>P1: W4's function (compute-bound: three transcendentals per element).</summary>
    public static PlanEvaluate W4Function() => new("P1", "evaluate sin(x)*exp(-x*x)+tanh(x) from a plan, 10M elements",
        "a = x * x\nb = neg(a)\nc = exp(b)\nd = sin(x)\ne = d * c\nf = tanh(x)\ny = e + f",
        x => Math.Sin(x) * Math.Exp(-x * x) + Math.Tanh(x));

    /// <summary>P2: an arithmetic chain (memory-bound: five cheap ops).</summary>
    public static PlanEvaluate Arithmetic() => new("P2", "evaluate (x*2+1)*x - x/3 from a plan, 10M elements",
        "a = x * 2\nb = a + 1\nc = b * x\nd = x / 3\ny = c - d",
        x => (x * 2 + 1) * x - x / 3);

    public override string Id => id;

    public override string Title => title;

    /// <summary>Fuse elementwise regions (the service's default); the harness turns it off for its comparison.</summary>
    public bool Fuse { get; set; } = true;

    public override void Setup()
    {
        _x = Uniform(Elements, -3, 3, 71);
        _plan = Plan.Build(ProgramParser.Parse(program), new Dictionary<string, TensorType> { ["x"] = new(new Shape(Elements), DType.Float32) });
    }

    protected override Tensor[] Import(ExecutionScope scope) => [scope.FromArray(_x)];

    private Tensor Evaluate(ExecutionScope scope, Tensor x)
    {
        using var _ = scope.NoGrad();
        return Interpreter.Run(scope, _plan!, new Dictionary<string, Tensor> { ["x"] = x }, new RunOptions { Fuse = Fuse }).Outputs["y"];
    }

    protected override double Compute(ExecutionScope scope, Tensor[] inputs) => Evaluate(scope, inputs[0]).Span<float>()[0];

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var y = Evaluate(scope, inputs[0]).Span<float>();
        foreach (int i in (ReadOnlySpan<int>)[0, 1, Elements / 2, Elements - 1])
            Expect(Near(y[i], expected(_x[i]), 1e-5), $"y[{i}] = {y[i]}, expected {expected(_x[i])}");
    }
}
