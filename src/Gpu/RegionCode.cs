using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;

namespace AutogradService.Gpu;

/// <summary>
/// Compiles a region's <see cref="RegionProgram"/> into the <see cref="RegionSteps"/> the fused kernel interprets:
/// each step's value goes into the lowest free register, and a register is free again once its one reader has read
/// it. Null when the program does not fit the kernel (more than 16 steps, 8 inputs, 8 literals or 8 live values) or
/// has a step the device does not compute; the region then runs member by member.
/// </summary>
internal static class RegionCode
{
    public const int MaxSteps = 16, MaxInputs = 8, MaxLiterals = 8, MaxRegisters = 8;

    public static RegionSteps? Compile(RegionProgram program)
    {
        if (program.Steps.Count > MaxSteps || program.InputCount > MaxInputs || program.Literals.Count > MaxLiterals) return null;
        var registerOf = new int[program.Steps.Count];
        var busy = new bool[MaxRegisters];
        var code = new RegionSteps();
        for (int k = 0; k < program.Steps.Count; k++)
        {
            var step = program.Steps[k];
            if (!OnDevice(step.Kernel)) return null;
            int a = Operand(step.A, registerOf, busy);
            int b = step.Kernel.IsBinary ? Operand(step.B, registerOf, busy) : 0;
            int dest = Array.IndexOf(busy, false);
            if (dest < 0) return null;
            busy[dest] = true;
            registerOf[k] = dest;
            code.Add(step.Kernel.Kernel | (step.Kernel.IsBinary ? 64 : 0) | a << 7 | b << 12 | dest << 17);
        }
        return code;
    }

    private static bool OnDevice(ElementwiseStep step) => step.IsBinary
        ? (BinaryKernel)step.Kernel is >= BinaryKernel.Add and <= BinaryKernel.Minimum
        : Scalar.OnDevice((UnaryKernel)step.Kernel);

    /// <summary>The operand's code; reading a step's value frees its register (nothing else reads it).</summary>
    private static int Operand(RegionOperand operand, int[] registerOf, bool[] busy)
    {
        switch (operand.Source)
        {
            case OperandSource.Input: return 8 + operand.Index;
            case OperandSource.Literal: return 16 + operand.Index;
            default:
                int r = registerOf[operand.Index];
                busy[r] = false;
                return r;
        }
    }
}
