using AutogradService.Engine.Ops;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// How the frameworks the chapter uses spell the registered ops, so their code runs as written: namespace prefixes
/// (<c>np.linalg.norm</c>, <c>torch.dot</c>, <c>tf.reduce_sum</c>, <c>jax.lax.stop_gradient</c>), their names for
/// ops (<c>reduce_sum</c>, <c>multiply</c>, <c>cat</c>…), methods on values (<c>b.sum()</c>, <c>x.T</c>) and keyword
/// spellings (<c>axis</c>, <c>dim</c>, <c>keepdim</c>). These are the program front end's spellings only: graphs name
/// ops by their registered names and aliases.
/// </summary>
internal static class ProgramNames
{
    /// <summary>Module names a dotted call may start with or pass through; they carry no meaning of their own.</summary>
    private static readonly HashSet<string> Namespaces = new(StringComparer.Ordinal)
    {
        "np", "numpy", "jnp", "torch", "tf", "jax", "lax", "linalg", "math", "nn", "functional", "F", "special", "mx", "nd",
    };

    /// <summary>Framework names that differ from the registry's.</summary>
    private static readonly Dictionary<string, string> FrameworkNames = new(StringComparer.Ordinal)
    {
        ["reduce_sum"] = "sum", ["reduce_mean"] = "mean", ["reduce_max"] = "max", ["reduce_min"] = "min",
        ["reduce_prod"] = "prod", ["reduce_logsumexp"] = "logsumexp", ["amax"] = "max", ["amin"] = "min",
        ["multiply"] = "mul", ["subtract"] = "sub", ["divide"] = "div", ["true_divide"] = "div", ["negative"] = "neg",
        ["power"] = "pow", ["absolute"] = "abs", ["greater"] = "gt", ["greater_equal"] = "ge", ["less"] = "lt",
        ["less_equal"] = "le", ["equal"] = "eq", ["not_equal"] = "ne", ["cat"] = "concat", ["concatenate"] = "concat",
        ["expand_dims"] = "unsqueeze", ["mm"] = "matmul", ["bmm"] = "matmul", ["mv"] = "matmul", ["inner"] = "dot",
        ["vdot"] = "dot", ["tensordot"] = "matmul", ["item"] = "identity", ["clone"] = "identity",
    };

    /// <summary>Attribute spellings that differ from the registry's, tried when the op has no attribute so named.</summary>
    private static readonly Dictionary<string, string[]> KeywordNames = new(StringComparer.Ordinal)
    {
        ["axis"] = ["axes", "axis"], ["dim"] = ["axes", "axis"], ["axes"] = ["axis"], ["keepdim"] = ["keepdims"],
    };

    public static bool IsNamespace(string name) => Namespaces.Contains(name);

    /// <summary>The registered op a call or method name means, or null.</summary>
    public static Op? Resolve(OpRegistry registry, string name)
    {
        if (registry.TryGet(name, out var op)) return op;
        return FrameworkNames.TryGetValue(name, out var known) && registry.TryGet(known, out op) ? op : null;
    }

    /// <summary>
    /// The attribute a keyword names on <paramref name="schema"/> and its value in the form the op takes (a single
    /// axis becomes a list for ops that take several).
    /// </summary>
    public static (string Name, AttrValue Value) Keyword(OpSchema schema, string keyword, AttrValue value)
    {
        if (Has(schema, keyword) || !KeywordNames.TryGetValue(keyword, out var candidates)) return (keyword, value);
        foreach (var name in candidates)
        {
            if (!Has(schema, name)) continue;
            var kind = schema.Attributes.First(a => a.Name == name).Kind;
            return kind == AttrKind.Ints && value.Kind == AttrKind.Int ? (name, AttrValue.Ints((long)value.Value)) : (name, value);
        }
        return (keyword, value);
    }

    /// <summary>The names an unknown call may have meant: registered ops, their aliases and the framework names.</summary>
    public static IEnumerable<string> Known(OpRegistry registry) =>
        registry.All.SelectMany(o => o.Schema.Aliases.Prepend(o.Name)).Concat(FrameworkNames.Keys);

    private static bool Has(OpSchema schema, string attribute) => schema.Attributes.Any(a => a.Name == attribute);

    /// <summary>Python's keywords: never value names.</summary>
    public static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "def", "return", "while", "if", "elif", "else", "and", "or", "not", "pass", "import", "from", "as", "for", "in",
        "break", "continue", "lambda", "True", "False", "None", "with", "class", "global", "nonlocal", "yield", "is",
    };

    private const int MaxSuggestedLength = 64;
    private const int MaxSuggestionCandidates = 5000;

    /// <summary>Edits between two names, a swap of neighbours counting as one (so "nrom" is nearest "norm").</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>
    /// " (did you mean 'x'?)" for the nearest of <paramref name="candidates"/> within two edits, else "" (graphs'
    /// unknown ops use it too).
    /// </summary>
    public static string Suggest(string name, IEnumerable<string> candidates)
    {
        // Bounded work on an error path a client controls: short names only, lengths within two, a few thousand tried.
        if (name.Length > MaxSuggestedLength) return "";
        var lower = name.ToLowerInvariant();
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var candidate in candidates.Where(c => Math.Abs(c.Length - name.Length) <= 2).Take(MaxSuggestionCandidates))
        {
            int d = Distance(candidate.ToLowerInvariant(), lower);
            if (d < bestDistance) (best, bestDistance) = (candidate, d);
        }
        return best is not null && bestDistance <= 2 && bestDistance < name.Length ? $" (did you mean '{best}'?)" : "";
    }
}
