namespace AutogradService.Engine.Graphs;

/// <summary>
/// Parsed programs by text (and asked-for outputs): clients resend the same program, so it is parsed once. Only
/// programs that passed every limit enter, and the cache is bounded in estimated bytes as well as entries.
/// </summary>
public sealed class ProgramCache(long maxBytes, int capacity = 1024)
{
    private readonly WeightedLruCache<Graph> _entries = new(capacity, maxBytes);

    public int Count => _entries.Count;
    public long Weight => _entries.Weight;
    public long MaxWeight => _entries.MaxWeight;

    /// <summary>The program's graph, parsed under <paramref name="limits"/> (and its cancellation) when not cached.</summary>
    public Graph Parse(string text, IReadOnlyList<string>? outputs, GraphLimits limits)
    {
        var key = outputs is { Count: > 0 } ? text + "\u0000" + string.Join("\u0000", outputs) : text;
        if (_entries.TryGet(key, out var cached)) return cached;
        var parsed = ProgramParser.Parse(text, outputs, limits: limits);
        return _entries.Add(key, parsed, 2L * key.Length + GraphSize.EstimateBytes(parsed));
    }
}
