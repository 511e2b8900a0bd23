namespace AutogradService.Engine.Memory;

/// <summary>
/// The bytes behind one or more tensors (views share it). Reference counted: the pooled buffer goes back to the
/// pool and the budget is credited when the last tensor using it is disposed.
/// </summary>
internal sealed class Storage
{
    private readonly BufferPool _pool;
    private readonly nint _pointer;
    private readonly long _capacity;
    private readonly int _sizeClass;
    private readonly MemoryBudget _budget;
    private int _refs = 1;

    public Storage(BufferPool pool, MemoryBudget budget, long bytes)
    {
        budget.Charge(bytes);
        try
        {
            _pointer = pool.RentRaw(Math.Max(bytes, 1), out _sizeClass, out _capacity);
        }
        catch
        {
            budget.Release(bytes);
            throw;
        }
        _pool = pool;
        _budget = budget;
        Bytes = bytes;
    }

    public long Bytes { get; }
    public nint Pointer => _pointer;

    /// <summary>How many tensors share these bytes; 1 means one tensor owns them alone (may be written in place).</summary>
    public int RefCount => Volatile.Read(ref _refs);

    public void AddRef() => Interlocked.Increment(ref _refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            _pool.ReturnRaw(_pointer, _sizeClass, _capacity);
            _budget.Release(Bytes);
        }
    }
}
