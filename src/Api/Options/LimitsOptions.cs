using System.ComponentModel.DataAnnotations;

namespace AutogradService.Api.Options;

/// <summary>
/// The server's limits (configuration section <c>Limits</c>), validated at start-up. A request may lower the memory and
/// time limits, never raise them. Defaults are safe for a 2-core, 4 GiB container: two engine workers at 512 MiB each
/// plus 32 sessions at 64 MiB stay under 3.1 GiB of tensor memory.
/// </summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";

    [Range(1024, 1L << 32)]
    public long MaxRequestBodyBytes { get; set; } = 64L << 20;

    [Range(1, 1_000_000)]
    public int MaxNodes { get; set; } = 10_000;

    /// <summary>Distinct value names in a graph or program (inputs, constants, node outputs; subgraphs included).</summary>
    [Range(1, 10_000_000)]
    public int MaxNames { get; set; } = 100_000;

    [Range(1, Engine.Tensors.Shape.MaxElements)]
    public long MaxTensorElements { get; set; } = 16L << 20;

    [Range(0, 8)]
    public int MaxRank { get; set; } = 8;

    [Range(1, 100_000_000)]
    public long MaxLoopIterations { get; set; } = 100_000;

    [Range(1L << 16, 1L << 40)]
    public long MemoryBytesPerRequest { get; set; } = 512L << 20;

    [Range(1L << 16, 1L << 40)]
    public long MemoryBytesPerSession { get; set; } = 64L << 20;

    [Range(1, 3_600_000)]
    public int TimeoutMs { get; set; } = 30_000;

    /// <summary>Tensors alive at once in one request (intermediates, tape and loop iterations included): bounds the objects behind tensors, which the memory budget does not see.</summary>
    [Range(1L, long.MaxValue)]
    public long MaxTensorsPerRequest { get; set; } = 1_000_000;

    /// <summary>Tensors one session may hold at once, its tape included.</summary>
    [Range(1L, long.MaxValue)]
    public long MaxTensorsPerSession { get; set; } = 100_000;

    [Range(0, 100_000)]
    public int MaxOpenSessions { get; set; } = 32;

    [Range(1, 86_400)]
    public int SessionIdleSeconds { get; set; } = 300;

    /// <summary>Requests allowed to wait for an engine worker; one more is refused with <c>overloaded</c>.</summary>
    [Range(0, 100_000)]
    public int EngineQueueLength { get; set; } = 64;

    /// <summary>Estimated bytes of cached plans (a plan holds its graph, constants included); least recently used go first.</summary>
    [Range(1L << 20, 1L << 40)]
    public long PlanCacheBytes { get; set; } = 128L << 20;

    /// <summary>Estimated bytes of cached parsed programs.</summary>
    [Range(1L << 20, 1L << 40)]
    public long ProgramCacheBytes { get; set; } = 32L << 20;

    /// <summary>Engine workers; 0 means one per core.</summary>
    [Range(0, 1024)]
    public int EngineConcurrency { get; set; }

    public int EffectiveConcurrency => EngineConcurrency > 0 ? EngineConcurrency : Environment.ProcessorCount;

    /// <summary>What graph readers enforce while they read (programs, JSON and protobuf graphs).</summary>
    public Engine.Graphs.GraphLimits Graph(CancellationToken cancellation = default) =>
        new() { MaxNodes = MaxNodes, MaxNames = MaxNames, Cancellation = cancellation };
}

/// <summary>Where the service listens and keeps its state (configuration section <c>Server</c>).</summary>
public sealed class ServerOptions : IValidatableObject
{
    public const string Section = "Server";

    /// <summary>REST (HTTP/1.1 JSON) and gRPC-Web.</summary>
    [Range(0, 65535)]
    public int RestPort { get; set; } = 8080;

    /// <summary>gRPC over cleartext HTTP/2 (h2c): Kestrel cannot offer HTTP/2 without TLS on an HTTP/1.1 port.</summary>
    [Range(0, 65535)]
    public int GrpcPort { get; set; } = 8081;

    /// <summary>Address to bind; 0.0.0.0 in a container.</summary>
    [Required, IpAddress]
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>Folder of the model repository (registered models survive restarts); by default in the user's data
    /// folder, never the working directory (which may be the source tree).</summary>
    [Required]
    public string ModelRepositoryPath { get; set; } = DefaultModelRepositoryPath();

    /// <summary>~/.local/share/autograd-service/models (LocalApplicationData), or under the temp folder for a user without a home.</summary>
    public static string DefaultModelRepositoryPath()
    {
        var data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        return Path.Combine(string.IsNullOrEmpty(data) ? Path.GetTempPath() : data, "autograd-service", "models");
    }

    /// <summary>The device of requests and sessions that name none: cpu, gpu or auto (placed per graph from its plan).</summary>
    [Required]
    public string DefaultDevice { get; set; } = "cpu";

    /// <summary>
    /// Where the gpu device comes from: auto (the first CUDA device, when there is one), off, or cpu-accelerator
    /// (ILGPU's CPU accelerator: the GPU code path without a GPU, slowly — for tests and demonstrations).
    /// </summary>
    [Required]
    public string Gpu { get; set; } = "auto";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Gpu is not ("auto" or "off" or "cpu-accelerator"))
            yield return new ValidationResult($"Server:Gpu must be auto, off or cpu-accelerator, got '{Gpu}'", [nameof(Gpu)]);
        if (!Engine.Backends.Devices.Names.Contains(DefaultDevice))
            yield return new ValidationResult($"Server:DefaultDevice must be cpu, gpu or auto, got '{DefaultDevice}'", [nameof(DefaultDevice)]);
        if (RestPort != 0 && RestPort == GrpcPort)
            yield return new ValidationResult($"Server:RestPort and Server:GrpcPort must differ (both {RestPort}): each speaks its own HTTP version",
                [nameof(RestPort), nameof(GrpcPort)]);
    }
}
