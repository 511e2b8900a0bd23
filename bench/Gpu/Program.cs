using System.Diagnostics;
using System.Text.Json;
using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using AutogradService.Gpu;

// The device check's .NET half (bench/gpu.sh runs it on a GPU machine, next to PyTorch CUDA):
//   conformance  every registered op's examples forward on the GPU backend against the CPU, float64 and float32;
//                prints "N passed, N failed"
//   bench        elementwise add and copy on 1 GiB (GB/s), SGEMM/DGEMM at 4096 and 8192 (TFLOP/s), W4's chain on 10M
//                elements (ms) op by op and as a plan run (one fused launch; and with its VJP); writes JSON to --json PATH
//   workloads    the performance issue's W1-W7 (bench/Bench's classes) on the GPU backend and on the CPU, ms per call
// --cpu-accelerator runs both on ILGPU's CPU accelerator at small sizes (a smoke run on any machine).
// W4's chain as a program: one fused region (sin(x) * exp(-x * x) + tanh(x)).
const string W4Program = "a = x * x\nb = neg(a)\nc = exp(b)\nd = sin(x)\ne = d * c\nf = tanh(x)\ny = e + f";
bool cpu = args.Contains("--cpu-accelerator");
string? jsonPath = args.SkipWhile(a => a != "--json").Skip(1).FirstOrDefault();
using var gpu = cpu ? GpuBackend.CreateCpuAccelerator() : GpuBackend.TryCreateCuda() ?? throw new InvalidOperationException("no CUDA device");
Console.WriteLine($"device: {gpu.Describe().Description}, {gpu.Describe().MemoryBytes / (1L << 30)} GiB; {gpu.BlasStatus}");

if (args.Contains("conformance"))
{
    int passed = 0, failed = 0;
    foreach (var op in OpRegistry.Default.All)
        for (int e = 0; e < op.Examples.Count; e++)
            foreach (var dtype in new[] { DType.Float64, DType.Float32 })
            {
                var problem = Conformance.Check(gpu, op, op.Examples[e], dtype);
                if (problem is null) passed++;
                else
                {
                    failed++;
                    Console.WriteLine($"FAIL {op.Name} #{e} {dtype.WireName()}: {problem}");
                }
            }
    Console.WriteLine($"{passed} passed, {failed} failed");
    if (failed > 0) Environment.ExitCode = 1;
}

if (args.Contains("bench"))
{
    var results = new Dictionary<string, double>();
    long elements = cpu ? 1 << 16 : 1L << 28; // 1 GiB of float32 on a GPU
    int[] gemm = cpu ? [64] : [4096, 8192];
    using (var scope = new ExecutionScope(new ScopeOptions { Backend = gpu }))
    {
        var a = scope.Full(Shape.Vector((int)elements), 1.5f);
        var b = scope.Full(Shape.Vector((int)elements), 2.5f);
        double add = Time(() => (a + b).Dispose());
        results["add_gbps"] = 3.0 * elements * 4 / add / 1e9;
        double copy = Time(() =>
        {
            var y = scope.Allocate(a.Type);
            gpu.Copy(a, y);
            y.Dispose();
        });
        results["copy_gbps"] = 2.0 * elements * 4 / copy / 1e9;
        int chain = cpu ? 1 << 18 : 10_000_000; // at least RegionRunner.MinElements, so the plan run fuses
        var x = scope.Full(Shape.Vector(chain), 0.5f);
        results["w4_chain_ms"] = 1e3 * Time(() => (F.Sin(x) * F.Exp(-x * x) + F.Tanh(x)).Dispose());
        // The same chain as a plan run: one fused region, one launch forward (and one for its VJP).
        var feed = new Dictionary<string, Tensor> { ["x"] = x };
        var plan = AutogradService.Engine.Graphs.GraphFunctions.Prepare(AutogradService.Engine.Graphs.ProgramParser.Parse(W4Program), feed);
        using (scope.NoGrad())
            results["w4_fused_ms"] = 1e3 * Time(() => AutogradService.Engine.Graphs.Interpreter.Run(scope, plan, feed).Outputs["y"].Dispose());
        var leaf = scope.Full(Shape.Vector(chain), 0.5f);
        leaf.RequireGrad();
        var leafFeed = new Dictionary<string, Tensor> { ["x"] = leaf };
        var seed = scope.Full(Shape.Vector(chain), 1f);
        results["w4_fused_grad_ms"] = 1e3 * Time(() =>
        {
            var y = AutogradService.Engine.Graphs.Interpreter.Run(scope, plan, leafFeed).Outputs["y"];
            ReverseMode.Grad([y], [seed], [leaf])[0].Dispose();
            y.Dispose();
        });
    }
    foreach (int n in gemm)
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            using var scope = new ExecutionScope(new ScopeOptions { Backend = gpu });
            var p = scope.Full(new Shape(n, n), 0.01, dtype);
            var q = scope.Full(new Shape(n, n), 0.02, dtype);
            double t = Time(() => F.MatMul(p, q).Dispose());
            results[$"{(dtype == DType.Float32 ? "sgemm" : "dgemm")}_{n}_tflops"] = 2.0 * n * n * n / t / 1e12;
        }
    foreach (var (k, v) in results) Console.WriteLine($"{k,-20} {v,12:F3}");
    if (jsonPath is not null) File.WriteAllText(jsonPath, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
}

if (args.Contains("workloads"))
{
    // W1-W7 define-by-run, each call a fresh scope on the GPU backend, then the same on the CPU. The CPU accelerator
    // (a smoke run) takes the light ones at a small W4.
    var results = new Dictionary<string, double>();
    string[] ids = cpu ? ["W1", "W2", "W4", "W6"] : ["W1", "W2", "W3", "W4", "W5", "W6", "W7"];
    foreach (var workload in AutogradService.Bench.Workload.All(cpu ? 1 << 14 : null).Where(w => ids.Contains(w.Id) && w.MissingOp is null))
    {
        workload.Setup();
        foreach (var (backend, suffix) in new[] { ((IBackend?)gpu, "gpu"), (null, "cpu") })
        {
            AutogradService.Bench.Workload.Backend = backend;
            results[$"{workload.Id}_{suffix}_ms"] = 1e3 * Time(() => workload.Run());
        }
    }
    AutogradService.Bench.Workload.Backend = null;
    foreach (var (k, v) in results) Console.WriteLine($"{k,-20} {v,12:F3}");
    if (jsonPath is not null)
    {
        // Merged into the bench mode's file when both ran.
        var all = File.Exists(jsonPath) ? JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(jsonPath))! : [];
        foreach (var (k, v) in results) all[k] = v;
        File.WriteAllText(jsonPath, JsonSerializer.Serialize(all, new JsonSerializerOptions { WriteIndented = true }));
    }
}

// Median of five timed runs after one warm-up (every launch synchronises, so wall time is device time).
static double Time(Action work)
{
    work();
    var times = new double[5];
    for (int i = 0; i < times.Length; i++)
    {
        var watch = Stopwatch.StartNew();
        work();
        times[i] = watch.Elapsed.TotalSeconds;
    }
    Array.Sort(times);
    return times[2];
}

/// <summary>One op example's forward on the GPU backend against the CPU, inputs sampled alike from a fixed seed.</summary>
internal static class Conformance
{
    public static string? Check(GpuBackend gpu, Op op, OpExample example, DType floats)
    {
        using var host = new ExecutionScope();
        using var device = new ExecutionScope(new ScopeOptions { Backend = gpu });
        var random = new Random(op.Name.Length * 7919 + example.Inputs.Count);
        var inputs = example.Inputs.Select(spec => Sample(host, spec, floats, random)).ToArray();
        Tensor want, got;
        try
        {
            want = Dispatcher.Apply(host, op, inputs, example.Attrs);
        }
        catch (EngineException)
        {
            return null; // not defined for this dtype on either side
        }
        got = Dispatcher.Apply(device, op, inputs.Select(device.Import).ToArray(), example.Attrs);
        if (want.Type != got.Type) return $"type {got.Type}, CPU {want.Type}";
        var (w, g) = (want.ToDoubles(), got.ToDoubles());
        double rtol = !want.DType.IsFloating() ? 0 : want.DType == DType.Float32 ? 1e-5 : 1e-12;
        double scale = w.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        for (int i = 0; i < w.Length; i++)
            if (!w[i].Equals(g[i]) && !(Math.Abs(w[i] - g[i]) <= rtol * (Math.Max(Math.Abs(w[i]), Math.Abs(g[i])) + scale)))
                return $"element {i}: {g[i]:R}, CPU {w[i]:R}";
        return null;
    }

    private static Tensor Sample(ExecutionScope scope, ExampleInput spec, DType floats, Random random)
    {
        int n = (int)spec.Shape.ElementCount;
        var dims = spec.Shape.ToArray();
        if (spec.DType == DType.Bool || spec.Domain == InputDomain.Bool)
            return scope.FromSpan<bool>(Enumerable.Range(0, n).Select(_ => random.Next(2) == 1).ToArray(), dims);
        if (spec.DType == DType.Int64 || spec.Domain == InputDomain.Index)
            return scope.FromSpan<long>(Enumerable.Range(0, n).Select(_ => (long)(spec.Domain == InputDomain.Index ? random.Next(spec.Bound) : random.Next(-5, 6))).ToArray(), dims);
        var values = Enumerable.Range(0, n).Select(_ => spec.Domain switch
        {
            InputDomain.Positive => 0.5 + 1.5 * random.NextDouble(),
            InputDomain.NonZero => (0.5 + 1.5 * random.NextDouble()) * (random.Next(2) == 1 ? 1 : -1),
            InputDomain.Unit => random.NextDouble() * 1.8 - 0.9,
            _ => random.NextDouble() * 4 - 2,
        }).ToArray();
        return floats == DType.Float64 ? scope.FromSpan<double>(values, dims) : scope.FromSpan<float>(values.Select(v => (float)v).ToArray(), dims);
    }
}
