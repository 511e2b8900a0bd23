using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace AutogradService.Interop.Tests;

/// <summary>
/// The real server as its own process (<c>dotnet AutogradService.Api.dll</c>, the Api project's build output) on
/// free ports of 127.0.0.1, with a temporary model repository. Disposing stops it and removes the folder.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly ChildProcess _child;
    private readonly string _models;

    public int RestPort { get; }
    public int GrpcPort { get; }
    public string RestBase => $"http://127.0.0.1:{RestPort}";
    public string GrpcTarget => $"127.0.0.1:{GrpcPort}";

    private ServerProcess(ChildProcess child, string models, int restPort, int grpcPort)
    {
        _child = child;
        _models = models;
        RestPort = restPort;
        GrpcPort = grpcPort;
    }

    /// <summary>The server's output so far (structured JSON logs), for failure messages.</summary>
    public string Tail(int lines = 60) => _child.Tail(lines);

    /// <summary>Starts the server; <paramref name="settings"/> adds configuration as environment variables (Limits__X).</summary>
    public static async Task<ServerProcess> StartAsync(IReadOnlyDictionary<string, string>? settings = null)
    {
        var dll = ApiAssemblyPath();
        var (rest, grpc) = FreePorts();
        var models = Directory.CreateTempSubdirectory("autograd-interop-models-").FullName;
        var environment = new Dictionary<string, string>
        {
            ["Server__BindAddress"] = "127.0.0.1",
            ["Server__RestPort"] = rest.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Server__GrpcPort"] = grpc.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Server__ModelRepositoryPath"] = models,
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) environment[key] = value;
        // The content root (appsettings.json) is the working directory: start it where it was built.
        var child = ChildProcess.Start(DotnetHost(), [dll], Path.GetDirectoryName(dll)!, environment);
        var server = new ServerProcess(child, models, rest, grpc);
        try
        {
            await server.WaitUntilHealthyAsync();
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private async Task WaitUntilHealthyAsync()
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_child.HasExited)
                throw new InvalidOperationException($"the server exited with code {_child.ExitCode} before it was healthy:\n{_child.Tail(80)}");
            try
            {
                using var response = await http.GetAsync($"{RestBase}/healthz");
                if (response.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"the server did not answer /healthz within {StartTimeout.TotalSeconds:0} s:\n{_child.Tail(80)}");
    }

    /// <summary>The Api project's own build output, recorded at build time by the test project (see its .csproj).</summary>
    private static string ApiAssemblyPath()
    {
        var recorded = typeof(ServerProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "AutogradApiAssembly")?.Value;
        if (string.IsNullOrEmpty(recorded) || !File.Exists(recorded))
            throw new FileNotFoundException($"the server's build output was not found (recorded path: '{recorded}'); build the solution first");
        if (!File.Exists(Path.ChangeExtension(recorded, ".runtimeconfig.json")))
            throw new FileNotFoundException($"{recorded} has no runtimeconfig.json next to it; it is not the Api project's own output");
        return recorded;
    }

    /// <summary>The dotnet host that runs these tests (the CLI says which), else the one on PATH.</summary>
    private static string DotnetHost()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }

    /// <summary>Two distinct free loopback ports (held together while choosing, so they differ).</summary>
    private static (int RestPort, int GrpcPort) FreePorts()
    {
        var a = new TcpListener(IPAddress.Loopback, 0);
        var b = new TcpListener(IPAddress.Loopback, 0);
        a.Start();
        b.Start();
        try
        {
            return (((IPEndPoint)a.LocalEndpoint).Port, ((IPEndPoint)b.LocalEndpoint).Port);
        }
        finally
        {
            a.Stop();
            b.Stop();
        }
    }

    public void Dispose()
    {
        _child.Dispose();
        try
        {
            Directory.Delete(_models, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}
