using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Sessions;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Sessions;

public class SessionTests
{
    private static HostTensor Vec(params float[] v) => HostTensor.Of(v);

    [Fact]
    public void C5_LoopAndBranchInTheCallersCode()
    {
        foreach (var (a, grad) in new[] { (0.5f, 2048.0), (-0.3f, 409600.0), (1.7f, 1024.0) })
        {
            using var s = new Session(new SessionSettings());
            s.Variable("a", HostTensor.Scalar(a));
            s.Execute(new SessionCommand.Program("b = 2 * a"));
            while (Norm(s) < 1000) s.Execute(new SessionCommand.Program("b = 2 * b"));
            s.Execute(new SessionCommand.Program("s = sum(b)"));
            s.Execute(new SessionCommand.Program(s.Fetch("s").ToDoubles()[0] > 0 ? "c = identity(b)" : "c = 100 * b"));
            s.Backward("c", null, false, false);
            Assert.Equal(grad, s.Grad("a").ToDoubles()[0], 1e-3 * grad);
        }

        static double Norm(Session s)
        {
            s.Execute(new SessionCommand.Program("n = norm(b)"));
            return s.Fetch("n").ToDoubles()[0];
        }
    }

    [Fact]
    public void C2_AccumulateAndOverwrite()
    {
        foreach (var (mode, expected) in new[] { (GradientMode.Accumulate, new[] { 1.0, 5, 9, 13 }), (GradientMode.Overwrite, new[] { 1.0, 1, 1, 1 }) })
        {
            using var s = new Session(new SessionSettings { GradientMode = mode });
            s.Variable("x", Vec(0, 1, 2, 3));
            s.Execute(new SessionCommand.Program("y = 2 * dot(x, x)"));
            s.Backward("y", null, false, false);
            s.Execute(new SessionCommand.Program("y = sum(x)"));
            s.Backward("y", null, false, false);
            Assert.Equal(expected, s.Grad("x").ToDoubles());
            s.ZeroGrad(["x"]);
            s.Execute(new SessionCommand.Program("y = sum(x)"));
            s.Backward("y", null, false, false);
            Assert.Equal([1.0, 1, 1, 1], s.Grad("x").ToDoubles());
        }
    }

    [Fact]
    public void E2_SecondBackwardWithoutRetainGraphFails()
    {
        using var s = new Session(new SessionSettings());
        s.Variable("x", Vec(0, 1, 2, 3));
        s.Apply("mul", ["x", "x"], Attributes.Empty, "t");
        s.Apply("sum", ["t"], Attributes.Empty, "y");
        s.Backward("y", null, false, false);
        var e = Assert.Throws<EngineException>(() => s.Backward("y", null, false, false));
        Assert.Equal(ErrorCodes.GraphFreed, e.Code);
        Assert.Contains("retain_graph", e.Message);
    }

    [Fact]
    public void BatchStopsAtTheFirstFailureAndNamesIt()
    {
        using var s = new Session(new SessionSettings());
        var e = Assert.Throws<SessionBatchException>(() => s.ExecuteBatch(
        [
            new SessionCommand.Variable("x", Vec(1, 2)),
            new SessionCommand.Apply("frobnicate", ["x"], Attributes.Empty, "y"),
            new SessionCommand.Fetch("x"),
        ]));
        Assert.Equal(1, e.CommandIndex);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Error.Code);
        Assert.True(s.Contains("x"));
    }

    [Fact]
    public void MemoryLimitRefusesAndTheSessionGoesOn()
    {
        using var s = new Session(new SessionSettings { MemoryLimitBytes = 4096 });
        s.Variable("x", Vec(1, 2, 3));
        var e = Assert.Throws<EngineException>(() => s.Variable("big", new HostTensor(DType.Float32, new Shape(2048), new float[2048])));
        Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        s.Execute(new SessionCommand.Program("y = x * x"));
        Assert.Equal([1.0, 4, 9], s.Fetch("y").ToDoubles());
    }

    [Fact]
    public void TrainingLoopRunsInConstantMemory()
    {
        // Each step records a graph, backward frees it, and the rebound weights' old values become unreachable.
        using var s = new Session(new SessionSettings { MemoryLimitBytes = 64 << 10, GradientMode = GradientMode.Overwrite });
        s.Variable("w", new HostTensor(DType.Float32, new Shape(1024), new float[1024]));
        s.Constant("target", new HostTensor(DType.Float32, new Shape(1024), Enumerable.Repeat(1f, 1024).ToArray()));
        for (int step = 0; step < 50; step++)
        {
            s.Execute(new SessionCommand.Program("loss = sum((w - target) ** 2)"));
            s.Backward("loss", null, false, false);
            s.Execute(new SessionCommand.Grad("w", "g"));
            s.NoGrad(true);
            s.Execute(new SessionCommand.Program("w_next = w - 0.1 * g"));
            s.NoGrad(false);
            s.Variable("w", s.Fetch("w_next"));
        }
        Assert.All(s.Fetch("w").ToDoubles(), v => Assert.Equal(1.0, v, 1e-4));
        Assert.True(s.MemoryInUse < 32 << 10, $"{s.MemoryInUse} bytes still in use");
    }

    [Fact]
    public void RetainedGraphStaysUsableWhileOldNamesMoveOn()
    {
        using var s = new Session(new SessionSettings());
        s.Variable("x", Vec(1, 2, 3));
        s.Execute(new SessionCommand.Program("t = x * x\ny = sum(t)"));
        s.Execute(new SessionCommand.Release(["t"]));
        s.Execute(new SessionCommand.Program("x2 = x + 1"));
        s.Backward("y", null, true, false);
        s.Backward("y", null, false, false);
        Assert.Equal([4.0, 8, 12], s.Grad("x").ToDoubles());
    }

    [Fact]
    public void RebindingInALoopFreesWhatTheTapeDoesNotNeed()
    {
        using var s = new Session(new SessionSettings());
        s.Constant("c", Vec(1, 2, 3));
        s.NoGrad(true);
        long before = s.MemoryInUse;
        for (int i = 0; i < 100; i++) s.Execute(new SessionCommand.Program("c = c + 1"));
        Assert.Equal([101.0, 102, 103], s.Fetch("c").ToDoubles());
        Assert.True(s.MemoryInUse <= before + 4096, $"memory grew from {before} to {s.MemoryInUse}");
    }
}
