using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

public enum NodeKind
{
    Op,
    While,
    If,
}

/// <summary>One node of a validated graph: its resolved op (or control-flow kind), types and subgraph plans.</summary>
public sealed class PlannedNode
{
    internal PlannedNode(Node node, int index, string path, NodeKind kind, Op? op, double?[] literals, IReadOnlySet<string> freeNames)
    {
        Node = node;
        Index = index;
        Path = path;
        Kind = kind;
        Op = op;
        Literals = literals;
        FreeNames = freeNames;
    }

    public Node Node { get; }

    /// <summary>Position in the source graph's node list.</summary>
    public int Index { get; }

    /// <summary>The node's name, prefixed by the enclosing nodes and attributes inside subgraphs (<c>loop/body/b2</c>).</summary>
    public string Path { get; }

    public NodeKind Kind { get; }

    /// <summary>The registered op (for <see cref="NodeKind.Op"/>).</summary>
    public Op? Op { get; }

    public string OpName => Op?.Name ?? Node.Op.ToLowerInvariant();

    public IReadOnlyList<string> Inputs => Node.Inputs;

    public IReadOnlyList<string> Outputs => Node.Outputs;

    /// <summary>Per input: its value when it is a number literal, else null.</summary>
    internal double?[] Literals { get; }

    /// <summary>Names the node's subgraphs read from the enclosing graphs (closure).</summary>
    public IReadOnlySet<string> FreeNames { get; }

    public IReadOnlyList<InferredType> InputTypes { get; internal set; } = [];
    public IReadOnlyList<InferredType> OutputTypes { get; internal set; } = [];

    /// <summary>Control-flow subgraphs: <c>cond</c>/<c>body</c> of a while, <c>then</c>/<c>else</c> of an if.</summary>
    public PlannedGraph? Cond { get; internal set; }
    public PlannedGraph? Body { get; internal set; }
    public PlannedGraph? Then { get; internal set; }
    public PlannedGraph? Else { get; internal set; }

    /// <summary>The while node's own limit, when given.</summary>
    public long? MaxIterations { get; internal set; }

    public IEnumerable<(string Attribute, PlannedGraph Graph)> Subgraphs()
    {
        if (Cond is not null) yield return ("cond", Cond);
        if (Body is not null) yield return ("body", Body);
        if (Then is not null) yield return ("then", Then);
        if (Else is not null) yield return ("else", Else);
    }

    public override string ToString() => $"{Path} = {OpName}({string.Join(", ", Inputs)})";
}

/// <summary>A validated graph (or subgraph): nodes in a topological order and the type of every value it defines.</summary>
public sealed class PlannedGraph
{
    private Liveness? _liveness;

    internal PlannedGraph(Graph graph, string path, IReadOnlyList<PlannedNode> order, IReadOnlyDictionary<string, InferredType> types,
        IReadOnlyList<InferredType> inputTypes, IReadOnlyList<InferredType> outputTypes, IReadOnlySet<string> freeNames)
    {
        Graph = graph;
        Path = path;
        Order = order;
        Types = types;
        InputTypes = inputTypes;
        OutputTypes = outputTypes;
        FreeNames = freeNames;
    }

    public Graph Graph { get; }

    /// <summary>Empty for the top-level graph, <c>node/attribute</c> for subgraphs.</summary>
    public string Path { get; }

    public IReadOnlyList<PlannedNode> Order { get; }

    /// <summary>The type of every value this graph defines: inputs, constants and node outputs.</summary>
    public IReadOnlyDictionary<string, InferredType> Types { get; }

    public IReadOnlyList<InferredType> InputTypes { get; }
    public IReadOnlyList<InferredType> OutputTypes { get; }

    /// <summary>Names read from enclosing graphs.</summary>
    public IReadOnlySet<string> FreeNames { get; }

    /// <summary>Which nodes the graph's own outputs need, and how often each value is read (for freeing early).</summary>
    internal Liveness Liveness => _liveness ??= Liveness.Compute(this, Graph.Outputs);

    /// <summary>Elementwise regions fused under the default liveness (null: none); see <see cref="RegionMap"/>.</summary>
    internal RegionMap? Regions => (_regions ??= [RegionMap.Find(this, Liveness)])[0];

    // One-element array: published in one write, so concurrent runs of a cached plan see all of it or nothing.
    private RegionMap?[]? _regions;

    /// <summary>Every node, this graph's and its subgraphs', depth first.</summary>
    public IEnumerable<PlannedNode> AllNodes()
    {
        foreach (var n in Order)
        {
            yield return n;
            foreach (var (_, g) in n.Subgraphs())
                foreach (var inner in g.AllNodes()) yield return inner;
        }
    }
}

/// <summary>
/// A graph checked and ordered for a given set of input types: what the interpreter runs and what a model
/// registration stores. Built once per (graph content, input types) and shared through <see cref="PlanCache"/>.
/// </summary>
public sealed class Plan
{
    internal Plan(PlannedGraph root, string hash, IReadOnlyDictionary<string, InferredType> inputTypes)
    {
        Root = root;
        Hash = hash;
        InputTypes = inputTypes;
    }

    public PlannedGraph Root { get; }
    public Graph Graph => Root.Graph;

    /// <summary>SHA-256 of the graph's canonical serialization (hex).</summary>
    public string Hash { get; }

    /// <summary>The input types the plan was built for (possibly partial: -1 dims, unknown rank).</summary>
    public IReadOnlyDictionary<string, InferredType> InputTypes { get; }

    /// <summary>Every top-level value's inferred type.</summary>
    public IReadOnlyDictionary<string, InferredType> ValueTypes => Root.Types;

    /// <summary>FLOPs and bytes, computed on first use (a meta run of the plan: evaluate requests never pay for it).</summary>
    public PlanEstimates Estimates => _estimates ??= PlanEstimates.Compute(this, CancellationToken.None);

    /// <summary>The estimates, computed now if not yet, stopping with <c>deadline_exceeded</c> when cancelled (inspect runs them under its deadline).</summary>
    public PlanEstimates EstimateNow(CancellationToken cancellation) => _estimates ??= PlanEstimates.Compute(this, cancellation);

    // Computing twice on a race gives the same record; the reference is published in one write.
    private PlanEstimates? _estimates;

    /// <summary>Nodes in all graphs (subgraphs included).</summary>
    public int NodeCount => Root.AllNodes().Count();

    /// <summary>Validates <paramref name="graph"/> and infers every type, for the given (or declared) input types.</summary>
    public static Plan Build(Graph graph, IReadOnlyDictionary<string, TensorType>? inputTypes = null, OpRegistry? registry = null) =>
        Build(graph, inputTypes?.ToDictionary(kv => kv.Key, kv => InferredType.From(kv.Value)), registry, GraphHash.Compute(graph));

    public static Plan Build(Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes, OpRegistry? registry = null) =>
        Build(graph, inputTypes, registry, GraphHash.Compute(graph));

    internal static Plan Build(Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes, OpRegistry? registry, string hash)
    {
        var root = GraphValidator.Validate(graph, inputTypes, registry);
        var types = new Dictionary<string, InferredType>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Inputs.Count; i++) types[graph.Inputs[i].Name] = root.InputTypes[i];
        return new Plan(root, hash, types);
    }

    public override string ToString() => $"Plan({Hash[..12]}, {Root.Order.Count} nodes)";
}

/// <summary>Which nodes are needed for some values, and how many times each local value is read by them.</summary>
internal sealed class Liveness
{
    private Liveness(bool[] needed, Dictionary<string, int> uses)
    {
        Needed = needed;
        Uses = uses;
    }

    /// <summary>By position in <see cref="PlannedGraph.Order"/>.</summary>
    public bool[] Needed { get; }

    /// <summary>Reads of each value defined in the graph by needed nodes; kept values count one extra read.</summary>
    public Dictionary<string, int> Uses { get; }

    public static Liveness Compute(PlannedGraph g, IEnumerable<string> keep)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < g.Order.Count; k++)
            foreach (var o in g.Order[k].Outputs) producer[o] = k;

        var needed = new bool[g.Order.Count];
        var stack = new Stack<string>();
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in keep)
        {
            stack.Push(name);
            if (g.Types.ContainsKey(name)) uses[name] = uses.GetValueOrDefault(name) + 1;
        }
        while (stack.Count > 0)
        {
            if (!producer.TryGetValue(stack.Pop(), out int k) || needed[k]) continue;
            needed[k] = true;
            var node = g.Order[k];
            for (int i = 0; i < node.Inputs.Count; i++)
                if (node.Literals[i] is null) stack.Push(node.Inputs[i]);
            foreach (var free in node.FreeNames) stack.Push(free);
        }
        for (int k = 0; k < needed.Length; k++)
        {
            if (!needed[k]) continue;
            foreach (var name in ReadsOf(g.Order[k]))
                if (g.Types.ContainsKey(name)) uses[name] = uses.GetValueOrDefault(name) + 1;
        }
        return new Liveness(needed, uses);
    }

    /// <summary>Every read of a node, one per occurrence: its non-literal inputs, then its closure names once each.</summary>
    public static IEnumerable<string> ReadsOf(PlannedNode node)
    {
        for (int i = 0; i < node.Inputs.Count; i++)
            if (node.Literals[i] is null) yield return node.Inputs[i];
        foreach (var free in node.FreeNames) yield return free;
    }
}
