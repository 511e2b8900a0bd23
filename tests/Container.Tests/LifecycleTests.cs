using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using Xunit.Abstractions;

namespace AutogradService.Container.Tests;

/// <summary>What a container platform does to the service: stop it mid-request, and restart it.</summary>
public sealed class LifecycleTests(ITestOutputHelper output)
{
    /// <summary>
    /// A while loop of <c>n</c> 256x256 matrix products: a computation whose length the client picks. The loop reads
    /// <c>n</c> from the enclosing graph.
    /// </summary>
    private static object LongGraph(int size) => new
    {
        inputs = new object[] { new { name = "n", dtype = "float32", shape = Array.Empty<int>() } },
        nodes = new object[]
        {
            new { op = "full", inputs = Array.Empty<object>(), outputs = new[] { "m0" }, attrs = new { shape = new[] { size, size }, value = 0.001 } },
            new { op = "mul", inputs = new object[] { "n", 0 }, outputs = new[] { "i0" } },
            new
            {
                op = "while", inputs = new object[] { "i0", "m0" }, outputs = new[] { "i", "m" },
                attrs = new
                {
                    max_iterations = 1_000_000,
                    cond = new { inputs = new[] { "i", "m" }, nodes = new object[] { new { op = "lt", inputs = new object[] { "i", "n" }, outputs = new[] { "go" } } }, outputs = new[] { "go" } },
                    body = new
                    {
                        inputs = new[] { "i", "m" },
                        nodes = new object[]
                        {
                            new { op = "add", inputs = new object[] { "i", 1 }, outputs = new[] { "i1" } },
                            new { op = "matmul", inputs = new object[] { "m", "m" }, outputs = new[] { "mm" } },
                            new { op = "tanh", inputs = new object[] { "mm" }, outputs = new[] { "m1" } },
                        },
                        outputs = new[] { "i1", "m1" },
                    },
                },
            },
            new { op = "sum", inputs = new object[] { "m" }, outputs = new[] { "y" } },
        },
        outputs = new[] { "y" },
    };

    [Fact]
    public async Task Sigterm_drains_in_flight_requests_and_the_container_exits_0()
    {
        if (!await DockerHost.ReadyAsync(output)) return;
        // Two engine workers, one per long request; the server's timeout bounds the drain (shutdown waits TimeoutMs + 5 s).
        await using var svc = new ServiceContainer(new Dictionary<string, string>
        {
            ["Limits__TimeoutMs"] = "20000",
            ["Limits__EngineConcurrency"] = "2",
        });
        await svc.StartAsync();
        var graph = LongGraph(256);

        // Calibrate: how long one iteration takes here (the first call also warms the code paths up).
        await Wire.PostAsync(svc.Rest, "/v1/evaluate", new { graph, inputs = new { n = 5 } });
        var watch = Stopwatch.StartNew();
        var (calStatus, calBody) = await Wire.PostAsync(svc.Rest, "/v1/evaluate", new { graph, inputs = new { n = 50 } });
        Assert.True(calStatus == 200, calBody.ToString());
        double perIteration = watch.Elapsed.TotalSeconds / 50;
        int iterations = (int)Math.Clamp(3.0 / perIteration, 50, 50_000);
        output.WriteLine($"{perIteration * 1000:0.0} ms per iteration; the finishing request runs {iterations} (~3 s)");

        // A gRPC session (a stateful stream) that sits idle between commands when the signal comes.
        var sessions = new Contracts.V1.Sessions.SessionsClient(svc.Grpc);
        using var session = sessions.Run(deadline: DateTime.UtcNow.AddMinutes(2));
        await session.RequestStream.WriteAsync(new Contracts.V1.Command
        {
            Variable = new Contracts.V1.VariableCommand { Name = "a", Value = Wire.Floats(0.5f), RequiresGrad = true },
        });
        Assert.True(await session.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Null(session.ResponseStream.Current.Error);

        // One request that finishes after the signal (~3 s), one that is cut by its own 4 s deadline: the drain must let
        // the first complete and the second answer cleanly, whichever way the timing falls.
        watch.Restart();
        // (its own 12 s deadline keeps a slow machine's run well inside the 25 s shutdown timeout)
        var finishing = Wire.PostAsync(svc.Rest, "/v1/evaluate", new { graph, inputs = new { n = iterations }, limits = new { timeout_ms = 12000 } });
        var cancelled = Wire.PostAsync(svc.Rest, "/v1/evaluate", new { graph, inputs = new { n = 900_000 }, limits = new { timeout_ms = 4000 } });
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(cancelled.IsCompleted, "the 4 s request ended before the signal");
        await svc.SignalAsync("SIGTERM");
        var signalledAt = watch.Elapsed;
        // A session client is always reading its stream; the end of the session arrives as a status.
        var sessionEnd = session.ResponseStream.MoveNext(CancellationToken.None);

        var (finishedStatus, finishedBody) = await finishing;
        var (cancelledStatus, cancelledBody) = await cancelled;
        output.WriteLine($"signal at {signalledAt.TotalSeconds:0.0} s; both answered by {watch.Elapsed.TotalSeconds:0.0} s");
        Assert.True(finishedStatus == 200 || IsDeadline(finishedStatus, finishedBody), $"HTTP {finishedStatus}: {finishedBody}");
        if (finishedStatus == 200) Assert.True(finishedBody.GetProperty("outputs").TryGetProperty("y", out _), finishedBody.ToString());
        Assert.True(IsDeadline(cancelledStatus, cancelledBody), $"HTTP {cancelledStatus}: {cancelledBody}");
        Assert.True(watch.Elapsed > signalledAt + TimeSpan.FromSeconds(2), "the cancelled request should have run on past the signal");

        // The idle session is told to go elsewhere instead of holding the drain until the host's shutdown timeout.
        var ended = await Assert.ThrowsAsync<RpcException>(() => sessionEnd);
        Assert.True(ended.StatusCode == StatusCode.Unavailable, ended.ToString());

        long exit = await svc.WaitForExitAsync(TimeSpan.FromSeconds(40));
        output.WriteLine($"exited {exit} at {watch.Elapsed.TotalSeconds:0.0} s");
        // Before the 25 s shutdown timeout: nothing was left to wait for once the requests had answered (an open session
        // stream that held the drain would keep it going until then).
        Assert.True(watch.Elapsed < signalledAt + TimeSpan.FromSeconds(20), $"the drain took {(watch.Elapsed - signalledAt).TotalSeconds:0.0} s");
        var log = await svc.LogsAsync();
        Assert.True(exit == 0, $"exit code {exit}; log:\n{log}");
        Assert.Contains("Application is shutting down", log);
    }

    private static bool IsDeadline(int status, JsonElement body) =>
        status == 504 && body.TryGetProperty("code", out var c) && c.GetString() == "deadline_exceeded";

    [Fact]
    public async Task A_registered_model_survives_a_restart()
    {
        if (!await DockerHost.ReadyAsync(output)) return;
        // The model repository is a host folder mounted into both containers, as a volume would be.
        var folder = Directory.CreateTempSubdirectory("autograd-models-").FullName;
        // The service runs as a non-root user; let it write here whoever owns the folder.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);
        try
        {
            await using (var first = new ServiceContainer(modelFolder: folder))
            {
                await first.StartAsync();
                using var put = await first.Rest.PutAsync("/v1/models/c1",
                    new StringContent(JsonSerializer.Serialize(new { program = Wire.C1Program }), System.Text.Encoding.UTF8, "application/json"));
                Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
                await first.StopAsync();
            }
            Assert.True(File.Exists(Path.Combine(folder, "c1.json")), "the model file is on the volume");

            await using var second = new ServiceContainer(modelFolder: folder);
            await second.StartAsync();
            using var get = await second.Rest.GetAsync("/v1/models/c1");
            Assert.True(get.IsSuccessStatusCode, await get.Content.ReadAsStringAsync());
            var (status, body) = await Wire.PostAsync(second.Rest, "/v1/gradient",
                new { model = "c1", inputs = new { x = Wire.C1Input }, wrt = new[] { "x" } });
            Assert.True(status == 200, body.ToString());
            Assert.Equal([28.0], Wire.Data(body.GetProperty("outputs").GetProperty("y")));
            Assert.Equal([0.0, 4, 8, 12], Wire.Data(body.GetProperty("gradients").GetProperty("x")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
