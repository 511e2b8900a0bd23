using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>How gradients land on leaves: added to what is there (PyTorch) or replacing it (MXNet, TF, JAX).</summary>
public enum GradientMode
{
    Accumulate,
    Overwrite,
}

public sealed record BackwardOptions
{
    /// <summary>Keep the recorded graph so backward can run through it again (implied by <see cref="CreateGraph"/>, as in PyTorch).</summary>
    public bool RetainGraph { get; init; }

    /// <summary>Record the backward pass itself, so its results can be differentiated again (higher order).</summary>
    public bool CreateGraph { get; init; }

    /// <summary>PyTorch's rule: refuse a missing seed on a non-scalar output instead of seeding with ones.</summary>
    public bool RequireScalarOutput { get; init; }

    /// <summary>When false, asking for the gradient of a tensor the outputs do not depend on is an error.</summary>
    public bool AllowUnused { get; init; } = true;

    public GradientMode Mode { get; init; } = GradientMode.Accumulate;

    /// <summary>Called once per requested tensor as soon as its gradient is final (for streaming results).</summary>
    public Action<Tensor, Tensor>? OnGradientReady { get; init; }

    public static BackwardOptions Default { get; } = new();
}

/// <summary>
/// Reverse mode: walks the recorded nodes from the outputs back in reverse recording order, calling each op's VJP
/// and summing the cotangents of values used more than once. Runs the rules with recording on only when
/// <see cref="BackwardOptions.CreateGraph"/> asks, which is all higher derivatives need.
/// </summary>
public static class ReverseMode
{
    /// <summary>
    /// Gradients of <paramref name="outputs"/> (weighted by <paramref name="seeds"/>, ones where null) with respect to
    /// <paramref name="wrt"/>, which may be leaves or intermediates. Unconnected ones get zeros.
    /// </summary>
    public static Tensor[] Grad(Tensor[] outputs, Tensor?[]? seeds, Tensor[] wrt, BackwardOptions? options = null)
    {
        options ??= BackwardOptions.Default;
        var pass = Pass.Rent();
        try
        {
            return Collect(pass, outputs, seeds, wrt, options);
        }
        finally
        {
            Pass.Return(pass);
        }
    }

    private static Tensor[] Collect(Pass pass, Tensor[] outputs, Tensor?[]? seeds, Tensor[] wrt, BackwardOptions options)
    {
        foreach (var t in wrt) pass.Wanted.Add(t);
        var grads = Run(pass, outputs, seeds, options, pass.Wanted);
        var result = new Tensor[wrt.Length];
        for (int i = 0; i < wrt.Length; i++)
        {
            if (grads.TryGetValue(wrt[i], out var g))
            {
                using (wrt[i].Scope.GradMode(options.CreateGraph))
                    result[i] = Full(g, wrt[i]);
            }
            else if (!options.AllowUnused)
            {
                throw EngineException.InvalidArgument(
                    $"the outputs do not depend on '{wrt[i].Name ?? $"input {i}"}'; allow unused inputs to get zeros instead");
            }
            else
            {
                result[i] = wrt[i].Scope.Zeros(wrt[i].Shape, wrt[i].DType.IsFloating() ? wrt[i].DType : DType.Float32);
            }
        }
        return result;
    }

    public static Tensor Grad(Tensor output, Tensor wrt, BackwardOptions? options = null) =>
        Grad([output], null, [wrt], options)[0];

    /// <summary>
    /// PyTorch's <c>backward()</c>: sends the gradient to every leaf that requires one and stores it in
    /// <see cref="Tensor.Grad"/>, added to what is there or replacing it as <see cref="BackwardOptions.Mode"/> says.
    /// </summary>
    public static void Backward(Tensor output, Tensor? seed = null, BackwardOptions? options = null)
    {
        options ??= BackwardOptions.Default;
        if (!output.RequiresGrad)
            throw EngineException.NotDifferentiable(
                "the output does not depend on any tensor that requires a gradient (was it computed under no_grad or from detached values?)");
        var pass = Pass.Rent();
        try
        {
            var grads = Run(pass, [output], [seed], options, wanted: null);
            using var mode = output.Scope.GradMode(options.CreateGraph);
            foreach (var (tensor, grad) in grads)
            {
                if (!tensor.IsLeaf || !tensor.RequiresGrad) continue;
                var full = Full(grad, tensor);
                tensor.Grad = options.Mode == GradientMode.Accumulate && tensor.Grad is { } old ? F.Add(old, full) : full;
            }
        }
        finally
        {
            Pass.Return(pass);
        }
    }

    /// <summary>Clears a leaf's stored gradient.</summary>
    public static void ZeroGrad(params Tensor[] leaves)
    {
        foreach (var t in leaves) t.Grad = null;
    }

    private static Dictionary<Tensor, Tensor> Run(Pass pass, Tensor[] outputs, Tensor?[]? seeds, BackwardOptions options, HashSet<Tensor>? wanted)
    {
        var grads = pass.Grads;
        if (outputs.Length == 0) return grads;
        var scope = outputs[0].Scope;
        // Without create_graph nothing outside this pass can see its cotangents: each is freed once nothing needs it.
        pass.Begin(scope, release: !options.CreateGraph);

        using (scope.GradMode(options.CreateGraph))
        {
            for (int i = 0; i < outputs.Length; i++)
            {
                var seed = SeedFor(outputs[i], seeds is not null && i < seeds.Length ? seeds[i] : null, options);
                Accumulate(pass, outputs[i], seed);
            }
        }

        var nodes = CollectNodes(pass, outputs);
        var pendingUses = pass.Uses;
        using var recording = scope.GradMode(options.CreateGraph);
        foreach (var node in nodes)
        {
            scope.ThrowIfCancelled();
            var inputs = node.Inputs;
            int mark = scope.Tracked.Count;
            if (grads.TryGetValue(node.Output, out var grad))
            {
                var needs = pass.Needs(inputs.Length);
                for (int i = 0; i < inputs.Length; i++) needs[i] = inputs[i].RequiresGrad;
                if (grad.Shape != node.Output.Shape && !AcceptsBroadcastGrad(node, needs))
                    grad = F.BroadcastTo(grad, node.Output.Shape);
                Tensor?[] inputGrads;
                bool outerRule = scope.InBackwardRule;
                try
                {
                    scope.InBackwardRule = scope.DetectAnomaly;
                    inputGrads = node.Op.Vjp(new VjpArgs(inputs, node.Output, grad, node.Attrs, needs, node.Saved));
                }
                catch (EngineException e)
                {
                    throw e.At(null, node.Op.Name);
                }
                finally
                {
                    scope.InBackwardRule = outerRule;
                }
                if (scope.DetectAnomaly) AnomalyCheck.Backward(node, grad, inputGrads);
                for (int i = 0; i < inputs.Length; i++)
                {
                    if (needs[i] && i < inputGrads.Length && inputGrads[i] is { } g)
                        Accumulate(pass, inputs[i], ConformOrKeepScalar(g, inputs[i].Type));
                }
                // The node's cotangent is final and read by no one else now, unless it was asked for.
                if (wanted is null || !wanted.Contains(node.Output)) pass.Drop(node.Output);
                pass.Sweep(mark);
            }
            foreach (var input in inputs)
            {
                if (!pendingUses.TryGetValue(input, out int left)) continue;
                pendingUses[input] = --left;
                if (left == 0 && options.OnGradientReady is { } ready && grads.TryGetValue(input, out var final) &&
                    (wanted is null ? input.IsLeaf : wanted.Contains(input)))
                    ready(input, Full(final, input));
            }
            if (!options.RetainGraph && !options.CreateGraph) node.Free();
        }
        return grads;
    }

    /// <summary>
    /// A one-element cotangent of a larger tensor stays one element (standing for its broadcast) instead of being
    /// broadcast at once: the VJP of every full sum is such a value, and the elementwise rules that usually consume it
    /// (g · f'(x)) broadcast it for free, which saves a full pass and a buffer per use (two of W6's ten).
    /// </summary>
    private static Tensor ConformOrKeepScalar(Tensor g, TensorType target)
    {
        if (g.ElementCount == 1 && g.DType == target.DType && target.Shape.ElementCount > 1 && g.Rank <= target.Shape.Rank &&
            g.Shape.BroadcastsTo(target.Shape))
            return g;
        return Dispatcher.Conform(g, target);
    }

    /// <summary>
    /// Whether a rule gives the right cotangents when handed a cotangent that broadcasts to its output rather than
    /// has its shape: elementwise unary ops (g · f'(x)), and add/sub/mul/div when every input that needs a gradient has
    /// the output's shape (so no rule must sum the broadcast away). Everything else gets the cotangent broadcast.
    /// </summary>
    private static bool AcceptsBroadcastGrad(TapeNode node, bool[] needs)
    {
        if (node.Op.TakesOneElementCotangent) return true;
        if (!node.Op.TakesBroadcastCotangent) return false;
        var inputs = node.Inputs;
        for (int i = 0; i < inputs.Length; i++)
            if (needs[i] && inputs[i].Shape != node.Output.Shape) return false;
        return true;
    }

    /// <summary>A gradient at its tensor's shape (a kept one-element cotangent is broadcast now; recorded if grad mode is on).</summary>
    private static Tensor Full(Tensor grad, Tensor of) => grad.Shape == of.Shape ? grad : F.BroadcastTo(grad, of.Shape);

    private static Tensor SeedFor(Tensor output, Tensor? seed, BackwardOptions options)
    {
        if (seed is null)
        {
            if (output.ElementCount != 1 && options.RequireScalarOutput)
                throw EngineException.InvalidArgument(
                    $"grad can be implicitly created only for scalar outputs (output has shape {output.Shape}); pass a seed, " +
                    "or turn off the strict rule to get the gradient of the sum");
            // The gradient of the sum of the outputs, as MXNet and TensorFlow define it.
            return output.Scope.Full(output.Shape, 1.0, output.DType);
        }
        if (seed.Shape != output.Shape)
            throw EngineException.ShapeMismatch($"the seed has shape {seed.Shape} but the output has shape {output.Shape}");
        return seed.DType == output.DType ? seed : F.Cast(seed, output.DType);
    }

    private static void Accumulate(Pass pass, Tensor target, Tensor grad)
    {
        var grads = pass.Grads;
        if (!grads.TryGetValue(target, out var existing))
        {
            grads[target] = grad;
            pass.Hold(grad);
            return;
        }
        var sum = F.Add(existing, grad);
        grads[target] = sum;
        pass.Hold(sum);
        pass.Unhold(existing);
    }

    /// <summary>Every node the outputs depend on, latest first, and how many recorded uses each input has.</summary>
    private static List<TapeNode> CollectNodes(Pass pass, Tensor[] outputs)
    {
        var (uses, seen, nodes, stack) = (pass.Uses, pass.Seen, pass.Nodes, pass.Stack);
        foreach (var o in outputs)
            if (o.GradFn is { } n && seen.Add(n)) stack.Push(n);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            var inputs = node.InputsOrNull ?? throw EngineException.GraphFreed(node.Op.Name);
            nodes.Add(node);
            foreach (var input in inputs)
            {
                if (!input.RequiresGrad) continue;
                uses[input] = uses.GetValueOrDefault(input) + 1;
                if (input.GradFn is { } n && seen.Add(n)) stack.Push(n);
            }
        }
        nodes.Sort(LatestFirst);
        return nodes;
    }

    private static readonly Comparison<TapeNode> LatestFirst = (a, b) => b.Sequence.CompareTo(a.Sequence);

    /// <summary>
    /// The bookkeeping of one backward pass, kept per thread and cleared after use, so a steady stream of small
    /// passes allocates no dictionaries. A pass running inside another (a callback that differentiates) gets a fresh one.
    /// </summary>
    private sealed class Pass
    {
        [ThreadStatic] private static Pass? t_spare;
        private bool[] _needs = new bool[4];

        public readonly Dictionary<Tensor, Tensor> Grads = new(ReferenceEqualityComparer.Instance);
        public readonly Dictionary<Tensor, int> Uses = new(ReferenceEqualityComparer.Instance);
        public readonly HashSet<Tensor> Wanted = new(ReferenceEqualityComparer.Instance);
        public readonly HashSet<TapeNode> Seen = new(ReferenceEqualityComparer.Instance);
        public readonly List<TapeNode> Nodes = [];
        public readonly Stack<TapeNode> Stack = new();

        // Liveness of cotangents: how many entries of Grads hold each tensor. A tensor this pass made that no entry
        // holds (a rule's temporary, a summand, a cotangent already sent on) is freed at once when releasing is on.
        private readonly Dictionary<Tensor, int> _holders = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<Tensor> _keep = new(ReferenceEqualityComparer.Instance);
        private readonly List<Tensor> _dead = [];
        private ExecutionScope? _scope;
        private long _start;
        private bool _release;

        public void Begin(ExecutionScope scope, bool release)
        {
            _scope = scope;
            _start = scope.NextSerial;
            _release = release;
        }

        public void Hold(Tensor t) => _holders[t] = _holders.GetValueOrDefault(t) + 1;

        public void Unhold(Tensor t)
        {
            if (!_holders.TryGetValue(t, out int n)) return;
            if (n > 1)
            {
                _holders[t] = n - 1;
                return;
            }
            _holders.Remove(t);
            if (Releasable(t)) _scope!.Release(t);
        }

        /// <summary>Removes <paramref name="value"/>'s cotangent from the pass (freed if nothing else holds it).</summary>
        public void Drop(Tensor value)
        {
            if (_release && Grads.Remove(value, out var g)) Unhold(g);
        }

        /// <summary>
        /// Frees what the scope made since <paramref name="mark"/> (a rule's temporaries) except held cotangents and
        /// the tangents riding on them (forward-over-reverse).
        /// </summary>
        public void Sweep(int mark)
        {
            if (!_release) return;
            var tracked = _scope!.Tracked;
            if (tracked.Count - mark <= 0) return;
            _keep.Clear();
            for (int i = mark; i < tracked.Count; i++)
            {
                if (!_holders.ContainsKey(tracked[i])) continue;
                for (var t = tracked[i].Tangent; t is not null; t = t.Tangent) _keep.Add(t);
            }
            for (int i = mark; i < tracked.Count; i++)
            {
                var t = tracked[i];
                if (!_holders.ContainsKey(t) && !_keep.Contains(t) && Releasable(t)) _dead.Add(t);
            }
            foreach (var t in _dead) _scope.Release(t);
            _dead.Clear();
        }

        private bool Releasable(Tensor t) => _release && !t.IsDisposed && t.Serial >= _start && t.TapeUses == 0 && t.GradFn is null;

        /// <summary>A flag per input of the node being processed (reused: rules read it only while they run).</summary>
        public bool[] Needs(int count)
        {
            if (_needs.Length < count) _needs = new bool[count];
            return _needs;
        }

        public static Pass Rent()
        {
            var pass = t_spare ?? new Pass();
            t_spare = null;
            return pass;
        }

        public static void Return(Pass pass)
        {
            // A huge pass would pin its tables' capacity to the thread: let those go.
            if (pass.Nodes.Count > 4096) return;
            pass.Grads.Clear();
            pass._holders.Clear();
            pass._scope = null;
            pass.Uses.Clear();
            pass.Wanted.Clear();
            pass.Seen.Clear();
            pass.Nodes.Clear();
            pass.Stack.Clear();
            t_spare = pass;
        }
    }
}
