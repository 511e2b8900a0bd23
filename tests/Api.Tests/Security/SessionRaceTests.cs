using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace AutogradService.Api.Tests.Security;

/// <summary>The service's defaults, for the races between a session's commands and its end.</summary>
public sealed class SessionRaceService : ServiceFactory;

/// <summary>
/// A session command racing the session's end either completes or is <c>not_found</c> (REST DELETE), or the stream
/// ends cancelled (gRPC) — never a command on a disposed session, an internal error or a slot left counted.
/// </summary>
public sealed class SessionRaceTests(SessionRaceService service, ITestOutputHelper output) : IClassFixture<SessionRaceService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static object Batch(int applies)
    {
        var commands = new List<object>();
        for (int i = 0; i < applies; i++) commands.Add(new { apply = new { op = "mul", inputs = new[] { "x", "x" }, output = "y" } });
        commands.Add(new { fetch = new { name = "y" } });
        return new { commands };
    }

    [Fact]
    public async Task Rest_CommandsRacingDelete_CompleteOrAreNotFound()
    {
        var outcomes = new ConcurrentDictionary<HttpStatusCode, int>();
        var random = new Random(9);
        for (int round = 0; round < 40; round++)
        {
            var delays = Enumerable.Range(0, 4).Select(_ => random.Next(0, 4)).ToArray();
            await Task.WhenAll(delays.Select(async delay =>
            {
                var id = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
                (await _client.Post($"/v1/sessions/{id}/commands",
                    new { commands = new object[] { new { variable = new { name = "x", value = new float[4096], requires_grad = false } } } })).Ok();
                var commands = _client.Post($"/v1/sessions/{id}/commands", Batch(20));
                await Task.Delay(delay);
                var deleted = await _client.Delete($"/v1/sessions/{id}");
                var ran = await commands;
                Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
                if (ran.Status != HttpStatusCode.OK) ran.Problem(404, "not_found");
                outcomes.AddOrUpdate(ran.Status, 1, (_, n) => n + 1);
            }));
        }
        Assert.Equal(160, outcomes.Values.Sum());
        output.WriteLine(string.Join(", ", outcomes.Select(o => $"{(int)o.Key}: {o.Value}")));
        await JsonKit.Eventually(() => service.Get<Api.Sessions.SessionStore>().Count == 0, "every session to be closed");
        await AssertNoInternalErrors();
    }

    [Fact]
    public async Task Rest_DeleteDuringALongBatch_StopsItPromptlyWithNotFound()
    {
        var id = (await _client.Post("/v1/sessions", new { })).Ok().Str("id");
        (await _client.Post($"/v1/sessions/{id}/commands",
            new { commands = new object[] { new { variable = new { name = "x", value = new { dtype = "float32", shape = new[] { 256, 256 }, data = new float[65536] }, requires_grad = false } } } })).Ok();
        var commands = new List<object>();
        for (int i = 0; i < 3000; i++) commands.Add(new { apply = new { op = "matmul", inputs = new[] { "x", "x" }, output = "y" } });
        var started = Stopwatch.StartNew();
        var running = _client.Post($"/v1/sessions/{id}/commands", new { commands });
        await Task.Delay(300);
        if (running.IsCompleted)
        {
            // Say how it finished: a batch refused at once (overload, quota) reads differently from one that ran fast.
            var early = await running;
            Assert.Fail($"the batch finished before the DELETE ({(int)early.Status}: {early.Text[..Math.Min(300, early.Text.Length)]}); make it longer");
        }
        Assert.Equal(HttpStatusCode.NoContent, (await _client.Delete($"/v1/sessions/{id}")).Status);
        (await running).Problem(404, "not_found");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"the batch ran on for {started.Elapsed} after its session was deleted");
        (await _client.Post($"/v1/sessions/{id}/commands", Batch(1))).Problem(404, "not_found");
    }

    [Fact]
    public async Task Grpc_CommandsRacingTheStreamsCancellation_CompleteOrEndCancelled()
    {
        var random = new Random(9);
        for (int round = 0; round < 40; round++)
        {
            using var cancel = new CancellationTokenSource();
            using var call = service.Sessions.Run(cancellationToken: cancel.Token);
            try
            {
                await call.RequestStream.WriteAsync(new Command { Variable = new VariableCommand { Name = "x", Value = Tensors.F32(new float[4096]) } });
                for (int i = 0; i < 5; i++)
                    await call.RequestStream.WriteAsync(new Command { Apply = new ApplyCommand { Op = "mul", Inputs = { "x", "x" }, Output = "y" } });
                cancel.CancelAfter(random.Next(0, 4));
                while (await call.ResponseStream.MoveNext(default)) Assert.Null(call.ResponseStream.Current.Error);
            }
            catch (RpcException)
            {
                // The client's own view of a call it cancelled varies (CANCELLED, or the in-memory transport's abort or
                // reset); what this test holds the server to is below: no internal error, every slot given back.
            }
            catch (OperationCanceledException)
            {
                // Cancelled on the client's side before the call could report it.
            }
        }
        await JsonKit.Eventually(() => service.Get<Api.Sessions.SessionStore>().Count == 0, "every stream's slot to be given back");
        await AssertNoInternalErrors();
    }

    private async Task AssertNoInternalErrors()
    {
        var metrics = await _client.GetStringAsync("/metrics");
        Assert.DoesNotContain(metrics.Split('\n'), l => l.StartsWith("autograd_requests_total{", StringComparison.Ordinal) && l.Contains("code=\"internal\""));
    }
}
