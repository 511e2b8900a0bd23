using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Api.Tests.Sessions;
using AutogradService.Contracts.V1;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Operations;

/// <summary>
/// Devices as a client meets them: listed over REST and gRPC, named by requests and sessions (a GPU where there is
/// none is device_unavailable, an unknown name invalid_argument naming the field), and reported by /readyz and /metrics.
/// This machine has no GPU: the CPU is the one device, and auto places everything on it.
/// </summary>
public sealed class DeviceTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task Devices_AreListed_OverRestAndGrpc()
    {
        var rest = (await _client.Get("/v1/devices")).Ok();
        var cpu = Assert.Single(rest.Body.GetProperty("devices").EnumerateArray());
        Assert.Equal("cpu", cpu.GetProperty("name").GetString());
        Assert.Equal("cpu", cpu.GetProperty("kind").GetString());
        Assert.True(cpu.GetProperty("memory_bytes").GetInt64() > 0);
        Assert.True(cpu.GetProperty("units").GetInt32() >= 1);
        Assert.Contains("cores", cpu.GetProperty("description").GetString());
        Assert.Equal("cpu", rest.Str("default_device"));

        var grpc = await new Autodiff.AutodiffClient(service.Channel).ListDevicesAsync(new ListDevicesRequest());
        var device = Assert.Single(grpc.Devices);
        Assert.Equal(("cpu", "cpu", cpu.GetProperty("memory_bytes").GetInt64()), (device.Name, device.Kind, device.MemoryBytes));
        Assert.Equal("cpu", grpc.DefaultDevice);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("AUTO")]
    [InlineData("")]
    public async Task Requests_RunOnTheCpu_ForCpuAutoAndTheDefault(string device)
    {
        var r = (await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X }, device })).Ok();
        Assert.Equal(28.0, One(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task Sessions_NameADevice_OverRestAndGrpc()
    {
        (await _client.Post("/v1/sessions", new { device = "gpu" })).Problem(400, "device_unavailable");
        var bad = (await _client.Post("/v1/sessions", new { device = "tpu" })).Problem(400, "invalid_argument");
        Assert.Equal("device", bad.Str("field"));
        var opened = await _client.Post("/v1/sessions", new { device = "auto" });
        Assert.Equal(HttpStatusCode.Created, opened.Status);
        (await _client.DeleteAsync($"/v1/sessions/{opened.Str("id")}")).Dispose();

        using var refused = await GrpcSession.OpenAsync(service.Sessions);
        var reply = await refused.SendAsync(new Command { Open = new SessionOptions { Device = "gpu" } });
        Assert.Equal("device_unavailable", reply.Error.Code);
        using var cpu = await GrpcSession.OpenAsync(service.Sessions, new SessionOptions { Device = "cpu" });
        await cpu.Do(GrpcSession.Variable("x", Infrastructure.Tensors.F32(Cases.X)));
    }

    [Fact]
    public async Task Readyz_AndMetrics_ReportTheDevices()
    {
        using var plain = await _client.GetAsync("/readyz");
        Assert.Equal("Healthy", await plain.Content.ReadAsStringAsync());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/readyz");
        request.Headers.Accept.ParseAdd("application/json");
        using var json = await _client.SendAsync(request);
        Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        using var doc = System.Text.Json.JsonDocument.Parse(await json.Content.ReadAsStringAsync());
        var data = doc.RootElement.GetProperty("checks").GetProperty("engine").GetProperty("data");
        Assert.Equal("cpu", data.GetProperty("devices").GetString());
        Assert.Equal("cpu", data.GetProperty("default_device").GetString());

        var metrics = await _client.GetStringAsync("/metrics");
        Assert.Matches("autograd_device_memory_bytes\\{device=\"cpu\",kind=\"cpu\"\\} [1-9]", metrics);
    }
}
