using AutogradService.Engine.Graphs;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>The program and plan caches' store: bounded by count and by weight (bytes), least recently used out first.</summary>
public class WeightedLruCacheTests
{
    [Fact]
    public void WeightAtTheBudget_IsKept_OnePast_EvictsTheLeastRecentlyUsed()
    {
        var cache = new WeightedLruCache<string>(capacity: 100, maxWeight: 100);
        cache.Add("a", "A", 40);
        cache.Add("b", "B", 60);
        Assert.Equal(100, cache.Weight);
        Assert.True(cache.TryGet("a", out _)); // a is now the most recently used
        cache.Add("c", "C", 1);
        Assert.False(cache.TryGet("b", out _));
        Assert.True(cache.TryGet("a", out _));
        Assert.True(cache.TryGet("c", out _));
        Assert.Equal(41, cache.Weight);
    }

    [Fact]
    public void AnEntryHeavierThanTheBudget_IsNotKept_AndEvictsNothing()
    {
        var cache = new WeightedLruCache<string>(capacity: 10, maxWeight: 100);
        cache.Add("a", "A", 50);
        Assert.Equal("Z", cache.Add("z", "Z", 101));
        Assert.False(cache.TryGet("z", out _));
        Assert.True(cache.TryGet("a", out _));
        Assert.Equal(50, cache.Weight);
    }

    [Fact]
    public void CountAtTheCapacity_IsKept_OnePast_Evicts()
    {
        var cache = new WeightedLruCache<int>(capacity: 3, maxWeight: long.MaxValue);
        for (int i = 0; i < 3; i++) cache.Add($"k{i}", i, 1);
        Assert.Equal(3, cache.Count);
        cache.Add("k3", 3, 1);
        Assert.Equal(3, cache.Count);
        Assert.False(cache.TryGet("k0", out _));
    }
}
