using System.Globalization;
using System.Text;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>What to print next to the graph: inferred types (from a plan) and, per top-level value, its value and adjoint.</summary>
public sealed record GraphAnnotations
{
    public Plan? Plan { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Values { get; init; }
    public IReadOnlyDictionary<string, HostTensor>? Adjoints { get; init; }

    /// <summary>Elements shown per tensor before "…".</summary>
    public int MaxElements { get; init; } = 6;

    /// <summary>Values and adjoints of a gradient call's intermediates (case E6), its outputs and input gradients.</summary>
    public static GraphAnnotations FromGradient(GradientResult result, Plan? plan = null)
    {
        var values = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        var adjoints = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var (name, t) in result.Outputs) values[name] = HostTensor.From(t);
        foreach (var (name, g) in result.Gradients) adjoints[name] = HostTensor.From(g);
        foreach (var (name, va) in result.Intermediates)
        {
            values[name] = HostTensor.From(va.Value);
            adjoints[name] = HostTensor.From(va.Adjoint);
        }
        return new GraphAnnotations { Plan = plan, Values = values, Adjoints = adjoints };
    }
}

/// <summary>
/// The graph as a person can look at it (case E5): Graphviz DOT and Mermaid flowchart text. Inputs are ellipses
/// (stadiums in Mermaid), constants notes, ops boxes, control flow hexagons with their subgraphs drawn as
/// clusters; edges carry the value names, dashed where a subgraph reads an enclosing value.
/// </summary>
public static class GraphExport
{
    public static string ToDot(Graph graph, GraphAnnotations? annotations = null)
    {
        var model = new Model(annotations ?? new GraphAnnotations());
        model.Build(graph, annotations?.Plan?.Root, null, model.Root, top: true);
        var sb = new StringBuilder("digraph G {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
        WriteDotCluster(sb, model.Root, "  ");
        foreach (var e in model.Edges)
            sb.Append($"  {e.From} -> {e.To} [label=\"{Dot(e.Label)}\"{(e.Dashed ? ", style=dashed" : "")}];\n");
        return sb.Append("}\n").ToString();
    }

    public static string ToMermaid(Graph graph, GraphAnnotations? annotations = null)
    {
        var model = new Model(annotations ?? new GraphAnnotations());
        model.Build(graph, annotations?.Plan?.Root, null, model.Root, top: true);
        var sb = new StringBuilder("flowchart TD\n");
        WriteMermaidCluster(sb, model.Root, "  ");
        foreach (var e in model.Edges)
            sb.Append($"  {e.From} {(e.Dashed ? "-.->" : "-->")}|\"{Mermaid(e.Label)}\"| {e.To}\n");
        return sb.ToString();
    }

    private static void WriteDotCluster(StringBuilder sb, Cluster c, string indent)
    {
        foreach (var n in c.Nodes)
        {
            var shape = n.Kind switch
            {
                VKind.Input => "shape=ellipse",
                VKind.Constant => "shape=note",
                VKind.Literal => "shape=plaintext",
                VKind.Control => "shape=hexagon",
                VKind.Output => "shape=ellipse, peripheries=2",
                _ => "shape=box, style=rounded",
            };
            sb.Append($"{indent}{n.Id} [{shape}, label=\"{string.Join("\\n", n.Lines.Select(Dot))}\"];\n");
        }
        foreach (var child in c.Children)
        {
            sb.Append($"{indent}subgraph cluster_{child.Id} {{\n{indent}  label=\"{Dot(child.Label)}\";\n{indent}  style=dashed;\n");
            WriteDotCluster(sb, child, indent + "  ");
            sb.Append($"{indent}}}\n");
        }
    }

    private static void WriteMermaidCluster(StringBuilder sb, Cluster c, string indent)
    {
        foreach (var n in c.Nodes)
        {
            var label = "\"" + string.Join("<br/>", n.Lines.Select(Mermaid)) + "\"";
            sb.Append(indent).Append(n.Id).Append(n.Kind switch
            {
                VKind.Input => $"([{label}])",
                VKind.Constant => $"[({label})]",
                VKind.Literal => $">{label}]",
                VKind.Control => $"{{{{{label}}}}}",
                VKind.Output => $"(({label}))",
                _ => $"[{label}]",
            }).Append('\n');
        }
        foreach (var child in c.Children)
        {
            sb.Append($"{indent}subgraph {child.Id}[\"{Mermaid(child.Label)}\"]\n{indent}  direction TB\n");
            WriteMermaidCluster(sb, child, indent + "  ");
            sb.Append($"{indent}end\n");
        }
    }

    private static string Dot(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string Mermaid(string s) => s.Replace("&", "#amp;").Replace("\"", "#quot;").Replace("<", "#lt;").Replace(">", "#gt;").Replace("|", "#124;");

    private enum VKind
    {
        Input,
        Constant,
        Literal,
        Op,
        Control,
        Output,
    }

    private sealed record VNode(string Id, VKind Kind, List<string> Lines);

    private sealed record VEdge(string From, string To, string Label, bool Dashed);

    private sealed class Cluster(string id, string label)
    {
        public string Id { get; } = id;
        public string Label { get; } = label;
        public List<VNode> Nodes { get; } = [];
        public List<Cluster> Children { get; } = [];
    }

    /// <summary>Value names resolve to the id of what produced them, looking outward through enclosing graphs.</summary>
    private sealed class Names(Names? parent)
    {
        private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);
        public void Add(string name, string id) => _ids[name] = id;

        public (string? Id, bool Outer) Resolve(string name) =>
            _ids.TryGetValue(name, out var id) ? (id, false) : parent?.Resolve(name) is { Id: not null } p ? (p.Id, true) : (null, false);
    }

    private sealed class Model(GraphAnnotations notes)
    {
        private int _next;
        public Cluster Root { get; } = new("g", "graph");
        public List<VEdge> Edges { get; } = [];

        private string NewId() => $"n{_next++}";

        public List<string> Build(Graph g, PlannedGraph? plan, Names? parentNames, Cluster into, bool top)
        {
            var names = new Names(parentNames);
            var inputIds = new List<string>();
            string? TypeOf(string value) => plan?.Types.GetValueOrDefault(value)?.ToString();

            foreach (var p in g.Inputs)
            {
                var id = NewId();
                into.Nodes.Add(new VNode(id, VKind.Input, Annotated(p.Name, [p.Name, TypeOf(p.Name) ?? InferredType.From(p).ToString()], top)));
                names.Add(p.Name, id);
                inputIds.Add(id);
            }
            foreach (var (name, c) in g.ConstantValues)
            {
                var id = NewId();
                var lines = new List<string> { name, $"constant {c.Type}" };
                if (c.Shape.ElementCount <= notes.MaxElements) lines.Add(Format(c, notes.MaxElements));
                into.Nodes.Add(new VNode(id, VKind.Constant, lines));
                names.Add(name, id);
            }

            var planned = plan?.Order.ToDictionary(n => n.Index);
            var nodeIds = new string[g.Nodes.Count];
            for (int i = 0; i < g.Nodes.Count; i++)
            {
                var node = g.Nodes[i];
                var pn = planned?.GetValueOrDefault(i);
                bool control = ControlFlow.SchemaOf(node.Op) is not null;
                var lines = new List<string> { node.Name is { } n && n != node.Outputs.FirstOrDefault() ? $"{node.Op} ({n})" : node.Op };
                for (int j = 0; j < node.Outputs.Count; j++)
                {
                    var o = node.Outputs[j];
                    var type = pn is not null && j < pn.OutputTypes.Count ? pn.OutputTypes[j].ToString() : TypeOf(o);
                    lines.AddRange(Annotated(o, [type is null ? $"→ {o}" : $"→ {o}: {type}"], top));
                }
                nodeIds[i] = NewId();
                into.Nodes.Add(new VNode(nodeIds[i], control ? VKind.Control : VKind.Op, lines));
                foreach (var o in node.Outputs) names.Add(o, nodeIds[i]);
            }

            for (int i = 0; i < g.Nodes.Count; i++)
            {
                var node = g.Nodes[i];
                foreach (var input in node.Inputs)
                {
                    if (GraphLiterals.IsLiteral(input))
                    {
                        var lit = NewId();
                        into.Nodes.Add(new VNode(lit, VKind.Literal, [input]));
                        Edges.Add(new VEdge(lit, nodeIds[i], "", false));
                        continue;
                    }
                    var (from, outer) = names.Resolve(input);
                    if (from is not null) Edges.Add(new VEdge(from, nodeIds[i], input, outer));
                }
                var pn = planned?.GetValueOrDefault(i);
                foreach (var (attr, value) in node.Attributes)
                {
                    if (value.Value is not Graph sub) continue;
                    var cluster = new Cluster($"c{_next++}", $"{node.Op} {node.DisplayName}: {attr}");
                    into.Children.Add(cluster);
                    var subPlan = pn?.Subgraphs().FirstOrDefault(s => s.Attribute == attr).Graph;
                    var subInputs = Build(sub, subPlan, names, cluster, top: false);
                    foreach (var id in subInputs) Edges.Add(new VEdge(nodeIds[i], id, attr, true));
                }
            }

            foreach (var o in g.Outputs)
            {
                var id = NewId();
                into.Nodes.Add(new VNode(id, VKind.Output, Annotated(o, [top ? $"output {o}" : $"yields {o}"], top)));
                var (from, outer) = names.Resolve(o);
                if (from is not null) Edges.Add(new VEdge(from, id, o, outer));
            }
            return inputIds;
        }

        private List<string> Annotated(string value, List<string> lines, bool top)
        {
            if (!top) return lines;
            if (notes.Values?.GetValueOrDefault(value) is { } v) lines.Add($"value {Format(v, notes.MaxElements)}");
            if (notes.Adjoints?.GetValueOrDefault(value) is { } a) lines.Add($"adjoint {Format(a, notes.MaxElements)}");
            return lines;
        }
    }

    /// <summary><c>[1.33538, 1, 1.76055]</c>; a scalar without brackets; long tensors end with "…".</summary>
    public static string Format(HostTensor t, int maxElements = 6)
    {
        var values = t.ToDoubles();
        var shown = values.Take(maxElements).Select(v => t.DType == DType.Bool ? (v != 0 ? "true" : "false") : v.ToString("G6", CultureInfo.InvariantCulture));
        var text = string.Join(", ", shown) + (values.Length > maxElements ? ", …" : "");
        return t.Shape.Rank == 0 ? text : $"[{text}]";
    }
}
