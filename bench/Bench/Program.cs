using BenchmarkDotNet.Running;

namespace AutogradService.Bench;

/// <summary>
/// Two modes. With <c>--workload Wn</c>: time one workload and print JSON (used by bench/compare.sh). Otherwise:
/// the BenchmarkDotNet suites, taking BenchmarkDotNet's own arguments (<c>--filter '*W1*'</c>, <c>--job short</c>...).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (Array.IndexOf(args, "--workload") >= 0)
            return Timing.Run(args);

        Type[] suites = [typeof(W1Tiny), typeof(W2ControlFlow), typeof(W3Mlp), typeof(W4ElementwiseChain),
            typeof(W5MatMul), typeof(W6SecondDerivative), typeof(W7Jacobian), typeof(PlanRuns)];
        if (OptionalOps.MatMul is null)
        {
            Console.WriteLine("note: F.MatMul is not in this engine yet; W3, W5 and W7 are left out");
            suites = [typeof(W1Tiny), typeof(W2ControlFlow), typeof(W4ElementwiseChain), typeof(W6SecondDerivative)];
        }
        BenchmarkSwitcher.FromTypes(suites).Run(args);
        return 0;
    }
}
