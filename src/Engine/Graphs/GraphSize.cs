using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Rough managed-memory sizes of graphs and plans, for caches bounded in bytes. Overestimates a little on purpose:
/// object headers, strings at two bytes a character, constants' arrays at their full size.
/// </summary>
public static class GraphSize
{
    private const long Object = 64;

    public static long EstimateBytes(Graph graph)
    {
        long bytes = 4 * Object;
        foreach (var p in graph.Inputs) bytes += Object + Text(p.Name) + 4L * (p.Shape?.Count ?? 0);
        foreach (var (name, t) in graph.ConstantValues) bytes += Object + Text(name) + Tensor(t);
        foreach (var n in graph.Nodes)
        {
            bytes += 2 * Object + Text(n.Op) + Text(n.Name);
            foreach (var i in n.Inputs) bytes += 8 + Text(i);
            foreach (var o in n.Outputs) bytes += 8 + Text(o);
            foreach (var (key, value) in n.Attributes) bytes += Object + Text(key) + Attribute(value);
        }
        foreach (var o in graph.Outputs) bytes += 8 + Text(o);
        return bytes;
    }

    /// <summary>Nodes of a graph and of all its subgraphs: what the MaxNodes limit counts.</summary>
    public static long CountNodes(Graph graph)
    {
        long n = graph.Nodes.Count;
        foreach (var node in graph.Nodes)
            foreach (var attr in node.Attributes.Values)
                if (attr.Value is Graph sub) n += CountNodes(sub);
        return n;
    }

    /// <summary>A plan holds its graph plus, per node, the planned node and its values' types.</summary>
    public static long EstimatePlanBytes(Plan plan) => EstimateBytes(plan.Graph) + 8 * Object * plan.NodeCount;

    private static long Attribute(AttrValue v) => v.Value switch
    {
        string s => Text(s),
        long[] l => 8L * l.Length,
        double[] d => 8L * d.Length,
        HostTensor t => Tensor(t),
        Graph g => EstimateBytes(g),
        _ => 8,
    };

    private static long Tensor(HostTensor t) => Object + t.Shape.ElementCount * Math.Max(1, t.DType.SizeOf());

    private static long Text(string? s) => s is null ? 0 : Object / 2 + 2L * s.Length;
}
