using AutogradService.Engine.Backends;

namespace AutogradService.Engine.Graphs;

/// <summary>Where a region step's operand comes from: a region input, a literal, or an earlier step's value.</summary>
public enum OperandSource
{
    Input, Literal, Step,
}

/// <summary>One operand of a <see cref="RegionStep"/>: its source and the index within that source.</summary>
public readonly record struct RegionOperand(OperandSource Source, int Index);

/// <summary>One member of a region as a step: its kernel and operands (<see cref="B"/> unused by a unary step).</summary>
public readonly record struct RegionStep(ElementwiseStep Kernel, RegionOperand A, RegionOperand B);

/// <summary>
/// A fused region as straight-line code over one element: the members in order, each reading region inputs (one full
/// shape or single elements), literals (in the region's dtype) or earlier steps; the last step is the root. Every
/// step's value is read exactly once, by a later step (that is what put it in the region). Built once per region, for
/// backends that run a region (and its VJP) as one program per element.
/// </summary>
public sealed class RegionProgram
{
    private RegionProgram(RegionStep[] steps, double[] literals, int inputs)
    {
        Steps = steps;
        Literals = literals;
        InputCount = inputs;
    }

    public IReadOnlyList<RegionStep> Steps { get; }

    /// <summary>The literals the steps read, each once however often it appears.</summary>
    public IReadOnlyList<double> Literals { get; }

    public int InputCount { get; }

    internal static RegionProgram Of(ElementwiseRegion region)
    {
        var g = region.Graph;
        var stepOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var literals = new List<double>();
        var steps = new RegionStep[region.Members.Length];
        for (int s = 0; s < steps.Length; s++)
        {
            var node = g.Order[region.Members[s]];
            var operands = new RegionOperand[2];
            for (int i = 0; i < node.Inputs.Count; i++)
            {
                if (node.Literals[i] is { } v)
                {
                    int l = literals.IndexOf(v);
                    if (l < 0) literals.Add(v);
                    operands[i] = new(OperandSource.Literal, l < 0 ? literals.Count - 1 : l);
                }
                else if (stepOf.TryGetValue(node.Inputs[i], out int earlier)) operands[i] = new(OperandSource.Step, earlier);
                else operands[i] = new(OperandSource.Input, Array.IndexOf(region.Inputs, node.Inputs[i]));
            }
            steps[s] = new RegionStep(node.Op!.Step!.Value, operands[0], operands[1]);
            stepOf[node.Outputs[0]] = s;
        }
        return new RegionProgram(steps, [.. literals], region.Inputs.Length);
    }

    public override string ToString() => string.Join("; ", Steps.Select((s, k) => $"{k} = {s.Kernel}({Name(s.A)}{(s.Kernel.IsBinary ? ", " + Name(s.B) : "")})"));

    private string Name(RegionOperand o) => o.Source switch
    {
        OperandSource.Input => $"in{o.Index}",
        OperandSource.Literal => Literals[o.Index].ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => $"#{o.Index}",
    };
}
