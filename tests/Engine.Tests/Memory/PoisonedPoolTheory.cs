using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;
using AutogradService.Engine.Tests.Ops;

namespace AutogradService.Engine.Tests.Memory;

/// <summary>
/// A reused buffer's earlier contents — possibly another request's values — must never reach a result. Every rent
/// from this pool is filled with a sentinel byte first, so an op whose kernel reads any element of its output or of
/// a temporary before writing it shows the sentinel in its value, its gradient or its tangent. Run over every
/// registered op's examples: forward, reverse mode (with create_graph, so the rules' own ops run) and forward mode.
/// </summary>
public class PoisonedPoolTheory
{
    private const byte Sentinel = 0xA5;

    private static readonly BufferPool Poisoned = new(fillOnRent: Sentinel);

    public static IEnumerable<object[]> Cases => OpCase.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void NoResultCarriesAReusedBuffersBytes(string @case)
    {
        var c = OpCase.Parse(@case);
        using var scope = new ExecutionScope(new ScopeOptions { Pool = Poisoned });
        var x = c.Sample(scope);
        var diff = Enumerable.Range(0, x.Length).Where(i => c.IsDifferentiable(i, x[i])).ToArray();
        foreach (int i in diff) x[i].RequireGrad();
        var y = c.Run(scope, x);
        AssertClean(y, c, "forward output");
        if (diff.Length == 0 || !y.RequiresGrad) return;

        var w = c.NormalLike(y);
        var grads = ReverseMode.Grad([y], [w], diff.Select(i => x[i]).ToArray(), new BackwardOptions { CreateGraph = true });
        foreach (var g in grads) AssertClean(g, c, "gradient");

        var tangents = new Tensor?[x.Length];
        foreach (int i in diff) tangents[i] = c.NormalLike(x[i]);
        using var noGrad = scope.NoGrad();
        var (_, outTangents) = ForwardMode.Jvp(xs => [c.Run(scope, xs)], x.Select(t => scope.Import(t)).ToArray(), tangents);
        AssertClean(outTangents[0], c, "tangent");
    }

    [Fact]
    public void ThePoolReallyPoisons()
    {
        using var scope = new ExecutionScope(new ScopeOptions { Pool = Poisoned });
        var t = scope.Allocate(new Shape(5), DType.Float32);
        Assert.Contains(t.Bytes().ToArray(), b => b == Sentinel);
        Assert.Throws<Xunit.Sdk.TrueException>(() => AssertClean(t, null, "an unwritten tensor"));
    }

    /// <summary>No element of <paramref name="t"/> is the sentinel pattern (bool: any byte that is not 0 or 1).</summary>
    private static void AssertClean(Tensor t, OpCase? c, string what)
    {
        var bytes = t.Bytes();
        int size = t.DType.SizeOf();
        for (int i = 0; i < bytes.Length; i += size)
        {
            var element = bytes.Slice(i, size);
            bool poisoned = t.DType == DType.Bool ? element[0] > 1 : !element.ContainsAnyExcept(Sentinel);
            Assert.True(!poisoned, $"{c}: {what} element {i / size} holds bytes of a reused buffer that no kernel wrote");
        }
    }
}
