using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Costs of running a plan, for <c>inspect</c> and model listings. FLOPs count one per output element for
/// elementwise ops, one per input element for reductions, 2·M·N·K for matrix products; a loop body counts once
/// (the trip count is only known at run time), a branch as its dearer side. <see cref="PeakBytes"/> is what an
/// evaluate run's memory budget measures, inputs included: the interpreter's allocations replayed exactly (see
/// <see cref="MemoryReplay"/>), in-place reuse, views, literals and freeing after the last use included.
/// </summary>
public sealed partial record PlanEstimates(long Flops, long PeakBytes, long TotalBytes, bool Complete)
{
    /// <summary>
    /// <see cref="TotalBytes"/> is the sum over all values: what a reverse-mode pass keeps alive, since the tape
    /// holds every intermediate until backward. <see cref="Complete"/> is false when the peak may be off: some
    /// sizes were unknown (those values count as zero), the plan has loops (one iteration is replayed) or
    /// composite ops (their inner values are not seen, so the peak is a lower bound).
    /// </summary>
    internal static PlanEstimates Compute(PlannedGraph root)
    {
        var e = Walk(root);
        var (peak, exact) = MemoryReplay.Peak(root);
        return new PlanEstimates(e.Flops, peak, e.Total, e.Complete && exact);
    }

    private readonly record struct Costs(long Flops, long Total, bool Complete);

    private static Costs Walk(PlannedGraph g)
    {
        bool complete = true;
        long Bytes(InferredType t)
        {
            if (t.ByteCount is { } b) return b;
            complete = false;
            return 0;
        }

        long total = 0, flops = 0;
        if (g.Path.Length == 0) foreach (var t in g.InputTypes) total += Bytes(t);
        foreach (var (_, c) in g.Graph.ConstantValues) total += c.Type.Shape.ElementCount * c.DType.SizeOf();

        foreach (var node in g.Order)
        {
            switch (node.Kind)
            {
                case NodeKind.While:
                    var cond = Walk(node.Cond!);
                    var body = Walk(node.Body!);
                    flops += cond.Flops + body.Flops;
                    total += cond.Total + body.Total;
                    complete = false;
                    break;
                case NodeKind.If:
                    var a = Walk(node.Then!);
                    var b = Walk(node.Else!);
                    flops += Math.Max(a.Flops, b.Flops);
                    total += Math.Max(a.Total, b.Total);
                    complete &= a.Complete && b.Complete;
                    break;
                default:
                    flops += OpFlops(node, ref complete);
                    break;
            }
            for (int j = 0; j < node.Outputs.Count; j++)
                total += node.Op is ViewOp ? 0 : Bytes(node.OutputTypes[j]);
        }
        return new Costs(flops, total, complete);
    }

    private static long OpFlops(PlannedNode node, ref bool complete)
    {
        if (node.Op!.Flops(node.InputTypes, node.OutputTypes[0], node.Node.Attributes) is { } flops) return flops;
        complete = false;
        return 0;
    }
}
