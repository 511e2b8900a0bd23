using AutogradService.Api.Execution;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Memory;
using Grpc.Core;

namespace AutogradService.Api.Tests.Errors;

/// <summary>
/// deadline_exceeded: a long loop under a tiny timeout is cancelled, not left running, and gives every pooled byte
/// back. Runs alone (the serial collection) because the buffer pool is shared by every host in the process.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class DeadlineTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private async Task SettledAt(long before)
    {
        var gate = service.Get<EngineGate>();
        await JsonKit.Eventually(() => gate.Running == 0, "the cancelled computation to stop");
        await JsonKit.Eventually(() => BufferPool.Shared.OutstandingBytes == before,
            $"pooled bytes to return to {before} (now {BufferPool.Shared.OutstandingBytes})", seconds: 5);
    }

    [Fact]
    public async Task Rest_TinyTimeoutOnALongLoop_Is504AndReturnsThePool()
    {
        await _client.Post("/v1/evaluate", new { program = Cases.C1Program, inputs = new { x = Cases.X } }); // warm the host
        long before = BufferPool.Shared.OutstandingBytes;
        var started = System.Diagnostics.Stopwatch.StartNew();
        var r = (await _client.Post("/v1/evaluate", Cases.EndlessLoopRequest(250_000, timeoutMs: 100))).Problem(504, "deadline_exceeded");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"took {started.Elapsed}");
        await SettledAt(before);
        Assert.Equal(before, BufferPool.Shared.OutstandingBytes);
    }

    [Fact]
    public async Task Grpc_RequestTimeout_IsDeadlineExceededWithErrorInfo()
    {
        long before = BufferPool.Shared.OutstandingBytes;
        var request = new EvaluateRequest
        {
            Computation = new Computation { Graph = Cases.EndlessLoop().ToProto() },
            Limits = new RequestLimits { TimeoutMs = 100 },
        };
        request.Inputs["i0"] = Tensors.F32Scalar(0);
        request.Inputs["x0"] = Tensors.F32Raw(new float[250_000]);
        await GrpcErrors.Expect(StatusCode.DeadlineExceeded, "deadline_exceeded", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
        await SettledAt(before);
    }

    [Fact]
    public async Task Grpc_ClientDeadline_IsHonoured()
    {
        long before = BufferPool.Shared.OutstandingBytes;
        var request = new EvaluateRequest { Computation = new Computation { Graph = Cases.EndlessLoop().ToProto() } };
        request.Inputs["i0"] = Tensors.F32Scalar(0);
        request.Inputs["x0"] = Tensors.F32Raw(new float[250_000]);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            service.Autodiff.EvaluateAsync(request, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync);
        // Client and server hold the same deadline: usually the client's timer fires first; when the server's does, it
        // resets the stream (RST_STREAM CANCEL), which the in-memory TestServer handler reports as a reset, not a status.
        bool serverFirst = e.StatusCode == StatusCode.Internal && e.Status.Detail.Contains("reset the request with error code 8");
        Assert.True(e.StatusCode == StatusCode.DeadlineExceeded || serverFirst, e.Status.ToString());
        await SettledAt(before); // the server stopped the work too
    }
}
