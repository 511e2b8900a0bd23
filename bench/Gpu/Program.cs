using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AutogradService.Bench.Gpu;
using AutogradService.Engine.Backends;
using AutogradService.Gpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

// The GPU check and benchmark (bench/gpu.sh runs it): the GPU checks on CUDA with a closing "N passed, N failed"
// line, then elementwise add and copy bandwidth on 1 GiB float32 tensors and SGEMM/DGEMM at 4096 and 8192 through
// cuBLAS and the tiled kernel, side by side with PyTorch's numbers (--torch FILE, from gpu_torch.py), as a table and
// as JSON (--out). --cpu-accelerator runs it all on ILGPU's CPU accelerator at small sizes, as a smoke test.
bool smoke = args.Contains("--cpu-accelerator");
string outPath = Option("--out") ?? "bench/results/gpu-latest.json";
string? torchPath = Option("--torch");

// The smoke run checks on the default CPU device (16 threads a group, one thread per output): quick on a busy machine.
var checkBackend = smoke ? GpuBackend.CreateCpuAccelerator() : GpuBackend.TryCreateCuda();
if (checkBackend is null)
{
    Console.Error.WriteLine("gpu bench: no CUDA device (driver or device missing); --cpu-accelerator runs the smoke test");
    return 2;
}
string device = checkBackend.Describe().Description;
string products = checkBackend.ProductEngine;
Console.WriteLine($"device: {device}");
Console.WriteLine($"products: {products}");
var (passed, failed) = Checks.Run(checkBackend, Console.Out);
checkBackend.Dispose();
Console.WriteLine($"checks: {passed} passed, {failed} failed");

using var context = Context.Create(b =>
{
    if (smoke) b.CPU(new CPUDevice(16, 16, 1));
    else b.Cuda();
});
using Accelerator accelerator = smoke ? context.CreateCPUAccelerator(0) : context.CreateCudaAccelerator(0);
string cublasReport = "cuBLAS not tried (CPU accelerator)";
using var cublas = accelerator is CudaAccelerator ? Cublas.TryLoad(out cublasReport) : null;
Console.WriteLine(cublasReport);
if (cublas is not null && accelerator is CudaAccelerator c) cublas.SetStream(((CudaStream)c.DefaultStream).StreamPtr);

long elements = smoke ? 1 << 14 : 1L << 28; // 1 GiB of float32 on the GPU
var rows = new List<(string Name, string Unit, double Ours)>();
var fill = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(Kernels.FillF32);
var add = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, BroadcastLayout>(Kernels.BinaryF32);
var copy = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, CopyLayout>(Kernels.CopyI32);
using (var a = accelerator.Allocate1D<float>(elements))
using (var b = accelerator.Allocate1D<float>(elements))
using (var y = accelerator.Allocate1D<float>(elements))
{
    fill((int)elements, a.View, 1.5f);
    fill((int)elements, b.View, 2.5f);
    var layout = new BroadcastLayout { Rank = 1 };
    layout.Shape.Set(0, (int)elements);
    layout.StrideA.Set(0, 1);
    layout.StrideB.Set(0, 1);
    double addSeconds = Best(5, () => add((int)elements, a.View, b.View, y.View, (int)BinaryKernel.Add, layout));
    rows.Add(("add f32 1 GiB", "GB/s", 3.0 * elements * 4 / addSeconds / 1e9));
    var copyLayout = new CopyLayout { Rank = 1 };
    copyLayout.Shape.Set(0, (int)elements);
    copyLayout.StrideX.Set(0, 1);
    copyLayout.StrideY.Set(0, 1);
    double copySeconds = Best(5, () => copy((int)elements, a.View.AsContiguous().Cast<int>(), y.View.AsContiguous().Cast<int>(), copyLayout));
    rows.Add(("copy f32 1 GiB", "GB/s", 2.0 * elements * 4 / copySeconds / 1e9));
}

var tiledF32 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulLayout>(GemmKernels.TiledF32);
var tiledF64 = accelerator.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, MatMulLayout>(GemmKernels.TiledF64);
foreach (int n in smoke ? new[] { 32 } : new[] { 4096, 8192 })
{
    var layout = new MatMulLayout { M = n, N = n, K = n, ARow = n, ACol = 1, BRow = n, BCol = 1 };
    double flops = 2.0 * n * n * n;
    var call = Cublas.RowMajor(n, n, n, false, false, 0, 0, 1);
    using (var a = accelerator.Allocate1D<float>((long)n * n))
    using (var b = accelerator.Allocate1D<float>((long)n * n))
    using (var y = accelerator.Allocate1D<float>((long)n * n))
    {
        fill(n * n, a.View, 0.5f);
        fill(n * n, b.View, 0.25f);
        if (cublas is not null) rows.Add(($"sgemm {n} cuBLAS", "TFLOP/s", flops / Best(3, () => cublas.Sgemm(call, a.NativePtr, b.NativePtr, y.NativePtr)) / 1e12));
        rows.Add(($"sgemm {n} tiled", "TFLOP/s", flops / Best(smoke || n < 8192 ? 3 : 1, () => tiledF32(GemmKernels.Config(n, n, 1), a.View, b.View, y.View, layout)) / 1e12));
    }
    using (var a = accelerator.Allocate1D<double>((long)n * n))
    using (var b = accelerator.Allocate1D<double>((long)n * n))
    using (var y = accelerator.Allocate1D<double>((long)n * n))
    {
        a.MemSetToZero();
        b.MemSetToZero();
        if (cublas is not null) rows.Add(($"dgemm {n} cuBLAS", "TFLOP/s", flops / Best(3, () => cublas.Dgemm(call, a.NativePtr, b.NativePtr, y.NativePtr)) / 1e12));
        if (smoke || n < 8192) rows.Add(($"dgemm {n} tiled", "TFLOP/s", flops / Best(1, () => tiledF64(GemmKernels.Config(n, n, 1), a.View, b.View, y.View, layout)) / 1e12));
    }
}

// PyTorch's numbers, by the same names (gpu_torch.py writes them), when given.
var torch = torchPath is not null && File.Exists(torchPath) ? JsonNode.Parse(File.ReadAllText(torchPath))!.AsObject() : null;
Console.WriteLine();
Console.WriteLine($"{"measure",-22} {"unit",-8} {"ILGPU",10} {"PyTorch",10} {"ratio",7}");
var json = new JsonArray();
foreach (var (name, unit, ours) in rows)
{
    string key = name.Replace(" cuBLAS", "").Replace(" tiled", "");
    double? theirs = torch?[key]?.GetValue<double>();
    string ratio = theirs is > 0 ? $"{ours / theirs.Value,7:F2}" : "      -";
    Console.WriteLine($"{name,-22} {unit,-8} {ours,10:G4} {(theirs is { } t ? t.ToString("G4") : "-"),10} {ratio}");
    json.Add((JsonNode)new JsonObject { ["measure"] = name, ["unit"] = unit, ["ilgpu"] = ours, ["pytorch"] = theirs });
}
var report = new JsonObject
{
    ["device"] = device,
    ["smoke"] = smoke,
    ["cublas"] = cublasReport,
    ["products"] = products,
    ["checks"] = new JsonObject { ["passed"] = passed, ["failed"] = failed },
    ["pytorch"] = torch?["version"]?.GetValue<string>(),
    ["rows"] = json,
};
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
File.WriteAllText(outPath, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"wrote {outPath}");
Console.WriteLine($"{passed} passed, {failed} failed");
return failed == 0 ? 0 : 1;

// The fastest of a warm-up and then `repeats` timed runs, each ended by a device synchronize.
double Best(int repeats, Action launch)
{
    launch();
    accelerator.Synchronize();
    double best = double.MaxValue;
    for (int i = 0; i < repeats; i++)
    {
        var clock = Stopwatch.StartNew();
        launch();
        accelerator.Synchronize();
        best = Math.Min(best, clock.Elapsed.TotalSeconds);
    }
    return best;
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
