using System.Text.Json.Nodes;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>
/// Subgraph attributes in JSON: the bare graph and protobuf JSON's <c>{"graph": {...}}</c> wrapper both work (C5), and
/// an object that is neither a graph nor a tensor is refused with what an attribute object should look like — not
/// with a tensor's complaint about missing data.
/// </summary>
public sealed class GraphAttributeJsonTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    /// <summary>C5's graph with the while node's cond replaced by <paramref name="cond"/>.</summary>
    private static JsonNode C5With(Func<JsonNode, JsonNode> cond)
    {
        var graph = JsonNode.Parse(Serialize(Cases.C5Graph([]).ToJson()))!;
        var loop = graph["nodes"]!.AsArray().Single(n => n!["op"]!.GetValue<string>() == "while")!;
        loop["attrs"]!["cond"] = cond(loop["attrs"]!["cond"]!.DeepClone());
        return graph;
    }

    [Fact]
    public async Task ProtobufJsonGraphWrapper_IsASubgraph()
    {
        var graph = C5With(cond => new JsonObject { ["graph"] = cond });
        var r = (await _client.Post("/v1/gradient", new JsonObject { ["graph"] = graph, ["inputs"] = new JsonObject { ["a"] = 0.5 }, ["wrt"] = new JsonArray("a") }.ToJsonString())).Ok();
        Assert.Equal(1024, One(r.Body.At("outputs", "c")));
        Assert.Equal(2048, One(r.Body.At("gradients", "a")));
    }

    public static TheoryData<string, string> NotAnAttribute => new()
    {
        { """{"graph": COND, "type": "GRAPH"}""", "an object with graph, type" },
        { """{"g": COND}""", "an object with g" },
        { """{"graph": "b < 1000"}""", "an object with graph" },
        { """{"dtype": "float32", "shape": [1]}""", "an object with dtype, shape" },
        { """{}""", "an empty object" },
    };

    [Theory]
    [MemberData(nameof(NotAnAttribute))]
    public async Task AnObjectThatIsNeitherGraphNorTensor_SaysWhatAnAttributeIs(string cond, string described)
    {
        var graph = C5With(c => JsonNode.Parse(cond.Replace("COND", c.ToJsonString()))!);
        var r = (await _client.Post("/v1/gradient", new JsonObject { ["graph"] = graph, ["inputs"] = new JsonObject { ["a"] = 0.5 } }.ToJsonString()))
            .Problem(400, "invalid_graph");
        var detail = r.Str("detail");
        Assert.Contains("attribute 'cond'", detail);
        Assert.Contains("{\"graph\": {...}}", detail);
        Assert.Contains("\"inputs\"", detail);
        Assert.Contains(described, detail);
        Assert.DoesNotContain("needs data or b64", detail);
    }
}
