using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// A fused <see cref="ElementwiseRegion"/> as one recorded op: the tape keeps its inputs and its output, none of the
/// intermediates. The forward is one pass (the CPU's tiles, a GPU's one launch); so is the VJP: in one launch where
/// the backend has one (<see cref="Backends.IBackend.RunRegionVjp"/>), else tile by tile, recomputing each tile's
/// intermediates and running the members' own VJP rules on it, so forward and backward each cross memory once. Under
/// create_graph the VJP expands the region into its ops on whole tensors (recorded), so higher derivatives see the
/// plain graph.
/// Built by the planner for a region; not in the registry.
/// </summary>
internal sealed class RegionOp : PrimitiveOp
{
    private readonly ElementwiseRegion _region;

    public RegionOp(ElementwiseRegion region)
    {
        _region = region;
        var g = region.Graph;
        var ops = string.Join(", ", region.Members.Select(k => g.Order[k].OpName));
        Schema = new OpSchema("fused", "elementwise", $"fused elementwise region ({ops})",
            [new OpInput("inputs", Variadic: true)], [], "the root's shape and dtype", true);
    }

    public override OpSchema Schema { get; }

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs) =>
        RegionRunner.OutputType(inputs) ?? throw EngineException.ShapeMismatch("a fused region's inputs must share one shape or be single elements");

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.RunRegion(scope, _region, inputs, output);

    /// <summary>A full sum's one-element cotangent is broadcast per tile (or, expanded, by the expansion's own rules).</summary>
    internal override bool TakesOneElementCotangent => true;

    public override Tensor?[] Vjp(VjpArgs a)
    {
        var needs = new bool[a.Inputs.Length];
        for (int i = 0; i < needs.Length; i++) needs[i] = a.NeedsGrad(i);
        if (a.Scope.GradEnabled) return ExpandedVjp(a, needs);
        return a.Scope.Backend.RunRegionVjp(a.Scope, _region, a.Inputs, a.Output, a.Grad, needs) ?? TiledVjp(a, needs);
    }

    /// <summary>Forward mode through a region: its ops on whole tensors, tangents pushed as usual.</summary>
    public override Tensor? Jvp(JvpArgs a)
    {
        var (_, tangents) = ForwardMode.Jvp(xs => [Expand(a.Scope, xs)], a.Inputs, a.Tangents);
        return tangents[0];
    }

    /// <summary>The members applied to whole tensors through the dispatcher (recorded when recording is on).</summary>
    private Tensor Expand(ExecutionScope scope, Tensor[] inputs)
    {
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < inputs.Length; i++) values[_region.Inputs[i]] = inputs[i];
        var dtype = inputs[0].DType;
        return _region.ApplyMembers(scope, values, v => scope.Scalar(v, dtype));
    }

    private Tensor?[] ExpandedVjp(VjpArgs a, bool[] needs)
    {
        var root = Expand(a.Scope, a.Inputs);
        var seed = a.Grad.Shape == root.Shape ? a.Grad : F.BroadcastTo(a.Grad, root.Shape);
        var wrt = new List<Tensor>();
        for (int i = 0; i < needs.Length; i++) if (needs[i]) wrt.Add(a.Inputs[i]);
        var grads = ReverseMode.Grad([root], [seed], [.. wrt], new BackwardOptions { CreateGraph = true });
        var result = new Tensor?[needs.Length];
        for (int i = 0, j = 0; i < needs.Length; i++) if (needs[i]) result[i] = grads[j++];
        return result;
    }

    /// <summary>
    /// Per tile: the inputs' tiles as leaves, the members recorded on them, and reverse mode seeded with the
    /// cotangent's tile. Full-shape inputs get their gradient tile by tile; a single-element input gets the sum of its
    /// tiles' shares (added in double).
    /// </summary>
    private unsafe Tensor?[] TiledVjp(VjpArgs a, bool[] needs)
    {
        var scope = a.Scope;
        var inputs = a.Inputs;
        var output = a.Output;
        var grad = a.Grad;
        bool oneElement = grad.Shape != output.Shape; // a kept one-element cotangent: broadcast per tile
        long n = output.ElementCount;
        int size = output.DType.SizeOf();
        var result = new Tensor?[inputs.Length];
        try
        {
            for (int i = 0; i < inputs.Length; i++)
                if (needs[i] && inputs[i].ElementCount != 1) result[i] = scope.Allocate(inputs[i].Type);
            int workers = RegionRunner.Workers(n);
            var scalarSums = new double[workers, inputs.Length];
            RegionRunner.ForTiles(n, workers, (worker, first, end) =>
            {
                if (first >= end) return;
                using var tileScope = RegionRunner.TileScope(scope, workers, record: true);
                var tiles = new TileInputs(tileScope, _region, inputs);
                var wrt = new List<Tensor>();
                Tensor? one = null;
                if (oneElement)
                {
                    one = tileScope.Allocate(Shape.Scalar, grad.DType);
                    grad.Bytes().CopyTo(one.Bytes());
                }
                for (int tile = first; tile < end; tile++)
                {
                    scope.ThrowIfCancelled();
                    var (start, length) = tiles.Load(tile, n, needs);
                    var root = tiles.RunMembers();
                    Tensor seed;
                    if (one is not null) seed = F.BroadcastTo(one, root.Shape);
                    else
                    {
                        seed = tileScope.Allocate(root.Shape, grad.DType);
                        new ReadOnlySpan<byte>((byte*)grad.Pointer + start * size, length * size).CopyTo(seed.Bytes());
                    }
                    wrt.Clear();
                    for (int i = 0; i < inputs.Length; i++) if (needs[i]) wrt.Add(tiles.Tiles[i]!);
                    var grads = ReverseMode.Grad([root], [seed], [.. wrt]);
                    for (int i = 0, j = 0; i < inputs.Length; i++)
                    {
                        if (!needs[i]) continue;
                        var g = grads[j++];
                        if (result[i] is { } full) g.Bytes().CopyTo(new Span<byte>((byte*)full.Pointer + start * size, length * size));
                        else scalarSums[worker, i] += g.ToScalar();
                    }
                    tiles.EndTile();
                }
            });
            for (int i = 0; i < inputs.Length; i++)
            {
                if (!needs[i] || result[i] is not null) continue;
                double total = 0;
                for (int w = 0; w < scalarSums.GetLength(0); w++) total += scalarSums[w, i];
                result[i] = scope.Full(inputs[i].Shape, total, inputs[i].DType);
            }
            return result;
        }
        catch
        {
            foreach (var t in result) t?.Dispose();
            throw;
        }
    }
}
