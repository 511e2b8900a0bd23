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

    // A locked array stack per size class: ConcurrentStack allocated a node per push, i.e. per tensor freed.
    private readonly FreeList[] _free = new FreeList[ClassCount];
    private readonly long _maxRetainedBytes;
    private readonly byte? _fillOnRent;
    private long _outstandingBytes;
    private long _retainedBytes;
    private long _rents;
    private long _misses;

    /// <param name="maxRetainedBytes">Bytes kept for reuse at most; returns past it are freed.</param>
    /// <param name="fillOnRent">
    /// When set, every rented buffer is filled with this byte first (like glibc's MALLOC_PERTURB_): tests use it to
    /// prove that no kernel reads an output or temporary it has not written, i.e. that a reused buffer's earlier
    /// contents, possibly another request's, never reach a result.
    /// </param>
    public BufferPool(long maxRetainedBytes = 2L << 30, byte? fillOnRent = null)
    {
        _maxRetainedBytes = maxRetainedBytes;
        _fillOnRent = fillOnRent;
        for (int i = 0; i < ClassCount; i++) _free[i] = new FreeList();
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
        var ptr = RentRaw(bytes, out int cls, out long capacity);
        return new PooledBuffer(this, ptr, capacity, cls);
    }

    /// <summary>Rent without a handle object (tensor storage keeps the three facts itself).</summary>
    internal nint RentRaw(long bytes, out int cls, out long capacity)
    {
        cls = ClassOf(bytes);
        capacity = ClassBytes(cls);
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
        if (_fillOnRent is { } fill) NativeMemory.Fill((void*)ptr, (nuint)capacity, fill);
        return ptr;
    }

    internal void Return(PooledBuffer buffer) => ReturnRaw(buffer.Pointer, buffer.SizeClass, buffer.Capacity);

    internal void ReturnRaw(nint pointer, int cls, long capacity)
    {
        Interlocked.Add(ref _outstandingBytes, -capacity);
        if (Interlocked.Add(ref _retainedBytes, capacity) <= _maxRetainedBytes)
        {
            _free[cls].Push(pointer);
        }
        else
        {
            Interlocked.Add(ref _retainedBytes, -capacity);
            NativeMemory.AlignedFree((void*)pointer);
        }
    }

    private sealed class FreeList
    {
        private nint[] _items = new nint[4];
        private int _count;

        public void Push(nint pointer)
        {
            lock (this)
            {
                if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
                _items[_count++] = pointer;
            }
        }

        public bool TryPop(out nint pointer)
        {
            lock (this)
            {
                if (_count == 0)
                {
                    pointer = 0;
                    return false;
                }
                pointer = _items[--_count];
                return true;
            }
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
