using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

/// <summary>
/// Every op's claim about what its VJP reads (<c>VjpReadsInput</c>, <c>VjpReadsOutput</c>): after recording, the
/// inputs and output no recorded rule reads are released, as a recorded plan run does; the gradient and the
/// derivative of the recorded gradient must still come out, equal to a run that released nothing.
/// </summary>
public class SavedTensorsTheory
{
    public static IEnumerable<object[]> Cases => OpCase.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void RulesReadOnlyWhatTheyDeclare(string @case)
    {
        var reference = Derivatives(@case, release: false);
        var released = Derivatives(@case, release: true);
        if (reference is null) return;
        Assert.Equal(reference.Value.First, released!.Value.First);
        Assert.Equal(reference.Value.Second, released.Value.Second);
    }

    /// <summary>
    /// The gradient of sum(op(x)) (sum reads nothing, so the output may go too) and the derivative of
    /// sum(gradient · v) for a random v, as doubles; null when nothing is differentiable. Each call samples afresh
    /// from the case's seed, so both calls see the same numbers.
    /// </summary>
    private static (double[] First, double[] Second)? Derivatives(string @case, bool release)
    {
        var c = OpCase.Parse(@case);
        if (!c.Op.Schema.Differentiable) return null;
        using var scope = new ExecutionScope();
        var sampled = c.Sample(scope);
        // The op reads fresh intermediates (copies of the leaves), which may be released as a plan run would.
        var x = new Tensor[sampled.Length];
        var leaves = new List<Tensor>();
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = sampled[i];
            if (!c.IsDifferentiable(i, sampled[i])) continue;
            sampled[i].RequireGrad();
            leaves.Add(sampled[i]);
            x[i] = sampled[i] * 1.0;
        }
        if (leaves.Count == 0) return null;
        var y = c.Run(scope, x);
        if (!y.DType.IsFloating() || !y.RequiresGrad) return null;
        var loss = F.Sum(y);
        if (release)
        {
            foreach (var t in x)
                if (t.GradFn is not null && t.DataUses == 0) scope.Release(t);
            if (y.DataUses == 0) scope.Release(y);
        }
        var first = ReverseMode.Grad([loss], null, [.. leaves], new BackwardOptions { CreateGraph = true });
        Tensor? dots = null;
        foreach (var g in first)
        {
            var term = F.Sum(g * c.NormalLike(g));
            dots = dots is null ? term : dots + term;
        }
        var second = dots!.RequiresGrad ? ReverseMode.Grad([dots], null, [.. leaves]) : [.. leaves.Select(l => scope.Zeros(l.Shape, l.DType))];
        return (first.SelectMany(g => g.ToDoubles()).ToArray(), second.SelectMany(g => g.ToDoubles()).ToArray());
    }
}
