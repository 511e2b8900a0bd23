using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Api.Tests.Sessions;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Memory;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Operations;

/// <summary>The service with its gpu device on ILGPU's CPU accelerator (Server:Gpu=cpu-accelerator): the GPU code path, without a GPU.</summary>
public sealed class CpuAcceleratorGpuService() : ServiceFactory(new Dictionary<string, string?> { ["Server:Gpu"] = "cpu-accelerator" });

/// <summary>
/// device: "gpu" over REST, gRPC and sessions reaches the GPU backend and gives the CPU's numbers; auto keeps small
/// graphs on the CPU; answers say where they ran; the device's memory is charged to the same budget and given back.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class GpuDeviceTests(CpuAcceleratorGpuService service) : IClassFixture<CpuAcceleratorGpuService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static object E6(string device) => new { program = Cases.E6Program, inputs = new { x = Cases.E6XJson }, device };

    [Fact]
    public async Task TheGpuIsListed_AndRunsTransforms_WithTheCpusNumbers()
    {
        var devices = (await _client.Get("/v1/devices")).Ok().Body.GetProperty("devices").EnumerateArray().ToArray();
        Assert.Equal(["cpu", "gpu"], devices.Select(d => d.GetProperty("name").GetString()));
        Assert.Contains("ILGPU", devices[1].GetProperty("description").GetString());

        foreach (var transform in new[] { "evaluate", "gradient" })
        {
            var cpu = (await _client.Post($"/v1/{transform}", E6("cpu"))).Ok();
            var gpu = (await _client.Post($"/v1/{transform}", E6("gpu"))).Ok();
            Assert.Equal("gpu", gpu.Body.At("stats", "device").GetString());
            Assert.Equal("cpu", cpu.Body.At("stats", "device").GetString());
            foreach (var (section, name) in new[] { ("outputs", "f"), ("gradients", "x") })
            {
                if (!cpu.Body.TryGetProperty(section, out var s) || !s.TryGetProperty(name, out _)) continue;
                var (want, got) = (Values(cpu.Body.At(section, name)), Values(gpu.Body.At(section, name)));
                for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-12);
            }
        }
        // auto: C1 is far below the threshold where a GPU pays, so it stays on the CPU.
        var auto = (await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X }, device = "auto" })).Ok();
        Assert.Equal("cpu", auto.Body.At("stats", "device").GetString());
    }

    [Fact]
    public async Task AllowTf32_IsABool_TheScopeCarries()
    {
        // The CPU accelerator has no tensor cores: the flag is accepted and changes nothing here (cuBLAS reads it on CUDA).
        var product = new { program = "y = a @ b", inputs = new { a = new[] { new[] { 1.0, 2 }, new[] { 3.0, 4 } }, b = new[] { new[] { 1.0, 0 }, new[] { 0.0, 1 } } } };
        foreach (var allow in new[] { true, false })
        {
            var r = (await _client.Post("/v1/evaluate", new { product.program, product.inputs, device = "gpu", allow_tf32 = allow })).Ok();
            Assert.Equal([1.0, 2, 3, 4], Values(r.Body.At("outputs", "y")));
        }
        var bad = (await _client.Post("/v1/evaluate", new { product.program, product.inputs, allow_tf32 = "yes" })).Problem(400, "invalid_argument");
        Assert.Equal("allow_tf32", bad.Str("field"));
        var grpc = new EvaluateRequest { Computation = new Computation { Program = Cases.C1Program }, Device = "gpu", AllowTf32 = true };
        grpc.Inputs["x"] = Infrastructure.Tensors.F32(Cases.X);
        Assert.Equal(28.0, Infrastructure.Tensors.One((await service.Autodiff.EvaluateAsync(grpc)).Outputs["y"]));
    }

    [Fact]
    public async Task GrpcAndSessions_ReachTheGpu()
    {
        var request = new EvaluateRequest { Computation = new Computation { Program = Cases.C1Program }, Device = "gpu" };
        request.Inputs["x"] = Infrastructure.Tensors.F32(Cases.X);
        var reply = await service.Autodiff.EvaluateAsync(request);
        Assert.Equal("gpu", reply.Stats.Device);
        Assert.Equal(28.0, Infrastructure.Tensors.One(reply.Outputs["y"]));

        await using var s = await RestSession.OpenAsync(_client, new { device = "gpu" });
        var results = await s.RunAsync([RestSession.Variable("x", Cases.X), RestSession.Apply("dot", ["x", "x"], "t"),
            RestSession.Apply("mul", [2, "t"], "y"), RestSession.Backward("y"), RestSession.Grad("x")]);
        Assert.Equal([0.0, 4, 8, 12], Values(results[4].GetProperty("value")));
    }

    [Fact]
    public async Task TheBudgetMeansTheSameOnTheGpu_AndEveryHostCopyGoesBack()
    {
        long before = BufferPool.Shared.OutstandingBytes;
        // 262,144 float32 values are 1 MiB on the device as on the host: over a 1 MiB limit with the input counted.
        var big = new { program = "y = exp(x) * 2", inputs = new { x = new { dtype = "float32", shape = new[] { 262_144 }, data = new float[262_144] } },
            device = "gpu", limits = new { memory_bytes = 1 << 20 } };
        (await _client.Post("/v1/evaluate", big)).Problem(422, "memory_limit_exceeded");
        (await _client.Post("/v1/gradient", E6("gpu"))).Ok();
        Assert.Equal(before, BufferPool.Shared.OutstandingBytes);
    }
}
