using AutogradService.Engine.Ops;

namespace AutogradService.Engine.Tests.Ops;

public class OpRegistryTests
{
    [Fact]
    public void EverySchemaIsComplete()
    {
        // The catalog (GET /v1/ops) is generated from these: a null here is a static-initialisation-order bug.
        foreach (var schema in OpRegistry.Default.Describe())
        {
            Assert.False(string.IsNullOrWhiteSpace(schema.Name));
            Assert.False(string.IsNullOrWhiteSpace(schema.Summary), schema.Name);
            Assert.All(schema.Inputs, i => Assert.NotNull(i));
            Assert.All(schema.Attributes, a => Assert.NotNull(a));
        }
    }

    [Fact]
    public void NamesAndAliasesResolve()
    {
        Assert.Same(OpRegistry.Default.Get("detach"), OpRegistry.Default.Get("stop_gradient"));
        var e = Assert.Throws<EngineException>(() => OpRegistry.Default.Get("frobnicate"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
    }
}
