using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace AutogradService.Engine.Memory;

/// <summary>
/// A process-wide pool of 64-byte aligned native buffers in size classes (four per power of two), reused across
/// requests so steady-state work neither allocates managed memory nor touches fresh pages.
/// </summary>
public sealed unsafe class BufferPool : IDisposable
{
    public const int Alignment = 64;
    private const int MinClassBytes = 64;
    private const int StepsPerDoubling = 4;
    private const int ClassCount = 4 * 48;

    private readonly ConcurrentStack<nint>[] _free = new ConcurrentStack<nint>[ClassCount];
    private readonly long _maxRetainedBytes;
    private long _outstandingBytes;
    private long _retainedBytes;
    private long _rents;
    private long _misses;

    public BufferPool(long maxRetainedBytes = 2L << 30)
    {
        _maxRetainedBytes = maxRetainedBytes;
        for (int i = 0; i < ClassCount; i++) _free[i] = new ConcurrentStack<nint>();
    }

    /// <summary>The pool every scope uses unless told otherwise.</summary>
    public static BufferPool Shared { get; } = new();

    /// <summary>Bytes (by size class) handed out and not yet returned: zero when every scope has ended.</summary>
    public long OutstandingBytes => Interlocked.Read(ref _outstandingBytes);

    /// <summary>Bytes kept for reuse.</summary>
    public long RetainedBytes => Interlocked.Read(ref _retainedBytes);

    public long Rents => Interlocked.Read(ref _rents);

    /// <summary>Rents that had to allocate fresh native memory.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>The size-class capacity a request for <paramref name="bytes"/> gets.</summary>
    public static long CapacityFor(long bytes) => ClassBytes(ClassOf(bytes));

    public PooledBuffer Rent(long bytes)
    {
        int cls = ClassOf(bytes);
        long capacity = ClassBytes(cls);
        Interlocked.Increment(ref _rents);
        if (!_free[cls].TryPop(out var ptr))
        {
            Interlocked.Increment(ref _misses);
            ptr = (nint)NativeMemory.AlignedAlloc((nuint)capacity, Alignment);
        }
        else
        {
            Interlocked.Add(ref _retainedBytes, -capacity);
        }
        Interlocked.Add(ref _outstandingBytes, capacity);
        return new PooledBuffer(this, ptr, capacity, cls);
    }

    internal void Return(PooledBuffer buffer)
    {
        Interlocked.Add(ref _outstandingBytes, -buffer.Capacity);
        if (Interlocked.Add(ref _retainedBytes, buffer.Capacity) <= _maxRetainedBytes)
        {
            _free[buffer.SizeClass].Push(buffer.Pointer);
        }
        else
        {
            Interlocked.Add(ref _retainedBytes, -buffer.Capacity);
            NativeMemory.AlignedFree((void*)buffer.Pointer);
        }
    }

    /// <summary>Frees every retained buffer (outstanding ones are unaffected).</summary>
    public void Trim()
    {
        foreach (var stack in _free)
        {
            while (stack.TryPop(out var p))
            {
                NativeMemory.AlignedFree((void*)p);
            }
        }
        Interlocked.Exchange(ref _retainedBytes, 0);
    }

    public void Dispose() => Trim();

    private static int ClassOf(long bytes)
    {
        if (bytes <= MinClassBytes) return 0;
        int log = 63 - (int)ulong.LeadingZeroCount((ulong)(bytes - 1));
        int cls = Math.Max(0, (log - 7) * StepsPerDoubling);
        while (ClassBytes(cls) < bytes) cls++;
        return cls < ClassCount ? cls : throw new OutOfMemoryException($"{bytes} bytes is past the largest buffer size");
    }

    private static long ClassBytes(int cls)
    {
        if (cls == 0) return MinClassBytes;
        int doubling = (cls - 1) / StepsPerDoubling;
        int sub = (cls - 1) % StepsPerDoubling + 1;
        long pow = (long)MinClassBytes << doubling;
        long size = pow + pow / StepsPerDoubling * sub;
        return (size + Alignment - 1) / Alignment * Alignment;
    }
}

/// <summary>A native buffer on loan from a <see cref="BufferPool"/>; give it back exactly once.</summary>
public sealed class PooledBuffer
{
    private readonly BufferPool _pool;
    private int _returned;

    internal PooledBuffer(BufferPool pool, nint pointer, long capacity, int sizeClass)
    {
        _pool = pool;
        Pointer = pointer;
        Capacity = capacity;
        SizeClass = sizeClass;
    }

    public nint Pointer { get; }
    public long Capacity { get; }
    internal int SizeClass { get; }

    public void Return()
    {
        if (Interlocked.Exchange(ref _returned, 1) == 0) _pool.Return(this);
    }
}
