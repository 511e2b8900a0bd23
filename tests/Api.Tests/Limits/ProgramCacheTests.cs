using AutogradService.Api.Execution;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Limits;

/// <summary>Issue #9's repro: refused programs were cached before the node limit was checked, and RSS stayed at 1.9 GB.</summary>
public sealed class ProgramCacheTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task RefusedPrograms_LeaveNothingInTheCache_AcceptedOnesAreKeptWithinTheirBytes()
    {
        var programs = service.Get<TransformService>().Programs;
        long before = programs.Weight;
        int count = programs.Count;
        // About 400 KB each, over the 10,000-node limit: refused while parsing, never cached.
        string tooMany = string.Join("\n", Enumerable.Range(0, 20_000).Select(i => $"v{i + 1} = {(i == 0 ? "x" : $"v{i}")} + 1"));
        for (int i = 0; i < 3; i++)
            (await _client.Post("/v1/evaluate", new { program = tooMany + $"\n# {i}", inputs = new { x = 1 } })).Problem(400, "invalid_graph");
        Assert.Equal(before, programs.Weight);
        Assert.Equal(count, programs.Count);

        (await _client.Post("/v1/evaluate", new { program = "y = x * 3", inputs = new { x = 1 } })).Ok();
        Assert.Equal(count + 1, programs.Count);
        Assert.True(programs.Weight > before && programs.Weight <= programs.MaxWeight);
    }
}
