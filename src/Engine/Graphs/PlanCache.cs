using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Plans by (graph content hash, input types), least recently used evicted past <see cref="Capacity"/>. A graph a
/// client sends again — the same JSON every training step — skips validation and shape inference. Thread-safe;
/// two threads missing on the same key at once may both build, and one result wins. Failures are not cached.
/// </summary>
public sealed class PlanCache
{
    private readonly object _lock = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, Plan Plan)>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, Plan Plan)> _recency = new();
    private readonly OpRegistry _registry;
    private long _hits;
    private long _misses;

    public PlanCache(int capacity = 256, OpRegistry? registry = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _registry = registry ?? OpRegistry.Default;
    }

    public int Capacity { get; }
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);

    public int Count
    {
        get
        {
            lock (_lock) return _entries.Count;
        }
    }

    /// <summary>The plan for <paramref name="graph"/> with these concrete input types (missing ones: as declared).</summary>
    public Plan GetOrCreate(Graph graph, IReadOnlyDictionary<string, TensorType>? inputTypes = null) =>
        GetOrCreate(graph, inputTypes?.ToDictionary(kv => kv.Key, kv => InferredType.From(kv.Value)));

    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Graph, string> _hashes = new();

    public Plan GetOrCreate(Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes)
    {
        // Graphs are immutable once built, so one instance (a registered model, a cached program) is hashed once.
        var hash = _hashes.GetValue(graph, GraphHash.Compute);
        var key = Key(hash, graph, inputTypes);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var entry))
            {
                _recency.Remove(entry);
                _recency.AddFirst(entry);
                Interlocked.Increment(ref _hits);
                return entry.Value.Plan;
            }
        }
        Interlocked.Increment(ref _misses);
        var plan = Plan.Build(graph, inputTypes, _registry, hash);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var raced)) return raced.Value.Plan;
            _entries[key] = _recency.AddFirst((key, plan));
            while (_entries.Count > Capacity)
            {
                var last = _recency.Last!;
                _recency.RemoveLast();
                _entries.Remove(last.Value.Key);
            }
        }
        return plan;
    }

    public void Clear()
    {
        lock (_lock)
        {
            _entries.Clear();
            _recency.Clear();
        }
    }

    /// <summary>The hash plus each input's type in declaration order (extra names make their own key; Build rejects them).</summary>
    private static string Key(string hash, Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes)
    {
        if (inputTypes is null) return hash;
        var parts = new List<string>(graph.Inputs.Count + 1) { hash };
        foreach (var p in graph.Inputs)
            parts.Add(inputTypes.TryGetValue(p.Name, out var t) ? t.ToString() : "-");
        foreach (var name in inputTypes.Keys.Order(StringComparer.Ordinal))
            if (!graph.Inputs.Any(p => p.Name == name)) parts.Add("+" + name);
        return string.Join('|', parts);
    }
}
