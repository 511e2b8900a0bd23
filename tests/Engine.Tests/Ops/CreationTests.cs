using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

public class CreationTests
{
    [Fact]
    public void ArangeDefaultsToFloat32()
    {
        using var scope = new ExecutionScope();
        var x = F.Arange(scope, 4);
        Assert.Equal(new TensorType(Shape.Vector(4), DType.Float32), x.Type);
        Assert.Equal([0.0, 1, 2, 3], x.ToDoubles());
        Assert.False(x.RequiresGrad);
    }

    [Fact]
    public void ArangeWithStartStepAndDType()
    {
        using var scope = new ExecutionScope();
        Assert.Equal([1.0, 1.5, 2, 2.5, 3, 3.5], F.Arange(scope, 4, start: 1, step: 0.5, dtype: DType.Float64).ToDoubles());
        var down = F.Arange(scope, 0, start: 5, step: -1, dtype: DType.Int64);
        Assert.Equal(DType.Int64, down.DType);
        Assert.Equal([5L, 4, 3, 2, 1], down.ToArray<long>());
        Assert.Equal(10, F.Arange(scope, 1, step: 0.1).ElementCount);
        Assert.Equal(0, F.Arange(scope, 0, start: 3).ElementCount);
    }

    [Fact]
    public void ArangeRejectsBadArguments()
    {
        using var scope = new ExecutionScope();
        Assert.Equal(ErrorCodes.InvalidGraph, Assert.Throws<EngineException>(() => F.Arange(scope, 3, step: 0)).Code);
        Assert.Equal(ErrorCodes.InvalidGraph, Assert.Throws<EngineException>(() => F.Arange(scope, double.PositiveInfinity)).Code);
        Assert.Equal(ErrorCodes.DTypeMismatch, Assert.Throws<EngineException>(() => F.Arange(scope, 3, dtype: DType.Bool)).Code);
        var missing = Assert.Throws<EngineException>(() => Dispatcher.Apply(scope, ArangeOp.Instance, [], Attributes.Empty));
        Assert.Contains("stop", missing.Message);
    }

    [Fact]
    public void FillOps()
    {
        using var scope = new ExecutionScope();
        Assert.Equal(new double[6], F.Zeros(scope, new Shape(2, 3)).ToDoubles());
        Assert.Equal([1.0, 1], F.Ones(scope, Shape.Vector(2), DType.Int64).ToDoubles());
        var full = F.Full(scope, new Shape(2, 2), 3.5, DType.Float64);
        Assert.Equal(new TensorType(new Shape(2, 2), DType.Float64), full.Type);
        Assert.Equal([3.5, 3.5, 3.5, 3.5], full.ToDoubles());
        Assert.Equal(Shape.Scalar, F.Zeros(scope, Shape.Scalar).Shape);
        var bad = Assert.Throws<EngineException>(() => Dispatcher.Apply(scope, FillOp.Zeros, [], Attributes.Of(("shape", new[] { 2, -1 }))));
        Assert.Equal(ErrorCodes.InvalidGraph, bad.Code);
    }

    [Fact]
    public void CreationChargesTheBudget()
    {
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 100 });
        var e = Assert.Throws<EngineException>(() => F.Zeros(scope, Shape.Vector(26)));
        Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        Assert.Equal(100, F.Zeros(scope, Shape.Vector(25)).ByteCount);
    }

    [Fact]
    public void RandomNormalIsPinnedBySeed()
    {
        // These values are part of the contract: a seed names the same numbers on every machine, forever.
        using var scope = new ExecutionScope();
        var x = F.RandomNormal(scope, Shape.Vector(5), seed: 42, dtype: DType.Float64);
        Assert.Equal([0.49295065581737485, -0.6940056672160174, -1.2810773478777024, -0.901557193497174, -0.6018779810957331], x.ToDoubles());
        var shifted = F.RandomNormal(scope, Shape.Vector(3), seed: -1, mean: 2, std: 0.5, dtype: DType.Float64);
        Assert.Equal([1.2863336410310198, 1.812332952186759, 2.2744651646763927], shifted.ToDoubles());
        var single = F.RandomNormal(scope, Shape.Vector(5), seed: 42);
        Assert.Equal(x.ToDoubles().Select(v => (double)(float)v).ToArray(), single.ToDoubles());
    }

    [Fact]
    public void RandomUniformIsPinnedBySeed()
    {
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, Shape.Vector(4), seed: 42, dtype: DType.Float64);
        Assert.Equal([0.7415648787718233, 0.1599103928769201, 0.27860113025513866, 0.34419071652363753], x.ToDoubles());
    }

    [Fact]
    public void SeedsGiveDifferentStreams()
    {
        using var scope = new ExecutionScope();
        var a = F.RandomNormal(scope, Shape.Vector(8), seed: 1).ToDoubles();
        Assert.Equal(a, F.RandomNormal(scope, Shape.Vector(8), seed: 1).ToDoubles());
        Assert.NotEqual(a, F.RandomNormal(scope, Shape.Vector(8), seed: 2).ToDoubles());
    }

    [Fact]
    public void RandomNormalHasTheAskedMoments()
    {
        using var scope = new ExecutionScope();
        var x = F.RandomNormal(scope, Shape.Vector(200_001), seed: 7, mean: 3, std: 2, dtype: DType.Float64).ToDoubles();
        double mean = x.Average();
        double std = Math.Sqrt(x.Select(v => (v - mean) * (v - mean)).Average());
        Assert.InRange(mean, 2.98, 3.02);
        Assert.InRange(std, 1.98, 2.02);
        Assert.InRange(x.Count(v => Math.Abs(v - 3) < 2) / (double)x.Length, 0.678, 0.688); // one sigma: 68.27%
    }

    [Fact]
    public void RandomUniformStaysInItsInterval()
    {
        using var scope = new ExecutionScope();
        var x = F.RandomUniform(scope, Shape.Vector(100_000), seed: 3, low: -1, high: 2).ToDoubles();
        Assert.All(x, v => Assert.InRange(v, -1, 2 - 1e-9));
        Assert.InRange(x.Average(), 0.49, 0.51);
        Assert.Equal(new double[3], F.RandomUniform(scope, Shape.Vector(3), seed: 3, low: 0, high: 0).ToDoubles());
    }

    [Fact]
    public void RandomRejectsBadParameters()
    {
        using var scope = new ExecutionScope();
        Assert.Equal(ErrorCodes.InvalidGraph, Assert.Throws<EngineException>(() => F.RandomNormal(scope, Shape.Vector(2), 1, std: -1)).Code);
        Assert.Equal(ErrorCodes.InvalidGraph, Assert.Throws<EngineException>(() => F.RandomUniform(scope, Shape.Vector(2), 1, low: 2, high: 1)).Code);
        Assert.Equal(ErrorCodes.DTypeMismatch, Assert.Throws<EngineException>(() => F.RandomUniform(scope, Shape.Vector(2), 1, dtype: DType.Int64)).Code);
        var noSeed = Assert.Throws<EngineException>(() => Dispatcher.Apply(scope, RandomOp.Normal, [], Attributes.Of(("shape", new[] { 2 }))));
        Assert.Contains("seed", noSeed.Message);
    }

    [Fact]
    public void TheDeterministicLogIsAccurate()
    {
        var random = new Random(5);
        for (int i = 0; i < 100_000; i++)
        {
            double x = i < 50_000 ? random.NextDouble() : Math.Exp(random.NextDouble() * 1400 - 700);
            if (x == 0) continue;
            double expected = Math.Log(x);
            // Within a few units in the last place of the C runtime's log.
            Assert.True(Math.Abs(CreationKernels.Ln(x) - expected) <= 4 * (Math.BitIncrement(Math.Abs(expected)) - Math.Abs(expected)), $"ln({x:R})");
        }
        Assert.Equal(0.0, CreationKernels.Ln(1.0));
    }
}
