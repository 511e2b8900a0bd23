using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Api.Tests.Security;
using AutogradService.Contracts.Inference;
using Grpc.Core;
using static AutogradService.Api.Tests.Inference.Oip;

namespace AutogradService.Api.Tests.Inference;

/// <summary>
/// /v2 follows /v1's caller rules: a credential on every model endpoint (REST and gRPC), a model is its creator's (to
/// anyone else it does not exist), the rate quota counts /v2 requests too; health and server metadata stay anonymous.
/// Refusals are the protocol's error body.
/// </summary>
public sealed class OipSecurityTests(SecureService service) : IClassFixture<SecureService>
{
    private static object Body => new { inputs = new[] { Fp32("x", [2], [1, 2]) } };

    [Fact]
    public async Task Rest_ModelsNeedACredential_AndAreTheirCreators()
    {
        using var alice = service.RestAs("alice");
        using var bob = service.RestAs("bob");
        using var root = service.RestAs("root");
        using var anonymous = service.CreateClient();
        (await alice.Put("/v1/models/oip-own", new { program = "y = x * 3" })).Ok();
        var mine = (await alice.Post("/v2/models/oip-own/infer", Body)).Ok();
        Assert.Equal([3.0, 6], Data(Named(mine.Body.GetProperty("outputs"), "y")));

        (await anonymous.Post("/v2/models/oip-own/infer", Body)).OipError(401, "unauthenticated");
        (await anonymous.Get("/v2/models/oip-own")).OipError(401, "unauthenticated");
        foreach (var path in new[] { "/v2/models/oip-own", "/v2/models/oip-own/ready" })
        {
            var refused = (await bob.Get(path)).OipError(404, "not_found");
            Assert.DoesNotContain("x * 3", refused.Text);
        }
        (await bob.Post("/v2/models/oip-own/infer", Body)).OipError(404, "not_found");
        (await bob.Post("/v2/models/oip-own/vjp", Body)).OipError(404, "not_found");
        (await root.Post("/v2/models/oip-own/infer", Body)).Ok(); // an admin sees every caller's models

        // Health and server metadata are anonymous, as /healthz is.
        Assert.Equal(HttpStatusCode.OK, (await anonymous.Get("/v2/health/live")).Status);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.Get("/v2/health/ready")).Status);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.Get("/v2")).Status);
    }

    [Fact]
    public async Task Grpc_ModelsAreTheirCreators()
    {
        using var alice = service.RestAs("alice");
        (await alice.Put("/v1/models/oip-own-grpc", new { program = "y = x * 3" })).Ok();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(service.Channel);
        Assert.True((await client.ModelReadyAsync(new ModelReadyRequest { Name = "oip-own-grpc" }, Credentials.GrpcAs("alice"))).Ready);
        Assert.False((await client.ModelReadyAsync(new ModelReadyRequest { Name = "oip-own-grpc" }, Credentials.GrpcAs("bob"))).Ready);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found",
            () => client.ModelMetadataAsync(new ModelMetadataRequest { Name = "oip-own-grpc" }, Credentials.GrpcAs("bob")).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated",
            () => client.ModelReadyAsync(new ModelReadyRequest { Name = "oip-own-grpc" }).ResponseAsync);
    }
}

/// <summary>The rate quota over /v2: three requests, then 429 with Retry-After in the protocol's error body.</summary>
public sealed class OipRateLimitTests(OipRateLimitTests.Limited service) : IClassFixture<OipRateLimitTests.Limited>
{
    public sealed class Limited() : ServiceFactory(Credentials.Settings(
        ["oip-rate"], new Dictionary<string, string?> { ["Quotas:RequestsPerWindow"] = "3", ["Quotas:RequestWindowSeconds"] = "3600" }));

    [Fact]
    public async Task TheFourthRequest_IsQuotaExceeded()
    {
        using var client = service.RestAs("oip-rate");
        (await client.Put("/v1/models/oip-rated", new { program = "y = x" })).Ok();
        (await client.Get("/v2/models/oip-rated")).Ok();
        (await client.Post("/v2/models/oip-rated/infer", new { inputs = new[] { Fp32("x", [1], [1]) } })).Ok();
        var refused = (await client.Post("/v2/models/oip-rated/infer", new { inputs = new[] { Fp32("x", [1], [1]) } })).OipError(429, "quota_exceeded");
        Assert.True(refused.Headers.RetryAfter is not null);
    }
}
