using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Memory;

public class MemoryBudgetTests
{
    [Fact]
    public void ABudgetAtItsExactEdgePasses()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 800 + 400, Pool = pool }))
        {
            var x = scope.Zeros(Shape.Vector(100), DType.Float64); // 800 bytes
            var y = scope.Zeros(Shape.Vector(100), DType.Float32); // 400 bytes: exactly at the limit
            Assert.Equal(1200, scope.Budget.InUseBytes);
            Assert.Equal(1200, scope.Budget.PeakBytes);
            Assert.Equal(0, scope.Zeros(Shape.Vector(0)).ByteCount); // nothing left, but nothing asked
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }

    [Fact]
    public void OneBytePastTheBudgetFailsNamingTheRequestAndTheLimit()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 1199, Pool = pool }))
        {
            scope.Zeros(Shape.Vector(100), DType.Float64);
            var e = Assert.Throws<EngineException>(() => scope.Zeros(Shape.Vector(100), DType.Float32));
            Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
            Assert.Contains("400 more bytes", e.Message);
            Assert.Contains("800 bytes are in use", e.Message);
            Assert.Contains("limit of 1199 bytes", e.Message);
            Assert.Equal(400L, e.Facts["requested_bytes"]);
            Assert.Equal(1199L, e.Facts["limit_bytes"]);
            Assert.Equal(800, scope.Budget.InUseBytes); // the refused request charged nothing
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }

    [Fact]
    public void BudgetCountsChargesAndReleases()
    {
        var budget = new MemoryBudget(100);
        budget.Charge(60);
        budget.Charge(40);
        Assert.Throws<EngineException>(() => budget.Charge(1));
        budget.Release(50);
        budget.Charge(50);
        Assert.Equal(100, budget.InUseBytes);
        Assert.Equal(100, budget.PeakBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryBudget(0));
    }

    [Fact]
    public void AnOpOverBudgetReleasesWhatItTook()
    {
        var pool = new BufferPool();
        using (var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 64, Pool = pool }))
        {
            var x = scope.FromArray([1.0, 2, 3, 4]); // 32 bytes
            var e = Assert.Throws<EngineException>(() => F.Exp(x) + F.Sin(x)); // third tensor goes over
            Assert.Equal(ErrorCodes.MemoryLimitExceeded, e.Code);
        }
        Assert.Equal(0, pool.OutstandingBytes);
    }

    [Fact]
    public void AThousandMixedScopesLeaveTheirPoolEmpty()
    {
        var pool = new BufferPool();
        for (int i = 0; i < 1000; i++)
            Assert.Equal(Expected(i), RunScope(pool, i));
        Assert.Equal(0, pool.OutstandingBytes);
        Assert.True(pool.Rents > 10_000, $"only {pool.Rents} rents: the scopes did too little to prove anything");
    }

    private static string Expected(int i) => (i % 5) switch
    {
        1 => ErrorCodes.MemoryLimitExceeded,
        2 => ErrorCodes.ShapeMismatch,
        3 => ErrorCodes.DeadlineExceeded,
        _ => "ok",
    };

    /// <summary>One request-like scope that passes or fails in one of several ways; returns how it ended.</summary>
    private static string RunScope(BufferPool pool, int i)
    {
        using var cancel = new CancellationTokenSource();
        var options = new ScopeOptions
        {
            Pool = pool,
            MemoryLimitBytes = i % 5 == 1 ? 2_000 + 37 * (i % 13) : long.MaxValue,
            Cancellation = cancel.Token,
        };
        ExecutionScope? scope = null;
        try
        {
            scope = new ExecutionScope(options);
            if (i % 5 == 3 && i % 2 == 1) cancel.Cancel(); // cancelled before it starts
            var x = F.RandomNormal(scope, new Shape(8, 6), seed: i, dtype: DType.Float64).RequireGrad();
            var labels = F.Arange(scope, 8, dtype: DType.Int64) - 8 * F.Full(scope, Shape.Scalar, 0, DType.Int64);
            var logits = F.Tanh(x) * 3.0;
            if (i % 5 == 2)
                logits = logits + F.Ones(scope, new Shape(5)); // bad shapes: [8, 6] and [5]
            var loss = F.CrossEntropy(F.Reshape(logits, 8, 6), F.Cast(F.Gt(labels, 3.0), DType.Int64)) + F.MseLoss(x, F.Zeros(scope, x.Shape, DType.Float64));
            if (i % 5 == 3) cancel.Cancel(); // cancelled between the forward and the backward pass
            var grad = ReverseMode.Grad([loss], null, [x], new BackwardOptions { CreateGraph = i % 2 == 0 })[0];
            Assert.Equal(x.Shape, grad.Shape);
            return "ok";
        }
        catch (EngineException e)
        {
            return e.Code;
        }
        finally
        {
            scope?.Dispose();
            if (scope is not null) Assert.Equal(0, scope.Budget.InUseBytes);
        }
    }
}
