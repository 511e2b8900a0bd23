using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using static AutogradService.Api.Tests.Infrastructure.Tensors;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>Every stateless transform over gRPC (Autodiff service), tensors as raw bytes and as typed fields.</summary>
public sealed class GrpcTransformTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly Autodiff.AutodiffClient _client = service.Autodiff;

    private static Computation Program(string text) => new() { Program = text };

    private static Tensor E6XTensor => F64(Cases.E6X);

    [Fact]
    public async Task C1_GradientOfAProgram_TypedFields()
    {
        var request = new GradientRequest { Computation = Program(Cases.C1Program) };
        request.Inputs["x"] = F32(Cases.X);
        var r = await _client.GradientAsync(request);
        Assert.Equal(28.0, One(r.Outputs["y"]));
        Assert.Equal([0.0, 4, 8, 12], Values(r.Gradients["x"]));
        Assert.Equal([4L], r.Gradients["x"].Shape);
        Assert.Equal(DType.Float32, r.Gradients["x"].Dtype);
        Assert.False(r.Gradients["x"].Raw.IsEmpty); // responses carry raw little-endian bytes
        Assert.True(r.Stats.NodesExecuted >= 2);
        Assert.True(r.Stats.PeakBytes > 0);
    }

    [Fact]
    public async Task C1_GradientOfAGraph_RawBytes()
    {
        var request = new GradientRequest { Computation = new Computation { Graph = Cases.C1Graph.ToProto() } };
        request.Inputs["x"] = F32Raw(Cases.X);
        request.Wrt.Add("x");
        var r = await _client.GradientAsync(request);
        Assert.Equal(28.0, One(r.Outputs["y"]));
        Assert.Equal([0.0, 4, 8, 12], Values(r.Gradients["x"]));
    }

    [Fact]
    public async Task Evaluate()
    {
        var request = new EvaluateRequest { Computation = Program(Cases.C1Program) };
        request.Inputs["x"] = F32(Cases.X);
        var r = await _client.EvaluateAsync(request);
        Assert.Equal(28.0, One(r.Outputs["y"]));
    }

    [Fact]
    public async Task C3_SeedAndSumConvention()
    {
        var seeded = new GradientRequest { Computation = Program(Cases.C3Program) };
        seeded.Inputs["x"] = F32(Cases.X);
        seeded.Seeds["y"] = F32([1, 1, 1, 1]);
        var withSeed = await _client.GradientAsync(seeded);
        Assert.Equal([0.0, 2, 4, 6], Values(withSeed.Gradients["x"]));
        var summed = new GradientRequest { Computation = Program(Cases.C3Program) };
        summed.Inputs["x"] = F32(Cases.X);
        var withoutSeed = await _client.GradientAsync(summed);
        Assert.Equal([0.0, 2, 4, 6], Values(withoutSeed.Gradients["x"]));
    }

    [Fact]
    public async Task E6_Intermediates()
    {
        var request = new GradientRequest { Computation = Program(Cases.E6Program) };
        request.Inputs["x"] = E6XTensor;
        request.Intermediates.Add(["product", "lg"]);
        var r = await _client.GradientAsync(request);
        JsonKit.Close(Cases.E6F, Values(r.Outputs["f"]), 1e-12);
        Assert.Equal(DType.Float64, r.Gradients["x"].Dtype);
        JsonKit.Close(Cases.E6Df, Values(r.Gradients["x"]), 1e-12);
        JsonKit.Close([1, 1, 1, 1], Values(r.Intermediates["product"].Adjoint), 1e-15);
        JsonKit.Close(Cases.E6X.Select(Math.Sin).ToArray(), Values(r.Intermediates["lg"].Adjoint), 1e-12);
        JsonKit.Close(Cases.E6X.Select(v => Math.Log(v * v)).ToArray(), Values(r.Intermediates["lg"].Value), 1e-12);
    }

    [Fact]
    public async Task E7_JvpEqualsGradient()
    {
        var jvp = new JvpRequest { Computation = Program(Cases.E6Program) };
        jvp.Inputs["x"] = E6XTensor;
        jvp.Tangents["x"] = F64([1, 1, 1, 1]);
        var forward = Values((await _client.JvpAsync(jvp)).TangentsOut["f"]);
        JsonKit.Close(Cases.E6Df, forward, 1e-12);
        var grad = new GradientRequest { Computation = Program(Cases.E6Program) };
        grad.Inputs["x"] = E6XTensor;
        JsonKit.Close(forward, Values((await _client.GradientAsync(grad)).Gradients["x"]), 1e-14);
    }

    [Fact]
    public async Task E1_HessianAndHvp()
    {
        const string f = "f = sum(log(x ** 2) * sin(x) + 1 / x)";
        var request = new HessianRequest { Computation = Program(f) };
        request.Inputs["x"] = E6XTensor;
        var h = await _client.HessianAsync(request);
        var m = Values(h.Hessians["x"].ByInput["x"]);
        Assert.Equal([4L, 4], h.Hessians["x"].ByInput["x"].Shape);
        JsonKit.Close(Cases.E1D2, Enumerable.Range(0, 4).Select(i => m[i * 5]).ToArray(), 1e-10);

        var hvp = new HessianRequest { Computation = Program(f) };
        hvp.Inputs["x"] = E6XTensor;
        hvp.Vector["x"] = F64([1, 1, 1, 1]);
        JsonKit.Close(Cases.E1D2, Values((await _client.HessianAsync(hvp)).Hvp["x"]), 1e-10);
    }

    [Theory]
    [InlineData(JacobianMode.Forward)]
    [InlineData(JacobianMode.Reverse)]
    [InlineData(JacobianMode.Auto)]
    public async Task E3_JacobianThroughWhileAndIf(JacobianMode mode)
    {
        var request = new JacobianRequest { Computation = new Computation { Graph = Cases.C5Graph([3]).ToProto() }, Mode = mode };
        request.Inputs["a"] = F32([0.3f, -0.2f, 0.1f]);
        var r = await _client.JacobianAsync(request);
        var j = r.Jacobians["c"].ByInput["a"];
        Assert.Equal([3L, 3], j.Shape);
        Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], Values(j));
        if (mode != JacobianMode.Auto) Assert.Equal(mode, r.ModeUsed);
        else Assert.NotEqual(JacobianMode.Auto, r.ModeUsed);
    }

    [Fact]
    public async Task E3_GradientThroughWhileAndIf()
    {
        var request = new GradientRequest { Computation = new Computation { Graph = Cases.C5Graph([3]).ToProto() } };
        request.Inputs["a"] = F32Raw([0.3f, -0.2f, 0.1f]);
        var r = await _client.GradientAsync(request);
        JsonKit.Close([1228.8, -819.2, 409.6], Values(r.Outputs["c"]), 1e-6);
        Assert.Equal([4096.0, 4096, 4096], Values(r.Gradients["a"]));
    }

    [Fact]
    public async Task E8_JacobianAutoPicksForwardForWideFunctions()
    {
        var request = new JacobianRequest { Computation = Program("y = outer(x, c)") };
        request.Inputs["x"] = F32([1, 2]);
        request.Inputs["c"] = F32([1, 2, 3]);
        request.Wrt.Add("x");
        var r = await _client.JacobianAsync(request);
        Assert.Equal(JacobianMode.Forward, r.ModeUsed);
        Assert.Equal([2L, 3, 2], r.Jacobians["y"].ByInput["x"].Shape);
    }

    [Fact]
    public async Task Int64AndScalarTensors()
    {
        var request = new EvaluateRequest { Computation = Program("y = x * 2 + s") };
        request.Inputs["x"] = I64([1, -2, 3]);
        request.Inputs["s"] = new Tensor { Dtype = DType.Int64, Int64Data = { 10 } };
        var y = (await _client.EvaluateAsync(request)).Outputs["y"];
        Assert.Equal(DType.Int64, y.Dtype);
        Assert.Equal([12.0, 6, 16], Values(y));
    }

    [Fact]
    public async Task Inspect()
    {
        var request = new InspectRequest { Computation = Program(Cases.E6Program) };
        request.Inputs["x"] = new Tensor { Dtype = DType.Float64, Shape = { 4 } };
        var r = await _client.InspectAsync(request);
        Assert.True(r.Valid);
        var f = Assert.Single(r.Values, v => v.Name == "f");
        Assert.Equal(DType.Float64, f.Dtype);
        Assert.Equal([4L], f.Shape);
        Assert.True(r.Flops > 0);
        Assert.True(r.PeakBytesExact);
        Assert.Equal("", r.PeakBytesCaveat);
        var evaluate = new EvaluateRequest { Computation = Program(Cases.E6Program) };
        evaluate.Inputs["x"] = E6XTensor;
        Assert.Equal((await _client.EvaluateAsync(evaluate)).Stats.PeakBytes, r.PeakBytes); // the estimate is the measured peak
        Assert.Contains("digraph", r.Dot);
        Assert.Contains("sin", r.Mermaid);
    }

    [Fact]
    public async Task ListOps()
    {
        var r = await _client.ListOpsAsync(new ListOpsRequest());
        Assert.True(r.Ops.Count >= 40);
        var dot = Assert.Single(r.Ops, o => o.Name == "dot");
        Assert.True(dot.Differentiable);
        Assert.Equal(2, dot.Inputs.Count);
    }

    [Fact]
    public async Task Ping() => Assert.NotNull(await _client.PingAsync(new PingRequest()));
}
