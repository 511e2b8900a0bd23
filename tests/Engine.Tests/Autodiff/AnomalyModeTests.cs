using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Autodiff;

/// <summary>Anomaly mode names the first op whose forward or backward turns finite values into NaN or ±Infinity.</summary>
public class AnomalyModeTests
{
    private static Tensor Values(ExecutionScope scope, params double[] values) =>
        HostTensor.FromDoubles(DType.Float32, Shape.Vector(values.Length), values).ToTensor(scope);

    [Fact]
    public void Forward_NaNFromFiniteValues_NamesTheOp()
    {
        using var scope = new ExecutionScope(new ScopeOptions { DetectAnomaly = true });
        var x = Values(scope, 1, -1);
        var e = Assert.Throws<EngineException>(() => F.Sqrt(F.Sin(x)));
        Assert.Equal(ErrorCodes.NumericalAnomaly, e.Code);
        Assert.Equal("sqrt", e.Op);
        Assert.Equal("forward", e.Facts["pass"]);
        Assert.Equal("NaN", e.Facts["value"]);
        Assert.Equal(1L, e.Facts["index"]);
    }

    [Fact]
    public void Forward_InfinityFromFiniteValues_IsAnAnomalyToo()
    {
        using var scope = new ExecutionScope(new ScopeOptions { DetectAnomaly = true });
        var e = Assert.Throws<EngineException>(() => F.Log(Values(scope, 1, 0)));
        Assert.Equal("log", e.Op);
        Assert.Equal("-Infinity", e.Facts["value"]);
    }

    [Fact]
    public void Backward_InfinityFromFiniteValues_NamesTheRule()
    {
        using var scope = new ExecutionScope(new ScopeOptions { DetectAnomaly = true });
        var x = Values(scope, 0, 4).RequireGrad();
        var y = F.Sum(F.Sqrt(x)); // finite forward; d sqrt / dx = 1 / (2 sqrt x) is infinite at 0
        var e = Assert.Throws<EngineException>(() => ReverseMode.Grad(y, x));
        Assert.Equal("sqrt", e.Op);
        Assert.Equal("backward", e.Facts["pass"]);
        Assert.Equal("Infinity", e.Facts["value"]);
    }

    [Fact]
    public void NonFiniteInputs_AreCarriedNotReported()
    {
        using var scope = new ExecutionScope(new ScopeOptions { DetectAnomaly = true });
        var y = F.Exp(Values(scope, double.NaN, 1));
        Assert.True(double.IsNaN(y.ToArray<float>()[0]));
    }

    [Fact]
    public void Off_NaNsFlowAsUsual()
    {
        using var scope = new ExecutionScope();
        var x = Values(scope, 0, 4).RequireGrad();
        var g = ReverseMode.Grad(F.Sum(F.Sqrt(x)), x);
        Assert.True(float.IsPositiveInfinity(g.ToArray<float>()[0]));
    }

    [Fact]
    public void InAGraph_TheNodeIsNamed_AndFusionDoesNotHideIt()
    {
        var graph = ProgramParser.Parse("a = x * 2\nb = a - 2\nc = sqrt(b)\ny = c * 3");
        using var scope = new ExecutionScope(new ScopeOptions { DetectAnomaly = true });
        var inputs = new Dictionary<string, Tensor> { ["x"] = Values(scope, 1, 0.5) };
        var plan = Plan.Build(graph, inputs.ToDictionary(kv => kv.Key, kv => kv.Value.Type));
        var e = Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan, inputs, new RunOptions()));
        Assert.Equal("sqrt", e.Op);
        Assert.NotNull(e.Node);
    }
}
