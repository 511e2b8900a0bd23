using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

/// <summary>
/// Shapes, dtypes and byte counts only (PyTorch's "meta" device): a tensor's storage charges the budget exactly as
/// the host's would and holds no bytes, and every kernel does nothing. Running the real interpreter and dispatcher
/// here is how a plan's peak memory is predicted (<see cref="PlanEstimates"/>): the same allocation, in-place and
/// freeing rules that a real run follows, with nothing computed. Host code that reads a value gets
/// <see cref="MetaValuesException"/>.
/// </summary>
public sealed class MetaBackend : IBackend
{
    public static MetaBackend Instance { get; } = new();

    public string Name => "meta";

    public DeviceInfo Describe() => new(Name, "meta", 0, 1, "shapes and sizes only: plans' memory estimates");

    Storage IBackend.Allocate(ExecutionScope scope, long bytes) => new MetaStorage(scope.Budget, bytes);

    public void Upload(ReadOnlySpan<byte> source, Tensor output) { }

    public long FindOutOfRange(Tensor indices, long bound) => -1;

    void IBackend.RunRegion(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output) { }

    public void Fill(Tensor output, double value) { }
    public void Copy(Tensor input, Tensor output) { }
    public void Cast(Tensor input, Tensor output) { }
    public void Unary(UnaryKernel kernel, Tensor input, Tensor output) { }
    public void SinCos(Tensor input, Tensor sin, Tensor cos) { }
    public void Binary(BinaryKernel kernel, Tensor a, Tensor b, Tensor output) { }
    public void Where(Tensor condition, Tensor a, Tensor b, Tensor output) { }
    public void BroadcastTo(Tensor input, Tensor output) { }
    public void Reduce(ReduceKernel kernel, Tensor input, int[] axes, Tensor output) { }
    public void Arange(Tensor output, double start, double step) { }
    public void RandomNormal(Tensor output, long seed, double mean, double std) { }
    public void RandomUniform(Tensor output, long seed, double low, double high) { }
    public void MatMul(Tensor a, Tensor b, Tensor output, bool transposeA, bool transposeB) { }
    public void Transpose(Tensor input, int[] perm, Tensor output) { }
    public void Slice(Tensor input, int[] starts, int[] steps, Tensor output) { }
    public void SliceScatter(Tensor source, int[] starts, int[] steps, Tensor output) { }
    public void Concat(ReadOnlySpan<Tensor> inputs, int axis, Tensor output) { }
    public void Gather(Tensor input, Tensor indices, int axis, Tensor output) { }
    public void ScatterAdd(Tensor source, Tensor indices, int axis, Tensor output) { }

    /// <summary>Counted bytes and nothing behind them.</summary>
    private sealed class MetaStorage(MemoryBudget budget, long bytes) : Storage(budget, bytes)
    {
        public override nint HostPointer => throw new MetaValuesException();

        public override bool HoldsValues => false;

        protected override void Free() { }
    }
}

/// <summary>Host code asked for the values of a tensor on the <see cref="MetaBackend"/>, which has none.</summary>
public sealed class MetaValuesException() : InvalidOperationException("a meta tensor has shapes and sizes but no values");
