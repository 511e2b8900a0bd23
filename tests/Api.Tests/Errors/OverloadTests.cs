using AutogradService.Api.Execution;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Api.Tests.Errors;

/// <summary>One engine worker and no queue: a second request while the worker is busy is refused at once.</summary>
public sealed class NoQueueService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:EngineConcurrency"] = "1",
    ["Limits:EngineQueueLength"] = "0",
});

/// <summary>One engine worker and a queue of one: the queue's edge.</summary>
public sealed class QueueOfOneService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:EngineConcurrency"] = "1",
    ["Limits:EngineQueueLength"] = "1",
});

/// <summary>
/// overloaded: with the only worker busy on a long loop and the queue full, a request gets 429 + Retry-After (REST) or
/// RESOURCE_EXHAUSTED with ErrorInfo and RetryInfo (gRPC). The busy request is then abandoned by its client, and the
/// server stops its computation.
/// </summary>
public sealed class OverloadTests(NoQueueService noQueue, QueueOfOneService queueOfOne) : IClassFixture<NoQueueService>, IClassFixture<QueueOfOneService>
{
    private static object C1 => new { program = Cases.C1Program, inputs = new { x = Cases.X } };

    /// <summary>Starts a long request that holds the only worker until cancelled (or its 20 s timeout).</summary>
    private static async Task<(Task<RestReply> Busy, CancellationTokenSource Cancel)> OccupyAsync(ServiceFactory service, HttpClient client)
    {
        var cancel = new CancellationTokenSource();
        var busy = client.Post("/v1/evaluate", Cases.EndlessLoopRequest(100_000, timeoutMs: 20_000), cancellation: cancel.Token);
        var gate = service.Get<EngineGate>();
        await JsonKit.Eventually(() => gate.Running == 1 || busy.IsCompleted, "the long request to occupy the worker");
        Assert.False(busy.IsCompleted, busy.IsCompleted ? busy.Result.Text : "");
        return (busy, cancel);
    }

    private static async Task ReleaseAsync(ServiceFactory service, Task busy, CancellationTokenSource cancel)
    {
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => busy);
        var gate = service.Get<EngineGate>();
        await JsonKit.Eventually(() => gate.Running == 0, "the abandoned computation to stop");
        cancel.Dispose();
    }

    [Fact]
    public async Task BusyWorkerAndNoQueue_IsOverloadedWithRetryAfter()
    {
        var client = noQueue.CreateClient();
        var (busy, cancel) = await OccupyAsync(noQueue, client);
        try
        {
            var r = (await client.Post("/v1/gradient", C1)).Problem(429, "overloaded");
            Assert.True(r.Headers.RetryAfter?.Delta is { } delta && delta > TimeSpan.Zero, "Retry-After is missing");

            var request = new GradientRequest { Computation = new Computation { Program = Cases.C1Program } };
            request.Inputs["x"] = Tensors.F32(Cases.X);
            var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "overloaded", () => noQueue.Autodiff.GradientAsync(request).ResponseAsync);
            Assert.NotNull(e.GetRpcStatus()!.GetDetail<Google.Rpc.RetryInfo>());
        }
        finally
        {
            await ReleaseAsync(noQueue, busy, cancel);
        }
        // The worker is free again: the same request now succeeds.
        var ok = (await client.Post("/v1/gradient", C1)).Ok();
        Assert.Equal([0.0, 4, 8, 12], JsonKit.Values(ok.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task QueueLength_OneWaitsTheNextIsRefused()
    {
        var client = queueOfOne.CreateClient();
        var gate = queueOfOne.Get<EngineGate>();
        var (busy, cancel) = await OccupyAsync(queueOfOne, client);
        Task<RestReply> queued;
        try
        {
            queued = client.Post("/v1/gradient", C1);                     // at the edge: waits in the queue
            await JsonKit.Eventually(() => gate.Waiting == 1, "the second request to queue");
            (await client.Post("/v1/gradient", C1)).Problem(429, "overloaded"); // one past: refused
            Assert.False(queued.IsCompleted);
        }
        finally
        {
            await ReleaseAsync(queueOfOne, busy, cancel);
        }
        var r = (await queued).Ok();
        Assert.Equal([0.0, 4, 8, 12], JsonKit.Values(r.Body.At("gradients", "x")));
    }
}
