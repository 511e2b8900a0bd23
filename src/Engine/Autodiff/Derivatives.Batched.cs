using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>
/// A reverse-mode Jacobian in one backward pass instead of one per output element (what vmap gives PyTorch): the seed
/// is the identity, so every cotangent carries a leading batch axis of N = output elements, and each op's VJP runs
/// once on the whole batch. It applies when every recorded op on the way says its rule stays correct with that extra
/// leading axis (<see cref="PrimitiveOp.TakesBatchedCotangent"/>: elementwise unary ops, add/sub/mul/div, reshape,
/// un-transposed matmul with a matrix operand); anything else falls back to the row-by-row loop.
/// </summary>
public static partial class Derivatives
{
    /// <summary>Largest batched cotangent (elements) the one-pass Jacobian may create; bigger ones go row by row.</summary>
    internal const long MaxBatchedElements = 1L << 24;

    private static bool TryBatchedReverse(Tensor output, Tensor[] leaves, Tensor[] result)
    {
        if (!output.RequiresGrad || !output.DType.IsFloating()) return false;
        long n = output.ElementCount;
        if (BatchableNodes([output], n) is null) return false;
        var scope = output.Scope;
        using var noGrad = scope.NoGrad();
        var eye = scope.Zeros(new Shape(checked((int)n), checked((int)n)), output.DType);
        if (eye.DType == DType.Float32) { var s = eye.Span<float>(); for (int i = 0; i < n; i++) s[i * (int)n + i] = 1f; }
        else { var s = eye.Span<double>(); for (int i = 0; i < n; i++) s[i * (int)n + i] = 1.0; }
        return TryBatchedBackward([output], [F.Reshape(eye, Batched(n, output.Shape))], leaves, n, result);
    }

    /// <summary>
    /// Vector-Jacobian products for a batch of cotangents: <paramref name="seeds"/>[o] has shape [B, ...outputs[o]] and
    /// the result [i] has shape [B, ...leaves[i]] (row b is the VJP of the cotangents' row b). One backward pass over
    /// the whole batch when every op on the way allows it (<paramref name="onePass"/> true), else one pass per row
    /// through the retained graph. Outputs that need no gradient contribute nothing.
    /// </summary>
    public static Tensor[] BatchedVjp(Tensor[] outputs, Tensor[] seeds, Tensor[] leaves, int batch, out bool onePass)
    {
        var scope = NeedInputs(leaves, "a vector-Jacobian product");
        var result = new Tensor[leaves.Length];
        for (int i = 0; i < leaves.Length; i++)
            result[i] = scope.Zeros(Batched(batch, leaves[i].Shape), leaves[i].DType.IsFloating() ? leaves[i].DType : DType.Float32);
        var live = Enumerable.Range(0, outputs.Length).Where(o => outputs[o].RequiresGrad && outputs[o].DType.IsFloating()).ToArray();
        for (int o = 0; o < outputs.Length; o++)
        {
            if (seeds[o].Shape != Batched(batch, outputs[o].Shape))
                throw EngineException.ShapeMismatch(
                    $"the batched cotangent of output {o} has shape {seeds[o].Shape}; expected {Batched(batch, outputs[o].Shape)}");
        }
        onePass = true;
        if (live.Length == 0 || batch == 0) return result;
        var liveOutputs = live.Select(o => outputs[o]).ToArray();
        var liveSeeds = live.Select(o => seeds[o].DType == outputs[o].DType ? seeds[o] : F.Cast(seeds[o], outputs[o].DType)).ToArray();
        using (scope.NoGrad())
            if (TryBatchedBackward(liveOutputs, liveSeeds, leaves, batch, result)) return result;

        onePass = false;
        var retain = new BackwardOptions { RetainGraph = true };
        for (int b = 0; b < batch; b++)
        {
            var rows = liveSeeds.Select(s => Row(s, b)).ToArray();
            var grads = ReverseMode.Grad(liveOutputs, rows, leaves, retain);
            for (int i = 0; i < leaves.Length; i++)
                CopyInto(result[i], (long)b * leaves[i].ElementCount, grads[i]);
        }
        return result;
    }

    /// <summary>Row <paramref name="b"/> of a batched tensor, as a tensor of its trailing shape.</summary>
    private static Tensor Row(Tensor batched, int b)
    {
        var dims = batched.Shape.ToArray()[1..];
        var row = batched.Scope.Allocate(new Shape(dims), batched.DType);
        long n = row.ElementCount;
        if (row.DType == DType.Float32) batched.Span<float>().Slice((int)(b * n), (int)n).CopyTo(row.Span<float>());
        else batched.Span<double>().Slice((int)(b * n), (int)n).CopyTo(row.Span<double>());
        return row;
    }

    /// <summary>The one-pass batched backward from <paramref name="seeds"/> ([N, ...output] each); false when an op on the
    /// way cannot carry the batch axis (nothing is written then).</summary>
    private static bool TryBatchedBackward(Tensor[] outputs, Tensor[] seeds, Tensor[] leaves, long n, Tensor[] result)
    {
        var nodes = BatchableNodes(outputs, n);
        if (nodes is null) return false;
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        for (int o = 0; o < outputs.Length; o++)
            grads[outputs[o]] = grads.TryGetValue(outputs[o], out var seen) ? seen + seeds[o] : seeds[o];

        foreach (var node in nodes)
        {
            if (!grads.TryGetValue(node.Output, out var g)) continue;
            var inputs = node.Inputs;
            for (int i = 0; i < inputs.Length; i++)
            {
                if (!inputs[i].RequiresGrad) continue;
                var gi = node.Op.BatchedVjp(node, g, i, n);
                grads[inputs[i]] = grads.TryGetValue(inputs[i], out var existing) ? existing + gi : gi;
            }
        }
        for (int i = 0; i < leaves.Length; i++)
        {
            if (grads.TryGetValue(leaves[i], out var g))
                CopyInto(result[i], 0, g.DType == result[i].DType ? g : F.Cast(g, result[i].DType));
        }
        return true;
    }

    /// <summary>The nodes behind <paramref name="outputs"/>, latest first, or null when one of them cannot be batched.</summary>
    private static List<TapeNode>? BatchableNodes(Tensor[] outputs, long n)
    {
        var nodes = new List<TapeNode>();
        var seen = new HashSet<TapeNode>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<TapeNode>();
        foreach (var output in outputs)
            if (output.GradFn is { } first) stack.Push(first);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!seen.Add(node)) continue;
            if (node.InputsOrNull is not { } inputs || !Batchable(node, n)) return null;
            nodes.Add(node);
            foreach (var input in inputs)
                if (input.RequiresGrad && input.GradFn is { } next) stack.Push(next);
        }
        nodes.Sort((a, b) => b.Sequence.CompareTo(a.Sequence));
        return nodes;
    }

    private static bool Batchable(TapeNode node, long n) =>
        n * node.Output.ElementCount <= MaxBatchedElements && node.Op.TakesBatchedCotangent(node, n);

    /// <summary>
    /// The default batched VJP (<see cref="PrimitiveOp.BatchedVjp"/>): the op's own rule on the batched cotangent, a
    /// broadcast operand's result summed back to its shape with the batch axis kept.
    /// </summary>
    internal static Tensor ElementwiseBatchedVjp(TapeNode node, Tensor g, int i, long n)
    {
        var inputs = node.Inputs;
        var x = inputs[i];
        // Elementwise rules multiply the cotangent by values shaped like the output: the batch axis broadcasts.
        var needs = new bool[inputs.Length];
        needs[i] = true;
        var gi = node.Op.Vjp(new VjpArgs(inputs, node.Output, g, node.Attrs, needs, node.Saved))[i]
            ?? node.Output.Scope.Zeros(Batched(n, node.Output.Shape), g.DType);
        // A broadcast operand of a binary op (a scalar, a bias row): its cotangent is summed over the axes
        // broadcasting added, the batch axis kept. Padding its shape with leading 1s keeps [N, ...] aligned.
        if (x.Shape != node.Output.Shape && gi.Rank == 1 + node.Output.Rank)
        {
            var padded = new int[node.Output.Rank];
            padded.AsSpan().Fill(1);
            x.Shape.Dims.CopyTo(padded.AsSpan(node.Output.Rank - x.Rank));
            gi = F.Reshape(F.SumToShape(gi, Batched(n, new Shape(padded))), Batched(n, x.Shape));
        }
        else if (gi.Rank < 1 + x.Rank) gi = F.BroadcastTo(gi, Batched(n, x.Shape));
        return gi.DType == x.DType ? gi : F.Cast(gi, x.DType);
    }

    /// <summary><paramref name="shape"/> with a leading batch axis of <paramref name="n"/>.</summary>
    internal static Shape Batched(long n, Shape shape)
    {
        var dims = new int[shape.Rank + 1];
        dims[0] = checked((int)n);
        for (int i = 0; i < shape.Rank; i++) dims[i + 1] = shape[i];
        return new Shape(dims);
    }
}
