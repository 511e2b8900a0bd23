using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using DotNet.Testcontainers.Configurations;
using Xunit.Abstractions;

namespace AutogradService.Container.Tests;

/// <summary>
/// Where the container tests meet the Docker daemon. In CI (<c>CI</c> set) they always run and fail loudly without a
/// daemon or image; on a developer machine <c>AUTOGRAD_SKIP_CONTAINER=1</c> makes each of them return early with a
/// message instead. The image is <c>AUTOGRAD_IMAGE</c> (default <c>autograd-service:local</c>, built by
/// <c>deploy/build-image-offline.sh</c> or <c>docker build -t autograd-service:local .</c>).
/// </summary>
public static class DockerHost
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _failure;
    private static bool _checked;

    public static string Image => Environment.GetEnvironmentVariable("AUTOGRAD_IMAGE") is { Length: > 0 } i ? i : "autograd-service:local";

    public static bool InCi => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    /// <summary>True when the test should go on; false (after saying why) when this machine opted out.</summary>
    public static async Task<bool> ReadyAsync(ITestOutputHelper? output)
    {
        if (!InCi && Environment.GetEnvironmentVariable("AUTOGRAD_SKIP_CONTAINER") == "1")
        {
            output?.WriteLine("AUTOGRAD_SKIP_CONTAINER=1: the container test returns without running (CI never does this).");
            return false;
        }
        await Gate.WaitAsync();
        try
        {
            if (!_checked)
            {
                _failure = await CheckAsync();
                _checked = true;
            }
        }
        finally
        {
            Gate.Release();
        }
        if (_failure is not null)
            throw new InvalidOperationException(_failure + " Start dockerd and build the image (deploy/ci-container.sh does both), "
                + "or set AUTOGRAD_SKIP_CONTAINER=1 on a machine without Docker.");
        return true;
    }

    /// <summary>Reaches the daemon, fits Testcontainers to it, and finds the image; returns what is wrong, or null.</summary>
    private static async Task<string?> CheckAsync()
    {
        var socket = SocketPath();
        if (socket is null) return $"DOCKER_HOST is '{Environment.GetEnvironmentVariable("DOCKER_HOST")}'; these tests speak to a local unix socket only.";
        if (!File.Exists(socket)) return $"no Docker daemon socket at {socket}.";
        using var http = UnixHttp(socket);
        try
        {
            var version = await http.GetFromJsonAsync<JsonElement>("http://docker/version");
            var api = version.GetProperty("ApiVersion").GetString() ?? "";
            // Debian's docker.io daemon speaks API 1.41 at most and the Docker client library asks for a newer one unless
            // told; newer daemons (29+) refuse versions under 1.44, so only an old daemon gets its own version pinned.
            if (Environment.GetEnvironmentVariable("DOCKER_API_VERSION") is null
                && Version.TryParse(api, out var v) && v < new Version(1, 44))
                Environment.SetEnvironmentVariable("DOCKER_API_VERSION", api);
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or JsonException or KeyNotFoundException)
        {
            return $"the Docker daemon at {socket} does not answer ({e.Message}).";
        }
        // Ryuk (the reaper container) would need an image from a registry; every test disposes its own containers.
        if (Environment.GetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED") is null)
            Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", "true");
        TestcontainersSettings.ResourceReaperEnabled = false;

        using var image = await http.GetAsync($"http://docker/images/{Uri.EscapeDataString(Image)}/json");
        if (!image.IsSuccessStatusCode) return $"the image {Image} is not there (deploy/build-image-offline.sh builds it).";
        return null;
    }

    private static string? SocketPath()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        if (string.IsNullOrEmpty(host)) return "/var/run/docker.sock";
        return host.StartsWith("unix://", StringComparison.Ordinal) ? host["unix://".Length..] : null;
    }

    private static HttpClient UnixHttp(string socket) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    }) { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>A TCP port free on loopback now (containers share the host's network, so each needs its own).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
