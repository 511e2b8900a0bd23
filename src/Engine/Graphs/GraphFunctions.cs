using System.Diagnostics;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>What a transform cost: times, the scope's peak memory, graph nodes and kernel ops run.</summary>
public sealed record GraphStats(double ForwardMs, double BackwardMs, long PeakBytes, long NodesExecuted, long OpsExecuted);

public sealed record EvaluateResult(IReadOnlyDictionary<string, Tensor> Outputs, GraphStats Stats);

public sealed record GradientRequest
{
    /// <summary>Inputs to differentiate against (default: every float input).</summary>
    public IReadOnlyList<string>? Wrt { get; init; }

    /// <summary>Cotangent per output (default ones: the gradient of the sum of the outputs).</summary>
    public IReadOnlyDictionary<string, Tensor>? Seeds { get; init; }

    public IReadOnlyList<string>? Outputs { get; init; }

    /// <summary>Top-level values to return with their adjoints (case E6).</summary>
    public IReadOnlyCollection<string>? Intermediates { get; init; }

    public bool AllIntermediates { get; init; }

    /// <summary>PyTorch's rule instead of the sum convention: a non-scalar output without a seed is an error (case C3).</summary>
    public bool RequireScalarOutput { get; init; }

    /// <summary>Called with the outputs when the forward pass ends, before any gradient (for streaming).</summary>
    public Action<IReadOnlyDictionary<string, Tensor>>? OnOutputsReady { get; init; }

    /// <summary>Called with each input's gradient as soon as it is final, for streaming.</summary>
    public Action<string, Tensor>? OnGradientReady { get; init; }
}

/// <summary>A value and its adjoint (the derivative of the seeded outputs with respect to it).</summary>
public sealed record ValueAndAdjoint(Tensor Value, Tensor Adjoint);

public sealed record GradientResult(
    IReadOnlyDictionary<string, Tensor> Outputs,
    IReadOnlyDictionary<string, Tensor> Gradients,
    IReadOnlyDictionary<string, ValueAndAdjoint> Intermediates,
    GraphStats Stats);

/// <summary>
/// Vector-Jacobian products. <see cref="Batch"/> is null for one VJP (gradients shaped like the inputs), else the
/// cotangents' leading batch size (gradients [batch, ...input]); <see cref="OnePass"/> says whether the batch ran as
/// one backward pass.
/// </summary>
public sealed record VjpResult(
    IReadOnlyDictionary<string, Tensor> Outputs, IReadOnlyDictionary<string, Tensor> Gradients, int? Batch, bool OnePass, GraphStats Stats);

public sealed record JvpResult(IReadOnlyDictionary<string, Tensor> Outputs, IReadOnlyDictionary<string, Tensor> Tangents, GraphStats Stats);

/// <summary><c>Jacobians[output][input]</c> has shape output ++ input.</summary>
public sealed record JacobianResult(
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> Jacobians, JacobianMode ModeUsed, GraphStats Stats);

/// <summary><c>Hessians[a][b]</c> has shape a ++ b.</summary>
public sealed record HessianResult(IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> Hessians, GraphStats Stats);

public sealed record HvpResult(IReadOnlyDictionary<string, Tensor> Products, GraphStats Stats);

/// <summary>
/// The stateless transforms the service offers, over a plan and input tensors of one scope: evaluate, gradient
/// (VJP), JVP, Jacobian, Hessian and Hessian-vector product. Each runs the graph through the interpreter and leaves
/// the calculus to <see cref="ReverseMode"/>, <see cref="ForwardMode"/> and <see cref="Derivatives"/>.
/// </summary>
public static class GraphFunctions
{
    /// <summary>Copies host values into <paramref name="scope"/>.</summary>
    public static Dictionary<string, Tensor> Import(ExecutionScope scope, IReadOnlyDictionary<string, HostTensor> inputs)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, host) in inputs)
        {
            var t = host.ToTensor(scope);
            t.Name = name;
            result[name] = t;
        }
        return result;
    }

    /// <summary>
    /// Plain JSON numbers arrive as float32; a graph that declares an input float64 (or int64) gets them converted, so a
    /// client need not spell the dtype twice. Bool never converts to or from numbers silently.
    /// </summary>
    public static IReadOnlyDictionary<string, HostTensor> ConformInputs(Graph graph, IReadOnlyDictionary<string, HostTensor> inputs)
    {
        Dictionary<string, HostTensor>? converted = null;
        foreach (var p in graph.Inputs)
        {
            if (p.AnyDType || !inputs.TryGetValue(p.Name, out var t) || t.DType == p.DType) continue;
            if (t.DType == DType.Bool || p.DType == DType.Bool) continue; // validation reports the mismatch
            converted ??= new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
            converted[p.Name] = HostTensor.FromDoubles(p.DType, t.Shape, t.ToDoubles());
        }
        return converted ?? inputs;
    }

    /// <summary>
    /// <paramref name="graph"/> declaring also each of <paramref name="supplied"/> it does not, as an input of any
    /// dtype that nothing reads (so its gradient is zeros): JAX's rule for arguments a function ignores.
    /// </summary>
    public static Graph AcceptingUnread(Graph graph, IEnumerable<string> supplied)
    {
        var declares = graph.InputNameTest();
        List<Parameter>? extra = null;
        foreach (var name in supplied)
            if (!declares(name)) (extra ??= [.. graph.Inputs]).Add(new Parameter(name) { AnyDType = true });
        return extra is null ? graph : graph with { Inputs = extra };
    }

    /// <summary>The plan for these inputs' concrete types, from <paramref name="cache"/> when given.</summary>
    public static Plan Prepare(Graph graph, IReadOnlyDictionary<string, Tensor> inputs, PlanCache? cache = null, OpRegistry? registry = null)
    {
        var types = inputs.ToDictionary(kv => kv.Key, kv => kv.Value.Type, StringComparer.Ordinal);
        return cache is not null ? cache.GetOrCreate(graph, types) : Plan.Build(graph, types, registry);
    }

    public static EvaluateResult Evaluate(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputs = null)
    {
        var clock = Clock.Start(scope);
        RunResult run;
        using (scope.NoGrad())
            run = Interpreter.Run(scope, plan, inputs, new RunOptions { Outputs = outputs });
        return new EvaluateResult(run.Outputs, clock.Stats(run.NodesExecuted));
    }

    public static GradientResult Gradient(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs, GradientRequest? request = null)
    {
        request ??= new GradientRequest();
        var clock = Clock.Start(scope);
        var wrt = ResolveWrt(plan, inputs, request.Wrt);
        var feed = new Dictionary<string, Tensor>(inputs, StringComparer.Ordinal);
        var leaves = new Tensor[wrt.Length];
        var leafNames = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < wrt.Length; i++)
        {
            leaves[i] = Leaf(inputs[wrt[i]], wrt[i]);
            feed[wrt[i]] = leaves[i];
            leafNames[leaves[i]] = wrt[i];
        }

        RunResult run;
        using (scope.GradMode(true))
            run = Interpreter.Run(scope, plan, feed, new RunOptions
            {
                Outputs = request.Outputs, Intermediates = request.Intermediates, AllIntermediates = request.AllIntermediates,
            });
        clock.EndForward();
        request.OnOutputsReady?.Invoke(run.Outputs);

        foreach (var name in request.Seeds?.Keys ?? [])
            if (!run.Outputs.ContainsKey(name))
                throw new EngineException(ErrorCodes.InvalidArgument, $"a seed is given for '{name}', which is not an output", input: name);
        var outputs = new List<Tensor>();
        var seeds = new List<Tensor?>();
        foreach (var (name, value) in run.Outputs)
        {
            if (!value.DType.IsFloating()) continue; // an integer or bool output has no derivative
            outputs.Add(value);
            seeds.Add(request.Seeds?.GetValueOrDefault(name));
        }

        var intermediates = run.Intermediates.ToArray();
        var targets = leaves.Concat(intermediates.Select(kv => kv.Value)).ToArray();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var ready = request.OnGradientReady;
        var options = new BackwardOptions
        {
            RequireScalarOutput = request.RequireScalarOutput,
            OnGradientReady = ready is null ? null : (t, g) =>
            {
                if (leafNames.TryGetValue(t, out var name) && reported.Add(name)) ready(name, g);
            },
        };
        var grads = outputs.Count > 0
            ? ReverseMode.Grad([.. outputs], [.. seeds], targets, options)
            : targets.Select(t => scope.Zeros(t.Shape, t.DType.IsFloating() ? t.DType : DType.Float32)).ToArray();

        var gradients = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < wrt.Length; i++)
        {
            gradients[wrt[i]] = grads[i];
            if (ready is not null && reported.Add(wrt[i])) ready(wrt[i], grads[i]); // unused inputs: zeros, sent last
        }
        var adjoints = new Dictionary<string, ValueAndAdjoint>(StringComparer.Ordinal);
        for (int i = 0; i < intermediates.Length; i++)
            adjoints[intermediates[i].Key] = new ValueAndAdjoint(intermediates[i].Value, grads[wrt.Length + i]);
        return new GradientResult(run.Outputs, gradients, adjoints, clock.Stats(run.NodesExecuted));
    }

    /// <summary>
    /// Vector-Jacobian products of <paramref name="outputs"/> (default: the graph's) with respect to <paramref name="wrt"/>
    /// (default: every float input). A cotangent shaped like its output gives one VJP; one with an extra leading axis
    /// gives that many (every cotangent then has the same batch size), in one batched backward pass where the ops allow.
    /// A float output without a cotangent is seeded with ones (as <see cref="Gradient"/> does).
    /// </summary>
    public static VjpResult Vjp(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyDictionary<string, Tensor> cotangents, IReadOnlyList<string>? wrt = null, IReadOnlyList<string>? outputs = null)
    {
        var clock = Clock.Start(scope);
        var wrtNames = ResolveWrt(plan, inputs, wrt);
        var feed = new Dictionary<string, Tensor>(inputs, StringComparer.Ordinal);
        var leaves = new Tensor[wrtNames.Length];
        for (int i = 0; i < wrtNames.Length; i++) feed[wrtNames[i]] = leaves[i] = Leaf(inputs[wrtNames[i]], wrtNames[i]);
        RunResult run;
        using (scope.GradMode(true))
            run = Interpreter.Run(scope, plan, feed, new RunOptions { Outputs = outputs });
        clock.EndForward();

        int? batch = null;
        bool first = true;
        foreach (var (name, c) in cotangents)
        {
            if (!run.Outputs.TryGetValue(name, out var y))
                throw new EngineException(ErrorCodes.InvalidArgument,
                    $"a cotangent is given for '{name}', which is not an output (outputs: {GraphValidator.NameList(run.Outputs.Keys)})", input: name);
            if (!y.DType.IsFloating())
                throw EngineException.NotDifferentiable($"output '{name}' is {y.DType.WireName()}: it has no cotangent", name);
            int? b = c.Shape == y.Shape ? null
                : c.Rank == y.Rank + 1 && c.Shape.ToArray()[1..].AsSpan().SequenceEqual(y.Shape.ToArray()) ? c.Shape[0]
                : throw new EngineException(ErrorCodes.ShapeMismatch,
                    $"the cotangent of '{name}' has shape {c.Shape}; expected the output's shape {y.Shape}, or a batch of them [B, ...{y.Shape}]", input: name);
            if (!first && b != batch)
                throw new EngineException(ErrorCodes.ShapeMismatch,
                    "cotangents must all be batched with the same batch size, or all unbatched", input: name);
            (batch, first) = (b, false);
        }

        var names = run.Outputs.Where(kv => kv.Value.DType.IsFloating()).Select(kv => kv.Key).ToArray();
        var ys = names.Select(n => run.Outputs[n]).ToArray();
        var seeds = names.Select(n => cotangents.TryGetValue(n, out var c) ? (Tensor?)F.Cast(c, run.Outputs[n].DType) : null).ToArray();
        Tensor[] grads;
        bool onePass = true;
        if (wrtNames.Length == 0) grads = [];
        else if (batch is { } size)
        {
            // A float output without a cotangent: ones in every row of the batch.
            var full = seeds.Select((c, i) => c ?? scope.Full(Batched(size, ys[i].Shape), 1.0, ys[i].DType)).ToArray();
            grads = Derivatives.BatchedVjp(ys, full, leaves, size, out onePass);
        }
        else if (ys.Length > 0) grads = ReverseMode.Grad(ys, seeds, leaves);
        else grads = leaves.Select(t => scope.Zeros(t.Shape, t.DType)).ToArray();
        return new VjpResult(run.Outputs, Zip(wrtNames, grads), batch, onePass, clock.Stats(run.NodesExecuted));
    }

    private static Shape Batched(int batch, Shape shape) => new([batch, .. shape.ToArray()]);

    /// <summary>Forward mode: outputs and their tangents for the given input tangents (missing ones are zero).</summary>
    public static JvpResult Jvp(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyDictionary<string, Tensor> tangents, IReadOnlyList<string>? outputs = null)
    {
        var clock = Clock.Start(scope);
        ResolveWrt(plan, inputs, tangents.Keys.ToArray());
        var names = plan.Graph.Inputs.Select(p => p.Name).ToArray();
        var primals = names.Select(n => Input(inputs, n)).ToArray();
        var tangentList = names.Select(n => tangents.GetValueOrDefault(n)).ToArray();
        var outputNames = outputs ?? plan.Graph.Outputs;
        long nodes = 0;
        Tensor[] values, outTangents;
        using (scope.NoGrad())
        {
            (values, outTangents) = ForwardMode.Jvp(xs =>
            {
                var run = Interpreter.Run(scope, plan, Zip(names, xs), new RunOptions { Outputs = outputNames });
                nodes += run.NodesExecuted;
                return [.. run.Outputs.Values];
            }, primals, tangentList);
        }
        return new JvpResult(Zip(outputNames, values), Zip(outputNames, outTangents), clock.Stats(nodes));
    }

    /// <summary>Full Jacobians; <see cref="JacobianMode.Auto"/> picks forward when the inputs are smaller than the outputs (E8).</summary>
    public static JacobianResult Jacobian(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? wrt = null, JacobianMode mode = JacobianMode.Auto, IReadOnlyList<string>? outputs = null)
    {
        var clock = Clock.Start(scope);
        var wrtNames = ResolveWrt(plan, inputs, wrt);
        var outputNames = outputs ?? plan.Graph.Outputs;
        if (mode == JacobianMode.Auto && outputNames.All(plan.Root.Types.ContainsKey))
        {
            // The plan knows the output sizes (no dynamic shapes): choose without the probing forward pass.
            var sizes = outputNames.Select(n => plan.Root.Types[n].ElementCount).ToArray();
            if (sizes.All(s => s is not null))
                mode = Derivatives.Choose(wrtNames.Sum(n => inputs[n].ElementCount), sizes.Sum(s => s!.Value));
        }
        long nodes = 0;
        var result = Derivatives.Jacobian(xs => RunWith(scope, plan, inputs, wrtNames, xs, outputNames, ref nodes),
            wrtNames.Select(n => inputs[n]).ToArray(), mode, out var used);
        var map = new Dictionary<string, IReadOnlyDictionary<string, Tensor>>(StringComparer.Ordinal);
        for (int o = 0; o < outputNames.Count; o++) map[outputNames[o]] = Zip(wrtNames, result[o]);
        return new JacobianResult(map, used, clock.Stats(nodes));
    }

    /// <summary>Second derivatives of one scalar output (default: the graph's only output).</summary>
    public static HessianResult Hessian(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? wrt = null, string? output = null)
    {
        var clock = Clock.Start(scope);
        var wrtNames = ResolveWrt(plan, inputs, wrt);
        var outName = ScalarOutputName(plan, output);
        long nodes = 0;
        var h = Derivatives.Hessian(xs => RunWith(scope, plan, inputs, wrtNames, xs, [outName], ref nodes)[0],
            wrtNames.Select(n => inputs[n]).ToArray());
        var map = new Dictionary<string, IReadOnlyDictionary<string, Tensor>>(StringComparer.Ordinal);
        for (int i = 0; i < wrtNames.Length; i++) map[wrtNames[i]] = Zip(wrtNames, h[i]);
        return new HessianResult(map, clock.Stats(nodes));
    }

    /// <summary>The Hessian of one scalar output times a vector per input (missing: zeros), without forming the Hessian.</summary>
    public static HvpResult HessianVectorProduct(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyDictionary<string, Tensor> vectors, IReadOnlyList<string>? wrt = null, string? output = null)
    {
        var clock = Clock.Start(scope);
        var wrtNames = ResolveWrt(plan, inputs, wrt ?? (vectors.Count > 0 ? vectors.Keys.ToArray() : null));
        foreach (var name in vectors.Keys)
            if (!wrtNames.Contains(name))
                throw new EngineException(ErrorCodes.InvalidArgument, $"a vector is given for '{name}', which is not differentiated against", input: name);
        var outName = ScalarOutputName(plan, output);
        var vs = wrtNames.Select(n =>
        {
            var x = inputs[n];
            if (vectors.GetValueOrDefault(n) is not { } v) return scope.Zeros(x.Shape, x.DType);
            if (v.Shape != x.Shape)
                throw new EngineException(ErrorCodes.ShapeMismatch, $"the vector for '{n}' has shape {v.Shape} but the input has shape {x.Shape}", input: n);
            return F.Cast(v, x.DType);
        }).ToArray();
        long nodes = 0;
        var hv = Derivatives.HessianVectorProduct(xs => RunWith(scope, plan, inputs, wrtNames, xs, [outName], ref nodes)[0],
            wrtNames.Select(n => inputs[n]).ToArray(), vs);
        return new HvpResult(Zip(wrtNames, hv), clock.Stats(nodes));
    }

    private static Tensor[] RunWith(ExecutionScope scope, Plan plan, IReadOnlyDictionary<string, Tensor> inputs, string[] wrt,
        Tensor[] values, IReadOnlyList<string> outputs, ref long nodes)
    {
        var feed = new Dictionary<string, Tensor>(inputs, StringComparer.Ordinal);
        for (int i = 0; i < wrt.Length; i++) feed[wrt[i]] = values[i];
        var run = Interpreter.Run(scope, plan, feed, new RunOptions { Outputs = outputs });
        nodes += run.NodesExecuted;
        return [.. run.Outputs.Values];
    }

    /// <summary>The inputs to differentiate against: named ones (each must be a float input), or every float input.</summary>
    private static string[] ResolveWrt(Plan plan, IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? wrt)
    {
        var names = plan.Graph.Inputs.Select(p => p.Name).ToArray();
        if (wrt is null) return names.Where(n => Input(inputs, n).DType.IsFloating()).ToArray();
        foreach (var name in wrt)
        {
            if (!names.Contains(name))
                throw new EngineException(ErrorCodes.InvalidArgument,
                    $"'{name}' is not an input of the graph (its inputs: {GraphValidator.NameList(names)})", input: name);
            var t = Input(inputs, name);
            if (!t.DType.IsFloating())
                throw EngineException.NotDifferentiable(
                    $"input '{name}' is {t.DType.WireName()}: only float32 and float64 inputs have derivatives", name);
        }
        return wrt.Distinct(StringComparer.Ordinal).ToArray();
    }

    private static string ScalarOutputName(Plan plan, string? output)
    {
        if (output is not null)
        {
            if (!plan.Root.Types.ContainsKey(output))
                throw new EngineException(ErrorCodes.InvalidArgument, $"the graph has no value '{output}'", input: output);
            return output;
        }
        return plan.Graph.Outputs.Count == 1
            ? plan.Graph.Outputs[0]
            : throw EngineException.InvalidArgument(
                $"the graph has {plan.Graph.Outputs.Count} outputs; name the scalar one to take second derivatives of");
    }

    private static Tensor Input(IReadOnlyDictionary<string, Tensor> inputs, string name) =>
        inputs.TryGetValue(name, out var t) ? t : throw new EngineException(ErrorCodes.InvalidArgument, $"input '{name}' has no value", input: name);

    /// <summary>A fresh leaf sharing the input's values, so the caller's tensor is never marked or mutated.</summary>
    private static Tensor Leaf(Tensor input, string name)
    {
        var leaf = input.View(input.Shape);
        leaf.Name = name;
        leaf.RequiresGrad = true;
        return leaf;
    }

    private static Dictionary<string, Tensor> Zip(IReadOnlyList<string> names, IReadOnlyList<Tensor> values)
    {
        var map = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++) map[names[i]] = values[i];
        return map;
    }

    private sealed class Clock
    {
        private readonly ExecutionScope _scope;
        private readonly long _ops;
        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private double _forwardMs = -1;

        private Clock(ExecutionScope scope)
        {
            _scope = scope;
            _ops = scope.OpsExecuted;
        }

        public static Clock Start(ExecutionScope scope) => new(scope);

        public void EndForward() => _forwardMs = _watch.Elapsed.TotalMilliseconds;

        public GraphStats Stats(long nodes)
        {
            double total = _watch.Elapsed.TotalMilliseconds;
            double forward = _forwardMs < 0 ? total : _forwardMs;
            return new GraphStats(forward, total - forward, _scope.Budget.PeakBytes, nodes, _scope.OpsExecuted - _ops);
        }
    }
}
