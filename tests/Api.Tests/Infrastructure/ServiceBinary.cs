using System.Diagnostics;
using System.Reflection;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>
/// The service as its own process — <c>dotnet AutogradService.Api.dll</c>, the Api project's build output, started
/// where it was built (its content root) — with stdout and stderr kept apart, line by line. Disposing kills it.
/// </summary>
public sealed class ServiceBinary : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];

    private ServiceBinary(Process process) => _process = process;

    public static ServiceBinary Start(params string[] arguments)
    {
        var dll = typeof(ServiceBinary).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "AutogradApiAssembly")?.Value;
        Assert.True(File.Exists(dll), $"the service's build output was not found (recorded path: '{dll}')");
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        var info = new ProcessStartInfo(!string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll!);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var binary = new ServiceBinary(new Process { StartInfo = info });
        binary._process.OutputDataReceived += (_, e) => Add(binary._stdout, e.Data);
        binary._process.ErrorDataReceived += (_, e) => Add(binary._stderr, e.Data);
        binary._process.Start();
        binary._process.BeginOutputReadLine();
        binary._process.BeginErrorReadLine();
        return binary;
    }

    public string[] Stdout
    {
        get { lock (_stdout) return [.. _stdout]; }
    }

    public string[] Stderr
    {
        get { lock (_stderr) return [.. _stderr]; }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for the process to end (and its output to be read); false if it still runs after <paramref name="timeout"/>.</summary>
    public async Task<bool> ExitedWithin(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static void Add(List<string> lines, string? line)
    {
        if (line is null) return;
        lock (lines) lines.Add(line);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        _process.Dispose();
    }
}
