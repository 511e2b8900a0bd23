namespace AutogradService.Engine.Memory;

/// <summary>
/// The bytes behind one or more tensors (views share it). Reference counted: the pooled buffer goes back to the
/// pool and the budget is credited when the last tensor using it is disposed.
/// </summary>
internal sealed class Storage
{
    private readonly PooledBuffer _buffer;
    private readonly MemoryBudget _budget;
    private int _refs = 1;

    public Storage(BufferPool pool, MemoryBudget budget, long bytes)
    {
        budget.Charge(bytes);
        try
        {
            _buffer = pool.Rent(Math.Max(bytes, 1));
        }
        catch
        {
            budget.Release(bytes);
            throw;
        }
        _budget = budget;
        Bytes = bytes;
    }

    public long Bytes { get; }
    public nint Pointer => _buffer.Pointer;

    public void AddRef() => Interlocked.Increment(ref _refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            _buffer.Return();
            _budget.Release(Bytes);
        }
    }
}
