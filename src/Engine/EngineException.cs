namespace AutogradService.Engine;

/// <summary>
/// Stable error codes shared with the API contract; the service maps each to an HTTP and a gRPC status.
/// </summary>
public static class ErrorCodes
{
    public const string InvalidGraph = "invalid_graph";
    public const string ShapeMismatch = "shape_mismatch";
    public const string DTypeMismatch = "dtype_mismatch";
    public const string InvalidTensor = "invalid_tensor";
    public const string NotDifferentiable = "not_differentiable";
    public const string GraphFreed = "graph_freed";
    public const string MemoryLimitExceeded = "memory_limit_exceeded";
    public const string IterationLimitExceeded = "iteration_limit_exceeded";
    public const string DeadlineExceeded = "deadline_exceeded";
    public const string NotFound = "not_found";
    public const string InvalidArgument = "invalid_argument";
    public const string NumericalAnomaly = "numerical_anomaly";

    /// <summary>An imported model uses an op (or a form of one) the engine cannot run; found at upload time.</summary>
    public const string UnsupportedOp = "unsupported_op";

    /// <summary>A request named a device this process does not have (<c>gpu</c> on a machine without one).</summary>
    public const string DeviceUnavailable = "device_unavailable";
}

/// <summary>
/// Every failure the engine reports to a caller: a stable <see cref="Code"/>, a human message, and where known
/// the node, op and input at fault. Anything else escaping the engine is a bug.
/// </summary>
public sealed class EngineException : Exception
{
    public EngineException(string code, string message, string? node = null, string? op = null, string? input = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Node = node;
        Op = op;
        Input = input;
    }

    public string Code { get; }
    public string? Node { get; private set; }
    public string? Op { get; private set; }
    public string? Input { get; }

    /// <summary>Extra machine-readable facts (bytes requested, limits, shapes) for problem details.</summary>
    public Dictionary<string, object> Facts { get; } = new();

    /// <summary>Fills in the node and op when a lower layer did not know them.</summary>
    public EngineException At(string? node, string? op)
    {
        Node ??= node;
        Op ??= op;
        return this;
    }

    public override string Message
    {
        get
        {
            var where = (Node, Op) switch
            {
                (not null, not null) => $" (node '{Node}', op '{Op}')",
                (not null, null) => $" (node '{Node}')",
                (null, not null) => $" (op '{Op}')",
                _ => "",
            };
            return base.Message + where;
        }
    }

    /// <summary>The message without the location suffix.</summary>
    public string Detail => base.Message;

    public static EngineException InvalidGraph(string message, string? node = null, string? op = null, string? input = null) =>
        new(ErrorCodes.InvalidGraph, message, node, op, input);

    public static EngineException ShapeMismatch(string message, string? node = null, string? op = null) =>
        new(ErrorCodes.ShapeMismatch, message, node, op);

    public static EngineException DTypeMismatch(string message, string? node = null, string? op = null) =>
        new(ErrorCodes.DTypeMismatch, message, node, op);

    public static EngineException InvalidTensor(string message, string? input = null) =>
        new(ErrorCodes.InvalidTensor, message, input: input);

    public static EngineException NotDifferentiable(string message, string? input = null) =>
        new(ErrorCodes.NotDifferentiable, message, input: input);

    public static EngineException GraphFreed(string? op = null) =>
        new(ErrorCodes.GraphFreed,
            "the recorded graph was already freed by an earlier backward pass; pass retain_graph=true to the first backward " +
            "(PyTorch: retain_graph=True, TensorFlow: persistent=True) to run backward through it again", op: op);

    public static EngineException MemoryLimit(long requested, long inUse, long limit)
    {
        var e = new EngineException(ErrorCodes.MemoryLimitExceeded,
            $"the computation needs {requested} more bytes while {inUse} bytes are in use, over its memory limit of {limit} bytes");
        e.Facts["requested_bytes"] = requested;
        e.Facts["in_use_bytes"] = inUse;
        e.Facts["limit_bytes"] = limit;
        return e;
    }

    public static EngineException TensorLimit(long limit)
    {
        var e = new EngineException(ErrorCodes.MemoryLimitExceeded,
            $"the computation holds {limit} tensors at once, its limit (each costs memory besides its data); release values or split the work");
        e.Facts["limit_tensors"] = limit;
        return e;
    }

    public static EngineException IterationLimit(long limit, string? node = null) =>
        new(ErrorCodes.IterationLimitExceeded, $"a while loop ran past its limit of {limit} iterations", node, "while");

    public static EngineException Cancelled(Exception? inner = null) =>
        new(ErrorCodes.DeadlineExceeded, "the computation was cancelled: its deadline passed or the caller went away", inner: inner);

    public static EngineException InvalidArgument(string message) => new(ErrorCodes.InvalidArgument, message);

    /// <summary>Client text quoted in a message, cut to <paramref name="max"/> characters: an error never echoes a whole hostile input.</summary>
    public static string Clip(string s, int max = 40) => s.Length <= max ? s : s[..max] + "...";

    /// <summary>Anomaly mode's finding: <paramref name="pass"/> is forward or backward; the value is "NaN" or "Infinity".</summary>
    public static EngineException Anomaly(string op, string pass, string value, long index, string? node)
    {
        var e = new EngineException(ErrorCodes.NumericalAnomaly,
            $"the {pass} pass of {op} produced {value} (first at element {index}) from finite values", node, op);
        e.Facts["pass"] = pass;
        e.Facts["value"] = value;
        e.Facts["index"] = index;
        return e;
    }
}
