using System.Globalization;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// The graph-level control-flow ops. They are not tensor ops (they run subgraphs, so they live in the interpreter,
/// not in the registry), but they have schemas so validation and the ops catalog treat them like any other op.
/// </summary>
public static class ControlFlow
{
    public const string While = "while";
    public const string If = "if";

    public static readonly OpSchema WhileSchema = new(While, "control_flow",
        "repeats body on the carried values while cond holds; differentiable in both modes for any trip count",
        [new OpInput("carried", "initial values of the loop-carried variables", Variadic: true)],
        [
            new OpAttribute("cond", AttrKind.Graph, true, "graph from the carried values to one bool scalar"),
            new OpAttribute("body", AttrKind.Graph, true, "graph from the carried values to their next values (same count and dtypes)"),
            new OpAttribute("max_iterations", AttrKind.Int, false, "iteration limit; past it: iteration_limit_exceeded", "the server's limit"),
        ],
        "the carried values after the last iteration", true);

    public static readonly OpSchema IfSchema = new(If, "control_flow",
        "runs the then graph or the else graph on the operands, as the condition says",
        [
            new OpInput("condition", "a bool scalar", Differentiable: false, Domain: InputDomain.Bool),
            new OpInput("operands", "values bound to the branch graphs' inputs, in order", Variadic: true),
        ],
        [
            new OpAttribute("then", AttrKind.Graph, true, "graph run when the condition is true"),
            new OpAttribute("else", AttrKind.Graph, true, "graph run when the condition is false (same output count and dtypes)"),
        ],
        "the chosen branch's outputs", true);

    /// <summary>Both schemas, for the ops catalog.</summary>
    public static IReadOnlyList<OpSchema> Schemas { get; } = [WhileSchema, IfSchema];

    public static OpSchema? SchemaOf(string op) =>
        string.Equals(op, While, StringComparison.OrdinalIgnoreCase) ? WhileSchema
        : string.Equals(op, If, StringComparison.OrdinalIgnoreCase) ? IfSchema
        : null;
}

/// <summary>
/// Number literals in a node's inputs (JSON allows <c>"inputs": ["x", 2]</c>, programs write <c>2 * x</c>). A literal
/// is weakly typed, like a Python scalar: it takes the dtype of the tensors it is combined with, so <c>x * 0.1</c>
/// stays exact in float64 and <c>i + 1</c> stays int64; alone it is float32.
/// </summary>
public static class GraphLiterals
{
    /// <summary>True when <paramref name="text"/> is a number literal (a sign, then a digit or a point).</summary>
    public static bool TryParse(string text, out double value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text)) return false;
        int i = text[0] is '-' or '+' ? 1 : 0;
        if (i >= text.Length || !(char.IsAsciiDigit(text[i]) || text[i] == '.')) return false;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    public static bool IsLiteral(string text) => TryParse(text, out _);

    /// <summary>The canonical text of a literal value (round-trippable).</summary>
    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// The dtype a literal takes at input <paramref name="position"/> of <paramref name="schema"/>, given the
    /// dtypes of the node's other inputs (null = literal or unknown).
    /// </summary>
    public static DType DTypeFor(OpSchema? schema, int position, IReadOnlyList<DType?> others, double value)
    {
        if (schema is null || !SpecAt(schema, position).Promoted) return DType.Float32;
        DType? common = null;
        for (int i = 0; i < others.Count; i++)
        {
            if (i == position || others[i] is not { } d || !SpecAt(schema, i).Promoted) continue;
            common = common is null ? d : DTypes.Promote(common.Value, d);
        }
        bool integral = value == Math.Floor(value) && !double.IsInfinity(value);
        return common switch
        {
            { } d when d.IsFloating() => d,
            DType.Int64 or DType.Bool when integral => DType.Int64,
            _ => DType.Float32,
        };
    }

    internal static OpInput SpecAt(OpSchema schema, int i)
    {
        var specs = schema.Inputs;
        return i < specs.Count ? specs[i] : specs.Count > 0 && specs[^1].Variadic ? specs[^1] : new OpInput("_");
    }
}
