using System.Net;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Security;

/// <summary>
/// Sessions and models belong to the caller that created them: to another caller they do not exist (<c>not_found</c>,
/// never the data). An admin may see, replace and delete every caller's models; sessions stay their owner's alone.
/// </summary>
public sealed class OwnershipTests(SecureService service) : IClassFixture<SecureService>
{
    private readonly HttpClient _alice = service.RestAs("alice");
    private readonly HttpClient _bob = service.RestAs("bob");
    private readonly HttpClient _root = service.RestAs("root");

    private static object Commands(params object[] commands) => new { commands };

    [Fact]
    public async Task Rest_AnotherCallersSession_IsNotFound_ForEveryCommandAndForDelete()
    {
        var id = (await _alice.Post("/v1/sessions", new { })).Ok().Str("id");
        (await _alice.Post($"/v1/sessions/{id}/commands", Commands(new { variable = new { name = "secret", value = new[] { 4.0, 2.0 } } }))).Ok();

        foreach (var other in new[] { _bob, _root })
        {
            foreach (var command in new object[]
                     {
                         new { fetch = new { name = "secret" } },
                         new { apply = new { op = "mul", inputs = new[] { "secret", "secret" }, output = "y" } },
                         new { grad = new { name = "secret" } },
                         new { release = new { names = new[] { "secret" } } },
                     })
            {
                var reply = (await other.Post($"/v1/sessions/{id}/commands", Commands(command))).Problem(404, "not_found");
                Assert.DoesNotContain("4", reply.Body.GetProperty("detail").GetString());
            }
            (await other.Delete($"/v1/sessions/{id}")).Problem(404, "not_found");
        }
        // Nothing another caller did reached it.
        var fetched = (await _alice.Post($"/v1/sessions/{id}/commands", Commands(new { fetch = new { name = "secret" } }))).Ok();
        Assert.Equal([4.0, 2.0], Values(fetched.Body.GetProperty("results")[0].GetProperty("value")));
        Assert.Equal(HttpStatusCode.NoContent, (await _alice.Delete($"/v1/sessions/{id}")).Status);
    }

    [Fact]
    public async Task Rest_AModelIsItsCreators_OthersGetNotFound_AnAdminManagesIt()
    {
        (await _alice.Put("/v1/models/own-rest", new { program = Cases.C1Program })).Ok();
        var run = new { model = "own-rest", inputs = new { x = Cases.X } };

        (await _bob.Get("/v1/models/own-rest")).Problem(404, "not_found");
        (await _bob.Post("/v1/evaluate", run)).Problem(404, "not_found");
        (await _bob.Post("/v1/gradient", run)).Problem(404, "not_found");
        (await _bob.Put("/v1/models/own-rest", new { program = "y = x * 0" })).Problem(404, "not_found");
        (await _bob.Delete("/v1/models/own-rest")).Problem(404, "not_found");
        Assert.DoesNotContain(Names(await _bob.Get("/v1/models")), n => n == "own-rest");
        // Still alice's and unchanged.
        Assert.Contains("own-rest", Names(await _alice.Get("/v1/models")));
        Assert.Equal(28.0, One((await _alice.Post("/v1/evaluate", run)).Ok().Body.At("outputs", "y")));

        // The admin sees every caller's models, runs and replaces them (alice keeps it), and deletes them.
        Assert.Contains("own-rest", Names(await _root.Get("/v1/models")));
        (await _root.Get("/v1/models/own-rest")).Ok();
        (await _root.Put("/v1/models/own-rest", new { program = "y = 3 * sum(x)" })).Ok();
        Assert.Equal(18.0, One((await _alice.Post("/v1/evaluate", run)).Ok().Body.At("outputs", "y")));
        Assert.Equal(18.0, One((await _root.Post("/v1/evaluate", run)).Ok().Body.At("outputs", "y")));
        Assert.Equal(HttpStatusCode.NoContent, (await _root.Delete("/v1/models/own-rest")).Status);
        (await _alice.Get("/v1/models/own-rest")).Problem(404, "not_found");
    }

    [Fact]
    public async Task Grpc_AModelIsItsCreators_OthersGetNotFound_AnAdminManagesIt()
    {
        var models = service.Models;
        await models.PutAsync(new PutModelRequest { Name = "own-grpc", Program = Cases.C1Program }, Credentials.GrpcAs("alice"));
        var bob = Credentials.GrpcAs("bob");
        var run = new EvaluateRequest { Computation = new Computation { Model = "own-grpc" }, Inputs = { ["x"] = Tensors.F32(Cases.X) } };

        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => models.GetAsync(new GetModelRequest { Name = "own-grpc" }, bob).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => service.Autodiff.EvaluateAsync(run, bob).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found",
            () => models.PutAsync(new PutModelRequest { Name = "own-grpc", Program = "y = x * 0" }, bob).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => models.DeleteAsync(new DeleteModelRequest { Name = "own-grpc" }, bob).ResponseAsync);
        Assert.DoesNotContain((await models.ListAsync(new ListModelsRequest(), bob)).Models, m => m.Name == "own-grpc");
        Assert.Contains((await models.ListAsync(new ListModelsRequest(), Credentials.GrpcAs("alice"))).Models, m => m.Name == "own-grpc");
        var own = await service.Autodiff.EvaluateAsync(run, Credentials.GrpcAs("alice"));
        Assert.Equal([28.0], Tensors.Values(own.Outputs["y"]));

        // An admin by JWT role claim: the same powers as the admin API key.
        var admin = Credentials.GrpcBearer(Credentials.Jwt("operator", roles: ["admin"]));
        Assert.Contains((await models.ListAsync(new ListModelsRequest(), admin)).Models, m => m.Name == "own-grpc");
        Assert.Equal(2, (await models.GetAsync(new GetModelRequest { Name = "own-grpc" }, admin)).NodeCount);
        await models.DeleteAsync(new DeleteModelRequest { Name = "own-grpc" }, admin);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found",
            () => models.GetAsync(new GetModelRequest { Name = "own-grpc" }, Credentials.GrpcAs("alice")).ResponseAsync);
    }

    [Fact]
    public async Task Grpc_ASessionStreamRunsAsItsCaller()
    {
        // A gRPC session is its stream: no other caller can address it. It runs as its caller, and a JWT caller
        // is told apart from API-key callers by its subject.
        using var call = service.Sessions.Run(Credentials.GrpcBearer(Credentials.Jwt("dave")));
        await call.RequestStream.WriteAsync(new Command { Variable = new VariableCommand { Name = "x", Value = Tensors.F32([1, 2]) } });
        Assert.True(await call.ResponseStream.MoveNext(default));
        Assert.Null(call.ResponseStream.Current.Error);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(default));
    }

    [Fact]
    public async Task ModelFiles_KeepTheirOwnerAcrossARestart_AndOldFilesAreTheAnonymousCallers()
    {
        var folder = Path.Combine(Path.GetTempPath(), "autograd-api-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            // A file from before owners existed: the bare graph.
            File.WriteAllText(Path.Combine(folder, "legacy.json"),
                """{"inputs":[{"name":"x"}],"nodes":[{"op":"mul","inputs":["x","x"],"outputs":["y"]}],"outputs":["y"]}""");
            using (var first = new ServiceFactory(Credentials.Settings(["alice", "bob", "root:admin"]), folder))
                (await first.RestAs("alice").Put("/v1/models/kept", new { program = Cases.C1Program })).Ok();
            Assert.Contains("\"owner\": \"alice\"", File.ReadAllText(Path.Combine(folder, "kept.json")));

            using var second = new ServiceFactory(Credentials.Settings(["alice", "bob", "root:admin"]), folder);
            (await second.RestAs("alice").Get("/v1/models/kept")).Ok();
            (await second.RestAs("bob").Get("/v1/models/kept")).Problem(404, "not_found");
            (await second.RestAs("alice").Get("/v1/models/legacy")).Problem(404, "not_found");
            Assert.Equal(["kept", "legacy"], Names(await second.RestAs("root").Get("/v1/models")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string[] Names(RestReply list) =>
        list.Ok().Body.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!).ToArray();
}
