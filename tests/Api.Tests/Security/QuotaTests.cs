using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;

namespace AutogradService.Api.Tests.Security;

/// <summary>
/// Per-caller quotas at and past their edge: open sessions (REST and gRPC streams together), models, model bytes.
/// Past one: 429 / RESOURCE_EXHAUSTED, <c>quota_exceeded</c>, the quota named, and a retry hint. Each test has callers of
/// its own, so the counts do not mix.
/// </summary>
public sealed class QuotaTests(SmallQuotasService service) : IClassFixture<SmallQuotasService>
{
    [Fact]
    public async Task Sessions_TwoOpenAreFine_AThirdIsRefused_ClosingOneMakesRoom_Rest()
    {
        using var client = service.RestAs("s-rest");
        var a = (await client.Post("/v1/sessions", new { })).Ok().Str("id");
        var b = (await client.Post("/v1/sessions", new { })).Ok().Str("id");
        var refused = (await client.Post("/v1/sessions", new { })).Problem(429, "quota_exceeded");
        QuotaAsserts.AssertQuota(refused, "sessions", 2);
        // Another caller's quota is its own.
        using var other = service.RestAs("other");
        var o = (await other.Post("/v1/sessions", new { })).Ok().Str("id");
        Assert.Equal(HttpStatusCode.NoContent, (await other.Delete($"/v1/sessions/{o}")).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await client.Delete($"/v1/sessions/{a}")).Status);
        var c = (await client.Post("/v1/sessions", new { })).Ok().Str("id");
        await client.Delete($"/v1/sessions/{b}");
        await client.Delete($"/v1/sessions/{c}");
    }

    [Fact]
    public async Task Sessions_GrpcStreamsAndRestSessionsCountTogether()
    {
        using var client = service.RestAs("s-grpc");
        var rest = (await client.Post("/v1/sessions", new { })).Ok().Str("id");
        using var first = service.Sessions.Run(Credentials.GrpcAs("s-grpc"));
        await first.RequestStream.WriteAsync(new Command { Variable = new VariableCommand { Name = "x", Value = Tensors.F32Scalar(1) } });
        Assert.True(await first.ResponseStream.MoveNext(default));
        Assert.Null(first.ResponseStream.Current.Error);

        using var second = service.Sessions.Run(Credentials.GrpcAs("s-grpc"));
        var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "quota_exceeded", () => second.ResponseStream.MoveNext(default));
        QuotaAsserts.AssertQuota(e, "sessions", 2);
        (await client.Post("/v1/sessions", new { })).Problem(429, "quota_exceeded");

        await first.RequestStream.CompleteAsync();
        Assert.False(await first.ResponseStream.MoveNext(default));
        await JsonKit.Eventually(() => service.Get<Api.Sessions.SessionStore>().Count == 1, "the stream's slot to be given back");
        var again = (await client.Post("/v1/sessions", new { })).Ok().Str("id");
        await client.Delete($"/v1/sessions/{rest}");
        await client.Delete($"/v1/sessions/{again}");
    }

    [Fact]
    public async Task Models_TwoAreFine_AThirdIsRefused_ReplacingIsNotANewOne_Rest()
    {
        using var client = service.RestAs("m-rest");
        (await client.Put("/v1/models/mq-a", new { program = "y = x * 2" })).Ok();
        (await client.Put("/v1/models/mq-b", new { program = "y = x * 3" })).Ok();
        QuotaAsserts.AssertQuota((await client.Put("/v1/models/mq-c", new { program = "y = x * 4" })).Problem(429, "quota_exceeded"), "models", 2);
        (await client.Get("/v1/models/mq-c")).Problem(404, "not_found");
        (await client.Put("/v1/models/mq-a", new { program = "y = x * 5" })).Ok();
        Assert.Equal(HttpStatusCode.NoContent, (await client.Delete("/v1/models/mq-a")).Status);
        (await client.Put("/v1/models/mq-c", new { program = "y = x * 4" })).Ok();
        await client.Delete("/v1/models/mq-b");
        await client.Delete("/v1/models/mq-c");
    }

    [Fact]
    public async Task Models_TwoAreFine_AThirdIsRefused_Grpc()
    {
        var models = service.Models;
        var me = Credentials.GrpcAs("m-grpc");
        await models.PutAsync(new PutModelRequest { Name = "mg-a", Program = "y = x * 2" }, me);
        await models.PutAsync(new PutModelRequest { Name = "mg-b", Program = "y = x * 3" }, me);
        var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "quota_exceeded",
            () => models.PutAsync(new PutModelRequest { Name = "mg-c", Program = "y = x * 4" }, me).ResponseAsync);
        QuotaAsserts.AssertQuota(e, "models", 2);
        await models.PutAsync(new PutModelRequest { Name = "mg-a", Program = "y = x * 5" }, me);
        await models.DeleteAsync(new DeleteModelRequest { Name = "mg-a" }, me);
        await models.PutAsync(new PutModelRequest { Name = "mg-c", Program = "y = x * 4" }, me);
        await models.DeleteAsync(new DeleteModelRequest { Name = "mg-b" }, me);
        await models.DeleteAsync(new DeleteModelRequest { Name = "mg-c" }, me);
    }

    /// <summary>A program whose stored model takes several KiB: one node per line.</summary>
    private static string LargeProgram =>
        "t1 = x * 1.0001\n" + string.Join('\n', Enumerable.Range(2, 39).Select(i => $"t{i} = t{i - 1} * 1.0001")) + "\ny = t40 + 0";

    [Fact]
    public async Task ModelBytes_WithinAreFine_PastAreRefused_AndNothingIsWritten_Rest()
    {
        using var client = service.RestAs("b-rest");
        (await client.Put("/v1/models/bq-small", new { program = "y = x * 2" })).Ok();
        var refused = (await client.Put("/v1/models/bq-large", new { program = LargeProgram })).Problem(429, "quota_exceeded");
        QuotaAsserts.AssertQuota(refused, "model_bytes", 2048);
        Assert.False(File.Exists(Path.Combine(service.ModelsPath, "bq-large.json")));
        Assert.Empty(Directory.GetFiles(service.ModelsPath, "*.tmp"));
        // Replacing the small one with the large one is past the quota too; the small one stays as it was.
        (await client.Put("/v1/models/bq-small", new { program = LargeProgram })).Problem(429, "quota_exceeded");
        var run = (await client.Post("/v1/evaluate", new { model = "bq-small", inputs = new { x = 2.0 } })).Ok();
        Assert.Equal(4.0, JsonKit.One(run.Body.At("outputs", "y")));
        await client.Delete("/v1/models/bq-small");
    }

    [Fact]
    public async Task ModelBytes_PastAreRefused_Grpc()
    {
        var me = Credentials.GrpcAs("b-grpc");
        await service.Models.PutAsync(new PutModelRequest { Name = "bg-small", Program = "y = x * 2" }, me);
        var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "quota_exceeded",
            () => service.Models.PutAsync(new PutModelRequest { Name = "bg-large", Program = LargeProgram }, me).ResponseAsync);
        QuotaAsserts.AssertQuota(e, "model_bytes", 2048);
        await service.Models.DeleteAsync(new DeleteModelRequest { Name = "bg-small" }, me);
    }
}

/// <summary>The rate quota (ASP.NET Core's rate limiter, partitioned by caller): three requests, then 429 / RESOURCE_EXHAUSTED.</summary>
public sealed class RateLimitTests(RateLimitedService service) : IClassFixture<RateLimitedService>
{
    [Fact]
    public async Task Rest_ThreeRequestsAreFine_TheFourthIsRefused_OthersAndHealthAreNot()
    {
        using var client = service.RestAs("r-rest");
        for (int i = 0; i < 3; i++) (await client.Get("/v1/ops")).Ok();
        var refused = (await client.Get("/v1/ops")).Problem(429, "quota_exceeded");
        QuotaAsserts.AssertQuota(refused, "requests", 3);
        (await client.Post("/v1/evaluate", new { program = "y = x", inputs = new { x = 1 } })).Problem(429, "quota_exceeded");
        using (var health = await client.GetAsync("/healthz")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var other = service.RestAs("other");
        (await other.Get("/v1/ops")).Ok();
    }

    [Fact]
    public async Task Grpc_ThreeCallsAreFine_TheFourthIsRefused()
    {
        var me = Credentials.GrpcAs("r-grpc");
        for (int i = 0; i < 3; i++) await service.Autodiff.PingAsync(new PingRequest(), me);
        var e = await GrpcErrors.Expect(StatusCode.ResourceExhausted, "quota_exceeded", () => service.Autodiff.PingAsync(new PingRequest(), me).ResponseAsync);
        QuotaAsserts.AssertQuota(e, "requests", 3);
        using var stream = service.Sessions.Run(me);
        await GrpcErrors.Expect(StatusCode.ResourceExhausted, "quota_exceeded", () => stream.ResponseStream.MoveNext(default));
    }
}

/// <summary>What every quota refusal carries: the quota's name and limit, and a retry hint.</summary>
internal static class QuotaAsserts
{
    public static void AssertQuota(RestReply reply, string quota, long limit)
    {
        Assert.Equal(quota, reply.Body.GetProperty("quota").GetString());
        Assert.Equal(limit, reply.Body.GetProperty("limit").GetInt64());
        Assert.Contains("quota", reply.Body.GetProperty("detail").GetString());
        Assert.True(reply.Headers.RetryAfter?.Delta > TimeSpan.Zero, $"Retry-After: {reply.Headers.RetryAfter}");
    }

    public static void AssertQuota(RpcException e, string quota, long limit)
    {
        var info = GrpcErrors.Info(e);
        Assert.Equal(quota, info.Metadata["quota"]);
        Assert.Equal(limit.ToString(System.Globalization.CultureInfo.InvariantCulture), info.Metadata["limit"]);
        var retry = e.GetRpcStatus()!.GetDetail<Google.Rpc.RetryInfo>();
        Assert.NotNull(retry);
        Assert.True(retry!.RetryDelay.ToTimeSpan() > TimeSpan.Zero);
    }
}
