using System.Diagnostics;
using System.Text.Json;

namespace AutogradService.Bench;

/// <summary>
/// The side-by-side harness's half of a measurement: times one workload (median of k calls after a warm-up) and
/// prints one JSON line, <c>{"workload": ..., "ms": ...}</c>, as the PyTorch script does for the peer.
/// </summary>
internal static class Timing
{
    public static int Run(string[] args)
    {
        string? id = null;
        int threads = 1, iterations = 20, warmup = 3, size = ElementwiseChain.DefaultElements;
        double warmupSeconds = 0.5;
        bool check = true;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--workload": id = Next().ToUpperInvariant(); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--iterations": iterations = int.Parse(Next()); break;
                case "--warmup": warmup = int.Parse(Next()); break;
                case "--warmup-seconds": warmupSeconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--size": size = int.Parse(Next()); break;
                case "--no-check": check = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        var workload = Array.Find(Workload.All(size), w => w.Id == id)
            ?? throw new ArgumentException($"unknown workload '{id}' (W1..W7, P1, P2)");

        using var json = new Utf8JsonWriter(Console.OpenStandardOutput());
        json.WriteStartObject();
        json.WriteString("workload", workload.Id);
        json.WriteNumber("threads", threads);
        // Intra-op parallelism (GEMM) uses at most this many threads, as the peer's torch.set_num_threads does.
        AutogradService.Engine.Kernels.Cpu.EngineThreads.Count = threads;
        json.WriteNumber("engine_threads", AutogradService.Engine.Kernels.Cpu.EngineThreads.Count);
        if (workload.MissingOp is { } missing)
        {
            json.WriteNull("ms");
            json.WriteString("missing", missing);
        }
        else
        {
            workload.Setup();
            if (check) workload.Check();
            var watch = Stopwatch.StartNew();
            for (int n = 0; n < warmup || watch.Elapsed.TotalSeconds < warmupSeconds; n++) workload.Run();
            GC.Collect();
            GC.WaitForPendingFinalizers();

            var times = new double[Math.Max(1, iterations)];
            // CPU time and managed bytes of the timed calls: steadier than wall time on a loaded machine.
            var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
            long bytesStart = GC.GetAllocatedBytesForCurrentThread();
            for (int n = 0; n < times.Length; n++)
            {
                long start = Stopwatch.GetTimestamp();
                workload.Run();
                times[n] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            long bytes = GC.GetAllocatedBytesForCurrentThread() - bytesStart;
            double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMilliseconds;
            var copies = new double[Math.Min(times.Length, 9)];
            for (int n = 0; n < copies.Length; n++)
            {
                long start = Stopwatch.GetTimestamp();
                workload.ImportOnly();
                copies[n] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            json.WriteNumber("ms", Math.Round(Median(times), 6));
            json.WriteNumber("min_ms", Math.Round(times.Min(), 6));
            json.WriteNumber("iterations", times.Length);
            json.WriteNumber("cpu_ms", Math.Round(cpuMs / times.Length, 6));
            json.WriteNumber("managed_bytes", bytes / times.Length);
            // Part of every call: copying the inputs into the call's fresh scope (0 for W1/W2, which create theirs).
            json.WriteNumber("input_copy_ms", Math.Round(Median(copies), 6));
            if (workload is PlanEvaluate plan)
            {
                // The same plan node by node, same process, same warm-up rule: what fusion is worth.
                plan.Fuse = false;
                watch.Restart();
                for (int n = 0; n < warmup || watch.Elapsed.TotalSeconds < warmupSeconds; n++) plan.Run();
                var unfused = new double[times.Length];
                for (int n = 0; n < unfused.Length; n++)
                {
                    long start = Stopwatch.GetTimestamp();
                    plan.Run();
                    unfused[n] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
                json.WriteNumber("unfused_ms", Math.Round(Median(unfused), 6));
            }
        }
        if (workload.Variant.Length > 0) json.WriteString("variant", workload.Variant);
        json.WriteEndObject();
        json.Flush();
        Console.WriteLine();
        return 0;
    }

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
