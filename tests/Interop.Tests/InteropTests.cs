using Xunit.Abstractions;

namespace AutogradService.Interop.Tests;

/// <summary>
/// Real clients in other languages against the real server process on 127.0.0.1: each test starts the server on
/// free ports, runs one client (C1 statelessly, C5 as a session driven by the client's own loop, E6 over curl, the Open
/// Inference Protocol with its gradient extension over REST and gRPC from Python and Node) and
/// expects exit code 0; the client's and the server's output are in the failure message.
/// </summary>
public sealed class InteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Python_grpcio_client_runs_C1_and_C5()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForPythonAsync(), output)) return;
        await RunClientAsync(server => (Prerequisites.Python, [Path.Combine(Prerequisites.InteropDir, "python", "client.py"), server.GrpcTarget],
            Prerequisites.InteropDir));
    }

    /// <summary>
    /// clients/python as a user gets it: <c>pip install</c> into a venv made with --system-site-packages (numpy,
    /// grpcio and protobuf from Debian; offline: --no-index), then its chapter suite over REST and gRPC.
    /// </summary>
    [Fact]
    public async Task Python_autograd_client_package_passes_every_chapter_case_over_REST_and_gRPC()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForPythonClientAsync(), output)) return;
        var venv = Path.Combine(AppContext.BaseDirectory, "python-client-venv");
        var python = Path.Combine(venv, "bin", "python");
        if (!File.Exists(python))
            await RunStepAsync(Prerequisites.Python, ["-m", "venv", "--system-site-packages", venv], AppContext.BaseDirectory);
        // The package is rebuilt every run, so the test sees the sources (and .proto files) as they are now.
        await RunStepAsync(python, ["-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall", "--quiet", Prerequisites.PythonClientDir],
            AppContext.BaseDirectory);
        var tests = Path.Combine(Prerequisites.PythonClientDir, "tests");
        await RunClientAsync(server => (python, ["-m", "unittest", "-v", "test_tensors", "test_build", "test_chapter"], tests),
            server => new Dictionary<string, string> { ["AUTOGRAD_REST"] = server.RestBase, ["AUTOGRAD_GRPC"] = server.GrpcTarget });
    }

    private async Task RunStepAsync(string file, string[] arguments, string workingDirectory)
    {
        output.WriteLine($"$ {file} {string.Join(' ', arguments)}");
        var (exitCode, text) = await ChildProcess.RunAsync(file, arguments, workingDirectory, ClientTimeout);
        output.WriteLine(text);
        Assert.True(exitCode == 0, $"'{file} {string.Join(' ', arguments)}' exited with {(exitCode is null ? "a timeout" : $"code {exitCode}")}:\n{text}");
    }

    [Fact]
    public async Task Node_grpc_js_client_runs_C1_and_C5()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForNodeAsync(), output)) return;
        var dir = Path.Combine(Prerequisites.InteropDir, "node");
        await RunClientAsync(server => ("node", [Path.Combine(dir, "client.mjs"), server.GrpcTarget], dir));
    }

    [Fact]
    public async Task Curl_runs_C1_and_E6_over_REST()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForCurlAsync(), output)) return;
        await RunClientAsync(server => ("bash", [Path.Combine(Prerequisites.InteropDir, "curl", "c1_e6.sh"), server.RestBase],
            Prerequisites.InteropDir));
    }

    [Fact]
    public async Task Python_OIP_client_runs_infer_and_the_gradient_extension_over_REST_and_gRPC()
    {
        // A JSON-graph MLP, then an ONNX MLP, CNN and transformer block built with ONNX's helpers and checked against PyTorch.
        if (!Prerequisites.Available(await Prerequisites.MissingForOnnxModelsAsync(), output)) return;
        await RunClientAsync(server => (Prerequisites.Python,
            [Path.Combine(Prerequisites.InteropDir, "python", "oip_client.py"), server.RestBase, server.GrpcTarget], Prerequisites.InteropDir));
    }

    [Fact]
    public async Task Node_OIP_client_runs_infer_and_the_gradient_extension_over_REST_and_gRPC()
    {
        if (!Prerequisites.Available(await Prerequisites.MissingForNodeAsync() ?? await Prerequisites.MissingForOnnxModelsAsync(), output)) return;
        var dir = Path.Combine(Prerequisites.InteropDir, "node");
        // The same ONNX models the Python client uses, written by its builder for the Node client to upload.
        var models = Directory.CreateTempSubdirectory("autograd-node-onnx-").FullName;
        try
        {
            var (code, text) = await ChildProcess.RunAsync(Prerequisites.Python,
                [Path.Combine(Prerequisites.InteropDir, "python", "onnx_models.py"), models], Prerequisites.InteropDir, ClientTimeout);
            Assert.True(code == 0, text);
            await RunClientAsync(server => ("node", [Path.Combine(dir, "oip_client.mjs"), server.RestBase, server.GrpcTarget, models], dir));
        }
        finally
        {
            Directory.Delete(models, recursive: true);
        }
    }

    private async Task RunClientAsync(Func<ServerProcess, (string File, string[] Arguments, string WorkingDirectory)> client,
        Func<ServerProcess, IReadOnlyDictionary<string, string>>? environment = null)
    {
        using var server = await ServerProcess.StartAsync();
        var (file, arguments, workingDirectory) = client(server);
        output.WriteLine($"$ {file} {string.Join(' ', arguments)}");
        var (exitCode, text) = await ChildProcess.RunAsync(file, arguments, workingDirectory, ClientTimeout, environment?.Invoke(server));
        output.WriteLine(text);
        Assert.True(exitCode == 0,
            $"the client exited with {(exitCode is null ? "a timeout" : $"code {exitCode}")}:\n{text}\n--- server output (last lines) ---\n{server.Tail()}");
    }
}
