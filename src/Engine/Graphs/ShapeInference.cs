using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Shape and dtype inference over a graph, using each op's own <see cref="Op.InferType"/> (the rule the dispatcher
/// applies at run time, with the same dtype promotion first). Unknown sizes (-1) and ranks stay unknown and are
/// checked when the values exist; dtype errors are still found by probing the rule with stand-in shapes.
/// Loops are typed to a fixed point: a carried value whose shape changes between iterations gets -1 there.
/// </summary>
public static class ShapeInference
{
    /// <summary>Types of a node's inputs, number literals typed weakly from their siblings.</summary>
    internal static InferredType[] InputTypes(PlannedNode node, Func<string, InferredType?> lookup)
    {
        var n = node.Inputs.Count;
        var types = new InferredType[n];
        var dtypes = new DType?[n];
        for (int i = 0; i < n; i++)
        {
            if (node.Literals[i] is not null) continue;
            types[i] = lookup(node.Inputs[i]) ?? throw GraphAnalyzer.Missing(node.Inputs[i], node.Path, node.OpName, true);
            dtypes[i] = types[i].DType;
        }
        var schema = SchemaOf(node);
        for (int i = 0; i < n; i++)
            if (node.Literals[i] is { } v) types[i] = new InferredType(GraphLiterals.DTypeFor(schema, i, dtypes, v), []);
        return types;
    }

    internal static OpSchema SchemaOf(PlannedNode node) => node.Op?.Schema ?? ControlFlow.SchemaOf(node.Node.Op)!;

    /// <summary>The output type of an op node, or the error its rule gives, annotated with the node and its input types.</summary>
    internal static InferredType InferOp(PlannedNode node, InferredType[] inputs)
    {
        var op = node.Op!;
        var attrs = node.Node.Attributes;
        var types = Promote(op.Schema, inputs);
        if (Array.TrueForAll(types, t => t.IsKnown))
        {
            var known = Array.ConvertAll(types, t => t.ToTensorType());
            try
            {
                return InferredType.From(op.InferType(known, attrs));
            }
            catch (EngineException e)
            {
                throw Annotate(e, node, inputs);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException or IndexOutOfRangeException)
            {
                throw Annotate(EngineException.InvalidGraph(e.Message, op: op.Name), node, inputs);
            }
        }
        if (Array.Exists(types, t => t.DType is null)) return InferredType.Unknown;

        // Probe with stand-ins for the unknown parts: dtype errors do not depend on them. First unknown sizes as 1
        // and unknown ranks as scalars, then every partly known input as a scalar (broadcasts with anything).
        TensorType StandIn(InferredType t, bool scalar) => new(
            t.Dims is null || (scalar && !t.IsKnown) ? Shape.Scalar : new Shape(t.Dims.Select(d => Math.Max(d, 1)).ToArray()), t.DType!.Value);
        foreach (bool scalar in (bool[])[false, true])
        {
            try
            {
                return InferredType.OfDType(op.InferType(Array.ConvertAll(types, t => StandIn(t, scalar)), attrs).DType);
            }
            catch (EngineException e) when (e.Code == ErrorCodes.DTypeMismatch)
            {
                throw Annotate(e, node, inputs);
            }
            catch (Exception)
            {
                // try the next stand-in
            }
        }
        return InferredType.Unknown;
    }

    /// <summary>What the dispatcher does first: inputs marked Promoted are cast to their common dtype.</summary>
    private static InferredType[] Promote(OpSchema schema, InferredType[] inputs)
    {
        var operands = new List<(DType, bool)>();
        bool ranksKnown = true;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!GraphLiterals.SpecAt(schema, i).Promoted) continue;
            if (inputs[i].DType is not { } d) return inputs;
            ranksKnown &= inputs[i].Rank is not null;
            operands.Add((d, inputs[i].Rank == 0));
        }
        if (operands.Count == 0) return inputs;
        // With a rank unknown until run time, the plain order is the best guess; the dispatcher decides exactly.
        DType? common = ranksKnown ? DTypes.ResultType(operands) : operands.Select(o => o.Item1).Aggregate(DTypes.Promote);
        var result = (InferredType[])inputs.Clone();
        for (int i = 0; i < result.Length; i++)
            if (GraphLiterals.SpecAt(schema, i).Promoted && result[i].DType != common)
                result[i] = new InferredType(common, result[i].Dims);
        return result;
    }

    /// <summary>Re-raises an op's error with the node's path, the op and the input types in the message.</summary>
    public static EngineException Annotate(EngineException e, PlannedNode node, IReadOnlyList<InferredType> inputs)
    {
        var shown = string.Join(", ", node.Inputs.Select((name, i) => $"{name}: {(i < inputs.Count ? inputs[i] : InferredType.Unknown)}"));
        var line = node.Node.Line is { } l ? $"; at program line {l}" : "";
        var annotated = new EngineException(e.Code, $"{e.Detail}; inputs {shown}{line}", e.Node ?? node.Path, e.Op ?? node.OpName, e.Input, e);
        foreach (var (k, v) in e.Facts) annotated.Facts[k] = v;
        annotated.Facts["input_types"] = inputs.Select(t => t.ToString()).ToArray();
        if (node.Node.Line is { } at) annotated.Facts["line"] = at;
        return annotated;
    }
}

internal sealed partial class GraphAnalyzer
{
    private const int MaxLoopTypingRounds = Shape.MaxRank + 2;

    private PlannedGraph InferTypes(Graph g, List<PlannedNode> order, InferredType[]? bound, TypeEnv? parent, string path, int depth, string? owner)
    {
        var env = new TypeEnv(parent);
        var inputTypes = new InferredType[g.Inputs.Count];
        for (int i = 0; i < inputTypes.Length; i++)
        {
            var p = g.Inputs[i];
            inputTypes[i] = Bind(p, bound?[i] ?? InferredType.From(p), owner);
            env.Local[p.Name] = inputTypes[i];
        }
        foreach (var (name, tensor) in g.ConstantValues) env.Local[name] = InferredType.From(tensor.Type);

        foreach (var node in order)
        {
            var ins = ShapeInference.InputTypes(node, env.Lookup);
            var outs = node.Kind switch
            {
                NodeKind.While => InferWhile(node, ins, env, depth),
                NodeKind.If => InferIf(node, ins, env, depth),
                _ => [ShapeInference.InferOp(node, ins)],
            };
            node.InputTypes = ins;
            node.OutputTypes = outs;
            for (int j = 0; j < outs.Length; j++) env.Local[node.Outputs[j]] = outs[j];
        }
        var outputTypes = g.Outputs.Select(o => env.Lookup(o)!).ToArray();
        return new PlannedGraph(g, path, order, env.Local, inputTypes, outputTypes, FreeNames(g, depth));
    }

    /// <summary>Checks a value bound to a graph input against the input's declaration and returns the tighter type.</summary>
    private static InferredType Bind(Parameter p, InferredType actual, string? owner)
    {
        var declared = p.AnyDType ? new InferredType(null, p.Shape) : InferredType.From(p);
        var what = owner is null ? $"input '{p.Name}'" : $"input '{p.Name}' of {owner}";
        var given = owner is null ? "the value given is" : "it receives";
        if (declared.DType is { } d && actual.DType is { } a && d != a)
            throw new EngineException(ErrorCodes.DTypeMismatch, $"{what} is declared {declared} but {given} {actual}", input: p.Name);
        if (!InferredType.ShapesCompatible(declared, actual))
            throw new EngineException(ErrorCodes.ShapeMismatch, $"{what} is declared {declared} but {given} {actual}", input: p.Name);
        return InferredType.Meet(declared, actual)!;
    }

    private InferredType[] InferWhile(PlannedNode node, InferredType[] carried, TypeEnv env, int depth)
    {
        var attrs = node.Node.Attributes;
        var cond = attrs.GetGraph("cond");
        var body = attrs.GetGraph("body");
        if (attrs.Has("max_iterations"))
        {
            long max = attrs.GetInt("max_iterations");
            if (max < 0) throw EngineException.InvalidGraph($"max_iterations must be 0 or more, got {max}", node.Path, ControlFlow.While);
            node.MaxIterations = max;
        }
        CheckArity(node, "cond", cond, carried.Length, 1);
        CheckArity(node, "body", body, carried.Length, carried.Length);

        for (int round = 0; ; round++)
        {
            var condPlan = Analyze(cond, carried, env, $"{node.Path}/cond", depth + 1, $"the cond graph of while node '{node.Path}'");
            CheckCondition(node, condPlan.OutputTypes[0], "the cond graph's output");
            var bodyPlan = Analyze(body, carried, env, $"{node.Path}/body", depth + 1, $"the body graph of while node '{node.Path}'");
            var next = new InferredType[carried.Length];
            bool changed = false;
            for (int i = 0; i < carried.Length; i++)
            {
                var after = bodyPlan.OutputTypes[i];
                if (carried[i].DType is { } before && after.DType is { } now && before != now)
                    throw EngineException.DTypeMismatch(
                        $"the body graph turns carried value {i} ('{node.Inputs[i]}') from {carried[i]} into {after}; a loop keeps each value's dtype",
                        node.Path, ControlFlow.While);
                next[i] = InferredType.Join(carried[i], after);
                if (next[i].DType is null && (carried[i].DType ?? after.DType) is { } dt) next[i] = new InferredType(dt, next[i].Dims);
                changed |= !next[i].Equals(carried[i]);
            }
            if (!changed)
            {
                node.Cond = condPlan;
                node.Body = bodyPlan;
                return carried;
            }
            // Each round only forgets sizes, so this settles within rank + 1 rounds; past that forget ranks too.
            carried = round < MaxLoopTypingRounds ? next : Array.ConvertAll(next, t => InferredType.OfDType(t.DType));
        }
    }

    private InferredType[] InferIf(PlannedNode node, InferredType[] inputs, TypeEnv env, int depth)
    {
        var attrs = node.Node.Attributes;
        var thenGraph = attrs.GetGraph("then");
        var elseGraph = attrs.GetGraph("else");
        CheckCondition(node, inputs[0], $"the condition '{node.Inputs[0]}'");
        var operands = inputs[1..];
        int outputs = node.Outputs.Count;
        CheckArity(node, "then", thenGraph, operands.Length, outputs);
        CheckArity(node, "else", elseGraph, operands.Length, outputs);
        node.Then = Analyze(thenGraph, operands, env, $"{node.Path}/then", depth + 1, $"the then graph of if node '{node.Path}'");
        node.Else = Analyze(elseGraph, operands, env, $"{node.Path}/else", depth + 1, $"the else graph of if node '{node.Path}'");
        var result = new InferredType[outputs];
        for (int j = 0; j < outputs; j++)
        {
            var (a, b) = (node.Then.OutputTypes[j], node.Else.OutputTypes[j]);
            if (a.DType is { } da && b.DType is { } db && da != db)
                throw EngineException.DTypeMismatch(
                    $"the branches disagree on output {j} ('{node.Outputs[j]}'): then gives {a}, else gives {b}", node.Path, ControlFlow.If);
            var joined = InferredType.Join(a, b);
            result[j] = new InferredType(a.DType ?? b.DType, joined.Dims);
        }
        return result;
    }

    private static void CheckArity(PlannedNode node, string attr, Graph sub, int inputs, int outputs)
    {
        if (sub.Inputs is null || sub.Outputs is null)
            throw EngineException.InvalidGraph($"the {attr} graph lacks its inputs or outputs list", node.Path, node.OpName);
        if (sub.Inputs.Count != inputs)
            throw EngineException.InvalidGraph(
                $"the {attr} graph takes {sub.Inputs.Count} input(s) but the {node.OpName} node passes it {inputs}", node.Path, node.OpName);
        if (sub.Outputs.Count != outputs)
            throw EngineException.InvalidGraph(
                $"the {attr} graph has {sub.Outputs.Count} output(s) but must have {outputs}", node.Path, node.OpName);
    }

    private static void CheckCondition(PlannedNode node, InferredType t, string what)
    {
        if (t.DType is { } d && d != DType.Bool)
            throw EngineException.DTypeMismatch($"{what} must be a bool scalar, got {t}", node.Path, node.OpName);
        if (t.ElementCount is { } n && n != 1)
            throw EngineException.ShapeMismatch($"{what} must be a bool scalar (one element), got {t}", node.Path, node.OpName);
    }
}
