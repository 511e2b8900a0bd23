namespace AutogradService.Engine.Graphs;

/// <summary>
/// The size limits every graph reader enforces while it reads — programs, JSON graphs and protobuf graphs alike —
/// so a hostile request is refused as soon as it passes a limit, before it has cost more than its own bytes, and
/// nothing it built is kept. The nesting limits are constants: the same for every transport and documented in the
/// contract; the size limits come from the server's configuration.
/// </summary>
public sealed record GraphLimits
{
    /// <summary>Subgraphs (while/if bodies) nested inside one another, below the top graph.</summary>
    public const int MaxSubgraphDepth = 16;

    /// <summary>Nesting of one program expression: parentheses, calls, unary signs and <c>**</c> chains.</summary>
    public const int MaxExpressionDepth = 100;

    /// <summary>Nodes, subgraphs included.</summary>
    public int MaxNodes { get; init; } = 10_000;

    /// <summary>Distinct value names (inputs, constants, node outputs; subgraphs included).</summary>
    public int MaxNames { get; init; } = 100_000;

    /// <summary>Characters in one name (a value, an op, an attribute).</summary>
    public int MaxNameLength { get; init; } = 1024;

    /// <summary>Checked now and then while reading, so a long parse stops when its request does.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>What a graph built in-process gets when nobody says otherwise.</summary>
    public static GraphLimits Default { get; } = new();

    /// <summary>The error for a graph whose subgraphs nest past <see cref="MaxSubgraphDepth"/>.</summary>
    public static EngineException NestedTooDeep() =>
        EngineException.InvalidGraph($"subgraphs are nested more than {MaxSubgraphDepth} deep, the limit");

    /// <summary>A fresh count of one graph's size against these limits.</summary>
    public GraphSizeGuard Guard() => new(this);
}

/// <summary>
/// Counts what a reader has read of one graph (nodes, names, nesting) and throws <c>invalid_graph</c> the moment a
/// count passes its limit. One guard per graph read, subgraphs included.
/// </summary>
public sealed class GraphSizeGuard(GraphLimits limits)
{
    private int _nodes;
    private int _names;
    private int _depth;

    public GraphLimits Limits { get; } = limits;

    public int Nodes => _nodes;

    /// <summary>One more node; checks the cancellation token every 256 nodes.</summary>
    public void Node()
    {
        if (++_nodes > Limits.MaxNodes)
            throw EngineException.InvalidGraph($"the graph has more than {Limits.MaxNodes} nodes (subgraphs included), its limit");
        if ((_nodes & 255) == 0) ThrowIfCancelled();
    }

    /// <summary>One more distinct value name.</summary>
    public void Name(string name)
    {
        CheckLength(name, "a value name");
        if (++_names > Limits.MaxNames)
            throw EngineException.InvalidGraph($"the graph has more than {Limits.MaxNames} value names (subgraphs included), its limit");
    }

    /// <summary>Any name (an op, an attribute, a value read): refuses overlong ones.</summary>
    public void CheckLength(string name, string what)
    {
        if (name.Length > Limits.MaxNameLength)
            throw EngineException.InvalidGraph($"{what} is {name.Length} characters long, over the limit of {Limits.MaxNameLength}");
    }

    /// <summary>Enters a subgraph; dispose the result when leaving it.</summary>
    public Level Subgraph()
    {
        if (++_depth > GraphLimits.MaxSubgraphDepth)
        {
            _depth--;
            throw GraphLimits.NestedTooDeep();
        }
        return new Level(this);
    }

    public void ThrowIfCancelled()
    {
        if (Limits.Cancellation.IsCancellationRequested) throw EngineException.Cancelled();
    }

    public readonly struct Level(GraphSizeGuard guard) : IDisposable
    {
        public void Dispose() => guard._depth--;
    }
}
