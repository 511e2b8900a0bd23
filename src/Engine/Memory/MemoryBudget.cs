namespace AutogradService.Engine.Memory;

/// <summary>
/// Counts the tensor bytes a scope holds against its limit. Charging past the limit throws
/// <c>memory_limit_exceeded</c> before anything is allocated, so a refused request costs nothing.
/// </summary>
public sealed class MemoryBudget
{
    private long _inUse;
    private long _peak;

    public MemoryBudget(long limitBytes = long.MaxValue)
    {
        if (limitBytes <= 0) throw new ArgumentOutOfRangeException(nameof(limitBytes), "a memory limit must be positive");
        LimitBytes = limitBytes;
    }

    public long LimitBytes { get; }
    public long InUseBytes => Interlocked.Read(ref _inUse);
    public long PeakBytes => Interlocked.Read(ref _peak);

    public void Charge(long bytes)
    {
        long now = Interlocked.Add(ref _inUse, bytes);
        if (now > LimitBytes)
        {
            Interlocked.Add(ref _inUse, -bytes);
            throw EngineException.MemoryLimit(bytes, now - bytes, LimitBytes);
        }
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
        {
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _inUse, -bytes);
}
