using AutogradService.Engine.Backends;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine;

/// <summary>Per-scope settings: which backend, how much memory, how long loops may run, when to stop.</summary>
public sealed record ScopeOptions
{
    public IBackend? Backend { get; init; }
    public BufferPool? Pool { get; init; }
    public long MemoryLimitBytes { get; init; } = long.MaxValue;
    public long MaxLoopIterations { get; init; } = 1_000_000;

    /// <summary>
    /// Tensors alive at once. The budget counts their bytes; this bounds the objects behind them (a few hundred bytes
    /// each, however small the data), so a long chain of tiny recorded ops cannot exhaust memory the budget never sees.
    /// </summary>
    public long MaxLiveTensors { get; init; } = long.MaxValue;

    /// <summary>Anomaly mode: stop at the first op whose forward or backward turns finite values into NaN or ±Infinity.</summary>
    public bool DetectAnomaly { get; init; }

    /// <summary>Whether float32 matrix products may use a GPU's TF32 tensor cores (faster, ~1e-3 relative); off, results match the CPU.</summary>
    public bool AllowTf32 { get; init; }

    public CancellationToken Cancellation { get; init; }
}

/// <summary>
/// One request's (or one session's) world: the backend its kernels run on, the memory budget its tensors are
/// charged to, its cancellation token and loop limit, and whether ops are being recorded. Every tensor belongs to
/// exactly one scope; disposing the scope gives every buffer it took back to the pool, whether the work
/// succeeded, failed or was cancelled. A scope is used by one thread at a time.
/// </summary>
public sealed class ExecutionScope : IDisposable
{
    private readonly List<Tensor> _tensors = [];
    private int _disposedSinceCompaction;
    private bool _disposed;

    public ExecutionScope(ScopeOptions? options = null)
    {
        options ??= new ScopeOptions();
        Backend = options.Backend ?? CpuBackend.Instance;
        Pool = options.Pool ?? BufferPool.Shared;
        Budget = new MemoryBudget(options.MemoryLimitBytes);
        MaxLoopIterations = options.MaxLoopIterations;
        MaxLiveTensors = options.MaxLiveTensors;
        DetectAnomaly = options.DetectAnomaly;
        AllowTf32 = options.AllowTf32;
        Cancellation = options.Cancellation;
    }

    public IBackend Backend { get; }
    public BufferPool Pool { get; }
    public MemoryBudget Budget { get; }
    public long MaxLoopIterations { get; }
    public long MaxLiveTensors { get; }
    public bool DetectAnomaly { get; }

    /// <summary>See <see cref="ScopeOptions.AllowTf32"/>: a device backend's matrix products read it.</summary>
    public bool AllowTf32 { get; }

    /// <summary>Set while a VJP rule runs in anomaly mode: the rule's result is checked as a whole, and blamed on the rule.</summary>
    internal bool InBackwardRule { get; set; }
    /// <summary>Checked between ops and inside loops; a session swaps in each batch's token.</summary>
    public CancellationToken Cancellation { get; set; }

    /// <summary>Whether ops applied now are recorded for reverse mode (false inside <see cref="NoGrad"/>).</summary>
    public bool GradEnabled { get; set; } = true;

    /// <summary>Number of ops executed, for stats.</summary>
    public long OpsExecuted { get; internal set; }

    /// <summary>Turns recording off until the returned handle is disposed.</summary>
    public GradModeGuard NoGrad() => new(this, false);

    /// <summary>Sets recording on or off until the returned handle is disposed.</summary>
    public GradModeGuard GradMode(bool enabled) => new(this, enabled);

    public void ThrowIfCancelled()
    {
        if (Cancellation.IsCancellationRequested) throw EngineException.Cancelled();
    }

    /// <summary>An uninitialised tensor; the caller writes every element.</summary>
    public Tensor Allocate(Shape shape, DType dtype)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ReserveTensor();
        long bytes = shape.ElementCount * dtype.SizeOf(); // exact: shapes are held to Shape.MaxElements
        return new Tensor(this, shape, dtype, Backend.Allocate(this, bytes));
    }

    public Tensor Allocate(TensorType type) => Allocate(type.Shape, type.DType);

    public Tensor Zeros(Shape shape, DType dtype = DType.Float32)
    {
        var t = Allocate(shape, dtype);
        Backend.Fill(t, 0);
        return t;
    }

    public Tensor Full(Shape shape, double value, DType dtype = DType.Float32)
    {
        var t = Allocate(shape, dtype);
        Backend.Fill(t, value);
        t.Constant = value;
        return t;
    }

    public Tensor Scalar(double value, DType dtype = DType.Float32) => Full(Shape.Scalar, value, dtype);

    /// <summary>Copies data into a new tensor; with no shape given it is a vector (use <see cref="Scalar"/> for rank 0).</summary>
    public Tensor FromArray(float[] data, params int[] shape) => FromSpan<float>(data, shape.Length == 0 ? null : shape);

    public Tensor FromArray(double[] data, params int[] shape) => FromSpan<double>(data, shape.Length == 0 ? null : shape);

    public Tensor FromArray(long[] data, params int[] shape) => FromSpan<long>(data, shape.Length == 0 ? null : shape);

    public Tensor FromArray(bool[] data, params int[] shape) => FromSpan<bool>(data, shape.Length == 0 ? null : shape);

    /// <summary>Copies data into a new tensor of <paramref name="shape"/> (empty = scalar, null = vector).</summary>
    public Tensor FromSpan<T>(ReadOnlySpan<T> data, int[]? shape = null) where T : unmanaged
    {
        var s = shape is null ? Shape.Vector(data.Length) : new Shape(shape);
        if (s.ElementCount != data.Length)
            throw EngineException.InvalidTensor($"{data.Length} values do not fill shape {s} ({s.ElementCount} elements)");
        var t = Allocate(s, DTypes.Of<T>());
        Backend.Upload(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data), t);
        return t;
    }

    /// <summary>Copies a tensor's values into this scope as a new leaf (no autograd history).</summary>
    public Tensor Import(Tensor source)
    {
        var t = Allocate(source.Shape, source.DType);
        Backend.Upload(source.Bytes(), t);
        t.Name = source.Name;
        return t;
    }

    internal void Track(Tensor tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        tensor.Serial = NextSerial++;
        _tensors.Add(tensor);
        Interlocked.Increment(ref _live);
    }

    private long _live;

    /// <summary>Refuses a new tensor past <see cref="MaxLiveTensors"/>, before anything is allocated for it.</summary>
    internal void ReserveTensor()
    {
        if (_live >= MaxLiveTensors) throw EngineException.TensorLimit(MaxLiveTensors);
    }

    /// <summary>Called once by each tensor as it is disposed.</summary>
    internal void Untrack() => Interlocked.Decrement(ref _live);

    /// <summary>The serial the next tensor gets: a tensor made after this point has one at least this large.</summary>
    internal long NextSerial { get; private set; }

    /// <summary>Releases tensors the caller no longer needs (session rebinding); compacts the tracking list now and then.</summary>
    public void Release(Tensor tensor)
    {
        if (tensor.IsDisposed) return;
        tensor.Dispose();
        if (++_disposedSinceCompaction > 1024 && _disposedSinceCompaction > _tensors.Count / 2)
        {
            _tensors.RemoveAll(t => t.IsDisposed);
            _disposedSinceCompaction = 0;
        }
    }

    /// <summary>Every tensor this scope has handed out and not yet compacted away (some may be disposed).</summary>
    internal IReadOnlyList<Tensor> Tracked => _tensors;

    /// <summary>Tensors made and not yet disposed (views included).</summary>
    public int LiveTensorCount => (int)Interlocked.Read(ref _live);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _tensors) t.Dispose();
        _tensors.Clear();
    }
}

/// <summary>Restores the previous recording mode when disposed.</summary>
public readonly struct GradModeGuard : IDisposable
{
    private readonly ExecutionScope _scope;
    private readonly bool _previous;

    internal GradModeGuard(ExecutionScope scope, bool enabled)
    {
        _scope = scope;
        _previous = scope.GradEnabled;
        scope.GradEnabled = enabled;
    }

    public void Dispose() => _scope.GradEnabled = _previous;
}
