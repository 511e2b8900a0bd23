using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// Plans by (graph content hash, input types), least recently used evicted past <see cref="Capacity"/> plans or
/// <see cref="MaxBytes"/> of estimated plan size (a plan holds its graph, constants included). A graph a client sends
/// again — the same JSON every training step — skips validation and shape inference. Thread-safe; two threads
/// missing on the same key at once may both build, and one result wins. Failures are not cached.
/// </summary>
public sealed class PlanCache
{
    private readonly WeightedLruCache<Plan> _plans;
    private readonly OpRegistry _registry;
    private long _hits;
    private long _misses;

    public PlanCache(int capacity = 256, OpRegistry? registry = null, long maxBytes = 256L << 20)
    {
        _plans = new WeightedLruCache<Plan>(capacity, maxBytes);
        _registry = registry ?? OpRegistry.Default;
    }

    public int Capacity => _plans.Capacity;
    public long MaxBytes => _plans.MaxWeight;
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);
    public int Count => _plans.Count;

    /// <summary>Estimated bytes of the plans held.</summary>
    public long Bytes => _plans.Weight;

    /// <summary>The plan for <paramref name="graph"/> with these concrete input types (missing ones: as declared).</summary>
    public Plan GetOrCreate(Graph graph, IReadOnlyDictionary<string, TensorType>? inputTypes = null) =>
        GetOrCreate(graph, inputTypes?.ToDictionary(kv => kv.Key, kv => InferredType.From(kv.Value)));

    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Graph, string> _hashes = new();

    public Plan GetOrCreate(Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes)
    {
        // Graphs are immutable once built, so one instance (a registered model, a cached program) is hashed once.
        var hash = _hashes.GetValue(graph, GraphHash.Compute);
        var key = Key(hash, graph, inputTypes);
        if (_plans.TryGet(key, out var cached))
        {
            Interlocked.Increment(ref _hits);
            return cached;
        }
        Interlocked.Increment(ref _misses);
        var plan = Plan.Build(graph, inputTypes, _registry, hash);
        return _plans.Add(key, plan, GraphSize.EstimatePlanBytes(plan));
    }

    public void Clear() => _plans.Clear();

    /// <summary>The hash plus each input's type in declaration order (extra names make their own key; Build rejects them).</summary>
    private static string Key(string hash, Graph graph, IReadOnlyDictionary<string, InferredType>? inputTypes)
    {
        if (inputTypes is null) return hash;
        var parts = new List<string>(graph.Inputs.Count + 1) { hash };
        foreach (var p in graph.Inputs)
            parts.Add(inputTypes.TryGetValue(p.Name, out var t) ? t.ToString() : "-");
        var declares = graph.InputNameTest();
        foreach (var name in inputTypes.Keys.Order(StringComparer.Ordinal))
            if (!declares(name)) parts.Add("+" + name);
        return string.Join('|', parts);
    }
}
