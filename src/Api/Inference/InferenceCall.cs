using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Inference;

/// <summary>What the Open Inference Protocol asks of a model, the same whether REST JSON or gRPC brought it.</summary>
public enum InferenceKind
{
    Infer,
    Vjp,
    Jvp,
    Jacobian,
}

/// <summary>
/// An inference request (and, for the gradient extension, its cotangents, tangents, <c>wrt</c> and <c>of</c>), read
/// and checked by a transport's mapper: tensors are engine host tensors, names are unique.
/// </summary>
public sealed record InferenceCall
{
    public required InferenceKind Kind { get; init; }
    public required string Model { get; init; }
    public string? Version { get; init; }
    public string? Id { get; init; }
    public required IReadOnlyDictionary<string, HostTensor> Inputs { get; init; }

    /// <summary>Requested outputs, in the order asked (null: every output of the model).</summary>
    public IReadOnlyList<string>? Outputs { get; init; }

    public IReadOnlyDictionary<string, HostTensor>? Cotangents { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Tangents { get; init; }
    public IReadOnlyList<string>? Wrt { get; init; }
    public IReadOnlyList<string>? Of { get; init; }
}

/// <summary>A tensor of a response, named, with optional protocol parameters (e.g. a Jacobian block's <c>of</c> and <c>wrt</c>).</summary>
public sealed record NamedTensor(string Name, HostTensor Value, IReadOnlyDictionary<string, object>? Parameters = null);

/// <summary>
/// What an inference or gradient call returns: the outputs computed (in the order asked), the derivatives (VJP: one
/// per <c>wrt</c> input; JVP: one per output; Jacobian: one per pair), and response parameters (a batched VJP's size).
/// </summary>
public sealed record InferenceReply(
    string Model, string Version, string? Id, IReadOnlyList<NamedTensor> Outputs, IReadOnlyList<NamedTensor> Derivatives,
    IReadOnlyDictionary<string, object> Parameters);
