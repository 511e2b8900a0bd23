using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Sessions;

public sealed record SessionSettings
{
    public GradientMode GradientMode { get; init; } = GradientMode.Accumulate;
    public long MemoryLimitBytes { get; init; } = 64L << 20;
    public long MaxLoopIterations { get; init; } = 100_000;

    /// <summary>PyTorch's refusal of backward on a non-scalar output without a seed; off means "gradient of the sum".</summary>
    public bool StrictScalarSeed { get; init; }

    /// <summary>Where the session's tensors live and its kernels run (the CPU unless a device was placed).</summary>
    public Backends.IBackend? Backend { get; init; }

    public long MaxTensorElements { get; init; } = long.MaxValue;

    /// <summary>Tensors the session may hold at once, its tape's included (see <see cref="ScopeOptions.MaxLiveTensors"/>).</summary>
    public long MaxLiveTensors { get; init; } = long.MaxValue;

    /// <summary>Anomaly mode for every command (see <see cref="ScopeOptions.DetectAnomaly"/>).</summary>
    public bool DetectAnomaly { get; init; }

    /// <summary>What a program sent to the session may contain.</summary>
    public GraphLimits GraphLimits { get; init; } = GraphLimits.Default;
}

/// <summary>
/// Define-by-run over the network: a named set of tensors in one scope, changed by commands as the client's own code
/// runs (its loops, its branches), with the tape recording what it applies. Names can be rebound, as a client's
/// variables are in a loop; a value the tape still needs stays alive after its name moves on. Not thread-safe:
/// the transport runs one command batch at a time.
/// </summary>
public sealed class Session : IDisposable
{
    private readonly Dictionary<string, Tensor> _values = new(StringComparer.Ordinal);
    private readonly OpRegistry _registry;
    private readonly ExecutionScope _scope;

    public Session(SessionSettings settings, OpRegistry? registry = null)
    {
        Settings = settings;
        _registry = registry ?? OpRegistry.Default;
        _scope = new ExecutionScope(new ScopeOptions
        {
            Backend = settings.Backend,
            MemoryLimitBytes = settings.MemoryLimitBytes,
            MaxLoopIterations = settings.MaxLoopIterations,
            MaxLiveTensors = settings.MaxLiveTensors,
            DetectAnomaly = settings.DetectAnomaly,
        });
    }

    public SessionSettings Settings { get; }
    public long MemoryInUse => _scope.Budget.InUseBytes;
    public IReadOnlyCollection<string> Names => _values.Keys;

    /// <summary>Runs work under a cancellation token (the scope's own token is fixed, so this checks around the call).</summary>
    public ExecutionScope Scope => _scope;

    public void Variable(string name, HostTensor value, bool requiresGrad = true)
    {
        CheckSize(name, value);
        var t = value.ToTensor(_scope);
        t.Name = name;
        if (requiresGrad) t.RequireGrad();
        Bind(name, t);
    }

    public void Constant(string name, HostTensor value)
    {
        CheckSize(name, value);
        var t = value.ToTensor(_scope);
        t.Name = name;
        Bind(name, t);
    }

    /// <summary>Applies a registered op to named values (number literals allowed as inputs) and binds the result.</summary>
    public void Apply(string op, IReadOnlyList<string> inputs, Attributes attrs, string output)
    {
        var resolved = _registry.Get(op);
        var args = new Tensor[inputs.Count];
        for (int i = 0; i < args.Length; i++) args[i] = Resolve(inputs[i], op);
        Tensor result;
        try
        {
            result = args.Length == 0 ? Dispatcher.Apply(_scope, resolved, [], attrs) : Dispatcher.Apply(_scope, resolved, args, attrs);
        }
        catch (EngineException e)
        {
            throw e.At(output, resolved.Name);
        }
        Bind(output, result);
    }

    public HostTensor Fetch(string name) => HostTensor.From(Get(name));

    /// <summary>
    /// Runs lines of the text syntax: free names read session values, and every assigned name is bound afterwards
    /// (a name assigned twice keeps its last value), recorded on the tape like single applies.
    /// </summary>
    private void RunProgram(string text)
    {
        var parsed = ProgramParser.ParseProgram(text, registry: _registry, limits: Settings.GraphLimits);
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var p in parsed.Graph.Inputs) inputs[p.Name] = Resolve(p.Name, "program");
        var plan = Plan.Build(parsed.Graph, inputs.ToDictionary(kv => kv.Key, kv => kv.Value.Type, StringComparer.Ordinal), _registry);
        var run = Interpreter.Run(_scope, plan, inputs, new RunOptions { Outputs = [], Intermediates = parsed.Assigned.Values.ToArray() });
        foreach (var (name, value) in parsed.Assigned)
        {
            var t = run.Intermediates.TryGetValue(value, out var v) ? v : run.Outputs[value];
            t.Name ??= name;
            Bind(name, t);
        }
    }

    public void Backward(string output, HostTensor? seed, bool retainGraph, bool createGraph)
    {
        var y = Get(output);
        var seedTensor = seed?.ToTensor(_scope);
        ReverseMode.Backward(y, seedTensor, new BackwardOptions
        {
            RetainGraph = retainGraph,
            CreateGraph = createGraph,
            Mode = Settings.GradientMode,
            RequireScalarOutput = Settings.StrictScalarSeed,
        });
    }

    /// <summary>
    /// The stored gradient of a leaf; zeros when backward has not reached it. With <paramref name="output"/> the
    /// gradient is also bound under that name, so it can be computed with and (after create_graph) differentiated.
    /// </summary>
    public HostTensor Grad(string name, string? output = null)
    {
        var t = Get(name);
        if (!t.RequiresGrad)
            throw EngineException.NotDifferentiable($"'{name}' does not require a gradient (declare it a variable with requires_grad)", name);
        if (!t.IsLeaf)
            throw EngineException.InvalidArgument($"'{name}' is computed, not a leaf; gradients are stored on variables");
        var grad = t.Grad ?? _scope.Zeros(t.Shape, t.DType);
        if (!string.IsNullOrEmpty(output)) Bind(output, grad);
        return HostTensor.From(grad);
    }

    public void ZeroGrad(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
        {
            foreach (var t in _values.Values) t.Grad = null;
            return;
        }
        foreach (var n in names) Get(n).Grad = null;
    }

    public void Detach(string name, string output) => Bind(output, F.Detach(Get(name)));

    public void NoGrad(bool enabled) => _scope.GradEnabled = !enabled;

    public bool GradEnabled => _scope.GradEnabled;

    /// <summary>Forgets names. Their memory goes back at once unless the tape or another name still uses it.</summary>
    public void Release(IReadOnlyList<string> names)
    {
        foreach (var n in names)
        {
            Get(n);
            _values.Remove(n);
        }
    }

    public bool Contains(string name) => _values.ContainsKey(name);

    /// <summary>Runs one command; fetch and grad return a value, the others null.</summary>
    public HostTensor? Execute(SessionCommand command, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        try
        {
            return Run(command);
        }
        finally
        {
            // Also after a failure: a command that stopped half-way may have left unreachable tensors.
            Collect();
        }
    }

    private HostTensor? Run(SessionCommand command)
    {
        switch (command)
        {
            case SessionCommand.Variable v: Variable(v.Name, v.Value, v.RequiresGrad); return null;
            case SessionCommand.Constant c: Constant(c.Name, c.Value); return null;
            case SessionCommand.Apply a: Apply(a.Op, a.Inputs, a.Attrs, a.Output); return null;
            case SessionCommand.Program p: RunProgram(p.Text); return null;
            case SessionCommand.Fetch f: return Fetch(f.Name);
            case SessionCommand.Backward b: Backward(b.Output, b.Seed, b.RetainGraph, b.CreateGraph); return null;
            case SessionCommand.Grad g: return Grad(g.Name, g.Output);
            case SessionCommand.ZeroGrad z: ZeroGrad(z.Names); return null;
            case SessionCommand.Detach d: Detach(d.Name, d.Output); return null;
            case SessionCommand.NoGrad n: NoGrad(n.Enabled); return null;
            case SessionCommand.Release r: Release(r.Names); return null;
            default: throw EngineException.InvalidArgument($"unknown session command {command.GetType().Name}");
        }
    }

    /// <summary>
    /// Runs commands in order; the first that fails stops the batch with a <see cref="SessionBatchException"/> naming
    /// its index. Commands before it keep their effect, as a client's statements would.
    /// </summary>
    public IReadOnlyList<HostTensor?> ExecuteBatch(IReadOnlyList<SessionCommand> commands, CancellationToken cancellation = default)
    {
        var results = new List<HostTensor?>(commands.Count);
        _scope.Cancellation = cancellation;
        for (int i = 0; i < commands.Count; i++)
        {
            try
            {
                results.Add(Execute(commands[i], cancellation));
            }
            catch (EngineException e)
            {
                throw new SessionBatchException(i, e, results);
            }
            catch (OperationCanceledException e)
            {
                throw new SessionBatchException(i, EngineException.Cancelled(e), results);
            }
        }
        return results;
    }

    private void Bind(string name, Tensor value)
    {
        if (string.IsNullOrEmpty(name)) throw EngineException.InvalidArgument("a value needs a name");
        _values[name] = value;
    }

    /// <summary>
    /// Gives back the memory of every tensor nothing can reach any more: not bound to a name, not a bound value's
    /// gradient, and not kept by a recorded node that backward may still run. Releasing a tensor also frees the node
    /// that made it (nothing can backward through it now), which may release its inputs in turn. Runs between
    /// commands, so a training loop in a session stays in constant memory once each backward frees its graph.
    /// </summary>
    private void Collect()
    {
        var live = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var t in _values.Values)
        {
            live.Add(t);
            if (t.Grad is { } g) live.Add(g);
        }
        var candidates = new Stack<Tensor>();
        foreach (var t in _scope.Tracked)
            if (!t.IsDisposed && !live.Contains(t)) candidates.Push(t);
        var released = new List<Tensor>();
        while (candidates.TryPop(out var t))
        {
            if (t.IsDisposed || t.TapeUses > 0) continue;
            var inputs = t.GradFn is { IsFreed: false } node ? node.Inputs : null;
            var saved = t.GradFn?.Saved;
            t.GradFn?.Free();
            released.Add(t);
            t.Dispose();
            if (saved is not null && !saved.IsDisposed && !live.Contains(saved)) candidates.Push(saved);
            if (inputs is null) continue;
            foreach (var input in inputs)
                if (!input.IsDisposed && !live.Contains(input)) candidates.Push(input);
        }
        foreach (var t in released) _scope.Release(t);
    }

    private Tensor Resolve(string input, string op)
    {
        if (_values.TryGetValue(input, out var t)) return t;
        if (double.TryParse(input, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double literal))
            return _scope.Scalar(literal);
        throw EngineException.InvalidGraph($"unknown value '{input}'", op: op, input: input);
    }

    private Tensor Get(string name) =>
        _values.TryGetValue(name, out var t) ? t : throw new EngineException(ErrorCodes.NotFound, $"no value named '{name}' in this session", input: name);

    private void CheckSize(string name, HostTensor value)
    {
        if (value.Shape.ElementCount > Settings.MaxTensorElements)
            throw EngineException.InvalidTensor($"tensor '{name}' has {value.Shape.ElementCount} elements, over the limit of {Settings.MaxTensorElements}", name);
    }

    public void Dispose() => _scope.Dispose();
}
