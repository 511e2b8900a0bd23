using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Rough costs of running a plan, for <c>inspect</c> and model listings. FLOPs count one per output element for
/// elementwise ops, one per input element for reductions, 2·M·N·K for matrix products; a loop body counts once
/// (the trip count is only known at run time), a branch as its dearer side. Peak bytes follow the plan with
/// liveness: each value is freed after its last use, inputs and constants stay resident, views cost nothing.
/// </summary>
public sealed record PlanEstimates(long Flops, long PeakBytes, long TotalBytes, bool Complete)
{
    /// <summary>
    /// <see cref="TotalBytes"/> is the sum over all values: what a reverse-mode pass keeps alive, since the tape
    /// holds every intermediate until backward. <see cref="Complete"/> is false when some sizes were unknown
    /// (those values count as zero) or the plan has loops (counted once).
    /// </summary>
    internal static PlanEstimates Compute(PlannedGraph root)
    {
        var e = Walk(root);
        return new PlanEstimates(e.Flops, e.Peak, e.Total, e.Complete);
    }

    private readonly record struct Costs(long Flops, long Peak, long Total, bool Complete);

    private static Costs Walk(PlannedGraph g)
    {
        bool complete = true;
        long Bytes(InferredType t)
        {
            if (t.ByteCount is { } b) return b;
            complete = false;
            return 0;
        }

        // Resident for the whole graph: its inputs (a subgraph's are owned by the caller) and constants.
        long live = 0;
        if (g.Path.Length == 0) foreach (var t in g.InputTypes) live += Bytes(t);
        foreach (var (_, c) in g.Graph.ConstantValues) live += c.Type.Shape.ElementCount * c.DType.SizeOf();
        long peak = live, total = live, flops = 0;

        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < g.Order.Count; k++)
            foreach (var name in Liveness.ReadsOf(g.Order[k])) lastUse[name] = k;
        var outputs = new HashSet<string>(g.Graph.Outputs, StringComparer.Ordinal);
        var produced = new Dictionary<string, long>(StringComparer.Ordinal);

        for (int k = 0; k < g.Order.Count; k++)
        {
            var node = g.Order[k];
            long inner = 0;
            switch (node.Kind)
            {
                case NodeKind.While:
                    var cond = Walk(node.Cond!);
                    var body = Walk(node.Body!);
                    flops += cond.Flops + body.Flops;
                    inner = Math.Max(cond.Peak, body.Peak);
                    total += cond.Total + body.Total;
                    complete = false;
                    break;
                case NodeKind.If:
                    var a = Walk(node.Then!);
                    var b = Walk(node.Else!);
                    flops += Math.Max(a.Flops, b.Flops);
                    inner = Math.Max(a.Peak, b.Peak);
                    total += Math.Max(a.Total, b.Total);
                    complete &= a.Complete && b.Complete;
                    break;
                default:
                    flops += OpFlops(node, ref complete);
                    break;
            }
            long outBytes = 0;
            for (int j = 0; j < node.Outputs.Count; j++)
            {
                long bytes = node.Op is ViewOp ? 0 : Bytes(node.OutputTypes[j]);
                produced[node.Outputs[j]] = bytes;
                outBytes += bytes;
            }
            peak = Math.Max(peak, live + inner + outBytes);
            live += outBytes;
            total += outBytes;
            foreach (var name in Liveness.ReadsOf(node))
            {
                if (lastUse.GetValueOrDefault(name, -1) == k && !outputs.Contains(name) && produced.Remove(name, out long freed))
                    live -= freed;
            }
        }
        return new Costs(flops, peak, total, complete);
    }

    private static long OpFlops(PlannedNode node, ref bool complete)
    {
        var op = node.Op!;
        if (op is ViewOp) return 0;
        var output = node.OutputTypes[0];
        var name = op.Name;
        if (name is "matmul" or "dot" or "mv" or "outer" or "linear")
        {
            // 2·(output elements)·K, with K the contracted size: the first input's last dimension.
            var a = node.InputTypes[0];
            if (output.ElementCount is { } outN && a.Dims is { Count: > 0 } dims && dims[^1] >= 0)
                return 2 * Math.Max(outN, 1) * dims[^1];
            complete = false;
            return 0;
        }
        if (op.Schema.Category == "reduction")
        {
            if (node.InputTypes[0].ElementCount is { } inN) return inN;
            complete = false;
            return 0;
        }
        if (output.ElementCount is { } n) return n;
        complete = false;
        return 0;
    }
}
