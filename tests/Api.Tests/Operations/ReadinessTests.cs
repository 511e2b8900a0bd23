using System.Net;
using AutogradService.Api.Execution;
using AutogradService.Api.Tests.Infrastructure;
using Grpc.Health.V1;
using Microsoft.Extensions.Hosting;

namespace AutogradService.Api.Tests.Operations;

/// <summary>One engine worker and a queue of two: the gate can be made busy, half full and full on purpose.</summary>
public sealed class SmallGateService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:EngineConcurrency"] = "1",
    ["Limits:EngineQueueLength"] = "2",
});

/// <summary>
/// <c>/readyz</c> and gRPC health follow the engine gate and the host's lifetime: Healthy while work can start, Degraded
/// (still 200, SERVING) while requests wait, Unhealthy (503, NOT_SERVING) when the queue is full or the host is stopping.
/// <c>/healthz</c> stays liveness throughout.
/// </summary>
public sealed class ReadinessTests(SmallGateService service) : IClassFixture<SmallGateService>
{
    private static object C1 => new { program = Cases.C1Program, inputs = new { x = Cases.X } };

    private static async Task ExpectReady(ServiceFactory service, HttpStatusCode status, string text, HealthCheckResponse.Types.ServingStatus grpc)
    {
        using var client = service.CreateClient();
        using var response = await client.GetAsync("/readyz");
        Assert.Equal(text, await response.Content.ReadAsStringAsync());
        Assert.Equal(status, response.StatusCode);
        var health = await new Health.HealthClient(service.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(grpc, health.Status);
        using var live = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }

    [Fact]
    public async Task Readyz_FollowsTheEngineQueue()
    {
        var client = service.CreateClient();
        var gate = service.Get<EngineGate>();
        await ExpectReady(service, HttpStatusCode.OK, "Healthy", HealthCheckResponse.Types.ServingStatus.Serving);

        using var cancel = new CancellationTokenSource();
        var busy = client.Post("/v1/evaluate", Cases.EndlessLoopRequest(100_000, timeoutMs: 20_000), cancellation: cancel.Token);
        var queued = new List<Task<RestReply>>();
        try
        {
            await JsonKit.Eventually(() => gate.Running == 1 || busy.IsCompleted, "the long request to occupy the worker");
            Assert.False(busy.IsCompleted);
            // The worker is busy but nothing waits: a new request would still start soon.
            await ExpectReady(service, HttpStatusCode.OK, "Healthy", HealthCheckResponse.Types.ServingStatus.Serving);

            queued.Add(client.Post("/v1/gradient", C1));
            await JsonKit.Eventually(() => gate.Waiting == 1, "one request to queue");
            await ExpectReady(service, HttpStatusCode.OK, "Degraded", HealthCheckResponse.Types.ServingStatus.Serving);

            queued.Add(client.Post("/v1/gradient", C1));
            await JsonKit.Eventually(() => gate.Waiting == 2, "the queue to fill");
            await ExpectReady(service, HttpStatusCode.ServiceUnavailable, "Unhealthy", HealthCheckResponse.Types.ServingStatus.NotServing);
        }
        finally
        {
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => busy);
        }
        foreach (var r in queued) (await r).Ok();
        await JsonKit.Eventually(() => gate.Running == 0 && gate.Waiting == 0, "the gate to empty");
        await ExpectReady(service, HttpStatusCode.OK, "Healthy", HealthCheckResponse.Types.ServingStatus.Serving);
    }

    [Fact]
    public async Task Readyz_IsUnhealthyOnceTheHostIsStopping()
    {
        using var stopping = new ServiceFactory();
        await ExpectReady(stopping, HttpStatusCode.OK, "Healthy", HealthCheckResponse.Types.ServingStatus.Serving);
        // Probed from inside ApplicationStopping's first callback: the host is stopping but has not yet let go of its
        // services (in-process, it then stops and disposes them at once; a real one keeps serving in-flight requests).
        var lifetime = stopping.Get<IHostApplicationLifetime>();
        Task? probed = null;
        using var probe = lifetime.ApplicationStopping.Register(() =>
        {
            probed = ExpectReady(stopping, HttpStatusCode.ServiceUnavailable, "Unhealthy", HealthCheckResponse.Types.ServingStatus.NotServing);
            probed.Wait(TimeSpan.FromSeconds(30));
        });
        lifetime.StopApplication();
        Assert.NotNull(probed);
        await probed;
    }
}
