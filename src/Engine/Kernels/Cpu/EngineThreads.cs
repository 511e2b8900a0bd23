using System.Collections.Concurrent;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// How many threads one CPU kernel may use (intra-op parallelism), and the threads it splits work over. Defaults to
/// the processor count; a host that runs several requests at once lowers it so requests × threads never
/// oversubscribes the cores.
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

    /// <summary>Options for a kernel's <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>: at most <paramref name="degree"/> threads, the calling one included.</summary>
    internal static ParallelOptions Options(int degree) => new()
    {
        MaxDegreeOfParallelism = degree,
        TaskScheduler = KernelThreads.Instance is { } threads ? threads : TaskScheduler.Default,
    };
}

/// <summary>
/// The threads kernels hand work to: dedicated, one fewer than the cores (the calling thread always takes a share),
/// started on first use. Not the .NET thread pool: on a busy machine its hill climbing adds workers that spin for
/// work and compete with the calling thread (measured: W6 at 2 threads 0.8 ms while two pool threads ran, 1.8 ms in
/// processes where a third was added), and in the service that pool also serves the requests.
/// </summary>
internal sealed class KernelThreads : TaskScheduler
{
    private readonly BlockingCollection<Task> _queue = [];
    private readonly int _threads;

    private KernelThreads(int threads)
    {
        _threads = threads;
        for (int i = 0; i < threads; i++)
        {
            var thread = new Thread(Work) { IsBackground = true, Name = $"engine kernel {i + 1}" };
            thread.Start();
        }
    }

    /// <summary>Null on a single core: there is nobody to hand work to.</summary>
    public static KernelThreads? Instance { get; } = Environment.ProcessorCount > 1 ? new(Environment.ProcessorCount - 1) : null;

    public override int MaximumConcurrencyLevel => _threads + 1;

    private void Work()
    {
        foreach (var task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
    }

    protected override void QueueTask(Task task) => _queue.Add(task);

    // Parallel.For runs a share on the calling thread: let it.
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();
}
