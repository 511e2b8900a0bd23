using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;

namespace AutogradService.Gpu;

/// <summary>
/// Compiles a region's <see cref="RegionProgram"/> into the <see cref="RegionSteps"/> the fused kernels interpret
/// (forward, and backward with every step's value kept: one register per step). Null when the program does not fit
/// the kernels (more than 16 steps, 8 inputs or 8 literals) or has a step the device does not compute; the region
/// then runs member by member.
/// </summary>
internal static class RegionCode
{
    public const int MaxSteps = 16, MaxInputs = 8, MaxLiterals = 8;

    public static RegionSteps? Compile(RegionProgram program)
    {
        if (program.Steps.Count > MaxSteps || program.InputCount > MaxInputs || program.Literals.Count > MaxLiterals) return null;
        var code = new RegionSteps();
        foreach (var step in program.Steps)
        {
            if (!OnDevice(step.Kernel)) return null;
            int b = step.Kernel.IsBinary ? Operand(step.B) : 0;
            code.Add(step.Kernel.Kernel | (step.Kernel.IsBinary ? 64 : 0) | Operand(step.A) << 7 | b << 12);
        }
        return code;
    }

    private static bool OnDevice(ElementwiseStep step) => step.IsBinary
        ? (BinaryKernel)step.Kernel is >= BinaryKernel.Add and <= BinaryKernel.Minimum
        : Scalar.OnDevice((UnaryKernel)step.Kernel);

    private static int Operand(RegionOperand operand) => operand.Source switch
    {
        OperandSource.Step => operand.Index,
        OperandSource.Input => 16 + operand.Index,
        _ => 24 + operand.Index,
    };
}
