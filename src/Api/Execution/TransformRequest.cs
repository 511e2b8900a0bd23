using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Execution;

public enum TransformKind
{
    Evaluate,
    Gradient,
    Jvp,
    Jacobian,
    Hessian,

    /// <summary>Vector-Jacobian products seeded by <see cref="TransformRequest.Seeds"/>, batched when they carry a leading batch axis.</summary>
    Vjp,
}

/// <summary>
/// What to compute: exactly one of a graph, a text program, or a registered model's name. A program accepts supplied
/// inputs it does not read (JAX's rule: their gradient is zeros) unless <see cref="StrictInputs"/>.
/// </summary>
public sealed record ComputationSource(Graph? Graph = null, string? Program = null, string? Model = null)
{
    public bool StrictInputs { get; init; }
}

/// <summary>A stateless transform request, the same whichever transport brought it.</summary>
public sealed record TransformRequest
{
    public required TransformKind Kind { get; init; }
    public required ComputationSource Source { get; init; }
    public IReadOnlyDictionary<string, HostTensor> Inputs { get; init; } = new Dictionary<string, HostTensor>();
    public IReadOnlyList<string>? Outputs { get; init; }
    public long? MemoryBytes { get; init; }
    public int? TimeoutMs { get; init; }
    public string? Device { get; init; }
    public IReadOnlyList<string>? Wrt { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Seeds { get; init; }
    public IReadOnlyList<string>? Intermediates { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Tangents { get; init; }
    public JacobianMode Mode { get; init; } = JacobianMode.Auto;
    public IReadOnlyDictionary<string, HostTensor>? Vector { get; init; }

    /// <summary>Anomaly mode: fail at the first op that produces NaN or ±Infinity from finite values.</summary>
    public bool DetectAnomaly { get; init; }

    /// <summary>float32 matrix products on a GPU may use TF32 tensor cores (no effect on the CPU).</summary>
    public bool AllowTf32 { get; init; }
}

/// <summary>A run's figures, and the device it ran on (what <c>auto</c> chose).</summary>
public sealed record TransformStats(double ForwardMs, double BackwardMs, long PeakBytes, long NodesExecuted, string Device = "cpu");

/// <summary>What a transform returns; only the parts its kind fills are non-null.</summary>
public sealed record TransformResult
{
    public required IReadOnlyDictionary<string, HostTensor> Outputs { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Gradients { get; init; }
    public IReadOnlyDictionary<string, (HostTensor Value, HostTensor Adjoint)>? Intermediates { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? TangentsOut { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, HostTensor>>? Jacobians { get; init; }
    public JacobianMode? ModeUsed { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, HostTensor>>? Hessians { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Hvp { get; init; }

    /// <summary>Vjp: the cotangents' batch size (null when unbatched) and whether the batch ran as one backward pass.</summary>
    public int? VjpBatch { get; init; }
    public bool VjpOnePass { get; init; }
    public required TransformStats Stats { get; init; }
}

/// <summary>One event of a streamed gradient: an output, a final gradient, or the closing stats.</summary>
public abstract record StreamEvent
{
    public sealed record Tensor(string Name, string Role, HostTensor Value) : StreamEvent;

    public sealed record Done(TransformStats Stats) : StreamEvent;
}
