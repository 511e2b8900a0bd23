using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Models;

/// <summary>Models: register once (validated, planned), run by name many times, list, describe, delete; REST and gRPC.</summary>
public sealed class ModelTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task Rest_PutGetListRunDelete()
    {
        var put = (await _client.Put("/v1/models/rest-c1", new { program = Cases.C1Program })).Ok();
        Assert.Equal("rest-c1", put.Str("name"));
        Assert.Equal(["y"], put.Body.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()!).ToArray());
        Assert.Equal("x", put.Body.GetProperty("inputs")[0].GetProperty("name").GetString());
        Assert.Equal(2, put.Body.GetProperty("node_count").GetInt64());
        Assert.True(File.Exists(Path.Combine(service.ModelsPath, "rest-c1.json")));
        Assert.Empty(Directory.GetFiles(service.ModelsPath, "*.tmp")); // written atomically: no temp file left

        var get = (await _client.Get("/v1/models/rest-c1")).Ok();
        Assert.Equal(2, get.Body.GetProperty("node_count").GetInt64());
        Assert.True(get.Body.TryGetProperty("flops", out _));
        Assert.True(get.Body.TryGetProperty("peak_bytes", out _));
        var list = (await _client.Get("/v1/models")).Ok();
        Assert.Contains(list.Body.GetProperty("models").EnumerateArray(), m => m.GetProperty("name").GetString() == "rest-c1");

        for (int i = 0; i < 3; i++) // run many
        {
            var run = (await _client.Post("/v1/gradient", new { model = "rest-c1", inputs = new { x = Cases.X } })).Ok();
            Assert.Equal(28.0, One(run.Body.At("outputs", "y")));
            Assert.Equal([0.0, 4, 8, 12], Values(run.Body.At("gradients", "x")));
        }

        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await _client.Delete("/v1/models/rest-c1")).Status);
        Assert.False(File.Exists(Path.Combine(service.ModelsPath, "rest-c1.json")));
        (await _client.Get("/v1/models/rest-c1")).Problem(404, "not_found");
        (await _client.Post("/v1/evaluate", new { model = "rest-c1", inputs = new { x = Cases.X } })).Problem(404, "not_found");
    }

    [Fact]
    public async Task Rest_AGraphWithLoopAndBranch_RunsByNameThroughEveryTransform()
    {
        (await _client.Put("/v1/models/rest-e3", new { graph = Cases.C5Graph([3]).ToJson() })).Ok();
        var a = new[] { 0.3, -0.2, 0.1 };
        var j = (await _client.Post("/v1/jacobian", new { model = "rest-e3", inputs = new { a } })).Ok();
        Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], Values(j.Body.At("jacobians", "c", "a")));
        var jvp = (await _client.Post("/v1/jvp", new { model = "rest-e3", inputs = new { a }, tangents = new { a = new[] { 1, 1, 1 } } })).Ok();
        Assert.Equal([4096.0, 4096, 4096], Values(jvp.Body.At("tangents_out", "c")));
        // Putting again replaces it.
        (await _client.Put("/v1/models/rest-e3", new { program = "c = a * 3" })).Ok();
        var eval = (await _client.Post("/v1/evaluate", new { model = "rest-e3", inputs = new { a } })).Ok();
        Close([0.9, -0.6, 0.3], Values(eval.Body.At("outputs", "c")), 1e-6);
        await _client.Delete("/v1/models/rest-e3");
    }

    [Fact]
    public async Task Rest_RefusesBadNamesAndInvalidGraphs()
    {
        (await _client.Put("/v1/models/.hidden", new { program = Cases.C1Program })).Problem(400, "invalid_argument");
        (await _client.Put("/v1/models/bad", new { program = "y = frobnicate(x)" })).Problem(400, "invalid_graph");
        (await _client.Put("/v1/models/bad", new { })).Problem(400, "invalid_argument");
        (await _client.Get("/v1/models/bad")).Problem(404, "not_found");
    }

    [Fact]
    public async Task Grpc_PutGetListRunDelete()
    {
        var models = service.Models;
        var info = await models.PutAsync(new PutModelRequest { Name = "grpc-e3", Graph = Cases.C5Graph([3]).ToProto() });
        Assert.Equal("grpc-e3", info.Name);
        Assert.Equal(["c"], info.Outputs);
        Assert.Equal(9, info.NodeCount); // 5 nodes, and 4 more inside the loop's and the branch's subgraphs
        Assert.Equal("a", Assert.Single(info.Inputs).Name);
        await models.PutAsync(new PutModelRequest { Name = "grpc-c1", Program = Cases.C1Program });

        Assert.Equal(2, (await models.GetAsync(new GetModelRequest { Name = "grpc-c1" })).NodeCount);
        var names = (await models.ListAsync(new ListModelsRequest())).Models.Select(m => m.Name).ToArray();
        Assert.Contains("grpc-e3", names);
        Assert.Contains("grpc-c1", names);

        var gradient = new GradientRequest { Computation = new Computation { Model = "grpc-e3" } };
        gradient.Inputs["a"] = Tensors.F32([0.3f, -0.2f, 0.1f]);
        var r = await service.Autodiff.GradientAsync(gradient);
        Assert.Equal([4096.0, 4096, 4096], Tensors.Values(r.Gradients["a"]));

        await models.DeleteAsync(new DeleteModelRequest { Name = "grpc-e3" });
        await models.DeleteAsync(new DeleteModelRequest { Name = "grpc-c1" });
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => models.GetAsync(new GetModelRequest { Name = "grpc-e3" }).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.NotFound, "not_found", () => service.Autodiff.GradientAsync(gradient).ResponseAsync);
        await GrpcErrors.Expect(StatusCode.InvalidArgument, "invalid_graph",
            () => models.PutAsync(new PutModelRequest { Name = "bad", Program = "y = frobnicate(x)" }).ResponseAsync);
    }
}

/// <summary>Registered models live in the repository folder and come back when a new host starts over it.</summary>
public sealed class ModelRestartTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "autograd-api-tests", "restart-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task ModelsSurviveARestartOfTheHost()
    {
        using (var first = new ServiceFactory(modelsPath: _folder))
        {
            var client = first.CreateClient();
            (await client.Put("/v1/models/e6", new { program = Cases.E6Program })).Ok();
            var before = (await client.Post("/v1/gradient", new { model = "e6", inputs = new { x = Cases.E6XJson } })).Ok();
            Assert.Equal("float64", DType(before.Body.At("gradients", "x")));
            (await client.Put("/v1/models/e3", new { graph = Cases.C5Graph([3]).ToJson() })).Ok();
            await first.Models.PutAsync(new PutModelRequest { Name = "c1", Program = Cases.C1Program });
            (await client.Put("/v1/models/gone", new { program = Cases.C1Program })).Ok();
            await client.Delete("/v1/models/gone");
        }

        using var second = new ServiceFactory(modelsPath: _folder);
        var again = second.CreateClient();
        var names = (await again.Get("/v1/models")).Ok().Body.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!).ToArray();
        Assert.Equal(["c1", "e3", "e6"], names);
        Assert.Equal(6, (await again.Get("/v1/models/e6")).Ok().Body.GetProperty("node_count").GetInt64());

        var c1 = (await again.Post("/v1/gradient", new { model = "c1", inputs = new { x = Cases.X } })).Ok();
        Assert.Equal(28.0, One(c1.Body.At("outputs", "y")));
        Assert.Equal([0.0, 4, 8, 12], Values(c1.Body.At("gradients", "x")));

        var e3 = (await again.Post("/v1/jacobian", new { model = "e3", inputs = new { a = new[] { 0.3, -0.2, 0.1 } } })).Ok();
        Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], Values(e3.Body.At("jacobians", "c", "a")));

        var request = new GradientRequest { Computation = new Computation { Model = "e6" } };
        request.Inputs["x"] = Tensors.F64(Cases.E6X);
        var e6 = await second.Autodiff.GradientAsync(request);
        Assert.Equal(Contracts.V1.DType.Float64, e6.Gradients["x"].Dtype);
        Close(Cases.E6F, Tensors.Values(e6.Outputs["f"]), 1e-12);
        Close(Cases.E6Df, Tensors.Values(e6.Gradients["x"]), 1e-12);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
