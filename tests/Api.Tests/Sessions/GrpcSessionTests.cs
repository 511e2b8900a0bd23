using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using static AutogradService.Api.Tests.Infrastructure.Tensors;
using static AutogradService.Api.Tests.Sessions.GrpcSession;

namespace AutogradService.Api.Tests.Sessions;

/// <summary>The chapter's define-by-run cases over the gRPC Sessions.Run stream: the stream is the session.</summary>
public sealed class GrpcSessionTests(DefaultService service) : IClassFixture<DefaultService>
{
    private Task<GrpcSession> OpenAsync(SessionOptions? options = null) => GrpcSession.OpenAsync(service.Sessions, options);

    private static async Task C1Async(GrpcSession s)
    {
        await s.Do(Variable("x", F32(Cases.X)));
        await s.Do(Apply("dot", "t", "x", "x"));
        await s.Do(Apply("mul", "y", "2", "t"));
    }

    [Fact]
    public async Task C1_AndTheStreamClosesCleanly()
    {
        using var s = await OpenAsync();
        await C1Async(s);
        Assert.Equal(new double[] { 28.0 }, await s.FetchAsync("y"));
        var backward = await s.Do(Backward("y"));
        Assert.Null(backward.Value);
        Assert.Equal(new double[] { 0.0, 4, 8, 12 }, await s.GradAsync("x"));
        await s.CloseAsync();
    }

    [Fact]
    public async Task C2_AccumulateZeroGradAndOverwrite()
    {
        using (var s = await OpenAsync(new SessionOptions { GradientMode = GradientMode.Accumulate }))
        {
            await C1Async(s);
            await s.Do(Backward("y"));
            await s.Do(Apply("sum", "y", "x"));
            await s.Do(Backward("y"));
            Assert.Equal(new double[] { 1.0, 5, 9, 13 }, await s.GradAsync("x"));
            await s.Do(ZeroGrad("x"));
            await s.Do(Apply("sum", "y", "x"));
            await s.Do(Backward("y"));
            Assert.Equal(new double[] { 1.0, 1, 1, 1 }, await s.GradAsync("x"));
        }
        using (var s = await OpenAsync(new SessionOptions { GradientMode = GradientMode.Overwrite }))
        {
            await C1Async(s);
            await s.Do(Backward("y"));
            await s.Do(Apply("sum", "y", "x"));
            await s.Do(Backward("y"));
            Assert.Equal(new double[] { 1.0, 1, 1, 1 }, await s.GradAsync("x"));
        }
    }

    [Fact]
    public async Task C3_SeedAndSumConvention()
    {
        using var s = await OpenAsync();
        await s.Do(Variable("x", F32(Cases.X)));
        await s.Do(Apply("mul", "y", "x", "x"));
        await s.Do(Backward("y", seed: F32([1, 1, 1, 1])));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));
        await s.Do(ZeroGrad());
        await s.Do(Apply("mul", "y", "x", "x"));
        await s.Do(Backward("y"));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));

        using var strict = await OpenAsync(new SessionOptions { StrictScalarSeed = true });
        await strict.Do(Variable("x", F32(Cases.X)));
        await strict.Do(Apply("mul", "y", "x", "x"));
        Assert.Equal("invalid_argument", (await strict.SendAsync(Backward("y"))).Error.Code);
    }

    [Fact]
    public async Task C4_Detach()
    {
        using var s = await OpenAsync();
        await s.Do(Variable("x", F32(Cases.X)));
        await s.Do(Apply("mul", "y", "x", "x"));
        await s.Do(Detach("y", "u"));
        await s.Do(Apply("mul", "z", "u", "x"));
        await s.Do(Apply("sum", "sz", "z"));
        await s.Do(Backward("sz"));
        Assert.Equal(new double[] { 0.0, 1, 4, 9 }, await s.GradAsync("x"));
        Assert.Equal(new double[] { 0.0, 1, 4, 9 }, await s.FetchAsync("u"));
        await s.Do(ZeroGrad("x"));
        await s.Do(Apply("sum", "sy", "y"));
        await s.Do(Backward("sy"));
        Assert.Equal(new double[] { 0.0, 2, 4, 6 }, await s.GradAsync("x"));
    }

    /// <summary>C5/E3: the while and the if are this test's own, deciding on norm and sum read back from the stream.</summary>
    private static async Task<(double[] C, double[] Grad)> C5Async(GrpcSession s, Tensor a)
    {
        await s.Do(Variable("a", a));
        await s.Do(Apply("mul", "b", "2", "a"));
        while (true)
        {
            await s.Do(Apply("norm", "n", "b"));
            if ((await s.FetchAsync("n")).Single() >= 1000) break;
            await s.Do(Apply("mul", "b", "2", "b"));
        }
        await s.Do(Apply("sum", "s", "b"));
        if ((await s.FetchAsync("s")).Single() > 0) await s.Do(Apply("identity", "c", "b"));
        else await s.Do(Apply("mul", "c", "100", "b"));
        await s.Do(Backward("c"));
        return (await s.FetchAsync("c"), await s.GradAsync("a"));
    }

    [Theory]
    [InlineData(0.5f, 1024f, 2048f)]
    [InlineData(-0.3f, -122880.0078f, 409600f)]
    [InlineData(1.7f, 1740.8f, 1024f)]
    public async Task C5_TheClientsOwnWhileAndIf(float a, float c, float grad)
    {
        using var s = await OpenAsync();
        var (value, gradient) = await C5Async(s, F32Scalar(a));
        Assert.Equal(c, (float)value.Single());
        Assert.Equal(grad, (float)gradient.Single());
        await s.CloseAsync();
    }

    [Fact]
    public async Task E3_VectorThroughTheClientsLoop()
    {
        using var s = await OpenAsync();
        var (c, grad) = await C5Async(s, F32Raw([0.3f, -0.2f, 0.1f]));
        JsonKit.Close([1228.8, -819.2, 409.6], c, 1e-6);
        Assert.Equal([4096.0, 4096, 4096], grad);
    }

    [Fact]
    public async Task E1_CreateGraph_Float64FirstDerivative()
    {
        using var s = await OpenAsync();
        await s.Do(Variable("x", F64(Cases.E6X)));
        await s.Do(Apply("pow", "sq", "x", "2"));
        await s.Do(Apply("log", "lg", "sq"));
        await s.Do(Apply("sin", "sn", "x"));
        await s.Do(Apply("mul", "p", "lg", "sn"));
        await s.Do(Apply("div", "r", "1", "x"));
        await s.Do(Apply("add", "f", "p", "r"));
        JsonKit.Close(Cases.E6F, await s.FetchAsync("f"), 1e-12);
        await s.Do(Backward("f", createGraph: true));
        var grad = await s.Do(new Command { Grad = new GradCommand { Name = "x" } });
        Assert.Equal(DType.Float64, grad.Value.Dtype);
        JsonKit.Close(Cases.E6Df, Values(grad.Value), 1e-12);
    }

    [Fact]
    public async Task E2_GraphFreedThenRetainGraph()
    {
        using var s = await OpenAsync();
        await C1Async(s);
        await s.Do(Backward("y"));
        var freed = await s.SendAsync(Backward("y"));
        Assert.Equal("graph_freed", freed.Error.Code);
        Assert.Contains("retain_graph", freed.Error.Detail);
        await s.Do(ZeroGrad("x"));
        await s.Do(Apply("dot", "t", "x", "x"));
        await s.Do(Apply("mul", "y", "2", "t"));
        await s.Do(Backward("y", retainGraph: true));
        Assert.Equal(new double[] { 0.0, 4, 8, 12 }, await s.GradAsync("x"));
        await s.Do(Backward("y"));
        Assert.Equal(new double[] { 0.0, 8, 16, 24 }, await s.GradAsync("x"));
    }

    [Fact]
    public async Task Isolation_AnotherStreamCannotReadValues()
    {
        using var a = await OpenAsync(new SessionOptions());
        using var b = await OpenAsync(new SessionOptions());
        await a.Do(Variable("secret", F32([42])));
        var reply = await b.SendAsync(Fetch("secret"));
        Assert.Equal("not_found", reply.Error.Code);
        Assert.Equal(new double[] { 42.0 }, await a.FetchAsync("secret"));
    }

    [Fact]
    public async Task OpenMustComeFirst_AndErrorsNameTheirCommand()
    {
        using var s = await OpenAsync(new SessionOptions());
        var again = await s.SendAsync(new Command { Open = new SessionOptions() });
        Assert.Equal("invalid_argument", again.Error.Code);
        await s.Do(Variable("p", F32([1, 2])));
        await s.Do(Variable("q", F32([1, 2, 3])));
        var shape = await s.SendAsync(Apply("add", "r", "p", "q"));
        Assert.Equal(("shape_mismatch", "r", "add"), (shape.Error.Code, shape.Error.Node, shape.Error.Op));
        var empty = await s.SendAsync(new Command());
        Assert.Equal("invalid_argument", empty.Error.Code);
        await s.CloseAsync();
    }
}
