using System.Runtime.CompilerServices;
using System.Threading.Channels;
using AutogradService.Api.Errors;
using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Execution;

/// <summary>
/// Runs stateless transforms: resolves the computation (graph, program or model), applies the request's limits
/// (lowered, never raised), opens a scope with its memory budget and deadline, waits for an engine worker, calls
/// <see cref="GraphFunctions"/>, and copies the results out before the scope gives its memory back.
/// </summary>
public sealed class TransformService(EngineGate gate, ModelRepository models, Devices devices, IOptions<LimitsOptions> options)
{
    private readonly LimitsOptions _limits = options.Value;

    /// <summary>Parsed programs kept: program text (and asked-for outputs) to graph, weighed in estimated bytes.</summary>
    public ProgramCache Programs { get; } = new(options.Value.ProgramCacheBytes);

    public PlanCache Plans { get; } = new(capacity: 512, maxBytes: options.Value.PlanCacheBytes);

    public async Task<TransformResult> RunAsync(TransformRequest request, CancellationToken cancellation)
    {
        CheckRequest(request);
        using var deadline = Deadline(request, cancellation);
        return await gate.RunAsync(ct => Execute(request, Resolve(request.Source, request.Outputs, ct), ct, onOutputs: null, onGradient: null),
            deadline.Token);
    }

    /// <summary>A gradient whose outputs arrive after the forward pass and each gradient as soon as it is final.</summary>
    public async IAsyncEnumerable<StreamEvent> StreamGradientAsync(TransformRequest request, [EnumeratorCancellation] CancellationToken cancellation)
    {
        CheckRequest(request);
        var channel = Channel.CreateUnbounded<StreamEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var deadline = Deadline(request, cancellation);
        var work = gate.RunAsync(ct =>
        {
            try
            {
                var result = Execute(request, Resolve(request.Source, request.Outputs, ct), ct,
                    onOutputs: outputs =>
                    {
                        foreach (var (name, value) in outputs) channel.Writer.TryWrite(new StreamEvent.Tensor(name, "output", value));
                    },
                    onGradient: (name, value) => channel.Writer.TryWrite(new StreamEvent.Tensor(name, "gradient", value)));
                channel.Writer.TryWrite(new StreamEvent.Done(result.Stats));
                channel.Writer.TryComplete();
                return true;
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
                throw;
            }
        }, deadline.Token);
        try
        {
            // Errors surface through the channel; the task's own copy of them is observed below.
            await foreach (var e in channel.Reader.ReadAllAsync(CancellationToken.None)) yield return e;
        }
        finally
        {
            try
            {
                await work;
            }
            catch
            {
                // Already delivered through the channel.
            }
            deadline.Dispose();
        }
    }

    /// <summary>Validates and plans a computation for the given input types; parsed and planned on an engine worker under the deadline.</summary>
    public async Task<InspectReport> InspectAsync(ComputationSource source, IReadOnlyDictionary<string, TensorType> inputTypes, CancellationToken cancellation)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(_limits.TimeoutMs);
        return await gate.RunAsync(ct =>
        {
            var graph = Resolve(source, null, ct);
            var plan = Plan.Build(graph, inputTypes);
            plan.EstimateNow(ct); // a meta run of the plan: under the request's deadline, on an engine worker
            return new InspectReport(plan, GraphExport.ToDot(graph), GraphExport.ToMermaid(graph));
        }, deadline.Token);
    }

    /// <summary>
    /// The graph a request names, with its outputs narrowed when asked. Programs are parsed here, on an engine worker,
    /// under the request's limits and cancellation, and cached only once they have passed them.
    /// </summary>
    public Graph Resolve(ComputationSource source, IReadOnlyList<string>? outputs, CancellationToken cancellation = default)
    {
        if (source.Graph is { } g) return g;
        if (source.Program is { } text) return Programs.Parse(text, outputs, _limits.Graph(cancellation));
        if (source.Model is { } name) return models.Get(name).Graph;
        throw EngineException.InvalidArgument("give exactly one of graph, program or model");
    }

    /// <summary>What can be checked before a request waits for a worker: the device and the inputs' sizes.</summary>
    private void CheckRequest(TransformRequest request)
    {
        devices.Resolve(request.Device);
        // Seeds, tangents and vectors are tensors the client sends too: the same limits hold for them.
        IEnumerable<KeyValuePair<string, HostTensor>> none = [];
        var sent = request.Inputs.Concat(request.Seeds ?? none).Concat(request.Tangents ?? none).Concat(request.Vector ?? none);
        foreach (var (name, t) in sent)
        {
            if (t.Shape.Rank > _limits.MaxRank)
                throw EngineException.InvalidTensor($"tensor '{name}' has rank {t.Shape.Rank}, over the limit of {_limits.MaxRank}", name);
            if (t.Shape.ElementCount > _limits.MaxTensorElements)
                throw EngineException.InvalidTensor($"tensor '{name}' has {t.Shape.ElementCount} elements, over the limit of {_limits.MaxTensorElements}", name);
        }
    }

    private CancellationTokenSource Deadline(TransformRequest request, CancellationToken cancellation)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        int timeout = request.TimeoutMs is > 0 and var t ? Math.Min(t, _limits.TimeoutMs) : _limits.TimeoutMs;
        cts.CancelAfter(timeout);
        return cts;
    }

    private TransformResult Execute(TransformRequest request, Graph graph, CancellationToken cancellation,
        Action<IReadOnlyDictionary<string, HostTensor>>? onOutputs, Action<string, HostTensor>? onGradient)
    {
        long memory = request.MemoryBytes is > 0 and var m ? Math.Min(m, _limits.MemoryBytesPerRequest) : _limits.MemoryBytesPerRequest;
        // Weights of an imported model are constants: naming one in wrt (or giving it a tangent) differentiates by it.
        var named = (request.Wrt ?? []).Concat(request.Tangents?.Keys ?? []).Concat(request.Vector?.Keys ?? []);
        (graph, var given) = ConstantInputs.Lift(graph, named, request.Inputs);
        // A program accepts inputs it does not read (their gradient is zeros) unless the request is strict.
        if (request.Source.Program is not null && !request.Source.StrictInputs) graph = GraphFunctions.AcceptingUnread(graph, given.Keys);
        var conformed = GraphFunctions.ConformInputs(graph, given);
        // The device is chosen once per graph, before anything is allocated; the plan is the one the run then uses.
        var backend = devices.Place(devices.Resolve(request.Device), () => Plans.GetOrCreate(graph,
            conformed.ToDictionary(kv => kv.Key, kv => kv.Value.Type, StringComparer.Ordinal)).EstimateNow(cancellation));
        using var scope = new ExecutionScope(new ScopeOptions
        {
            Backend = backend,
            MemoryLimitBytes = memory,
            MaxLoopIterations = _limits.MaxLoopIterations,
            MaxLiveTensors = _limits.MaxTensorsPerRequest,
            DetectAnomaly = request.DetectAnomaly,
            AllowTf32 = request.AllowTf32,
            Cancellation = cancellation,
        });
        var inputs = GraphFunctions.Import(scope, conformed);
        var plan = GraphFunctions.Prepare(graph, inputs, Plans);
        switch (request.Kind)
        {
            case TransformKind.Evaluate:
            {
                var r = GraphFunctions.Evaluate(scope, plan, inputs, request.Outputs);
                return new TransformResult { Outputs = Host(r.Outputs), Stats = Stats(r.Stats, backend) };
            }
            case TransformKind.Gradient:
            {
                var r = GraphFunctions.Gradient(scope, plan, inputs, new GradientRequest
                {
                    Wrt = request.Wrt,
                    Seeds = request.Seeds is null ? null : GraphFunctions.Import(scope, request.Seeds),
                    Outputs = request.Outputs,
                    Intermediates = request.Intermediates,
                    OnOutputsReady = onOutputs is null ? null : outputs => onOutputs(Host(outputs)),
                    OnGradientReady = onGradient is null ? null : (name, g) => onGradient(name, HostTensor.From(g)),
                });
                return new TransformResult
                {
                    Outputs = Host(r.Outputs),
                    Gradients = Host(r.Gradients),
                    Intermediates = r.Intermediates.ToDictionary(kv => kv.Key, kv => (HostTensor.From(kv.Value.Value), HostTensor.From(kv.Value.Adjoint))),
                    Stats = Stats(r.Stats, backend),
                };
            }
            case TransformKind.Vjp:
            {
                var r = GraphFunctions.Vjp(scope, plan, inputs, GraphFunctions.Import(scope, request.Seeds ?? new Dictionary<string, HostTensor>()),
                    request.Wrt, request.Outputs);
                return new TransformResult
                {
                    Outputs = Host(r.Outputs), Gradients = Host(r.Gradients), VjpBatch = r.Batch, VjpOnePass = r.OnePass, Stats = Stats(r.Stats, backend),
                };
            }
            case TransformKind.Jvp:
            {
                var r = GraphFunctions.Jvp(scope, plan, inputs, GraphFunctions.Import(scope, request.Tangents ?? new Dictionary<string, HostTensor>()), request.Outputs);
                return new TransformResult { Outputs = Host(r.Outputs), TangentsOut = Host(r.Tangents), Stats = Stats(r.Stats, backend) };
            }
            case TransformKind.Jacobian:
            {
                var r = GraphFunctions.Jacobian(scope, plan, inputs, request.Wrt, request.Mode, request.Outputs);
                return new TransformResult
                {
                    Outputs = new Dictionary<string, HostTensor>(),
                    Jacobians = Nested(r.Jacobians),
                    ModeUsed = r.ModeUsed,
                    Stats = Stats(r.Stats, backend),
                };
            }
            default:
            {
                var output = request.Outputs is { Count: > 0 } o ? o[0] : null;
                if (request.Vector is { Count: > 0 } vector)
                {
                    var r = GraphFunctions.HessianVectorProduct(scope, plan, inputs, GraphFunctions.Import(scope, vector), request.Wrt, output);
                    return new TransformResult { Outputs = new Dictionary<string, HostTensor>(), Hvp = Host(r.Products), Stats = Stats(r.Stats, backend) };
                }
                var h = GraphFunctions.Hessian(scope, plan, inputs, request.Wrt, output);
                return new TransformResult { Outputs = new Dictionary<string, HostTensor>(), Hessians = Nested(h.Hessians), Stats = Stats(h.Stats, backend) };
            }
        }
    }

    private static Dictionary<string, HostTensor> Host(IReadOnlyDictionary<string, Tensor> tensors) =>
        tensors.ToDictionary(kv => kv.Key, kv => HostTensor.From(kv.Value), StringComparer.Ordinal);

    private static Dictionary<string, IReadOnlyDictionary<string, HostTensor>> Nested(IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> nested) =>
        nested.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, HostTensor>)Host(kv.Value), StringComparer.Ordinal);

    private static TransformStats Stats(GraphStats s, IBackend device) => new(s.ForwardMs, s.BackwardMs, s.PeakBytes, s.NodesExecuted, device.Name);
}

/// <summary>What <c>inspect</c> reports about a graph.</summary>
public sealed record InspectReport(Plan Plan, string Dot, string Mermaid);
