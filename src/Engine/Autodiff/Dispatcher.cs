using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>
/// The one door every op goes through: checks types, runs the kernel, records a tape node when a gradient may be
/// needed, and pushes forward-mode tangents along. Shared concerns live here once: dtype promotion, recording,
/// tangent broadcasting, cancellation.
/// </summary>
public static class Dispatcher
{
    public static Tensor Apply(Op op, params Tensor[] inputs) => Apply(op, inputs, Attributes.Empty);

    public static Tensor Apply(Op op, Tensor[] inputs, Attributes attrs)
    {
        if (inputs.Length == 0)
            throw new ArgumentException($"op '{op.Name}' has no inputs: pass the scope explicitly", nameof(inputs));
        return Apply(inputs[0].Scope, op, inputs, attrs);
    }

    public static Tensor Apply(ExecutionScope scope, Op op, Tensor[] inputs, Attributes attrs) => Apply(scope, op, inputs, attrs, null);

    /// <summary>
    /// As <see cref="Apply(ExecutionScope, Op, Tensor[], Attributes)"/>, writing the output over <paramref name="reuse"/>
    /// when that is safe (see <see cref="CanWriteOver"/>); otherwise <paramref name="reuse"/> is ignored. The caller
    /// promises it never reads <paramref name="reuse"/> again (the interpreter passes a value at its last use).
    /// </summary>
    internal static Tensor Apply(ExecutionScope scope, Op op, Tensor[] inputs, Attributes attrs, Tensor? reuse)
    {
        scope.ThrowIfCancelled();
        foreach (var input in inputs)
        {
            if (!ReferenceEquals(input.Scope, scope))
                throw EngineException.InvalidArgument($"op '{op.Name}' mixes tensors of different scopes");
        }
        inputs = PromoteInputs(op, inputs);

        if (op is CompositeOp composite)
            return composite.Expand(scope, inputs, attrs);

        var primitive = (PrimitiveOp)op;
        // Up to four input types live on the stack: no array per op on the hot path.
        var inline = default(FourTypes);
        Span<TensorType> types = inputs.Length <= 4 ? ((Span<TensorType>)inline)[..inputs.Length] : new TensorType[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) types[i] = inputs[i].Type;
        TensorType type;
        try
        {
            type = primitive.InferType(types, attrs);
        }
        catch (EngineException e)
        {
            throw e.At(null, op.Name);
        }

        bool differentiable = op.Schema.Differentiable && type.DType.IsFloating();
        bool record = differentiable && scope.GradEnabled && AnyRequiresGrad(inputs);
        Tensor output;
        Tensor? saved = null;
        if (primitive is ViewOp)
        {
            output = inputs[0].View(type.Shape);
        }
        else
        {
            // In place: the output shares the dying input's bytes (charging nothing); the kernel reads each element first.
            // (Not in anomaly mode, whose check reads the inputs after the kernel has run.)
            output = reuse is not null && !scope.DetectAnomaly && CanWriteOver(scope, primitive, inputs, type, reuse) ? reuse.View(type.Shape) : scope.Allocate(type);
            try
            {
                if (record) saved = primitive.ForwardRecorded(scope, inputs, attrs, output);
                else primitive.Forward(scope, inputs, attrs, output);
            }
            catch (EngineException e)
            {
                output.Dispose();
                throw e.At(null, op.Name);
            }
            catch
            {
                output.Dispose();
                throw;
            }
        }
        scope.OpsExecuted++;
        if (scope.DetectAnomaly && !scope.InBackwardRule && type.DType.IsFloating() && primitive is not ViewOp)
        {
            try
            {
                AnomalyCheck.Forward(op.Name, inputs, output);
            }
            catch
            {
                output.Dispose();
                throw;
            }
        }

        if (!differentiable)
            return output;

        if (record) Record(primitive, inputs, attrs, output, saved);
        if (AnyTangent(inputs))
            output.Tangent = PushTangent(primitive, inputs, attrs, output);
        return output;
    }

    /// <summary>
    /// Records <paramref name="output"/>, a value computed elsewhere, as <paramref name="op"/> applied to
    /// <paramref name="inputs"/>, exactly as <see cref="Apply(ExecutionScope, Op, Tensor[], Attributes)"/> would have
    /// (sin's forward yields cos x; recording it saves the pass that would recompute it). Inputs must carry no tangents.
    /// </summary>
    internal static void RecordComputed(PrimitiveOp op, Tensor[] inputs, Tensor output, Tensor? saved)
    {
        if (output.GradFn is null && output.Scope.GradEnabled && AnyRequiresGrad(inputs))
            Record(op, inputs, Attributes.Empty, output, saved);
    }

    private static void Record(PrimitiveOp op, Tensor[] inputs, Attributes attrs, Tensor output, Tensor? saved)
    {
        output.RequiresGrad = true;
        output.GradFn = new TapeNode(op, inputs, attrs, output);
        for (int i = 0; i < inputs.Length; i++)
        {
            inputs[i].TapeUses++;
            if (op.VjpReadsInput(i)) inputs[i].DataUses++;
        }
        if (op.VjpReadsOutput) output.DataUses++;
        if (saved is not null) output.GradFn.Save(saved);
    }

    private static Tensor? PushTangent(PrimitiveOp op, Tensor[] inputs, Attributes attrs, Tensor output)
    {
        var tangents = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) tangents[i] = inputs[i].Tangent;
        // The rule uses the inputs as plain values: their tangents are hidden while it runs, or every op inside it
        // would push a tangent of its own (a nested forward pass that wastes work and, for div, never ends).
        foreach (var input in inputs) input.Tangent = null;
        Tensor? tangent;
        try
        {
            tangent = op.Jvp(new JvpArgs(inputs, output, tangents, attrs));
        }
        finally
        {
            for (int i = 0; i < inputs.Length; i++) inputs[i].Tangent = tangents[i];
        }
        return tangent is null ? null : Conform(tangent, output.Type);
    }

    /// <summary>Makes a derivative match the value it belongs to: broadcast or summed to its shape, cast to its dtype.</summary>
    internal static Tensor Conform(Tensor derivative, TensorType target)
    {
        if (derivative.Shape != target.Shape)
        {
            derivative = derivative.Shape.BroadcastsTo(target.Shape)
                ? F.BroadcastTo(derivative, target.Shape)
                : F.SumToShape(derivative, target.Shape);
        }
        if (derivative.DType != target.DType) derivative = F.Cast(derivative, target.DType);
        return derivative;
    }

    private static Tensor[] PromoteInputs(Op op, Tensor[] inputs)
    {
        var specs = op.Schema.Inputs;
        DType? first = null;
        bool differ = false;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!SpecAt(specs, i).Promoted) continue;
            first ??= inputs[i].DType;
            differ |= inputs[i].DType != first;
        }
        if (!differ) return inputs;
        var operands = new List<TensorType>(inputs.Length);
        for (int i = 0; i < inputs.Length; i++)
            if (SpecAt(specs, i).Promoted) operands.Add(inputs[i].Type);
        var common = DTypes.ResultType(operands);
        var promoted = (Tensor[])inputs.Clone();
        for (int i = 0; i < promoted.Length; i++)
            if (SpecAt(specs, i).Promoted && promoted[i].DType != common)
                promoted[i] = F.Cast(promoted[i], common);
        return promoted;
    }

    private static OpInput SpecAt(IReadOnlyList<OpInput> specs, int i) =>
        i < specs.Count ? specs[i] : specs.Count > 0 && specs[^1].Variadic ? specs[^1] : new OpInput("_");

    [System.Runtime.CompilerServices.InlineArray(4)]
    private struct FourTypes
    {
        private TensorType _first;
    }

    /// <summary>
    /// Whether the op may write over <paramref name="reuse"/>: the op says its kernel allows it, reuse is one of the
    /// (promoted) inputs with exactly the output's type, no other tensor shares its bytes, and nothing will read the
    /// inputs afterwards — no tape node (recording) and no JVP rule (tangents), both of which read the inputs.
    /// </summary>
    private static bool CanWriteOver(ExecutionScope scope, PrimitiveOp op, Tensor[] inputs, TensorType type, Tensor reuse)
    {
        if (!op.Schema.InPlaceSafe || reuse.Type != type || !reuse.OwnsStorageAlone) return false;
        if ((scope.GradEnabled && AnyRequiresGrad(inputs)) || AnyTangent(inputs)) return false;
        foreach (var input in inputs) if (ReferenceEquals(input, reuse)) return true;
        return false;
    }

    private static bool AnyRequiresGrad(Tensor[] inputs)
    {
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    private static bool AnyTangent(Tensor[] inputs)
    {
        foreach (var t in inputs) if (t.Tangent is not null) return true;
        return false;
    }
}
