using AutogradService.Engine;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>
/// One workload of the performance issue, shared by the BenchmarkDotNet suites and the side-by-side timing mode so
/// both measure exactly the same call. A call is one request's worth of work: a fresh <see cref="ExecutionScope"/>,
/// the inputs copied into it (the engine cannot share tensors across scopes), forward, backward, and disposal of the
/// scope, which hands every buffer back to the pool. The copy is timed separately so it can be told apart.
/// </summary>
internal abstract class Workload
{
    public abstract string Id { get; }

    public abstract string Title { get; }

    /// <summary>The engine function this workload needs and the engine lacks, or null when it can run.</summary>
    public virtual string? MissingOp => null;

    /// <summary>How the workload is expressed when that differs from the wording (empty when it does not).</summary>
    public virtual string Variant => "";

    /// <summary>Makes the managed input arrays (seeded, so every run sees the same numbers).</summary>
    public virtual void Setup()
    {
    }

    /// <summary>The backend every call's scope runs on (null: the CPU); the device check sets the GPU's.</summary>
    public static Engine.Backends.IBackend? Backend { get; set; }

    private static ExecutionScope NewScope() => new(new ScopeOptions { Backend = Backend });

    /// <summary>One call; returns a number read from the results so the work cannot be skipped.</summary>
    public double Run()
    {
        using var scope = NewScope();
        return Compute(scope, Import(scope));
    }

    /// <summary>Only the part of <see cref="Run"/> that copies inputs into a fresh scope.</summary>
    public void ImportOnly()
    {
        using var scope = NewScope();
        Import(scope);
    }

    /// <summary>Runs one call and compares its derivatives with closed forms; throws when they disagree.</summary>
    public void Check()
    {
        using var scope = NewScope();
        Verify(scope, Import(scope));
    }

    protected abstract Tensor[] Import(ExecutionScope scope);

    protected abstract double Compute(ExecutionScope scope, Tensor[] inputs);

    protected abstract void Verify(ExecutionScope scope, Tensor[] inputs);

    protected void Expect(bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException($"{Id}: wrong result: {what}");
    }

    protected static bool Near(double actual, double expected, double tolerance) =>
        Math.Abs(actual - expected) <= tolerance * Math.Max(1.0, Math.Abs(expected));

    protected static float[] Uniform(int n, double low, double high, int seed)
    {
        var random = new Random(seed);
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)(low + (high - low) * random.NextDouble());
        return data;
    }

    /// <summary>All workloads, the in its order, then the plan runs; <paramref name="w4Elements"/> overrides W4's size (quick runs).</summary>
    public static Workload[] All(int? w4Elements = null) =>
    [
        new TinyDot(),
        new ControlFlow(),
        new Mlp(),
        new ElementwiseChain(w4Elements ?? ElementwiseChain.DefaultElements),
        new MatMulSum(),
        new SecondDerivative(),
        new TanhJacobian(),
        PlanEvaluate.W4Function(),
        PlanEvaluate.Arithmetic(),
    ];
}
