using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using Grpc.Net.Client;

namespace AutogradService.Container.Tests;

/// <summary>
/// One running container of the service image on the host network (the CI daemon has no bridge), read-only but for
/// /tmp and the model volume, with its own random
/// REST and gRPC ports passed as <c>Server__RestPort</c>/<c>Server__GrpcPort</c>. Started when <see cref="StartAsync"/>
/// sees <c>/healthz</c> answer from the host; removed on dispose.
/// </summary>
public sealed class ServiceContainer : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly IContainer _container;
    private GrpcChannel? _channel;
    private bool _started;

    public ServiceContainer(IReadOnlyDictionary<string, string>? environment = null, string? modelFolder = null)
    {
        RestPort = DockerHost.FreePort();
        GrpcPort = DockerHost.FreePort();
        var builder = new ContainerBuilder(DockerHost.Image)
            .WithName($"autograd-test-{Guid.NewGuid():N}"[..28])
            .WithEnvironment("Server__RestPort", RestPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .WithEnvironment("Server__GrpcPort", GrpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .WithCreateParameterModifier(p =>
            {
                var host = p.HostConfig ??= new HostConfig();
                host.NetworkMode = "host";
                // As the Kubernetes base runs it: a read-only root with a writable /tmp, and its memory limit.
                host.ReadonlyRootfs = true;
                host.Tmpfs = new Dictionary<string, string> { ["/tmp"] = "rw,size=256m" };
                host.Memory = 4L << 30;
            })
            // The image is local; never ask a registry.
            .WithImagePullPolicy(_ => false)
            .WithCleanUp(true);
        if (environment is not null) builder = builder.WithEnvironment(environment);
        if (modelFolder is not null) builder = builder.WithBindMount(modelFolder, "/var/lib/autograd/models");
        _container = builder.Build();
        Rest = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{RestPort}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public int RestPort { get; }

    public int GrpcPort { get; }

    public HttpClient Rest { get; }

    public string Id => _container.Id;

    /// <summary>h2c to the gRPC port.</summary>
    public GrpcChannel Grpc => _channel ??= GrpcChannel.ForAddress($"http://127.0.0.1:{GrpcPort}");

    public async Task StartAsync()
    {
        using var cts = new CancellationTokenSource(StartTimeout);
        _started = true;
        await _container.StartAsync(cts.Token);
        // Testcontainers' HTTP wait strategy needs a mapped port; with host networking the host polls by itself.
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                using var probe = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                using var r = await Rest.GetAsync("/healthz", probe.Token);
                if (r.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (_container.State is TestcontainersStates.Exited or TestcontainersStates.Dead || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"the service did not become healthy (state {_container.State}); its log:\n{await LogsAsync()}");
            await Task.Delay(200);
        }
    }

    public async Task<string> LogsAsync()
    {
        var (stdout, stderr) = await _container.GetLogsAsync(timestampsEnabled: false);
        var text = new StringBuilder(stdout).Append(stderr).ToString();
        return text.Length > 8000 ? text[^8000..] : text;
    }

    public Task<ExecResult> ExecAsync(params string[] command) => _container.ExecAsync(command);

    public Task StopAsync() => _container.StopAsync();

    /// <summary>Sends a signal to the container's main process, as <c>docker kill --signal</c> (Kubernetes sends SIGTERM).</summary>
    public async Task SignalAsync(string signal)
    {
        using var client = TestcontainersSettings.OS.DockerEndpointAuthConfig.GetDockerClientBuilder(Guid.Empty).Build();
        await client.Containers.KillContainerAsync(_container.Id, new ContainerKillParameters { Signal = signal });
    }

    /// <summary>Waits for the container to exit by itself and returns its exit code.</summary>
    public async Task<long> WaitForExitAsync(TimeSpan timeout)
    {
        using var client = TestcontainersSettings.OS.DockerEndpointAuthConfig.GetDockerClientBuilder(Guid.Empty).Build();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var inspect = await client.Containers.InspectContainerAsync(_container.Id);
            if (inspect.State is { Running: false } state) return state.ExitCode;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the container still runs {timeout.TotalSeconds:0} s after the signal; its log:\n{await LogsAsync()}");
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        Rest.Dispose();
        await _container.DisposeAsync();
        // Without the reaper, Testcontainers' dispose only stops the container; remove it (and its anonymous volume).
        if (_started)
        {
            using var client = TestcontainersSettings.OS.DockerEndpointAuthConfig.GetDockerClientBuilder(Guid.Empty).Build();
            try
            {
                await client.Containers.RemoveContainerAsync(_container.Id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true });
            }
            catch (DockerContainerNotFoundException)
            {
                // Already gone.
            }
        }
    }
}
