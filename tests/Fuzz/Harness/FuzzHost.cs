using System.Runtime.ExceptionServices;
using AutogradService.Api.Execution;
using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Api.Sessions;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AutogradService.Fuzz.Harness;

/// <summary>
/// The service's own application objects (engine gate, transform service, session store, gRPC services) under small
/// limits, so decoded inputs also run through the engine — kernels, autodiff, control flow — cheaply: 4 MiB per
/// request, 64K elements per tensor, 1000 loop iterations, a one-second deadline.
/// </summary>
public sealed class FuzzHost
{
    public static LimitsOptions Limits { get; } = new()
    {
        MaxNodes = 2_000,
        MaxNames = 10_000,
        MaxTensorElements = 1 << 16,
        MaxLoopIterations = 1_000,
        MemoryBytesPerRequest = 4L << 20,
        MemoryBytesPerSession = 4L << 20,
        TimeoutMs = 1_000,
        MaxOpenSessions = 4,
        EngineQueueLength = 16,
        PlanCacheBytes = 1L << 20,
        ProgramCacheBytes = 1L << 20,
        EngineConcurrency = 1,
    };

    /// <summary>Inputs the harness makes for a graph's parameters stay this small, so a run costs microseconds.</summary>
    private const long MaxSyntheticElements = 4_096;

    private static readonly Lazy<FuzzHost> Instance = new(() => new FuzzHost());

    public static FuzzHost Shared => Instance.Value;

    private FuzzHost()
    {
        var limits = Options.Create(Limits);
        Gate = new EngineGate(limits);
        var server = Options.Create(new ServerOptions { ModelRepositoryPath = Path.Combine(Path.GetTempPath(), "autograd-fuzz-models-empty") });
        var quotas = Options.Create(new AutogradService.Api.Security.QuotaOptions());
        // No HTTP request around the harness: the caller is the anonymous one, as with security off.
        var callers = new AutogradService.Api.Security.CallerAccessor(new Microsoft.AspNetCore.Http.HttpContextAccessor(),
            Options.Create(new AutogradService.Api.Security.SecurityOptions()));
        Models = new ModelRepository(server, limits, quotas, callers, NullLogger<ModelRepository>.Instance);
        Sessions = new SessionStore(limits, quotas, TimeProvider.System, Devices);
    }

    public EngineGate Gate { get; }

    public ModelRepository Models { get; }

    public SessionStore Sessions { get; }

    /// <summary>The CPU, as on a machine without a GPU.</summary>
    public AutogradService.Engine.Backends.Devices Devices { get; } = new();

    /// <summary>A fresh transform service per input (its program and plan caches start empty), so every run reproduces alone.</summary>
    public TransformService NewTransforms() => new(Gate, Models, Devices, Options.Create(Limits));

    public static CancellationTokenSource Deadline() => new(TimeSpan.FromMilliseconds(Limits.TimeoutMs));

    /// <summary>
    /// Runs a decoded graph as every transform with inputs made for its parameters: evaluate, gradient, jvp, and
    /// jacobian and hessian when the inputs are tiny. The first documented error ends the run.
    /// </summary>
    public string Exercise(Graph graph)
    {
        var inputs = SyntheticInputs(graph);
        long elements = inputs.Values.Sum(t => t.Shape.ElementCount);
        var kinds = new List<TransformKind> { TransformKind.Evaluate, TransformKind.Gradient, TransformKind.Jvp };
        if (elements <= 256) kinds.Add(TransformKind.Jacobian);
        if (elements <= 64) kinds.Add(TransformKind.Hessian);
        var transforms = NewTransforms();
        foreach (var kind in kinds)
        {
            var request = new TransformRequest
            {
                Kind = kind,
                Source = new ComputationSource(Graph: graph),
                Inputs = inputs,
                Tangents = kind == TransformKind.Jvp ? inputs.Where(kv => kv.Value.DType.IsFloating()).ToDictionary(kv => kv.Key, kv => Ones(kv.Value)) : null,
            };
            Run(transforms, request);
        }
        return $"ran {string.Join(", ", kinds).ToLowerInvariant()}";
    }

    /// <summary>Runs one transform to its end on this thread (the gate's worker does the work).</summary>
    public static TransformResult Run(TransformService transforms, TransformRequest request)
    {
        using var deadline = Deadline();
        return transforms.RunAsync(request, deadline.Token).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Runs each step, counting documented errors and continuing; a crash is rethrown as it was thrown, so the fuzzer
    /// sees the original stack.
    /// </summary>
    public static string Steps(params (string Name, Action Run)[] steps)
    {
        var done = new List<string>(steps.Length);
        foreach (var (name, run) in steps)
        {
            try
            {
                run();
                done.Add($"{name}: result");
            }
            catch (Exception e)
            {
                var outcome = Classifier.Classify(e);
                if (outcome.Kind == OutcomeKind.Crash) ExceptionDispatchInfo.Capture(e).Throw();
                done.Add($"{name}: {outcome}");
            }
        }
        return string.Join("; ", done);
    }

    /// <summary>Shapes for inputs of any rank (program inputs), picked by name: scalars and empty tensors reach kernels' edges.</summary>
    private static readonly int[][] AnyRank = [[3], [], [2, 3], [3], [0], [2, 1, 3]];

    /// <summary>FNV-1a: the same in every process (string.GetHashCode is not), so an input replays as it ran.</summary>
    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return h;
    }

    /// <summary>
    /// A tensor for each parameter: its declared dtype and dims (any size = 2, any rank = a shape picked by name), small mixed
    /// values including zero and negatives. Parameters too large to fill are left out (the run then reports them missing).
    /// </summary>
    public static Dictionary<string, HostTensor> SyntheticInputs(Graph graph)
    {
        var inputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var p in graph.Inputs)
        {
            int[] dims = p.Shape is null ? AnyRank[StableHash(p.Name) % AnyRank.Length] : p.Shape.Select(d => d < 0 ? 2 : d).ToArray();
            long count = 1;
            foreach (var d in dims) count = d == 0 ? 0 : Math.Min(count * d, MaxSyntheticElements + 1);
            if (count > MaxSyntheticElements || dims.Length > Shape.MaxRank) continue;
            var dtype = p.AnyDType ? DType.Float32 : p.DType;
            var values = new double[count];
            for (int i = 0; i < values.Length; i++)
                values[i] = dtype == DType.Bool ? (i % 3 == 0 ? 1 : 0) : dtype == DType.Int64 ? (i * 7 % 11) - 5 : ((i * 7 % 11) - 5) * 0.375;
            inputs[p.Name] = HostTensor.FromDoubles(dtype, new Shape(dims), values);
        }
        return inputs;
    }

    private static HostTensor Ones(HostTensor like)
    {
        var values = new double[like.Shape.ElementCount];
        Array.Fill(values, 1.0);
        return HostTensor.FromDoubles(like.DType, like.Shape, values);
    }
}
