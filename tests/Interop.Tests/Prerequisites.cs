using System.Reflection;
using Xunit.Abstractions;

namespace AutogradService.Interop.Tests;

/// <summary>
/// What each client needs installed (tests/Interop/setup.sh installs it all). Missing tools fail the test; on a
/// developer's machine, and never in CI (env <c>CI</c> set), <c>AUTOGRAD_SKIP_INTEROP=1</c> turns that into an early
/// return with a message instead.
/// </summary>
public static class Prerequisites
{
    public const string Python = "/usr/bin/python3";

    public static string InteropDir { get; } = typeof(Prerequisites).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .First(a => a.Key == "AutogradInteropDir").Value!;

    /// <summary>True when <paramref name="missing"/> is null; otherwise fails, or returns false where skipping is allowed.</summary>
    public static bool Available(string? missing, ITestOutputHelper output)
    {
        if (missing is null) return true;
        var message = $"{missing}. Run tests/Interop/setup.sh to install the interop clients' dependencies.";
        var ci = Environment.GetEnvironmentVariable("CI") is { Length: > 0 } flag && flag != "false" && flag != "0";
        if (!ci && Environment.GetEnvironmentVariable("AUTOGRAD_SKIP_INTEROP") == "1")
        {
            output.WriteLine($"NOT RUN (AUTOGRAD_SKIP_INTEROP=1): {message}");
            return false;
        }
        Assert.Fail(ci ? message : message + " (on a developer machine, AUTOGRAD_SKIP_INTEROP=1 skips this test instead)");
        return false;
    }

    public static async Task<string?> MissingForPythonAsync()
    {
        if (!File.Exists(Python)) return $"{Python} is not installed";
        var (code, text) = await ChildProcess.RunAsync(Python, ["-c", "import grpc, grpc_tools.protoc"], InteropDir, TimeSpan.FromSeconds(30));
        return code == 0 ? null : $"Debian's python3-grpcio / python3-grpc-tools are not importable by {Python}: {text.Trim()}";
    }

    /// <summary>What the OIP clients' ONNX models need: ONNX's Python helpers to build them, PyTorch to check them, grpc for the Python client.</summary>
    public static async Task<string?> MissingForOnnxModelsAsync()
    {
        if (!File.Exists(Python)) return $"{Python} is not installed";
        var (code, text) = await ChildProcess.RunAsync(Python, ["-c", "import numpy, onnx.helper, torch, grpc, grpc_tools.protoc"], InteropDir, TimeSpan.FromSeconds(60));
        return code == 0 ? null : $"Debian's python3-onnx, python3-torch, python3-grpcio or python3-grpc-tools are not importable by {Python}: {text.Trim()}";
    }

    public static string PythonClientDir { get; } = typeof(Prerequisites).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .First(a => a.Key == "AutogradPythonClientDir").Value!;

    /// <summary>What the Python client package needs from Debian: numpy, grpcio, protobuf, grpc_tools (to build) and venv.</summary>
    public static async Task<string?> MissingForPythonClientAsync()
    {
        if (!File.Exists(Python)) return $"{Python} is not installed";
        var (code, text) = await ChildProcess.RunAsync(Python, ["-c", "import numpy, grpc, google.protobuf, grpc_tools.protoc, venv, ensurepip; ensurepip.version()"],
            InteropDir, TimeSpan.FromSeconds(30));
        return code == 0 ? null
            : $"Debian's python3-numpy / python3-grpcio / python3-grpc-tools / python3-venv are not all importable by {Python}: {text.Trim()}";
    }

    public static async Task<string?> MissingForNodeAsync()
    {
        if (await CommandFails("node", "--version")) return "node is not on PATH";
        var modules = Path.Combine(InteropDir, "node", "node_modules", "@grpc");
        foreach (var package in new[] { "grpc-js", "proto-loader" })
            if (!File.Exists(Path.Combine(modules, package, "package.json")))
                return $"tests/Interop/node/node_modules/@grpc/{package} is missing (npm ci in tests/Interop/node)";
        return null;
    }

    public static async Task<string?> MissingForRedoclyAsync()
    {
        if (await CommandFails("node", "--version")) return "node is not on PATH";
        return File.Exists(Path.Combine(InteropDir, "openapi", "node_modules", "@redocly", "cli", "package.json")) ? null
            : "tests/Interop/openapi/node_modules/@redocly/cli is missing (npm ci in tests/Interop/openapi)";
    }

    public static async Task<string?> MissingForCurlAsync()
    {
        if (await CommandFails("curl", "--version")) return "curl is not on PATH";
        if (await CommandFails("bash", "--version")) return "bash is not on PATH";
        return File.Exists(Python) ? null : $"{Python} is not installed";
    }

    private static async Task<bool> CommandFails(string command, string argument)
    {
        try
        {
            var (code, _) = await ChildProcess.RunAsync(command, [argument], InteropDir, TimeSpan.FromSeconds(30));
            return code != 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return true; // not found
        }
    }
}
