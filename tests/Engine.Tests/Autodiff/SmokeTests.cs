using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;

namespace AutogradService.Engine.Tests.Autodiff;

public class SmokeTests
{
    [Fact]
    public void C1_GradientOfTwiceDot()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0f, 1, 2, 3]).RequireGrad();
        var y = 2.0 * F.Sum(x * x);
        ReverseMode.Backward(y);
        Assert.Equal(28.0, y.ToScalar());
        Assert.Equal([0.0, 4, 8, 12], x.Grad!.ToDoubles());
    }

    [Fact]
    public void E1_SecondDerivative()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([0.5, 1, 2, -1.5]).RequireGrad();
        var f = F.Log(F.Square(x)) * F.Sin(x) + 1.0 / x;
        var g = ReverseMode.Grad([f], null, [x], new BackwardOptions { CreateGraph = true })[0];
        var h = ReverseMode.Grad([g], null, [x])[0];
        double[] expected = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112];
        var actual = h.ToDoubles();
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], actual[i], 1e-9);
    }
}
