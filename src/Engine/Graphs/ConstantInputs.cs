using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Differentiating by a graph's constants: an imported model's weights are named constants, and a client that names
/// one in <c>wrt</c> (or gives it a tangent) wants it treated as an input. Lifting turns those constants into inputs
/// whose values default to the constants' own, so every transform then works unchanged.
/// </summary>
public static class ConstantInputs
{
    /// <summary>
    /// The graph with each constant in <paramref name="names"/> made an input, and <paramref name="inputs"/> with the
    /// constants' values added where the client gave none. Names that are not constants are left for the transform
    /// to judge; with none to lift, the same graph and inputs come back.
    /// </summary>
    public static (Graph Graph, IReadOnlyDictionary<string, HostTensor> Inputs) Lift(
        Graph graph, IEnumerable<string> names, IReadOnlyDictionary<string, HostTensor> inputs)
    {
        var isInput = graph.InputNameTest();
        var lift = names.Distinct(StringComparer.Ordinal)
            .Where(n => graph.ConstantValues.ContainsKey(n) && !isInput(n)).ToArray();
        if (lift.Length == 0) return (graph, inputs);
        var constants = new Dictionary<string, HostTensor>(graph.ConstantValues, StringComparer.Ordinal);
        var fed = new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
        var parameters = graph.Inputs.ToList();
        foreach (var name in lift)
        {
            var value = constants[name];
            constants.Remove(name);
            parameters.Add(new Parameter(name, value.DType, value.Shape.ToArray()));
            fed.TryAdd(name, value);
        }
        return (graph with { Inputs = parameters, Constants = constants }, fed);
    }
}
