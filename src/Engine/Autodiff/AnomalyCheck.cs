using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>
/// Anomaly mode (PyTorch's <c>detect_anomaly</c>): after each op's forward and each tape node's VJP, a result holding
/// NaN or ±Infinity stops the run, naming the op and pass, unless what it read was already non-finite (then the
/// anomaly was carried, not produced, and the op that produced it was reported, or it came from the caller's data).
/// </summary>
internal static class AnomalyCheck
{
    public static void Forward(string op, Tensor[] inputs, Tensor output)
    {
        if (Finite(output, out string value, out long index) || inputs.Any(i => !Finite(i, out _, out _))) return;
        throw EngineException.Anomaly(op, "forward", value, index, output.Name);
    }

    public static void Backward(TapeNode node, Tensor cotangent, Tensor?[] inputGrads)
    {
        foreach (var g in inputGrads)
        {
            if (g is null || Finite(g, out string value, out long index)) continue;
            if (!Finite(cotangent, out _, out _) || !Finite(node.Output, out _, out _) || node.Inputs.Any(i => !Finite(i, out _, out _))) return;
            throw EngineException.Anomaly(node.Op.Name, "backward", value, index, node.Output.Name);
        }
    }

    /// <summary>Whether every element is finite; otherwise the first bad one and what it is.</summary>
    private static bool Finite(Tensor t, out string value, out long index)
    {
        (value, index) = ("", -1);
        return t.DType switch
        {
            DType.Float32 => Finite(t.ReadOnlySpan<float>(), ref value, ref index),
            DType.Float64 => Finite(t.ReadOnlySpan<double>(), ref value, ref index),
            _ => true,
        };
    }

    private static bool Finite<T>(ReadOnlySpan<T> data, ref string value, ref long index) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        // The largest magnitude is NaN or infinite exactly when some element is: one vectorised pass in the common case.
        if (data.IsEmpty || T.IsFinite(TensorPrimitives.MaxMagnitude(data))) return true;
        for (int i = 0; i < data.Length; i++)
        {
            if (T.IsFinite(data[i])) continue;
            (value, index) = (T.IsNaN(data[i]) ? "NaN" : T.IsPositiveInfinity(data[i]) ? "Infinity" : "-Infinity", i);
            return false;
        }
        return true;
    }
}
