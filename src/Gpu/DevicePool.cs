using AutogradService.Engine.Memory;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// Device buffers reused across requests in the host pool's size classes (<see cref="BufferPool.CapacityFor"/>): a
/// request's tensors neither wait for the driver's allocator nor leave the device fragmented. Retention is capped;
/// when the device is full, what is retained is freed and the allocation tried once more. Callers hold the backend's lock.
/// </summary>
internal sealed class DevicePool(Accelerator accelerator, long maxRetainedBytes)
{
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> _free = [];

    public long RetainedBytes { get; private set; }

    public long OutstandingBytes { get; private set; }

    public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
    {
        long capacity = BufferPool.CapacityFor(Math.Max(bytes, 1));
        MemoryBuffer1D<byte, Stride1D.Dense> buffer;
        if (_free.TryGetValue(capacity, out var stack) && stack.TryPop(out var reused))
        {
            RetainedBytes -= capacity;
            buffer = reused;
        }
        else
        {
            try
            {
                buffer = accelerator.Allocate1D<byte>(capacity);
            }
            catch (Exception e) when (e is OutOfMemoryException or AcceleratorException && RetainedBytes > 0)
            {
                Trim();
                buffer = accelerator.Allocate1D<byte>(capacity);
            }
        }
        OutstandingBytes += capacity;
        return buffer;
    }

    public void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer)
    {
        long capacity = buffer.Length;
        OutstandingBytes -= capacity;
        if (RetainedBytes + capacity > maxRetainedBytes)
        {
            buffer.Dispose();
            return;
        }
        if (!_free.TryGetValue(capacity, out var stack)) _free[capacity] = stack = new();
        stack.Push(buffer);
        RetainedBytes += capacity;
    }

    /// <summary>Frees every retained buffer.</summary>
    public void Trim()
    {
        foreach (var stack in _free.Values)
            while (stack.TryPop(out var buffer)) buffer.Dispose();
        RetainedBytes = 0;
    }
}
