namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// How many threads one CPU kernel may use (intra-op parallelism). Defaults to the processor count; a host that runs
/// several requests at once lowers it so requests × threads never oversubscribes the cores.
/// </summary>
public static class EngineThreads
{
    private static int s_count = Environment.ProcessorCount;

    /// <summary>Threads per kernel, clamped to 1 … <see cref="Environment.ProcessorCount"/>.</summary>
    public static int Count
    {
        get => s_count;
        set => s_count = Math.Clamp(value, 1, Environment.ProcessorCount);
    }
}
