namespace AutogradService.Engine.Ops;

/// <summary>
/// Every op the engine knows, listed explicitly (no reflection scanning). Graphs, programs and sessions find ops
/// here by name; <see cref="Describe"/> is what <c>GET /v1/ops</c> serves. Adding an op means adding it to its family's
/// <c>All</c> list; the generic derivative tests then cover it.
/// </summary>
public sealed class OpRegistry
{
    private readonly Dictionary<string, Op> _byName = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Op> _ops = [];

    public OpRegistry(IEnumerable<Op> ops)
    {
        foreach (var op in ops)
        {
            if (!_byName.TryAdd(op.Name, op))
                throw new InvalidOperationException($"op '{op.Name}' is registered twice");
            _ops.Add(op);
            foreach (var alias in op.Schema.Aliases)
                if (!_byName.TryAdd(alias, op))
                    throw new InvalidOperationException($"alias '{alias}' of '{op.Name}' is already taken");
        }
    }

    /// <summary>The registry of all built-in ops.</summary>
    public static OpRegistry Default { get; } = new(
    [
        .. UnaryOps.All,
        .. BinaryOps.All,
        .. PredicateOps.All,
        WhereOp.Instance,
        .. ReduceOps.All,
        ReshapeOp.Instance,
        BroadcastToOp.Instance,
        .. LinearAlgebraOps.All,
        .. MovementOps.All,
        IdentityOp.Instance,
        DetachOp.Instance,
        CastOp.Instance,
        ShapeOp.Instance,
        .. NeuralNetOps.All,
        .. CreationOps.All,
    ]);

    public IReadOnlyList<Op> All => _ops;

    public bool TryGet(string name, out Op op) => _byName.TryGetValue(name, out op!);

    public Op Get(string name) => TryGet(name, out var op)
        ? op
        : throw EngineException.InvalidGraph($"unknown op '{name}'", op: name);

    /// <summary>The catalog: every op's schema, in registration order.</summary>
    public IReadOnlyList<OpSchema> Describe() => _ops.Select(o => o.Schema).ToArray();
}
