using AutogradService.Contracts.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Xunit.Abstractions;

namespace AutogradService.Container.Tests;

/// <summary>One container shared by the checks that leave it running; its per-request memory limit is lowered by the
/// environment (16 MiB) so an over-limit request is cheap to make.</summary>
public sealed class ServingFixture : IAsyncLifetime
{
    public const long MemoryLimit = 16L << 20;

    public ServiceContainer? Service { get; private set; }

    public async Task InitializeAsync()
    {
        if (!await DockerHost.ReadyAsync(null)) return;
        Service = new ServiceContainer(new Dictionary<string, string>
        {
            ["Limits__MemoryBytesPerRequest"] = MemoryLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await Service.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (Service is not null) await Service.DisposeAsync();
    }
}

public sealed class ServingTests(ServingFixture fixture, ITestOutputHelper output) : IClassFixture<ServingFixture>
{
    private async Task<ServiceContainer?> ServiceAsync() => await DockerHost.ReadyAsync(output) ? fixture.Service! : null;

    [Fact]
    public async Task Health_answers_over_rest_and_grpc()
    {
        if (await ServiceAsync() is not { } svc) return;
        using var live = await svc.Rest.GetAsync("/healthz");
        Assert.Equal(200, (int)live.StatusCode);
        using var ready = await svc.Rest.GetAsync("/readyz");
        Assert.Equal(200, (int)ready.StatusCode);

        var health = new Health.HealthClient(svc.Grpc);
        var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Fact]
    public async Task The_playground_page_and_its_modules_are_served_from_the_image()
    {
        if (await ServiceAsync() is not { } svc) return;
        // Embedded in the service's assembly: the image needs no extra files, no npm and no network for it.
        foreach (var (path, type) in new[] { ("/playground/", "text/html"), ("/playground/main.js", "text/javascript"), ("/playground/graph.js", "text/javascript") })
        {
            using var response = await svc.Rest.GetAsync(path);
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task C1_over_rest()
    {
        if (await ServiceAsync() is not { } svc) return;
        var (status, body) = await Wire.PostAsync(svc.Rest, "/v1/gradient",
            new { program = Wire.C1Program, inputs = new { x = Wire.C1Input }, wrt = new[] { "x" } });
        Assert.True(status == 200, body.ToString());
        Assert.Equal([28.0], Wire.Data(body.GetProperty("outputs").GetProperty("y")));
        Assert.Equal([0.0, 4, 8, 12], Wire.Data(body.GetProperty("gradients").GetProperty("x")));
    }

    [Fact]
    public async Task C1_over_grpc()
    {
        if (await ServiceAsync() is not { } svc) return;
        var client = new Autodiff.AutodiffClient(svc.Grpc);
        var request = new GradientRequest { Computation = new Computation { Program = Wire.C1Program } };
        request.Inputs["x"] = Wire.Floats(Wire.C1Input);
        request.Wrt.Add("x");
        var reply = await client.GradientAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.Equal([28f], Wire.Floats(reply.Outputs["y"]));
        Assert.Equal([0f, 4, 8, 12], Wire.Floats(reply.Gradients["x"]));
    }

    [Fact]
    public async Task Over_the_memory_limit_is_refused_and_the_container_keeps_serving()
    {
        if (await ServiceAsync() is not { } svc) return;
        // 2048 x 4096 float32 = 32 MiB, twice the container's 16 MiB per request.
        const string big = "y = sum(broadcast_to(x, shape=[2048, 4096]))";
        var (status, body) = await Wire.PostAsync(svc.Rest, "/v1/evaluate", new { program = big, inputs = new { x = 1.0 } });
        Assert.True(status is 413 or 422, $"HTTP {status}: {body}");
        Assert.Equal("memory_limit_exceeded", body.GetProperty("code").GetString());
        Assert.Equal(ServingFixture.MemoryLimit, body.GetProperty("limit_bytes").GetInt64());

        var client = new Autodiff.AutodiffClient(svc.Grpc);
        var request = new EvaluateRequest { Computation = new Computation { Program = big } };
        request.Inputs["x"] = Wire.Floats(1f);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.EvaluateAsync(request, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal("memory_limit_exceeded", e.Trailers.GetValue("autograd-code"));

        // Still alive and still right.
        using var live = await svc.Rest.GetAsync("/healthz");
        Assert.Equal(200, (int)live.StatusCode);
        var (ok, c1) = await Wire.PostAsync(svc.Rest, "/v1/evaluate", new { program = Wire.C1Program, inputs = new { x = Wire.C1Input } });
        Assert.True(ok == 200, c1.ToString());
        Assert.Equal([28.0], Wire.Data(c1.GetProperty("outputs").GetProperty("y")));
    }

    [Fact]
    public async Task The_service_runs_as_a_non_root_user_on_a_read_only_root()
    {
        if (await ServiceAsync() is not { } svc) return;
        // PID 1 is the service itself (dotnet); its real, effective, saved and file-system uids are all non-zero.
        var status = await svc.ExecAsync("cat", "/proc/1/status");
        Assert.Equal(0, status.ExitCode);
        var uidLine = status.Stdout.Split('\n').Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        var uids = uidLine["Uid:".Length..].Split('\t', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(4, uids.Length);
        Assert.All(uids, u => Assert.NotEqual("0", u));
        var cmdline = await svc.ExecAsync("cat", "/proc/1/cmdline");
        Assert.Contains("AutogradService.Api.dll", cmdline.Stdout);

        // It serves from a read-only root file system, as the Kubernetes base runs it.
        var mounts = await svc.ExecAsync("cat", "/proc/mounts");
        var root = mounts.Stdout.Split('\n').Select(l => l.Split(' ')).Single(f => f.Length > 3 && f[1] == "/");
        Assert.Contains("ro", root[3].Split(','));

        // The image's own health check (dotnet in probe mode, no curl) passes as that user.
        var probe = await svc.ExecAsync("dotnet", "/app/AutogradService.Api.dll", "--healthcheck");
        Assert.True(probe.ExitCode == 0, probe.Stdout + probe.Stderr);
    }
}
