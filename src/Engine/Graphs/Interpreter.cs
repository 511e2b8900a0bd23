using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>What to return from a run besides the outputs.</summary>
public sealed record RunOptions
{
    /// <summary>Values to return (default: the graph's outputs). Any top-level value may be named.</summary>
    public IReadOnlyList<string>? Outputs { get; init; }

    /// <summary>Further top-level values to keep and return (case E6: per-node values and adjoints).</summary>
    public IReadOnlyCollection<string>? Intermediates { get; init; }

    /// <summary>Keep and return every top-level value.</summary>
    public bool AllIntermediates { get; init; }

    /// <summary>Whether runs may fuse elementwise regions (default); false runs every node on its own, for comparison.</summary>
    public bool Fuse { get; init; } = true;

    /// <summary>Fuse recorded regions even when the tape has room for their values (tests of the fused VJP).</summary>
    internal bool AlwaysFuseRecorded { get; init; }

    /// <summary>Whether an unrecorded run may write an elementwise op's output over a dying input (tests turn it off to compare).</summary>
    internal bool InPlace { get; init; } = true;

    /// <summary>Decides loop and branch conditions instead of reading them (a run on the meta backend, which has no values).</summary>
    internal ConditionPath? Conditions { get; init; }

    public static RunOptions Default { get; } = new();
}

public sealed record RunResult(
    IReadOnlyDictionary<string, Tensor> Outputs,
    IReadOnlyDictionary<string, Tensor> Intermediates,
    long NodesExecuted,
    long LoopIterations);

/// <summary>
/// Runs a plan in a scope. Every node goes through <see cref="Dispatcher.Apply(ExecutionScope, Ops.Op, Tensor[], Ops.Attributes)"/>,
/// so it is recorded on the tape and pushes tangents exactly as a define-by-run call would: <c>while</c> and
/// <c>if</c> run dynamically and the tape just sees the ops of the iterations and branch taken, which is how
/// both modes differentiate through any trip count, nested loops included. When nothing is being recorded,
/// values are freed after their last use, so a long loop runs in constant memory; an op's own temporaries (a
/// composite's inner values, promotion casts, tangent work) are freed when it returns; and an elementwise op writes
/// its output over an input that dies at that op (see <see cref="FindReusable"/>). <see cref="PlanEstimates"/>
/// runs exactly this on the meta backend to predict the peak.
/// </summary>
public sealed partial class Interpreter
{
    private readonly ExecutionScope _scope;

    // Bindings per tensor (by reference) across all frames; a tensor whose count drops to zero is released if
    // this run created it unrecorded. Caller inputs, constants and literals are never released.
    private readonly Dictionary<Tensor, int> _refs = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _releasable = new(ReferenceEqualityComparer.Instance);
    // Values this run recorded: at their last read their bytes go if no recorded rule reads them (the tape keeps the object).
    private readonly HashSet<Tensor> _recorded = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _pinned = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<HostTensor, Tensor> _constants = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(long Bits, DType DType), Tensor> _literals = new();
    private long _nodes;
    private long _iterations;
    private bool _fuse = true;
    private bool _alwaysFuseRecorded;

    private readonly bool _inPlace;
    private ConditionPath? _conditions;

    private Interpreter(ExecutionScope scope, bool inPlace)
    {
        _scope = scope;
        _inPlace = inPlace;
    }

    /// <summary>Runs <paramref name="plan"/> on <paramref name="inputs"/> (tensors of <paramref name="scope"/>, by input name).</summary>
    public static RunResult Run(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs, RunOptions? options = null)
    {
        options ??= RunOptions.Default;
        var root = plan.Root;
        var args = CheckInputs(plan, inputs);

        var outputs = options.Outputs ?? plan.Graph.Outputs;
        IEnumerable<string> extra = options.AllIntermediates ? root.Types.Keys : options.Intermediates ?? [];
        var intermediates = extra.Distinct(StringComparer.Ordinal).ToArray();
        foreach (var name in outputs.Concat(intermediates))
            if (!root.Types.ContainsKey(name))
                throw new EngineException(ErrorCodes.InvalidArgument,
                    $"the graph has no value '{name}' to return (its outputs: {GraphValidator.NameList(plan.Graph.Outputs)})", input: name);

        var keep = outputs.Concat(intermediates).ToArray();
        bool defaultKeep = (options.Outputs is null || options.Outputs.SequenceEqual(plan.Graph.Outputs, StringComparer.Ordinal)) &&
            intermediates.Length == 0;
        var liveness = defaultKeep ? root.Liveness : Liveness.Compute(root, keep);

        // Anomaly mode checks every node on its own, so nothing is fused.
        var run = new Interpreter(scope, options.InPlace) { _fuse = options.Fuse && !scope.DetectAnomaly, _alwaysFuseRecorded = options.AlwaysFuseRecorded, _conditions = options.Conditions };
        var values = run.RunGraph(root, null, args, liveness, keep);
        var outputMap = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < outputs.Count; i++) outputMap[outputs[i]] = values[i];
        var intermediateMap = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < intermediates.Length; i++) intermediateMap[intermediates[i]] = values[outputs.Count + i];
        return new RunResult(outputMap, intermediateMap, run._nodes, run._iterations);
    }

    private static Tensor[] CheckInputs(Plan plan, IReadOnlyDictionary<string, Tensor> inputs)
    {
        var graph = plan.Graph;
        var declares = graph.InputNameTest();
        foreach (var name in inputs.Keys)
            if (!declares(name))
                throw new EngineException(ErrorCodes.InvalidArgument,
                    $"the graph has no input '{name}' (its inputs: {GraphValidator.NameList(graph.Inputs.Select(p => p.Name))})", input: name);
        var args = new Tensor[graph.Inputs.Count];
        for (int i = 0; i < args.Length; i++)
        {
            var name = graph.Inputs[i].Name;
            if (!inputs.TryGetValue(name, out var t) || t is null)
                throw new EngineException(ErrorCodes.InvalidArgument, $"input '{name}' has no value", input: name);
            var expected = plan.Root.InputTypes[i];
            if (!expected.Accepts(t.Type))
                throw new EngineException(expected.DType is { } d && d != t.DType ? ErrorCodes.DTypeMismatch : ErrorCodes.ShapeMismatch,
                    $"input '{name}' must be {expected}, got {t.Type}", input: name);
            args[i] = t;
        }
        return args;
    }

    private sealed class Frame(PlannedGraph graph, Frame? parent, Dictionary<string, int> remaining)
    {
        public PlannedGraph Graph { get; } = graph;
        public Frame? Parent { get; } = parent;
        public Dictionary<string, Tensor> Values { get; } = new(StringComparer.Ordinal);

        /// <summary>Reads still to come of each value defined in this frame.</summary>
        public Dictionary<string, int> Remaining { get; } = remaining;
    }

    /// <summary>
    /// Runs one graph on <paramref name="args"/> and returns the values named <paramref name="results"/>, each
    /// carrying one binding the caller owns (and must <see cref="Unbind"/> or hand on).
    /// </summary>
    private Tensor[] RunGraph(PlannedGraph g, Frame? parent, Tensor[] args, Liveness liveness, IReadOnlyList<string> results)
    {
        var remaining = new Dictionary<string, int>(liveness.Uses, StringComparer.Ordinal);
        var frame = new Frame(g, parent, remaining);
        for (int i = 0; i < args.Length; i++)
        {
            var p = g.Graph.Inputs[i];
            if (parent is not null && !g.InputTypes[i].Accepts(args[i].Type))
                throw new EngineException(g.InputTypes[i].DType != args[i].DType ? ErrorCodes.DTypeMismatch : ErrorCodes.ShapeMismatch,
                    $"input '{p.Name}' of {g.Path} must be {g.InputTypes[i]}, got {args[i].Type}", g.Path, input: p.Name);
            frame.Values[p.Name] = args[i];
            Bind(args[i]);
        }

        // Fused elementwise regions need the graph's own liveness: a run that keeps intermediates runs node by node.
        var regions = _fuse && ReferenceEquals(liveness, g.Liveness) ? g.Regions : null;
        for (int k = 0; k < g.Order.Count; k++)
        {
            if (!liveness.Needed[k] || regions?.IsDeferred(k) == true) continue;
            var node = g.Order[k];
            _scope.ThrowIfCancelled();
            if (regions?.RootAt(k) is { } region)
            {
                RunRegion(frame, region, remaining);
                continue;
            }
            switch (node.Kind)
            {
                case NodeKind.While: RunWhile(frame, node); break;
                case NodeKind.If: RunIf(frame, node); break;
                default: RunOp(frame, node); break;
            }
            _nodes++;
            ReadsDone(frame, node, remaining);
        }

        var output = new Tensor[results.Count];
        for (int i = 0; i < output.Length; i++)
        {
            output[i] = Lookup(frame, results[i]);
            Bind(output[i]);
        }
        foreach (var t in frame.Values.Values) Unbind(t);
        return output;
    }

    /// <summary>Counts the node's reads and unbinds each value read for the last time.</summary>
    private void ReadsDone(Frame frame, PlannedNode node, Dictionary<string, int> remaining)
    {
        foreach (var name in Liveness.ReadsOf(node))
        {
            if (!remaining.TryGetValue(name, out int left) || !frame.Values.TryGetValue(name, out var t)) continue;
            remaining[name] = --left;
            if (left > 0) continue;
            frame.Values.Remove(name);
            Unbind(t);
        }
    }

    private void RunOp(Frame frame, PlannedNode node)
    {
        var inputs = ResolveInputs(frame, node, 0);
        Tensor output;
        bool recording = _scope.GradEnabled;
        var reuse = recording || !_inPlace ? null : FindReusable(frame, node, inputs);
        int mark = _scope.Tracked.Count;
        try
        {
            output = Dispatcher.Apply(_scope, node.Op!, inputs, node.Node.Attributes, reuse);
        }
        catch (EngineException e) when (e.Node is null)
        {
            if (node.Node.Line is { } line) e.Facts.TryAdd("line", line);
            throw e.Code is ErrorCodes.ShapeMismatch or ErrorCodes.DTypeMismatch or ErrorCodes.InvalidGraph
                ? ShapeInference.Annotate(e, node, inputs.Select(t => InferredType.From(t.Type)).ToArray())
                : e.At(node.Path, node.OpName);
        }
        if (!recording) ReleaseTemporaries(mark, output);
        // A tensor this run made may be freed after its last read: whole when unrecorded, else only if no rule reads it.
        if (!_refs.ContainsKey(output) && !_pinned.Contains(output)) (recording ? _recorded : _releasable).Add(output);
        output.Name ??= node.Outputs[0];
        frame.Values[node.Outputs[0]] = output;
        Bind(output);
    }

    /// <summary>The node's inputs from <paramref name="start"/> on; number literals become scalars of the dtype their siblings suggest.</summary>
    private Tensor[] ResolveInputs(Frame frame, PlannedNode node, int start)
    {
        int n = node.Inputs.Count;
        var tensors = new Tensor[n];
        var dtypes = new DType?[n];
        for (int i = 0; i < n; i++)
        {
            if (node.Literals[i] is not null) continue;
            tensors[i] = Lookup(frame, node.Inputs[i]);
            dtypes[i] = tensors[i].DType;
        }
        var schema = ShapeInference.SchemaOf(node);
        for (int i = 0; i < n; i++)
            if (node.Literals[i] is { } v) tensors[i] = Literal(v, GraphLiterals.DTypeFor(schema, i, dtypes, v));
        return start == 0 ? tensors : tensors[start..];
    }

    private Tensor Lookup(Frame frame, string name)
    {
        for (var f = frame; f is not null; f = f.Parent)
        {
            if (f.Values.TryGetValue(name, out var t)) return t;
            if (f.Graph.Graph.ConstantValues.TryGetValue(name, out var host))
            {
                t = Constant(host, name);
                f.Values[name] = t;
                Bind(t);
                return t;
            }
        }
        // Validation makes this unreachable; keep the error meaningful anyway.
        throw GraphAnalyzer.Missing(name, frame.Graph.Path, null, frame.Parent is not null);
    }

    private Tensor Constant(HostTensor host, string name)
    {
        if (!_constants.TryGetValue(host, out var t))
        {
            t = host.ToTensor(_scope);
            t.Name = name;
            _constants[host] = t;
            _pinned.Add(t);
        }
        return t;
    }

    private Tensor Literal(double value, DType dtype)
    {
        var key = (BitConverter.DoubleToInt64Bits(value), dtype);
        if (!_literals.TryGetValue(key, out var t))
        {
            t = _scope.Scalar(value, dtype);
            t.Name = GraphLiterals.Format(value);
            _literals[key] = t;
            _pinned.Add(t);
        }
        return t;
    }

    private void Bind(Tensor t) => _refs[t] = _refs.GetValueOrDefault(t) + 1;

    private void Unbind(Tensor t)
    {
        if (!_refs.TryGetValue(t, out int n)) return;
        if (n > 1)
        {
            _refs[t] = n - 1;
            return;
        }
        _refs.Remove(t);
        if (_releasable.Remove(t) || (_recorded.Remove(t) && t.DataUses == 0)) _scope.Release(t);
    }
}
