using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

public class PlanCacheTests
{
    private static Dictionary<string, TensorType> Types(params int[] shape) => new() { ["x"] = new TensorType(new Shape(shape), DType.Float32) };

    [Fact]
    public void RepeatedGraph_HitsTheCache()
    {
        var cache = new PlanCache();
        var g = ProgramParser.Parse("y = sin(x) * 2");
        var first = cache.GetOrCreate(g, Types(3));
        var second = cache.GetOrCreate(g, Types(3));
        Assert.Same(first, second);
        Assert.Equal(1, cache.Misses);
        Assert.Equal(1, cache.Hits);
    }

    [Fact]
    public void EqualContent_InAnotherObject_HitsTheCache()
    {
        var cache = new PlanCache();
        var a = cache.GetOrCreate(ProgramParser.Parse("y = sin(x) * 2"), Types(3));
        var b = cache.GetOrCreate(ProgramParser.Parse("y = sin(x) * 2"), Types(3));
        Assert.Same(a, b);
        Assert.Equal(1, cache.Hits);
    }

    [Fact]
    public void OtherInputTypes_OrOtherContent_Miss()
    {
        var cache = new PlanCache();
        var g = ProgramParser.Parse("y = sin(x) * 2");
        cache.GetOrCreate(g, Types(3));
        cache.GetOrCreate(g, Types(4));
        cache.GetOrCreate(ProgramParser.Parse("y = sin(x) * 3"), Types(3));
        Assert.Equal(3, cache.Misses);
        Assert.Equal(0, cache.Hits);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void LeastRecentlyUsed_IsEvicted()
    {
        var cache = new PlanCache(capacity: 2);
        var g = ProgramParser.Parse("y = sin(x)");
        cache.GetOrCreate(g, Types(1));
        cache.GetOrCreate(g, Types(2));
        cache.GetOrCreate(g, Types(1)); // 1 is now the most recent
        cache.GetOrCreate(g, Types(3)); // evicts 2
        Assert.Equal(2, cache.Count);
        cache.GetOrCreate(g, Types(1));
        Assert.Equal(2, cache.Hits);
        cache.GetOrCreate(g, Types(2));
        Assert.Equal(4, cache.Misses);
    }

    [Fact]
    public void Failures_AreNotCached()
    {
        var cache = new PlanCache();
        var bad = G([P("x")], [N("nosuchop", ["x"], "y")], "y");
        Assert.Throws<EngineException>(() => cache.GetOrCreate(bad));
        Assert.Throws<EngineException>(() => cache.GetOrCreate(bad));
        Assert.Equal(0, cache.Count);
        Assert.Equal(2, cache.Misses);
    }

    [Fact]
    public void ConcurrentUse_IsSafe()
    {
        var cache = new PlanCache(capacity: 8);
        var graphs = Enumerable.Range(0, 16).Select(i => ProgramParser.Parse($"y = sin(x) * {i}")).ToArray();
        Parallel.For(0, 400, i =>
        {
            var plan = cache.GetOrCreate(graphs[i % 16], Types(i % 3 + 1));
            Assert.Equal(new TensorType(new Shape(i % 3 + 1), DType.Float32), plan.ValueTypes["y"].ToTensorType());
        });
        Assert.Equal(400, cache.Hits + cache.Misses);
        Assert.True(cache.Count <= 8);
    }

    [Fact]
    public void Hash_CoversAttributesConstantsAndSubgraphs()
    {
        string H(Graph g) => GraphHash.Compute(g);
        var baseGraph = G([P("x")], [N("sum", ["x"], "y", Attributes.Of(("axes", new[] { 0 })))], "y");
        var otherAxes = G([P("x")], [N("sum", ["x"], "y", Attributes.Of(("axes", new[] { 1 })))], "y");
        Assert.NotEqual(H(baseGraph), H(otherAxes));
        Assert.Equal(64, H(baseGraph).Length);

        Graph WithConstant(float v) => new([P("x")], [N("mul", ["x", "c"], "y")], ["y"], new Dictionary<string, HostTensor> { ["c"] = HostTensor.Of([v], []) });
        Assert.Equal(H(WithConstant(2)), H(WithConstant(2)));
        Assert.NotEqual(H(WithConstant(2)), H(WithConstant(3)));

        Assert.Equal(H(C5()), H(C5()));
        Assert.NotEqual(H(C5()), H(C5([3])));
        var tweaked = C5();
        var loop = tweaked.Nodes[1];
        var body = G([P("b")], [N("mul", ["3", "b"], "b2")], "b2");
        var changed = tweaked with { Nodes = [.. tweaked.Nodes.Take(1), loop with { Attrs = loop.Attributes.With("body", body) }, .. tweaked.Nodes.Skip(2)] };
        Assert.NotEqual(H(tweaked), H(changed));
    }

    [Fact]
    public void Estimates_CountFlopsAndLiveBytes()
    {
        // A chain over [1000] float32: each value dies after the next node reads it.
        var g = ProgramParser.Parse("a = sin(x)\nb = cos(a)\nc = exp(b)\ns = sum(c)");
        var plan = Plan.Build(g, Types(1000));
        Assert.Equal(4000, plan.Estimates.Flops);          // 3 elementwise x 1000 + a 1000-element reduction
        Assert.Equal(4000 * 2 + 4, plan.Estimates.PeakBytes); // x, and a (cos and exp write over it), then the sum
        Assert.Equal(4000 * 4 + 4, plan.Estimates.TotalBytes); // what a tape keeps
        Assert.True(plan.Estimates.Complete);
        Assert.Equal(4, plan.NodeCount);

        var loop = Plan.Build(C5([3]));
        Assert.False(loop.Estimates.Complete); // a loop counts one iteration
        Assert.True(loop.Estimates.Flops > 0);
        Assert.Equal(9, loop.NodeCount);

        var unknown = Plan.Build(ProgramParser.Parse("y = sin(x)"));
        Assert.False(unknown.Estimates.Complete);
    }

    [Theory]
    [InlineData("y = matmul(a, b)", new[] { 2, 3 }, new[] { 3, 4 }, 2 * 8 * 3)]                    // 2·(2·4)·3
    [InlineData("y = matmul(a, b, transpose_a=true)", new[] { 3, 2 }, new[] { 3, 4 }, 2 * 8 * 3)]   // K is a's rows now
    [InlineData("y = dot(a, b)", new[] { 5 }, new[] { 5 }, 10)]
    [InlineData("y = outer(a, b)", new[] { 3 }, new[] { 4 }, 12)]                                  // one multiply per element
    [InlineData("y = reshape(a, shape=[-1])", new[] { 3, 4 }, new[] { 1 }, 0)]                     // a view computes nothing
    public void EachOpCountsItsOwnFlops(string program, int[] a, int[] b, long flops)
    {
        var g = ProgramParser.Parse(program);
        var types = new Dictionary<string, TensorType> { ["a"] = new(new Shape(a), DType.Float32) };
        if (g.Inputs.Any(p => p.Name == "b")) types["b"] = new(new Shape(b), DType.Float32);
        Assert.Equal(flops, Plan.Build(g, types).Estimates.Flops);
    }
}
