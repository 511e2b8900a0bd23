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
internal sealed class ElementwiseRegion(PlannedGraph graph, int[] members, string[] inputs)
{
    private RegionOp? _op;
    private RegionProgram? _program;

    public PlannedGraph Graph { get; } = graph;

    /// <summary>Positions in the graph's order, ascending; the last is the root.</summary>
    public int[] Members { get; } = members;

    /// <summary>Values read from outside the region, each once.</summary>
    public string[] Inputs { get; } = inputs;

    public int Root => Members[^1];

    /// <summary>The region as one op, for recorded runs (built once, shared by every run of the plan).</summary>
    public RegionOp Op => _op ??= new RegionOp(this);

    /// <summary>The region as straight-line code per element, for a backend that runs it as one program.</summary>
    public RegionProgram Program => _program ??= RegionProgram.Of(this);

    /// <summary>
    /// Applies the members in order through the dispatcher, reading and adding values by name in
    /// <paramref name="values"/> (which holds the region's inputs), and returns the root's value. A literal beside a
    /// floating tensor takes its dtype (GraphLiterals.DTypeFor), the region's; <paramref name="literal"/> supplies it.
    /// </summary>
    public Tensor ApplyMembers(ExecutionScope scope, Dictionary<string, Tensor> values, Func<double, Tensor> literal)
    {
        Tensor result = null!;
        foreach (int k in Members)
        {
            var node = Graph.Order[k];
            var args = new Tensor[node.Inputs.Count];
            for (int i = 0; i < args.Length; i++)
                args[i] = node.Literals[i] is { } v ? literal(v) : values[node.Inputs[i]];
            result = Dispatcher.Apply(scope, node.Op!, args, node.Node.Attributes);
            values[node.Outputs[0]] = result;
        }
        return result;
    }
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
            var region = new ElementwiseRegion(g, [.. members], [.. inputs]);
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
        node.Kind == NodeKind.Op && node.Outputs.Count == 1 && node.Op!.Fusable &&
        node.OutputTypes[0].DType is { } d && d.IsFloating() && Array.Exists(node.Literals, v => v is null);
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
    internal const long MinElements = 1 << 18;

    /// <summary>
    /// The region's root value computed in one tiled pass — recorded as one <see cref="RegionOp"/> node when an input
    /// requires a gradient and the budget could not keep every member's value — or null when this run isn't fused
    /// (small tensors, operands that are neither full-shape nor a single element, mixed dtypes, tangents, a tape
    /// with room): the caller then runs the members one by one.
    /// </summary>
    public static Tensor? TryRun(ExecutionScope scope, ElementwiseRegion region, Tensor[] inputs, bool alwaysFuseRecorded = false)
    {
        var types = new TensorType[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].Tangent is not null) return null;
            types[i] = inputs[i].Type;
        }
        if (OutputType(types) is not { } type) return null;
        if (scope.GradEnabled && AnyRequiresGrad(inputs))
        {
            // Recorded, fusing trades time for memory on the CPU: the VJP recomputes each tile's intermediates (0-5%
            // slower than reading them back, measured, and a create_graph backward must expand the region again), so
            // it is used only when the tape could not hold the members' values, or where the backend runs the region
            // and its VJP as one pass each.
            long kept = region.Members.Length * type.Shape.ElementCount * type.DType.SizeOf();
            if (!alwaysFuseRecorded && !scope.Backend.FusesRecorded(region) && scope.Budget.InUseBytes + kept <= scope.Budget.LimitBytes) return null;
            return Dispatcher.Apply(scope, region.Op, inputs, Attributes.Empty);
        }
        var output = scope.Allocate(type);
        try
        {
            scope.Backend.RunRegion(scope, region, inputs, output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>The root's type when the inputs can be tiled: one full shape, the rest single elements of no higher rank, one dtype.</summary>
    internal static TensorType? OutputType(ReadOnlySpan<TensorType> inputs)
    {
        int full = -1;
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i].Shape.ElementCount > 1 && (full < 0 || inputs[i].Shape.ElementCount > inputs[full].Shape.ElementCount)) full = i;
        if (full < 0 || inputs[full].Shape.ElementCount < MinElements) return null;
        var type = inputs[full];
        foreach (var t in inputs)
        {
            if (t.DType != type.DType) return null;
            if (t.Shape.ElementCount == 1 ? t.Shape.Rank > type.Shape.Rank : t.Shape != type.Shape) return null;
        }
        return type;
    }

    /// <summary>How many workers share a region of <paramref name="n"/> elements: the engine's threads, a share of at least half the threshold each.</summary>
    internal static int Workers(long n) => Math.Max(1, Math.Min(EngineThreads.Count, (int)Math.Min(int.MaxValue, n / (MinElements / 2))));

    /// <summary>
    /// Splits the tiles of <paramref name="n"/> elements over <paramref name="workers"/> (from <see cref="Workers"/>,
    /// read once by the caller) and runs <paramref name="range"/>(worker, first tile, end tile) on each share.
    /// </summary>
    internal static void ForTiles(long n, int workers, Action<int, int, int> range)
    {
        int tiles = (int)((n + TileElements - 1) / TileElements);
        if (workers <= 1)
        {
            range(0, 0, tiles);
            return;
        }
        int per = (tiles + workers - 1) / workers;
        try
        {
            Parallel.For(0, workers, EngineThreads.Options(workers),
                w => range(w, w * per, Math.Min(tiles, (w + 1) * per)));
        }
        catch (AggregateException e) when (e.InnerException is EngineException inner)
        {
            throw inner;
        }
    }

    /// <summary>
    /// A scope for one of <paramref name="workers"/> workers' tiles: the request's backend, pool and cancellation, and
    /// an equal share of what is left of its budget, so the tiles together never take the request past its limit.
    /// (Tile buffers are charged to these scopes, not the request's: the request's measured peak leaves them out.)
    /// </summary>
    internal static ExecutionScope TileScope(ExecutionScope scope, int workers, bool record) => new(new ScopeOptions
    {
        Backend = scope.Backend,
        Pool = scope.Pool,
        Cancellation = scope.Cancellation,
        MemoryLimitBytes = Math.Max(1, (scope.Budget.LimitBytes - scope.Budget.InUseBytes) / Math.Max(1, workers)),
    }) { GradEnabled = record };

    /// <summary>Writes the root's value into <paramref name="output"/>, tile by tile.</summary>
    internal static void Forward(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        var args = inputs.ToArray();
        int workers = Workers(output.ElementCount);
        ForTiles(output.ElementCount, workers, (_, first, end) => RunTiles(scope, workers, region, args, output, first, end));
    }

    private static unsafe void RunTiles(ExecutionScope scope, int workers, ElementwiseRegion region, Tensor[] inputs, Tensor output,
        int firstTile, int endTile)
    {
        if (firstTile >= endTile) return;
        using var tileScope = TileScope(scope, workers, record: false);
        var tiles = new TileInputs(tileScope, region, inputs);
        int size = output.DType.SizeOf();
        for (int tile = firstTile; tile < endTile; tile++)
        {
            scope.ThrowIfCancelled();
            var (start, length) = tiles.Load(tile, output.ElementCount, requireGrad: null);
            var result = tiles.RunMembers();
            result.Bytes().CopyTo(new Span<byte>((byte*)output.Pointer + start * size, length * size));
            tiles.EndTile();
        }
    }

    internal static bool AnyRequiresGrad(Tensor[] inputs)
    {
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }
}

/// <summary>One worker's view of a region's inputs, tile by tile: full-shape inputs copied per tile, single elements once.</summary>
internal sealed class TileInputs
{
    private readonly ExecutionScope _tileScope;
    private readonly ElementwiseRegion _region;
    private readonly Tensor[] _inputs;
    private readonly DType _dtype;
    private readonly Dictionary<string, Tensor> _values = new(StringComparer.Ordinal);
    private readonly Dictionary<double, Tensor> _literals = [];
    private readonly Func<double, Tensor> _literal;
    private readonly List<Tensor> _temporaries = [];
    private int _mark;

    public TileInputs(ExecutionScope tileScope, ElementwiseRegion region, Tensor[] inputs)
    {
        _tileScope = tileScope;
        _region = region;
        _inputs = inputs;
        _dtype = inputs[0].DType;
        _literal = v => _literals[v];
        Scalars = new Tensor?[inputs.Length];
        Tiles = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].ElementCount != 1) continue;
            // Rank 0, so it broadcasts against any tile.
            var s = tileScope.Allocate(Shape.Scalar, _dtype);
            inputs[i].Bytes().CopyTo(s.Bytes());
            Scalars[i] = s;
        }
        // Literals too are made once, before the first tile marks where its temporaries begin.
        foreach (int k in region.Members)
            foreach (var v in region.Graph.Order[k].Literals)
                if (v is { } value && !_literals.ContainsKey(value)) _literals[value] = tileScope.Scalar(value, _dtype);
    }

    /// <summary>Per input: its single element as a rank-0 tensor (null for full-shape inputs).</summary>
    public Tensor?[] Scalars { get; }

    /// <summary>Per input: the current tile's copy (null for single elements).</summary>
    public Tensor?[] Tiles { get; }

    /// <summary>
    /// Copies tile <paramref name="tile"/> of every full-shape input; with <paramref name="requireGrad"/> those inputs
    /// (and single elements) become leaves to differentiate against.
    /// </summary>
    public unsafe (long Start, int Length) Load(int tile, long n, bool[]? requireGrad)
    {
        _mark = _tileScope.Tracked.Count;
        long start = (long)tile * RegionRunner.TileElements;
        int length = (int)Math.Min(RegionRunner.TileElements, n - start);
        int size = _dtype.SizeOf();
        var shape = Shape.Vector(length);
        _values.Clear();
        for (int i = 0; i < _inputs.Length; i++)
        {
            var name = _region.Inputs[i];
            if (Scalars[i] is { } s)
            {
                if (requireGrad is not null && requireGrad[i] && !s.RequiresGrad) s.RequireGrad();
                Tiles[i] = s;
                _values[name] = s;
                continue;
            }
            var t = _tileScope.Allocate(shape, _dtype);
            new ReadOnlySpan<byte>((byte*)_inputs[i].Pointer + start * size, length * size).CopyTo(t.Bytes());
            if (requireGrad is not null && requireGrad[i]) t.RequireGrad();
            Tiles[i] = t;
            _values[name] = t;
        }
        return (start, length);
    }

    /// <summary>Runs the members on the loaded tile through the dispatcher and returns the root's tile.</summary>
    public Tensor RunMembers() => _region.ApplyMembers(_tileScope, _values, _literal);

    /// <summary>
    /// Gives back every tensor made since the tile was loaded (tile copies, members' values, backward's temporaries):
    /// the next tile gets the same, still cached, buffers from the pool.
    /// </summary>
    public void EndTile()
    {
        var tracked = _tileScope.Tracked;
        for (int i = _mark; i < tracked.Count; i++) _temporaries.Add(tracked[i]);
        foreach (var t in _temporaries) _tileScope.Release(t);
        _temporaries.Clear();
    }
}
