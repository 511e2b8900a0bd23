using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>A graph input: its name, dtype and shape, where -1 is any size and a null shape any rank.</summary>
public sealed record Parameter(string Name, DType DType = DType.Float32, IReadOnlyList<int>? Shape = null)
{
    /// <summary>
    /// When true, <see cref="DType"/> is only a default: a value of any dtype is accepted as it is. Program inputs
    /// are declared this way, so a float64 input keeps its precision (cases E1, E6).
    /// </summary>
    public bool AnyDType { get; init; }

    public override string ToString() =>
        $"{Name}: {DType.WireName()}{(Shape is null ? "[*]" : "[" + string.Join(", ", Shape.Select(d => d < 0 ? "?" : d.ToString())) + "]")}";
}

/// <summary>One op application: reads values by name, writes values by name.</summary>
public sealed record Node(string Op, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, Attributes? Attrs = null, string? Name = null)
{
    public Attributes Attributes => Attrs ?? Ops.Attributes.Empty;

    /// <summary>The name errors use: the given one, else the first output.</summary>
    public string DisplayName => Name ?? (Outputs.Count > 0 ? Outputs[0] : Op);

    /// <summary>The program line the node was written on, for errors (null for nodes of JSON and protobuf graphs).</summary>
    public int? Line { get; init; }
}

/// <summary>
/// The serialized computation clients send (ONNX-like): inputs, nodes in any order that respects their data
/// dependencies, named outputs, and constants. Subgraphs (the <c>while</c> and <c>if</c> attributes) are graphs too
/// and may read values of the enclosing graph by name.
/// </summary>
public sealed record Graph(
    IReadOnlyList<Parameter> Inputs,
    IReadOnlyList<Node> Nodes,
    IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, HostTensor>? Constants = null)
{
    public IReadOnlyDictionary<string, HostTensor> ConstantValues => Constants ?? EmptyConstants;

    /// <summary>"Is this one of the graph's inputs?", linear overall even when a request names thousands of them.</summary>
    internal Func<string, bool> InputNameTest()
    {
        if (Inputs.Count < 8) return name => Inputs.Any(p => p.Name == name);
        var names = Inputs.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        return names.Contains;
    }

    private static readonly IReadOnlyDictionary<string, HostTensor> EmptyConstants = new Dictionary<string, HostTensor>();
}
