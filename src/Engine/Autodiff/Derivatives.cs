using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

public enum JacobianMode
{
    /// <summary>Forward when the inputs have fewer elements than the outputs, else reverse (case E8).</summary>
    Auto,
    Forward,
    Reverse,
}

/// <summary>Whole-derivative transforms built on the two modes: Jacobians, Hessians and Hessian-vector products.</summary>
public static partial class Derivatives
{
    private static ExecutionScope NeedInputs(Tensor[] inputs, string what) => inputs.Length > 0
        ? inputs[0].Scope
        : throw EngineException.InvalidArgument($"{what} needs at least one floating-point input to differentiate with respect to (wrt)");

    /// <summary>Chooses the cheaper mode: forward costs one pass per input element, reverse one per output element.</summary>
    public static JacobianMode Choose(long inputElements, long outputElements) =>
        inputElements < outputElements ? JacobianMode.Forward : JacobianMode.Reverse;

    /// <summary>
    /// The Jacobian of every output with respect to every input: <c>result[o][i]</c> has shape
    /// <c>outputs[o].Shape ++ inputs[i].Shape</c>. Reverse mode runs <paramref name="f"/> once and backward once per
    /// output element; forward mode runs <paramref name="f"/> once per input element.
    /// </summary>
    public static Tensor[][] Jacobian(Func<Tensor[], Tensor[]> f, Tensor[] inputs, JacobianMode mode, out JacobianMode used)
    {
        var scope = NeedInputs(inputs, "a Jacobian");
        if (mode == JacobianMode.Auto)
        {
            // Auto needs the output sizes: one plain forward pass is cheap next to either mode.
            long inN = inputs.Sum(t => t.ElementCount);
            long outN;
            using (scope.NoGrad())
                outN = f(inputs).Sum(t => t.ElementCount);
            mode = Choose(inN, outN);
        }
        used = mode;
        return mode == JacobianMode.Forward ? JacobianForward(f, inputs) : JacobianReverse(f, inputs);
    }

    private static Tensor[][] JacobianReverse(Func<Tensor[], Tensor[]> f, Tensor[] inputs)
    {
        var scope = inputs[0].Scope;
        var leaves = Leaves(inputs);
        Tensor[] outputs;
        using (scope.GradMode(true))
            outputs = f(leaves);
        var result = Allocate(outputs, inputs);
        if (outputs.Length == 1 && TryBatchedReverse(outputs[0], leaves, result[0])) return result;
        var retain = new BackwardOptions { RetainGraph = true };
        for (int o = 0; o < outputs.Length; o++)
        {
            var output = outputs[o];
            if (!output.RequiresGrad) continue; // constant output: zero rows
            for (long k = 0; k < output.ElementCount; k++)
            {
                var seed = OneHot(scope, output.Type, k);
                var grads = ReverseMode.Grad([output], [seed], leaves, retain);
                for (int i = 0; i < inputs.Length; i++)
                    CopyInto(result[o][i], k * inputs[i].ElementCount, grads[i]);
            }
        }
        return result;
    }

    private static Tensor[][] JacobianForward(Func<Tensor[], Tensor[]> f, Tensor[] inputs)
    {
        var scope = inputs[0].Scope;
        Tensor[][]? result = null;
        using var noGrad = scope.NoGrad();
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!inputs[i].DType.IsFloating()) continue;
            for (long k = 0; k < inputs[i].ElementCount; k++)
            {
                var tangents = new Tensor?[inputs.Length];
                tangents[i] = OneHot(scope, inputs[i].Type, k);
                var (outputs, outTangents) = ForwardMode.Jvp(f, inputs, tangents);
                result ??= Allocate(outputs, inputs);
                for (int o = 0; o < outputs.Length; o++)
                    CopyColumn(result[o][i], k, inputs[i].ElementCount, outTangents[o]);
            }
        }
        return result ?? Allocate(f(inputs), inputs);
    }

    /// <summary>Second derivatives of a scalar output: <c>result[i][j]</c> has shape <c>inputs[i].Shape ++ inputs[j].Shape</c>.</summary>
    public static Tensor[][] Hessian(Func<Tensor[], Tensor> f, Tensor[] inputs)
    {
        var scope = NeedInputs(inputs, "a Hessian");
        var leaves = Leaves(inputs);
        Tensor[] grads;
        using (scope.GradMode(true))
        {
            var y = ScalarOutput(f(leaves));
            grads = ReverseMode.Grad([y], null, leaves, new BackwardOptions { CreateGraph = true, RetainGraph = true });
        }
        var result = new Tensor[inputs.Length][];
        for (int i = 0; i < inputs.Length; i++)
        {
            result[i] = new Tensor[inputs.Length];
            for (int j = 0; j < inputs.Length; j++)
                result[i][j] = scope.Zeros(Concat(inputs[i].Shape, inputs[j].Shape), inputs[j].DType);
            var gi = grads[i];
            if (!gi.RequiresGrad) continue; // gradient is constant: its derivative is zero
            for (long k = 0; k < gi.ElementCount; k++)
            {
                var row = ReverseMode.Grad([gi], [OneHot(scope, gi.Type, k)], leaves, new BackwardOptions { RetainGraph = true });
                for (int j = 0; j < inputs.Length; j++)
                    CopyInto(result[i][j], k * inputs[j].ElementCount, row[j]);
            }
        }
        return result;
    }

    /// <summary>The Hessian of a scalar output times <paramref name="vectors"/> (one per input), by reverse over reverse.</summary>
    public static Tensor[] HessianVectorProduct(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor[] vectors)
    {
        var scope = inputs[0].Scope;
        var leaves = Leaves(inputs);
        using var recording = scope.GradMode(true);
        var y = ScalarOutput(f(leaves));
        var grads = ReverseMode.Grad([y], null, leaves, new BackwardOptions { CreateGraph = true, RetainGraph = true });
        // d/dx <g(x), v> = H v: one more backward pass through the recorded gradient.
        var connected = grads.Where(g => g.RequiresGrad).ToArray();
        if (connected.Length == 0)
            return inputs.Select(t => scope.Zeros(t.Shape, t.DType)).ToArray();
        var seeds = grads.Select((g, i) => vectors[i]).Where((v, i) => grads[i].RequiresGrad).ToArray();
        using var plain = scope.NoGrad();
        return ReverseMode.Grad(connected, seeds, leaves, BackwardOptions.Default);
    }

    private static Tensor ScalarOutput(Tensor y) => y.ElementCount == 1
        ? y
        : throw EngineException.ShapeMismatch($"a Hessian needs a scalar output, got shape {y.Shape}");

    /// <summary>Fresh leaves sharing the inputs' values, so the caller's tensors are never marked or mutated.</summary>
    private static Tensor[] Leaves(Tensor[] inputs)
    {
        var leaves = new Tensor[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            leaves[i] = inputs[i].View(inputs[i].Shape);
            leaves[i].Name = inputs[i].Name;
            if (inputs[i].DType.IsFloating()) leaves[i].RequiresGrad = true;
        }
        return leaves;
    }

    private static Tensor[][] Allocate(Tensor[] outputs, Tensor[] inputs)
    {
        var scope = inputs[0].Scope;
        var result = new Tensor[outputs.Length][];
        for (int o = 0; o < outputs.Length; o++)
        {
            result[o] = new Tensor[inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
            {
                var dtype = outputs[o].DType.IsFloating() ? outputs[o].DType : inputs[i].DType.IsFloating() ? inputs[i].DType : DType.Float32;
                result[o][i] = scope.Zeros(Concat(outputs[o].Shape, inputs[i].Shape), dtype);
            }
        }
        return result;
    }

    private static Tensor OneHot(ExecutionScope scope, TensorType type, long index)
    {
        var t = scope.Zeros(type.Shape, type.DType.IsFloating() ? type.DType : DType.Float32);
        if (t.DType == DType.Float32) t.Span<float>()[(int)index] = 1f;
        else t.Span<double>()[(int)index] = 1.0;
        return t;
    }

    private static Shape Concat(Shape a, Shape b)
    {
        if (a.Rank + b.Rank > Shape.MaxRank)
            throw EngineException.InvalidArgument($"a Jacobian of {a} by {b} would have rank {a.Rank + b.Rank}, over {Shape.MaxRank}");
        return new Shape([.. a.ToArray(), .. b.ToArray()]);
    }

    /// <summary>Writes <paramref name="values"/> contiguously at an element offset (one Jacobian row).</summary>
    private static void CopyInto(Tensor target, long offset, Tensor values)
    {
        var src = values.DType == target.DType ? values : F.Cast(values, target.DType);
        if (target.DType == DType.Float32) src.Span<float>().CopyTo(target.Span<float>()[(int)offset..]);
        else src.Span<double>().CopyTo(target.Span<double>()[(int)offset..]);
    }

    /// <summary>Writes <paramref name="values"/> as column <paramref name="column"/> of a row-major [rows, width] block.</summary>
    private static void CopyColumn(Tensor target, long column, long width, Tensor values)
    {
        var src = values.DType == target.DType ? values : F.Cast(values, target.DType);
        if (target.DType == DType.Float32)
        {
            var s = src.Span<float>();
            var d = target.Span<float>();
            for (int r = 0; r < s.Length; r++) d[(int)(r * width + column)] = s[r];
        }
        else
        {
            var s = src.Span<double>();
            var d = target.Span<double>();
            for (int r = 0; r < s.Length; r++) d[(int)(r * width + column)] = s[r];
        }
    }
}
