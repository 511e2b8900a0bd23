using AutogradService.Engine.Ops;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Checks a graph before anything runs: every op known, every value defined exactly once and visible where it is
/// read, attributes as the op's schema says, input counts, no cycles (nodes may come in any order: they are sorted
/// topologically), and then every value's dtype and shape (<see cref="ShapeInference"/>). Subgraphs of <c>while</c>
/// and <c>if</c> are checked the same way; they may read enclosing values by name, and their own names shadow
/// enclosing ones. Every problem is an <see cref="EngineException"/> naming the node, op and input at fault.
/// </summary>
public static class GraphValidator
{
    /// <summary>
    /// Validates <paramref name="graph"/> for the given input types (default: as declared) and returns it planned:
    /// nodes in a topological order and every value's inferred type.
    /// </summary>
    public static PlannedGraph Validate(Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes = null, OpRegistry? registry = null)
    {
        InferredType[]? bound = null;
        if (inputTypes is not null)
        {
            var declares = graph.InputNameTest();
            foreach (var name in inputTypes.Keys)
                if (!declares(name))
                    throw new EngineException(ErrorCodes.InvalidArgument, $"the graph has no input '{name}' (its inputs: {NameList(graph.Inputs.Select(p => p.Name))})", input: name);
            bound = graph.Inputs.Select(p => inputTypes.TryGetValue(p.Name, out var t) ? t : InferredType.From(p)).ToArray();
        }
        return new GraphAnalyzer(registry ?? OpRegistry.Default).Analyze(graph, bound, null, "", 0, null);
    }

    internal static string NameList(IEnumerable<string> names)
    {
        var list = string.Join(", ", names.Select(n => $"'{n}'"));
        return list.Length == 0 ? "none" : list;
    }
}

/// <summary>Type lookups along the chain of enclosing graphs (a subgraph sees its own values first).</summary>
internal sealed class TypeEnv(TypeEnv? parent)
{
    public Dictionary<string, InferredType> Local { get; } = new(StringComparer.Ordinal);

    public InferredType? Lookup(string name) =>
        Local.TryGetValue(name, out var t) ? t : parent?.Lookup(name);

    public bool Contains(string name) => Local.ContainsKey(name) || (parent?.Contains(name) ?? false);
}

/// <summary>The structural half of validation; the typing half is in ShapeInference.cs.</summary>
internal sealed partial class GraphAnalyzer(OpRegistry registry)
{
    private readonly Dictionary<Graph, HashSet<string>> _freeNames = new(ReferenceEqualityComparer.Instance);

    /// <param name="bound">Types of the values bound to the graph's inputs (null: the declared ones).</param>
    /// <param name="owner">For subgraphs, how errors name it ("the body graph of while node 'loop'").</param>
    public PlannedGraph Analyze(Graph g, InferredType[]? bound, TypeEnv? parent, string path, int depth, string? owner)
    {
        if (depth > GraphLimits.MaxSubgraphDepth) throw GraphLimits.NestedTooDeep();
        if (g.Inputs is null || g.Nodes is null || g.Outputs is null)
            throw EngineException.InvalidGraph($"{owner ?? "the graph"} lacks its inputs, nodes or outputs list");
        var defined = CollectDefinitions(g, path);
        var nodes = new PlannedNode[g.Nodes.Count];
        for (int i = 0; i < nodes.Length; i++) nodes[i] = Resolve(g.Nodes[i], i, path, defined, parent, depth);
        var order = TopologicalOrder(nodes, defined);
        CheckOutputs(g, defined, parent, owner);
        return InferTypes(g, order, bound, parent, path, depth, owner);
    }

    private static string NodePath(string graphPath, Node node) => graphPath.Length == 0 ? node.DisplayName : $"{graphPath}/{node.DisplayName}";

    /// <summary>Every name the graph defines and what defines it; a name defined twice is an error.</summary>
    private static Dictionary<string, string> CollectDefinitions(Graph g, string path)
    {
        var defined = new Dictionary<string, string>(StringComparer.Ordinal);
        void Define(string? name, string what, string? node, string? op)
        {
            if (string.IsNullOrWhiteSpace(name))
                throw EngineException.InvalidGraph($"{what} has an empty name", node, op);
            if (GraphLiterals.IsLiteral(name))
                throw EngineException.InvalidGraph($"value name '{name}' reads as a number literal; pick another name", node, op, name);
            if (!defined.TryAdd(name, what))
                throw EngineException.InvalidGraph($"duplicate value '{name}': defined as {defined[name]} and again as {what}", node, op, name);
        }

        foreach (var p in g.Inputs) Define(p?.Name, "an input", null, null);
        foreach (var (name, tensor) in g.ConstantValues)
        {
            Define(name, "a constant", null, null);
            if (tensor is null) throw EngineException.InvalidGraph($"constant '{name}' has no value", input: name);
        }
        foreach (var node in g.Nodes)
        {
            if (node is null) throw EngineException.InvalidGraph("a node is null");
            if (node.Inputs is null || node.Outputs is null)
                throw EngineException.InvalidGraph("a node lacks its inputs or outputs list", node.Name, node.Op);
            var nodePath = NodePath(path, node);
            foreach (var o in node.Outputs) Define(o, $"an output of node '{nodePath}'", nodePath, node.Op);
        }
        return defined;
    }

    private PlannedNode Resolve(Node node, int index, string path, Dictionary<string, string> defined, TypeEnv? parent, int depth)
    {
        var nodePath = NodePath(path, node);
        if (string.IsNullOrWhiteSpace(node.Op)) throw EngineException.InvalidGraph("the node names no op", nodePath);

        Op? op = null;
        var kind = NodeKind.Op;
        var schema = ControlFlow.SchemaOf(node.Op);
        if (schema is not null) kind = schema == ControlFlow.WhileSchema ? NodeKind.While : NodeKind.If;
        else if (registry.TryGet(node.Op, out op)) schema = op.Schema;
        else throw EngineException.InvalidGraph($"unknown op '{node.Op}'{Suggest(node.Op)}", nodePath, node.Op);

        CheckAttributes(schema, node.Attributes, nodePath);
        CheckCounts(schema, kind, node, nodePath);

        var literals = new double?[node.Inputs.Count];
        for (int i = 0; i < literals.Length; i++)
        {
            var name = node.Inputs[i];
            if (name is not null && GraphLiterals.TryParse(name, out double v)) literals[i] = v;
            else if (string.IsNullOrWhiteSpace(name))
                throw EngineException.InvalidGraph($"input {i} of the node is empty", nodePath, schema.Name);
            else if (!defined.ContainsKey(name) && !(parent?.Contains(name) ?? false))
                throw Missing(name, nodePath, schema.Name, parent is not null);
        }

        var free = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, value) in node.Attributes)
            if (value.Value is Graph sub) free.UnionWith(FreeNames(sub, depth + 1));
        return new PlannedNode(node, index, nodePath, kind, op, literals, free);
    }

    internal static EngineException Missing(string name, string? node, string? op, bool nested) =>
        EngineException.InvalidGraph(
            $"value '{name}' is not defined: it is not an input, constant or node output{(nested ? " of this graph or an enclosing one" : "")}",
            node, op, name);

    private string Suggest(string name) =>
        ProgramNames.Suggest(name, registry.All.Select(o => o.Name).Concat(ControlFlow.Schemas.Select(s => s.Name)));

    private static void CheckAttributes(OpSchema schema, Attributes attrs, string nodePath)
    {
        foreach (var (name, value) in attrs)
        {
            var spec = schema.Attributes.FirstOrDefault(a => a.Name == name)
                ?? throw EngineException.InvalidGraph(
                    $"'{schema.Name}' has no attribute '{name}' (it takes {GraphValidator.NameList(schema.Attributes.Select(a => a.Name))})",
                    nodePath, schema.Name);
            if (value is null || !KindFits(spec.Kind, value))
                throw EngineException.InvalidGraph(
                    $"attribute '{name}' of '{schema.Name}' must be {KindName(spec.Kind)}, got {(value is null ? "nothing" : $"{KindName(value.Kind)} {value}")}",
                    nodePath, schema.Name);
        }
        foreach (var spec in schema.Attributes)
            if (spec.Required && !attrs.Has(spec.Name))
                throw EngineException.InvalidGraph($"'{schema.Name}' needs attribute '{spec.Name}' ({spec.Description})", nodePath, schema.Name);
    }

    /// <summary>The same leniency as the <see cref="Attributes"/> getters: JSON numbers lose int/float identity.</summary>
    private static bool KindFits(AttrKind expected, AttrValue v) => expected switch
    {
        AttrKind.Int => v.Value is long || v.Value is bool || (v.Value is double d && d == Math.Floor(d) && Math.Abs(d) < 9e15),
        AttrKind.Float => v.Value is double or long,
        AttrKind.Bool => v.Value is bool || v.Value is long l && l is 0 or 1,
        AttrKind.String => v.Value is string,
        AttrKind.Ints => v.Value is long[] or long || (v.Value is double[] ds && ds.All(x => x == Math.Floor(x))) || (v.Value is double d && d == Math.Floor(d)),
        AttrKind.Floats => v.Value is double[] or long[] or double or long,
        AttrKind.Tensor => v.Value is Tensors.HostTensor,
        AttrKind.Graph => v.Value is Graph,
        _ => false,
    };

    private static string KindName(AttrKind kind) => kind switch
    {
        AttrKind.Int => "an int",
        AttrKind.Float => "a float",
        AttrKind.String => "a string",
        AttrKind.Bool => "a bool",
        AttrKind.Ints => "a list of ints",
        AttrKind.Floats => "a list of floats",
        AttrKind.Tensor => "a tensor",
        _ => "a graph",
    };

    private static void CheckCounts(OpSchema schema, NodeKind kind, Node node, string nodePath)
    {
        bool variadic = schema.Inputs.Count > 0 && schema.Inputs[^1].Variadic;
        int fixedCount = variadic ? schema.Inputs.Count - 1 : schema.Inputs.Count;
        if (kind == NodeKind.While) fixedCount = 1;
        int n = node.Inputs.Count;
        if (variadic ? n < fixedCount : n != fixedCount)
            throw EngineException.InvalidGraph(
                $"'{schema.Name}' takes {fixedCount}{(variadic ? " or more" : "")} input(s) ({string.Join(", ", schema.Inputs.Select(i => i.Name + (i.Variadic ? "..." : "")))}), got {n}",
                nodePath, schema.Name);
        switch (kind)
        {
            case NodeKind.Op when node.Outputs.Count != 1:
                throw EngineException.InvalidGraph($"'{schema.Name}' has one output, but the node lists {node.Outputs.Count}", nodePath, schema.Name);
            case NodeKind.While when node.Outputs.Count != n:
                throw EngineException.InvalidGraph($"the while node carries {n} value(s) but lists {node.Outputs.Count} output(s)", nodePath, schema.Name);
            case NodeKind.If when node.Outputs.Count == 0:
                throw EngineException.InvalidGraph("the if node lists no outputs", nodePath, schema.Name);
        }
    }

    /// <summary>Kahn's algorithm, preferring the given order among ready nodes; a leftover is a cycle, reported by name.</summary>
    private static List<PlannedNode> TopologicalOrder(PlannedNode[] nodes, Dictionary<string, string> defined)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Length; i++)
            foreach (var o in nodes[i].Outputs) producer[o] = i;

        var deps = new List<int>[nodes.Length];
        var dependents = new List<int>[nodes.Length];
        for (int i = 0; i < nodes.Length; i++) dependents[i] = [];
        var indegree = new int[nodes.Length];
        for (int i = 0; i < nodes.Length; i++)
        {
            var set = new HashSet<int>();
            foreach (var name in Liveness.ReadsOf(nodes[i]))
                if (producer.TryGetValue(name, out int p)) set.Add(p);
            deps[i] = [.. set];
            indegree[i] = set.Count;
            foreach (var p in set) dependents[p].Add(i);
        }

        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < nodes.Length; i++)
            if (indegree[i] == 0) ready.Enqueue(i, i);
        var order = new List<PlannedNode>(nodes.Length);
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(nodes[i]);
            foreach (var d in dependents[i])
                if (--indegree[d] == 0) ready.Enqueue(d, d);
        }
        if (order.Count == nodes.Length) return order;

        // Every leftover node waits on another leftover, so walking dependencies from any of them must loop.
        var walk = new List<int>();
        var seenAt = new Dictionary<int, int>();
        int at = Array.FindIndex(indegree, d => d > 0);
        while (!seenAt.ContainsKey(at))
        {
            seenAt[at] = walk.Count;
            walk.Add(at);
            at = deps[at].First(d => indegree[d] > 0);
        }
        var cycle = walk.Skip(seenAt[at]).Select(i => nodes[i]).ToList();
        var text = string.Join(", which reads an output of ", cycle.Append(cycle[0]).Select(n => $"'{n.Path}'"));
        throw EngineException.InvalidGraph($"the graph has a cycle: {text}", cycle[0].Path, cycle[0].OpName);
    }

    private static void CheckOutputs(Graph g, Dictionary<string, string> defined, TypeEnv? parent, string? owner)
    {
        if (g.Outputs.Count == 0) throw EngineException.InvalidGraph($"{owner ?? "the graph"} has no outputs");
        foreach (var name in g.Outputs)
        {
            if (string.IsNullOrWhiteSpace(name) || GraphLiterals.IsLiteral(name))
                throw EngineException.InvalidGraph($"output '{name}' of {owner ?? "the graph"} must name a value", input: name);
            if (!defined.ContainsKey(name) && !(parent?.Contains(name) ?? false))
                throw EngineException.InvalidGraph($"output '{name}' of {owner ?? "the graph"} is not defined", input: name);
        }
    }

    /// <summary>Names a graph reads but does not define (its closure), through nested subgraphs.</summary>
    internal HashSet<string> FreeNames(Graph g, int depth)
    {
        if (_freeNames.TryGetValue(g, out var cached)) return cached;
        if (depth > GraphLimits.MaxSubgraphDepth) throw GraphLimits.NestedTooDeep();
        var locals = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in g.Inputs ?? []) if (p?.Name is not null) locals.Add(p.Name);
        foreach (var name in g.ConstantValues.Keys) locals.Add(name);
        foreach (var node in g.Nodes ?? []) foreach (var o in node?.Outputs ?? []) if (o is not null) locals.Add(o);

        var free = new HashSet<string>(StringComparer.Ordinal);
        void Read(string? name)
        {
            if (!string.IsNullOrEmpty(name) && !locals.Contains(name) && !GraphLiterals.IsLiteral(name)) free.Add(name);
        }
        foreach (var node in g.Nodes ?? [])
        {
            if (node?.Inputs is null) continue;
            foreach (var i in node.Inputs) Read(i);
            foreach (var (_, v) in node.Attributes)
                if (v?.Value is Graph sub)
                    foreach (var name in FreeNames(sub, depth + 1)) Read(name);
        }
        foreach (var o in g.Outputs ?? []) Read(o);
        _freeNames[g] = free;
        return free;
    }
}
