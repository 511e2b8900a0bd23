using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// A fused group of elementwise nodes: each value one member makes is read exactly once, by another member, so only
/// the last member's value (<see cref="Root"/>) leaves the group. Run tile by tile, every intermediate lives in a
/// cache-sized buffer and the group costs one pass over memory instead of one per node.
/// </summary>
internal sealed class ElementwiseRegion(int[] members, string[] inputs)
{
    /// <summary>Positions in the graph's order, ascending; the last is the root.</summary>
    public int[] Members { get; } = members;

    /// <summary>Values read from outside the region, each once.</summary>
    public string[] Inputs { get; } = inputs;

    public int Root => Members[^1];
}

/// <summary>The regions of one graph for one liveness: which order positions start a region's run and which wait for it.</summary>
internal sealed class RegionMap
{
    private readonly ElementwiseRegion?[] _rootAt;
    private readonly bool[] _deferred;

    private RegionMap(ElementwiseRegion?[] rootAt, bool[] deferred)
    {
        _rootAt = rootAt;
        _deferred = deferred;
    }

    /// <summary>The region whose root is at <paramref name="k"/>, if any.</summary>
    public ElementwiseRegion? RootAt(int k) => _rootAt[k];

    /// <summary>A member other than a root: it runs with its region, at the root's position.</summary>
    public bool IsDeferred(int k) => _deferred[k];

    /// <summary>Groups fusable nodes joined by single-use values; null when the graph has no region of two or more nodes.</summary>
    public static RegionMap? Find(PlannedGraph g, Liveness liveness)
    {
        int count = g.Order.Count;
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < count; k++)
            if (liveness.Needed[k] && Fusable(g.Order[k]))
                producer[g.Order[k].Outputs[0]] = k;
        if (producer.Count < 2) return null;

        // Union-find over "member p's value is read once, by member c".
        var parent = new int[count];
        for (int k = 0; k < count; k++) parent[k] = k;
        int Find(int k) => parent[k] == k ? k : parent[k] = Find(parent[k]);
        bool any = false;
        for (int c = 0; c < count; c++)
        {
            var node = g.Order[c];
            if (!liveness.Needed[c] || !Fusable(node)) continue;
            for (int i = 0; i < node.Inputs.Count; i++)
            {
                if (node.Literals[i] is not null || !producer.TryGetValue(node.Inputs[i], out int p)) continue;
                if (liveness.Uses.GetValueOrDefault(node.Inputs[i]) != 1) continue;
                parent[Find(p)] = Find(c);
                any = true;
            }
        }
        if (!any) return null;

        var groups = new Dictionary<int, List<int>>();
        for (int k = 0; k < count; k++)
        {
            if (!producer.ContainsKey(g.Order[k].Outputs[0]) || !liveness.Needed[k] || !Fusable(g.Order[k])) continue;
            int root = Find(k);
            if (!groups.TryGetValue(root, out var list)) groups[root] = list = [];
            list.Add(k);
        }
        var rootAt = new ElementwiseRegion?[count];
        var deferred = new bool[count];
        foreach (var members in groups.Values)
        {
            if (members.Count < 2) continue;
            var inside = new HashSet<string>(StringComparer.Ordinal);
            foreach (int k in members) inside.Add(g.Order[k].Outputs[0]);
            var inputs = new List<string>();
            foreach (int k in members)
            {
                var node = g.Order[k];
                for (int i = 0; i < node.Inputs.Count; i++)
                    if (node.Literals[i] is null && !inside.Contains(node.Inputs[i]) && !inputs.Contains(node.Inputs[i]))
                        inputs.Add(node.Inputs[i]);
            }
            // Members come in order; the root (the one value that leaves) is the last, since every other feeds it.
            var region = new ElementwiseRegion([.. members], [.. inputs]);
            rootAt[region.Root] = region;
            for (int j = 0; j < members.Count - 1; j++) deferred[members[j]] = true;
        }
        return new RegionMap(rootAt, deferred);
    }

    /// <summary>
    /// Floating unary and binary arithmetic with at least one value input: ops whose value at an element depends only
    /// on that element (a node of literals alone keeps its own dtype rule, so it stays out).
    /// </summary>
    private static bool Fusable(PlannedNode node) =>
        node.Kind == NodeKind.Op && node.Outputs.Count == 1 && node.Op is UnaryOp or BinaryOp &&
        node.Op != UnaryOps.LogicalNot && node.OutputTypes[0].DType is { } d && d.IsFloating() &&
        Array.Exists(node.Literals, v => v is null);
}

/// <summary>
/// Runs an <see cref="ElementwiseRegion"/> tile by tile through the ordinary dispatcher on tile-sized tensors, so each
/// op keeps its one kernel and rule while the intermediates stay in cache. Elementwise kernels give the same bits on
/// any sub-range (the parallel split relies on that too), so fusing changes no number.
/// </summary>
internal static class RegionRunner
{
    /// <summary>Elements per tile: a few tiles of float32 intermediates fit in L2 next to the inputs' tiles.</summary>
    internal const int TileElements = 16_384;

    /// <summary>Below this many elements the tensors already fit in cache and a region runs node by node.</summary>
    internal static long MinElements { get; set; } = 1 << 18;

    /// <summary>
    /// The region's root value computed in one tiled pass, or null when this run can't be fused (small tensors,
    /// operands that are neither full-shape nor a single element, mixed dtypes, recording or tangents): the caller
    /// then runs the members one by one.
    /// </summary>
    public static Tensor? TryRun(ExecutionScope scope, PlannedGraph g, ElementwiseRegion region, Tensor[] inputs)
    {
        if (scope.GradEnabled && AnyRequiresGrad(inputs)) return null;
        Tensor? full = null;
        foreach (var t in inputs)
        {
            if (t.Tangent is not null) return null;
            if (t.ElementCount > 1 && (full is null || t.ElementCount > full.ElementCount)) full = t;
        }
        if (full is null || full.ElementCount < MinElements) return null;
        var dtype = full.DType;
        foreach (var t in inputs)
        {
            if (t.DType != dtype) return null;
            if (t.ElementCount == 1 ? t.Rank > full.Rank : t.Shape != full.Shape) return null;
        }

        var output = scope.Allocate(full.Shape, dtype);
        try
        {
            long n = full.ElementCount;
            int tiles = (int)((n + TileElements - 1) / TileElements);
            int workers = Math.Min(EngineThreads.Count, Math.Max(1, (int)(n / (MinElements / 2))));
            if (workers <= 1) RunTiles(scope, g, region, inputs, output, 0, tiles);
            else
            {
                int per = (tiles + workers - 1) / workers;
                try
                {
                    Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                        w => RunTiles(scope, g, region, inputs, output, w * per, Math.Min(tiles, (w + 1) * per)));
                }
                catch (AggregateException e) when (e.InnerException is EngineException inner)
                {
                    throw inner;
                }
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static unsafe void RunTiles(ExecutionScope scope, PlannedGraph g, ElementwiseRegion region, Tensor[] inputs,
        Tensor output, int firstTile, int endTile)
    {
        if (firstTile >= endTile) return;
        // Tile buffers come from the request's pool and count against what is left of its budget.
        using var tileScope = new ExecutionScope(new ScopeOptions
        {
            Backend = scope.Backend,
            Pool = scope.Pool,
            Cancellation = scope.Cancellation,
            MemoryLimitBytes = Math.Max(1, scope.Budget.LimitBytes - scope.Budget.InUseBytes),
        });
        tileScope.GradEnabled = false;
        var dtype = output.DType;
        int size = dtype.SizeOf();

        // Single-element operands are copied once, as rank-0 tensors so they broadcast against any tile.
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var scalars = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].ElementCount != 1) continue;
            var s = tileScope.Allocate(Shape.Scalar, dtype);
            inputs[i].Bytes().CopyTo(s.Bytes());
            scalars[region.Inputs[i]] = s;
        }
        var literals = new Dictionary<double, Tensor>();
        var made = new List<Tensor>();
        long n = output.ElementCount;
        for (int tile = firstTile; tile < endTile; tile++)
        {
            scope.ThrowIfCancelled();
            long start = (long)tile * TileElements;
            int length = (int)Math.Min(TileElements, n - start);
            var tileShape = Shape.Vector(length);
            values.Clear();
            foreach (var (name, s) in scalars) values[name] = s;
            for (int i = 0; i < inputs.Length; i++)
            {
                if (inputs[i].ElementCount == 1) continue;
                var t = tileScope.Allocate(tileShape, dtype);
                new ReadOnlySpan<byte>((byte*)inputs[i].Pointer + start * size, length * size).CopyTo(t.Bytes());
                values[region.Inputs[i]] = t;
                made.Add(t);
            }
            Tensor result = null!;
            foreach (int k in region.Members)
            {
                var node = g.Order[k];
                var args = new Tensor[node.Inputs.Count];
                for (int i = 0; i < args.Length; i++)
                {
                    if (node.Literals[i] is { } v)
                    {
                        // A literal beside a floating tensor takes its dtype (GraphLiterals.DTypeFor), the region's.
                        if (!literals.TryGetValue(v, out var lit)) literals[v] = lit = tileScope.Scalar(v, dtype);
                        args[i] = lit;
                    }
                    else args[i] = values[node.Inputs[i]];
                }
                result = Dispatcher.Apply(tileScope, node.Op!, args, node.Node.Attributes);
                values[node.Outputs[0]] = result;
                made.Add(result);
            }
            result.Bytes().CopyTo(new Span<byte>((byte*)output.Pointer + start * size, length * size));
            // Back to the pool at once: the next tile gets the same, still cached, buffers.
            foreach (var t in made) tileScope.Release(t);
            made.Clear();
        }
    }

    private static bool AnyRequiresGrad(Tensor[] inputs)
    {
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }
}
