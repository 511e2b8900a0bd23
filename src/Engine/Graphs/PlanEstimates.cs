using AutogradService.Engine.Backends;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Costs of running a plan, for <c>inspect</c> and model listings. FLOPs count what each op says it costs
/// (<see cref="Op.Flops"/>); a loop body counts once (the trip count is only known at run time), a branch as its
/// dearer side. <see cref="PeakBytes"/> is what an evaluate run's memory budget measures, inputs included: it is the
/// real interpreter and dispatcher run on the <see cref="MetaBackend"/>, which charges the budget as the host would and
/// computes nothing — so views, in-place reuse, fusion, literals, promotion casts, composite ops' inner values and
/// freeing after the last use are all counted by the code that does them.
/// </summary>
public sealed record PlanEstimates(long Flops, long PeakBytes, long TotalBytes, bool Complete)
{
    /// <summary>Branch paths tried at most: beyond that the dearest may be among those not tried.</summary>
    internal const int MaxPaths = 64;

    /// <summary>
    /// <see cref="TotalBytes"/> is the sum over all values: what a reverse-mode pass keeps alive, since the tape holds
    /// every intermediate until backward. <see cref="Complete"/> is false when the peak may be off, and
    /// <see cref="Caveat"/> says why: an input's size is unknown (unknown dims taken as 1), the plan has loops (one
    /// iteration is run), too many branch paths, or the run needs a value (a meta tensor has none).
    /// </summary>
    public string? Caveat { get; init; }

    internal static PlanEstimates Compute(Plan plan, CancellationToken cancellation)
    {
        var costs = Walk(plan.Root);
        var peak = MetaPeak(plan, cancellation);
        return new PlanEstimates(costs.Flops, peak.Bytes, costs.Total, costs.Complete && peak.Caveat is null)
        {
            Caveat = peak.Caveat ?? (costs.Complete ? null : "some sizes are unknown until run time"),
        };
    }

    /// <summary>
    /// The dearest evaluate run over every path through the <c>if</c> nodes (up to <see cref="MaxPaths"/>), each run on
    /// the meta backend with the conditions chosen by a <see cref="ConditionPath"/>.
    /// </summary>
    private static (long Bytes, string? Caveat) MetaPeak(Plan plan, CancellationToken cancellation)
    {
        var inputTypes = new TensorType[plan.Root.InputTypes.Count];
        string? caveat = null;
        for (int i = 0; i < inputTypes.Length; i++)
        {
            var t = plan.Root.InputTypes[i];
            if (t.IsKnown) inputTypes[i] = t.ToTensorType();
            else
            {
                inputTypes[i] = t.Assume(1);
                caveat ??= $"input '{plan.Graph.Inputs[i].Name}' is {t}: unknown dims counted as 1";
            }
        }

        long peak = 0;
        var pending = new Stack<bool[]>();
        pending.Push([]);
        for (int runs = 0; pending.TryPop(out var prefix); runs++)
        {
            if (runs == MaxPaths)
            {
                caveat ??= $"more than {MaxPaths} paths through the if nodes: the dearest {MaxPaths} tried";
                break;
            }
            var path = new ConditionPath(prefix);
            using (var scope = new ExecutionScope(new ScopeOptions { Backend = MetaBackend.Instance, Cancellation = cancellation }))
            {
                try
                {
                    var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                    for (int i = 0; i < inputTypes.Length; i++) feed[plan.Graph.Inputs[i].Name] = scope.Allocate(inputTypes[i]);
                    using (scope.NoGrad())
                        Interpreter.Run(scope, plan, feed, new RunOptions { Conditions = path });
                }
                catch (Exception e) when (!cancellation.IsCancellationRequested && e is not OutOfMemoryException)
                {
                    // A run that needs a value (a meta tensor has none), or one that would fail on any values: the
                    // estimate is what was charged until then, and says so; it never fails the request itself.
                    caveat ??= $"the estimate stopped where the run needs values: {e.Message}";
                }
                peak = Math.Max(peak, scope.Budget.PeakBytes);
            }
            if (path.RanLoop) caveat ??= "loops are counted for one iteration";
            // Each choice taken by default (then) past the prefix has an untried alternative (else).
            for (int d = prefix.Length; d < path.Choices.Count; d++)
                pending.Push([.. path.Choices.Take(d), !path.Choices[d]]);
        }
        return (peak, caveat);
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

/// <summary>
/// Decides <c>while</c> and <c>if</c> conditions for a run that has no values (the meta backend): each <c>if</c> takes
/// the next choice of a prefix, then "then"; each loop runs its body once.
/// </summary>
internal sealed class ConditionPath(bool[] prefix)
{
    /// <summary>The branch choices this run made, in the order it met the <c>if</c> nodes.</summary>
    public List<bool> Choices { get; } = [];

    public bool RanLoop { get; private set; }

    public bool Decide(PlannedNode node, long iteration)
    {
        if (node.Kind == NodeKind.While)
        {
            RanLoop = true;
            return iteration == 0;
        }
        bool choice = Choices.Count < prefix.Length ? prefix[Choices.Count] : true;
        Choices.Add(choice);
        return choice;
    }
}
