using AutogradService.Engine;

namespace AutogradService.Onnx;

/// <summary>The importer's errors: what the engine cannot run is <c>unsupported_op</c>, naming op, domain and opset.</summary>
internal static class OnnxErrors
{
    public static EngineException UnsupportedOp(string op, string domain, long opset, string node, string? why = null)
    {
        var shownDomain = domain.Length == 0 ? "ai.onnx" : domain;
        var e = new EngineException(ErrorCodes.UnsupportedOp,
            $"ONNX op '{op}' (domain '{shownDomain}', opset {opset}) {why ?? "is not supported"}", node: node, op: op);
        e.Facts["onnx_op"] = op;
        e.Facts["domain"] = shownDomain;
        e.Facts["opset"] = opset;
        return e;
    }

    public static EngineException UnsupportedType(string type, string what)
    {
        var e = new EngineException(ErrorCodes.UnsupportedOp,
            $"{what} has element type {type}; the engine computes in float, double, integers (as int64) and bool only", input: what);
        e.Facts["element_type"] = type;
        return e;
    }

    public static EngineException Invalid(string message, string? node = null) => EngineException.InvalidGraph(message, node);
}
