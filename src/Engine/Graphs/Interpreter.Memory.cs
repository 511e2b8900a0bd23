using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>The interpreter's memory planning: fused elementwise regions, in-place writes, freeing an op's temporaries.</summary>
public sealed partial class Interpreter
{
    /// <summary>
    /// A fused region at its root's position: one tiled pass when <see cref="RegionRunner"/> can take this run, else its
    /// members one by one (they all wait for the root, whose inputs are all computed by then).
    /// </summary>
    private void RunRegion(Frame frame, ElementwiseRegion region, Dictionary<string, int> remaining)
    {
        var g = frame.Graph;
        var inputs = new Tensor[region.Inputs.Length];
        for (int i = 0; i < inputs.Length; i++) inputs[i] = Lookup(frame, region.Inputs[i]);
        var output = RegionRunner.TryRun(_scope, region, inputs, _alwaysFuseRecorded);
        if (output is null)
        {
            foreach (int k in region.Members)
            {
                RunOp(frame, g.Order[k]);
                _nodes++;
                ReadsDone(frame, g.Order[k], remaining);
            }
            return;
        }
        var root = g.Order[region.Root];
        output.Name = root.Outputs[0];
        // As for any op: an unrecorded value is freed after its last read, a recorded one only if no rule reads it.
        (_scope.GradEnabled ? _recorded : _releasable).Add(output);
        frame.Values[root.Outputs[0]] = output;
        Bind(output);
        foreach (int k in region.Members)
        {
            _nodes++;
            ReadsDone(frame, g.Order[k], remaining);
        }
    }

    /// <summary>
    /// An input the op may write its output over: one this run made unrecorded (so it may be freed), bound once, in
    /// this frame, read for the last time by this very node (so it is unbound right after), sharing its bytes with no
    /// view, and of exactly the output's type. Caller inputs, constants, literals and kept values never qualify (they
    /// are pinned, not releasable, or have a read left). The dispatcher checks the op and the mode once more.
    /// </summary>
    private Tensor? FindReusable(Frame frame, PlannedNode node, Tensor[] inputs)
    {
        if (node.Op is not PrimitiveOp { Schema.InPlaceSafe: true } op) return null;
        foreach (var t in inputs)
            if (t.DType != inputs[0].DType) return null; // the dispatcher promotes: keep it simple, allocate
        var planned = node.OutputTypes.Count > 0 ? node.OutputTypes[0] : InferredType.Unknown;
        TensorType? type = null;
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            var name = node.Inputs[i];
            if (node.Literals[i] is not null || !_releasable.Contains(t) || _refs.GetValueOrDefault(t) != 1 || !t.OwnsStorageAlone) continue;
            if (!frame.Values.TryGetValue(name, out var bound) || !ReferenceEquals(bound, t)) continue;
            if (frame.Remaining.GetValueOrDefault(name) != ReadsHere(node, name)) continue;
            // The planned type when fully known (no work per op); else the op's rule on the actual inputs.
            if (planned.IsKnown ? Matches(planned, t.Type) : (type ??= OutputType(op, inputs, node.Node.Attributes)) == t.Type) return t;
        }
        return null;
    }

    private static bool Matches(InferredType planned, TensorType actual)
    {
        var dims = planned.Dims!;
        if (planned.DType != actual.DType || dims.Count != actual.Shape.Rank) return false;
        for (int d = 0; d < dims.Count; d++)
            if (dims[d] != actual.Shape[d]) return false;
        return true;
    }

    private static int ReadsHere(PlannedNode node, string name)
    {
        int n = 0;
        for (int i = 0; i < node.Inputs.Count; i++)
            if (node.Literals[i] is null && node.Inputs[i] == name) n++;
        return n;
    }

    /// <summary>The output type by the op's own rule (null when it refuses the inputs: the dispatcher reports that).</summary>
    private static TensorType? OutputType(PrimitiveOp op, Tensor[] inputs, Attributes attrs)
    {
        // The flagged ops take one or two inputs: their types live on the stack, no array per op.
        var inline = default(TwoTypes);
        Span<TensorType> types = inputs.Length <= 2 ? ((Span<TensorType>)inline)[..inputs.Length] : new TensorType[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) types[i] = inputs[i].Type;
        try
        {
            return op.InferType(types, attrs);
        }
        catch (EngineException)
        {
            return null;
        }
    }

    [System.Runtime.CompilerServices.InlineArray(2)]
    private struct TwoTypes
    {
        private TensorType _first;
    }

    /// <summary>
    /// Frees what an unrecorded op allocated besides its output and the output's tangent: a composite's inner values,
    /// promotion casts, the JVP rule's work. Nothing can read them (no tape); without this they would live until the
    /// scope ends, and a loop over a composite op would grow every iteration.
    /// </summary>
    private void ReleaseTemporaries(int mark, Tensor output)
    {
        var tracked = _scope.Tracked;
        int count = tracked.Count - mark;
        if (count <= 1) return; // just the output: the common case costs nothing
        var made = new Tensor[count];
        for (int i = 0; i < count; i++) made[i] = tracked[mark + i];
        foreach (var t in made)
            if (!ReferenceEquals(t, output) && !ReferenceEquals(t, output.Tangent)) _scope.Release(t);
    }
}
