using BenchmarkDotNet.Attributes;

namespace AutogradService.Bench;

// BenchmarkDotNet suites, one class per workload so each can be picked with --filter. "Allocated" counts managed bytes
// only: tensor data lives in pooled native memory, so what shows there is per-op bookkeeping (tensor objects, tape
// nodes, arrays) — the target is zero of it per steady-state W1/W2 call.

/// <summary>Shared shape of every suite: set the workload up once, time one call.</summary>
public abstract class WorkloadSuite
{
    private readonly Workload _workload;

    private protected WorkloadSuite(Workload workload) => _workload = workload;

    [GlobalSetup]
    public void Setup()
    {
        if (_workload.MissingOp is { } missing)
            throw new InvalidOperationException($"{_workload.Id} needs {missing}, which this engine does not have yet");
        _workload.Setup();
        _workload.Check();
    }

    [Benchmark]
    public double Call() => _workload.Run();
}

[MemoryDiagnoser]
public class W1Tiny() : WorkloadSuite(new TinyDot());

[MemoryDiagnoser]
public class W2ControlFlow() : WorkloadSuite(new ControlFlow());

[MemoryDiagnoser]
public class W3Mlp() : WorkloadSuite(new Mlp());

[MemoryDiagnoser]
public class W4ElementwiseChain() : WorkloadSuite(new ElementwiseChain(ElementwiseChain.DefaultElements));

[MemoryDiagnoser]
public class W5MatMul() : WorkloadSuite(new MatMulSum());

[MemoryDiagnoser]
public class W6SecondDerivative() : WorkloadSuite(new SecondDerivative());

[MemoryDiagnoser]
public class W7Jacobian() : WorkloadSuite(new TanhJacobian());

/// <summary>P1/P2, fused (the service's default) and node by node.</summary>
[MemoryDiagnoser]
public class PlanRuns
{
    private PlanEvaluate _workload = null!;

    [Params("P1", "P2")]
    public string Id { get; set; } = "P1";

    [Params(true, false)]
    public bool Fuse { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _workload = Id == "P1" ? PlanEvaluate.W4Function() : PlanEvaluate.Arithmetic();
        _workload.Setup();
        _workload.Check();
        _workload.Fuse = Fuse;
    }

    [Benchmark]
    public double Call() => _workload.Run();
}
