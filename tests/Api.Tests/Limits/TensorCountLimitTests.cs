using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Engine.Memory;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Limits;

/// <summary>Few tensors per request and per session, so a long chain of tiny ops meets the limit the byte budget never sees.</summary>
public sealed class FewTensorsService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:MaxTensorsPerRequest"] = "60",
    ["Limits:MaxTensorsPerSession"] = "40",
});

[Collection(SerialCollection.Name)] // reads the shared pool's outstanding bytes
public sealed class TensorCountLimitTests(FewTensorsService service) : IClassFixture<FewTensorsService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static string Chain(int nodes) => string.Join("\n", Enumerable.Range(0, nodes).Select(i => $"v{i + 1} = sin({(i == 0 ? "x" : $"v{i}")})"));

    [Fact]
    public async Task Request_UnderTheLimit_Runs_PastIt_IsMemoryLimitExceeded()
    {
        long before = BufferPool.Shared.OutstandingBytes;
        (await _client.Post("/v1/gradient", new { program = Chain(5), inputs = new { x = 1 }, wrt = new[] { "x" } })).Ok();
        var r = (await _client.Post("/v1/gradient", new { program = Chain(200), inputs = new { x = 1 }, wrt = new[] { "x" } }))
            .Problem(422, "memory_limit_exceeded");
        Assert.Contains("60 tensors", r.Str("detail"));
        Assert.Equal(before, BufferPool.Shared.OutstandingBytes);
    }

    [Fact]
    public async Task Session_TapeGrowsToTheLimit_ThenIsRefused_AndTheSessionStillAnswers()
    {
        var open = (await _client.Post("/v1/sessions", "{}")).Ok();
        string id = open.Str("id");
        object Apply(string program) => new { apply = new { program } };
        (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { variable = new { name = "a", value = 0.5 } } } })).Ok();
        RestReply? refused = null;
        for (int i = 0; i < 100 && refused is null; i++)
        {
            var r = await _client.Post($"/v1/sessions/{id}/commands", new { commands = new[] { Apply("a = sin(a)") } });
            if ((int)r.Status != 200) refused = r;
        }
        Assert.NotNull(refused);
        refused!.Problem(422, "memory_limit_exceeded");
        // The refused command changed nothing: the session still answers.
        var fetched = (await _client.Post($"/v1/sessions/{id}/commands", new { commands = new object[] { new { fetch = new { name = "a" } } } })).Ok();
        Assert.True(fetched.Body.ToString().Length > 0);
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await _client.Delete($"/v1/sessions/{id}")).Status);
    }
}
