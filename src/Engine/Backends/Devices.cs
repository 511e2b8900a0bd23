using AutogradService.Engine.Graphs;

namespace AutogradService.Engine.Backends;

/// <summary>What a device is: its request name, kind (<c>cpu</c>, <c>gpu</c>, <c>meta</c>), memory, parallel units.</summary>
public sealed record DeviceInfo(string Name, string Kind, long MemoryBytes, int Units, string Description);

/// <summary>
/// The devices this process computes on, and the one rule that places a request: <c>cpu</c>, <c>gpu</c> (refused with
/// <c>device_unavailable</c> where there is none) or <c>auto</c>, decided once per graph from the plan's FLOPs and
/// bytes, never per op — a GPU pays launches and transfers that only large work earns back (PyTorch CUDA takes
/// 142 µs for the chapter's C1, which this CPU runs in 2.5 µs).
/// </summary>
public sealed class Devices(IBackend? gpu = null, string defaultDevice = "cpu")
{
    /// <summary>Work below both thresholds stays on the CPU under <c>auto</c>: ~0.1 s of one core's FLOPs, and 256 MiB.</summary>
    public const long AutoMinFlops = 2_000_000_000;
    public const long AutoMinBytes = 256L << 20;

    public static IReadOnlyList<string> Names { get; } = ["cpu", "gpu", "auto"];

    public IBackend Cpu => CpuBackend.Instance;

    /// <summary>The GPU backend, or null on a machine without one.</summary>
    public IBackend? Gpu { get; } = gpu;

    /// <summary>The device a request that names none gets (the server's setting: cpu, gpu or auto).</summary>
    public string Default { get; } = defaultDevice;

    public IReadOnlyList<DeviceInfo> List() => Gpu is { } g ? [Cpu.Describe(), g.Describe()] : [Cpu.Describe()];

    /// <summary>
    /// The device a request asked for, checked before any work: one of <see cref="Names"/> (case-insensitive; empty
    /// means <see cref="Default"/>). <c>gpu</c> without a GPU is <c>device_unavailable</c>.
    /// </summary>
    public string Resolve(string? requested)
    {
        var name = string.IsNullOrEmpty(requested) ? Default : requested.ToLowerInvariant();
        if (name == "cuda") name = "gpu";
        if (!Names.Contains(name))
        {
            var e = EngineException.InvalidArgument($"'device' must be cpu, gpu or auto, got '{EngineException.Clip(name)}'");
            e.Facts["field"] = "device";
            throw e;
        }
        if (name == "gpu" && Gpu is null)
            throw NoGpu();
        return name;
    }

    /// <summary>
    /// The backend for a resolved device. <c>auto</c> asks the plan's estimates, and only when there is a GPU to
    /// choose; without a plan (a session, define-by-run) it means the CPU.
    /// </summary>
    public IBackend Place(string device, Func<PlanEstimates>? estimates = null) => device switch
    {
        "gpu" => Gpu ?? throw NoGpu(),
        "auto" when Gpu is { } g && estimates is not null && Worthwhile(estimates()) => g,
        _ => Cpu,
    };

    private static EngineException NoGpu() =>
        new(ErrorCodes.DeviceUnavailable, "this server has no GPU; use device \"cpu\" or \"auto\"");

    private static bool Worthwhile(PlanEstimates e) => e.Flops >= AutoMinFlops || e.TotalBytes >= AutoMinBytes;
}
