namespace AutogradService.Engine.Graphs;

/// <summary>
/// A thread-safe least-recently-used cache bounded twice: by entry count and by the sum of the entries' weights
/// (their estimated bytes). An entry heavier than the whole weight budget is not kept at all, so one huge request
/// cannot flush everyone else's entries, and the cache never holds more than its budget whatever clients send.
/// </summary>
public sealed class WeightedLruCache<TValue>
{
    private readonly object _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private long _weight;

    private readonly record struct Entry(string Key, TValue Value, long Weight);

    public WeightedLruCache(int capacity, long maxWeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWeight, 1);
        Capacity = capacity;
        MaxWeight = maxWeight;
    }

    public int Capacity { get; }
    public long MaxWeight { get; }

    public int Count
    {
        get
        {
            lock (_lock) return _entries.Count;
        }
    }

    /// <summary>The summed weight of what is held: at most <see cref="MaxWeight"/>.</summary>
    public long Weight
    {
        get
        {
            lock (_lock) return _weight;
        }
    }

    public bool TryGet(string key, out TValue value)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
                value = node.Value.Value;
                return true;
            }
        }
        value = default!;
        return false;
    }

    /// <summary>Keeps <paramref name="value"/> (unless it alone outweighs the budget) and returns what the key now holds.</summary>
    public TValue Add(string key, TValue value, long weight)
    {
        if (weight > MaxWeight) return value;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var raced)) return raced.Value.Value;
            _entries[key] = _recency.AddFirst(new Entry(key, value, weight));
            _weight += weight;
            while (_entries.Count > Capacity || _weight > MaxWeight)
            {
                var last = _recency.Last!;
                _recency.RemoveLast();
                _entries.Remove(last.Value.Key);
                _weight -= last.Value.Weight;
            }
        }
        return value;
    }

    public void Clear()
    {
        lock (_lock)
        {
            _entries.Clear();
            _recency.Clear();
            _weight = 0;
        }
    }
}
