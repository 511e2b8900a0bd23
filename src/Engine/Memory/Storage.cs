namespace AutogradService.Engine.Memory;

/// <summary>
/// The bytes behind one or more tensors (views share it), wherever a backend keeps them. Reference counted: when the
/// last tensor using it is disposed the backend frees its memory and the budget is credited. The budget is charged
/// before anything is allocated, for every backend alike, so <c>memory_limit_exceeded</c> means the same everywhere.
/// </summary>
internal abstract class Storage
{
    private readonly MemoryBudget _budget;
    private int _refs = 1;

    /// <summary>Charges <paramref name="bytes"/> to <paramref name="budget"/>; a subclass that then fails to allocate calls <see cref="Uncharge"/>.</summary>
    protected Storage(MemoryBudget budget, long bytes)
    {
        budget.Charge(bytes);
        _budget = budget;
        Bytes = bytes;
    }

    public long Bytes { get; }

    /// <summary>
    /// The contents in host memory, readable and writable, for host code (decoders, encoders, loop tests). A device
    /// storage copies its contents here first; a storage without contents throws.
    /// </summary>
    public abstract nint HostPointer { get; }

    /// <summary>False for storage that only counts bytes (the meta backend's): there is nothing to read.</summary>
    public virtual bool HoldsValues => true;

    /// <summary>How many tensors share these bytes; 1 means one tensor owns them alone (may be written in place).</summary>
    public int RefCount => Volatile.Read(ref _refs);

    public void AddRef() => Interlocked.Increment(ref _refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            Free();
            _budget.Release(Bytes);
        }
    }

    /// <summary>Gives the memory back (called once, when the last sharer goes).</summary>
    protected abstract void Free();

    protected void Uncharge() => _budget.Release(Bytes);
}

/// <summary>Bytes in host memory from a <see cref="BufferPool"/>: the CPU backend's storage.</summary>
internal sealed class HostStorage : Storage
{
    private readonly BufferPool _pool;
    private readonly nint _pointer;
    private readonly long _capacity;
    private readonly int _sizeClass;

    public HostStorage(BufferPool pool, MemoryBudget budget, long bytes) : base(budget, bytes)
    {
        try
        {
            _pointer = pool.RentRaw(Math.Max(bytes, 1), out _sizeClass, out _capacity);
        }
        catch
        {
            Uncharge();
            throw;
        }
        _pool = pool;
    }

    public override nint HostPointer => _pointer;

    protected override void Free() => _pool.ReturnRaw(_pointer, _sizeClass, _capacity);
}
