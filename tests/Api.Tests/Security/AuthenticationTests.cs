using System.Net;
using AutogradService.Api.Security;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Security;

/// <summary>
/// With security on every REST, gRPC and gRPC-Web call needs an API key (<c>x-api-key</c> or a bearer token) or a JWT;
/// without one it is <c>unauthenticated</c> in the transport's own error form. Health, metrics and the API page stay
/// anonymous by default.
/// </summary>
public sealed class AuthenticationTests(SecureService service) : IClassFixture<SecureService>
{
    private static readonly object Evaluate = new { program = Cases.C1Program, inputs = new { x = Cases.X } };

    private static EvaluateRequest GrpcEvaluate() =>
        new() { Computation = new Computation { Program = Cases.C1Program }, Inputs = { ["x"] = Tensors.F32(Cases.X) } };

    [Fact]
    public async Task Rest_WithoutCredential_IsUnauthenticated()
    {
        using var client = service.CreateClient();
        var reply = (await client.Post("/v1/evaluate", Evaluate)).Problem(401, "unauthenticated");
        Assert.Contains("x-api-key", reply.Body.GetProperty("detail").GetString());
        Assert.Contains("Bearer", reply.Headers.WwwAuthenticate.ToString());
        (await client.Get("/v1/models")).Problem(401, "unauthenticated");
        (await client.Get("/v1/ops")).Problem(401, "unauthenticated");
        (await client.Post("/v1/sessions", new { })).Problem(401, "unauthenticated");
    }

    [Fact]
    public async Task Grpc_WithoutCredential_IsUnauthenticated()
    {
        await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated", () => service.Autodiff.PingAsync(new PingRequest()).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated", () => service.Models.ListAsync(new ListModelsRequest()).ResponseAsync);
        using var call = service.Sessions.Run();
        await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated", () => call.ResponseStream.MoveNext(default));
    }

    [Fact]
    public async Task GrpcWeb_WithoutCredential_IsUnauthenticated_WithOneItAnswers()
    {
        using var client = service.CreateClient();
        async Task<string> Ping(string? key)
        {
            // An empty Ping message in one gRPC-Web frame: flag 0, length 0.
            using var request = new HttpRequestMessage(HttpMethod.Post, "/autograd.v1.Autodiff/Ping") { Content = new ByteArrayContent(new byte[5]) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc-web");
            if (key is not null) request.Headers.Add(ApiKeyAuthenticationHandler.Header, key);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            // A trailers-only answer has its status in the headers; otherwise the trailers close the body.
            if (response.Headers.TryGetValues("grpc-status", out var status)) return status.Single();
            var body = System.Text.Encoding.ASCII.GetString(await response.Content.ReadAsByteArrayAsync()).Replace(" ", "");
            return body[(body.IndexOf("grpc-status:", StringComparison.Ordinal) + "grpc-status:".Length)..].Split('\r')[0];
        }
        Assert.Equal(((int)StatusCode.Unauthenticated).ToString(), await Ping(null));
        Assert.Equal(((int)StatusCode.Unauthenticated).ToString(), await Ping("not-a-key"));
        Assert.Equal("0", await Ping(Credentials.KeyOf("alice")));
    }

    [Fact]
    public async Task ApiKey_InEitherHeader_OverRestAndGrpc()
    {
        using var byHeader = service.RestAs("alice");
        Assert.Equal(28.0, One((await byHeader.Post("/v1/evaluate", Evaluate)).Ok().Body.At("outputs", "y")));
        using var byBearer = service.RestWithBearer(Credentials.KeyOf("alice"));
        Assert.Equal(28.0, One((await byBearer.Post("/v1/evaluate", Evaluate)).Ok().Body.At("outputs", "y")));

        var viaMetadata = await service.Autodiff.EvaluateAsync(GrpcEvaluate(), Credentials.GrpcAs("alice"));
        Assert.Equal([28.0], Tensors.Values(viaMetadata.Outputs["y"]));
        var viaBearer = await service.Autodiff.EvaluateAsync(GrpcEvaluate(), Credentials.GrpcBearer(Credentials.KeyOf("alice")));
        Assert.Equal([28.0], Tensors.Values(viaBearer.Outputs["y"]));
    }

    [Fact]
    public async Task UnknownApiKey_IsUnauthenticated_AndSaysWhy()
    {
        using var client = service.CreateClient();
        client.DefaultRequestHeaders.Add(ApiKeyAuthenticationHandler.Header, "key-mallory-0123456789abcdef");
        var reply = (await client.Post("/v1/evaluate", Evaluate)).Problem(401, "unauthenticated");
        Assert.Contains("not recognised", reply.Body.GetProperty("detail").GetString());
        using var bearer = service.RestWithBearer("key-mallory-0123456789abcdef");
        (await bearer.Post("/v1/evaluate", Evaluate)).Problem(401, "unauthenticated");
        var e = await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated",
            () => service.Autodiff.EvaluateAsync(GrpcEvaluate(), Credentials.GrpcBearer("key-mallory-0123456789abcdef")).ResponseAsync);
        Assert.Contains("not recognised", e.Status.Detail);
    }

    [Fact]
    public async Task Jwt_ValidIsAccepted_ExpiredWrongKeyAndWrongAudienceAreNot_OverRestAndGrpc()
    {
        var valid = Credentials.Jwt("carol");
        using (var client = service.RestWithBearer(valid))
            Assert.Equal(28.0, One((await client.Post("/v1/evaluate", Evaluate)).Ok().Body.At("outputs", "y")));
        var reply = await service.Autodiff.EvaluateAsync(GrpcEvaluate(), Credentials.GrpcBearer(valid));
        Assert.Equal([28.0], Tensors.Values(reply.Outputs["y"]));

        var refused = new (string Token, string Why)[]
        {
            (Credentials.Jwt("carol", expiresIn: TimeSpan.FromHours(-1)), "expired"),
            (Credentials.Jwt("carol", signingKey: "another-signing-key-that-is-32-bytes-long"), "signature"),
            (Credentials.Jwt("carol", audience: "someone-else"), "audience"),
            ("not.a.jwt", "not valid"),
        };
        foreach (var (token, why) in refused)
        {
            using var client = service.RestWithBearer(token);
            var problem = (await client.Post("/v1/evaluate", Evaluate)).Problem(401, "unauthenticated");
            Assert.Contains(why, problem.Body.GetProperty("detail").GetString());
            var e = await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated",
                () => service.Autodiff.EvaluateAsync(GrpcEvaluate(), Credentials.GrpcBearer(token)).ResponseAsync);
            Assert.Contains(why, e.Status.Detail);
        }
    }

    [Fact]
    public async Task OperationsEndpoints_AreAnonymousByDefault()
    {
        using var client = service.CreateClient();
        foreach (var path in new[] { "/healthz", "/readyz", "/metrics", "/openapi/v1.json", "/scalar/v1" })
        {
            using var response = await client.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode}");
        }
        var health = new global::Grpc.Health.V1.Health.HealthClient(service.Channel);
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving,
            (await health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task OpenApi_DeclaresTheApiKeyAndBearerSchemes()
    {
        using var client = service.CreateClient();
        var doc = (await client.Get("/openapi/v1.json")).Ok().Body;
        var schemes = doc.At("components", "securitySchemes");
        Assert.Equal("apiKey", schemes.At("apiKey", "type").GetString());
        Assert.Equal("header", schemes.At("apiKey", "in").GetString());
        Assert.Equal("x-api-key", schemes.At("apiKey", "name").GetString());
        Assert.Equal("http", schemes.At("bearer", "type").GetString());
        Assert.Equal("bearer", schemes.At("bearer", "scheme").GetString());
        var alternatives = doc.GetProperty("security").EnumerateArray().SelectMany(r => r.EnumerateObject().Select(p => p.Name)).ToArray();
        Assert.Equal(["apiKey", "bearer"], alternatives);
    }

    [Fact]
    public void ApiKeyHash_IsTheKeysSha256InLowercaseHex()
    {
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ApiKeyHash.Of("abc"));
        Assert.True(ApiKeyHash.IsHash(ApiKeyHash.Of("anything")));
        Assert.False(ApiKeyHash.IsHash("abc"));
    }
}

/// <summary><c>Security:AnonymousOperations=false</c> puts health, metrics and the API page behind authentication too.</summary>
public sealed class ClosedOperationsTests(ClosedOperationsService service) : IClassFixture<ClosedOperationsService>
{
    [Fact]
    public async Task OperationsEndpoints_NeedACredential()
    {
        using var anonymous = service.CreateClient();
        using var alice = service.RestAs("alice");
        foreach (var path in new[] { "/healthz", "/metrics", "/openapi/v1.json" })
        {
            (await anonymous.Get(path)).Problem(401, "unauthenticated");
            using var response = await alice.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode}");
        }
        var health = new global::Grpc.Health.V1.Health.HealthClient(service.Channel);
        await GrpcErrors.Expect(StatusCode.Unauthenticated, "unauthenticated", () => health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest()).ResponseAsync);
    }
}

/// <summary>Security settings that cannot work end start-up with a message that names the setting.</summary>
public sealed class SecurityConfigurationTests : IDisposable
{
    private readonly string _models = Path.Combine(Path.GetTempPath(), "autograd-security-config", Guid.NewGuid().ToString("N"));

    /// <summary>The real binary: a bad security setting ends start-up with one line naming it (as every bad setting does).</summary>
    [Theory]
    [InlineData("Security:Enabled", "true", "no Security:ApiKeys or Security:Jwt")]
    [InlineData("Security:ApiKeys:0:Sha256", "not-a-hash", "Security:ApiKeys:0:Sha256")]
    [InlineData("Security:Jwt:SigningKey", "short", "Security:Jwt:SigningKey")]
    public async Task InvalidSettings_StopStartUp_NamingTheSetting(string key, string value, string named)
    {
        var arguments = new List<string> { $"--Server:ModelRepositoryPath={_models}", "--Server:RestPort=0", "--Server:GrpcPort=0", $"--{key}={value}" };
        if (key.StartsWith("Security:ApiKeys", StringComparison.Ordinal)) arguments.Add("--Security:ApiKeys:0:Name=alice");
        if (key == "Security:Jwt:SigningKey")
        {
            arguments.Add($"--Security:Jwt:Issuer={Credentials.Issuer}");
            arguments.Add($"--Security:Jwt:Audience={Credentials.Audience}");
        }
        using var binary = ServiceBinary.Start([.. arguments]);
        Assert.True(await binary.ExitedWithin(TimeSpan.FromSeconds(60)), "the service kept running with a bad setting");
        var line = Assert.Single(binary.Stderr, l => l.Length > 0);
        Assert.Contains(named, line);
        Assert.Equal(AutogradService.Api.Operations.StartupErrors.ExitCode, binary.ExitCode);
    }

    public void Dispose()
    {
        if (Directory.Exists(_models)) Directory.Delete(_models, recursive: true);
    }
}
