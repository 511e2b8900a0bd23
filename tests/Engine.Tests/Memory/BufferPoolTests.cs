using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Memory;

public class BufferPoolTests
{
    private static readonly long[] Sizes = [1, 7, 63, 64, 65, 100, 127, 128, 129, 1000, 4096, 4097, 65_537, 1 << 20, (1 << 20) + 3];

    [Fact]
    public void BuffersAreAlignedTo64Bytes()
    {
        Assert.Equal(64, BufferPool.Alignment);
        using var pool = new BufferPool();
        var buffers = Sizes.Select(pool.Rent).ToList();
        foreach (var b in buffers)
        {
            Assert.Equal(0, b.Pointer % 64);
            Assert.Equal(0, b.Capacity % 64);
        }
        buffers.ForEach(b => b.Return());
        Assert.Equal(0, pool.OutstandingBytes);
    }

    [Fact]
    public void TensorDataIsAligned()
    {
        using var scope = new ExecutionScope(new ScopeOptions { Pool = new BufferPool() });
        foreach (int n in new[] { 0, 1, 3, 17, 1000 })
        {
            Assert.Equal(0, scope.Zeros(Shape.Vector(n), DType.Float32).Pointer % 64);
            Assert.Equal(0, scope.Zeros(Shape.Vector(n), DType.Bool).Pointer % 64);
        }
    }

    [Fact]
    public void CapacityCoversTheRequestWithBoundedWaste()
    {
        long previous = 0;
        for (long bytes = 1; bytes < 1 << 22; bytes = bytes * 9 / 8 + 1)
        {
            long capacity = BufferPool.CapacityFor(bytes);
            Assert.True(capacity >= bytes, $"{bytes} bytes got a {capacity}-byte buffer");
            Assert.True(capacity <= Math.Max(64, bytes + bytes / 4 + 64), $"{bytes} bytes got a {capacity}-byte buffer (too much waste)");
            Assert.True(capacity >= previous, "capacities must not shrink as requests grow");
            previous = capacity;
        }
    }

    [Fact]
    public void ReturnedBuffersAreReused()
    {
        using var pool = new BufferPool();
        var first = pool.Rent(1000);
        var pointer = first.Pointer;
        Assert.Equal(BufferPool.CapacityFor(1000), pool.OutstandingBytes);
        first.Return();
        Assert.Equal(0, pool.OutstandingBytes);
        Assert.Equal(BufferPool.CapacityFor(1000), pool.RetainedBytes);
        long misses = pool.Misses;
        var second = pool.Rent(990); // same size class
        Assert.Equal(misses, pool.Misses);
        Assert.Equal(pointer, second.Pointer);
        second.Return();
        Assert.Equal(2, pool.Rents);
    }

    [Fact]
    public void ReturningTwiceCountsOnce()
    {
        using var pool = new BufferPool();
        var b = pool.Rent(256);
        b.Return();
        b.Return();
        Assert.Equal(0, pool.OutstandingBytes);
        Assert.Equal(BufferPool.CapacityFor(256), pool.RetainedBytes);
    }

    [Fact]
    public void RetentionIsCappedAndTrimFreesEverything()
    {
        using var pool = new BufferPool(maxRetainedBytes: 1024);
        var buffers = Enumerable.Range(0, 8).Select(_ => pool.Rent(512)).ToList();
        buffers.ForEach(b => b.Return());
        Assert.Equal(0, pool.OutstandingBytes);
        Assert.True(pool.RetainedBytes <= 1024, $"retained {pool.RetainedBytes} bytes over a cap of 1024");
        pool.Trim();
        Assert.Equal(0, pool.RetainedBytes);
    }
}
