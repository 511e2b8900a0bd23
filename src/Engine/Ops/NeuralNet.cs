using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>The <c>reduction</c> attribute losses take, as PyTorch spells it: mean (default), sum or none.</summary>
public static class LossReduction
{
    public static readonly OpAttribute Attribute = new("reduction", AttrKind.String, false,
        "mean (average over elements), sum, or none (one loss per element)", "mean");

    public static string Parse(Attributes attrs, string op)
    {
        var r = attrs.GetString("reduction", "mean");
        return r is "mean" or "sum" or "none"
            ? r
            : throw EngineException.InvalidGraph($"reduction must be mean, sum or none, got '{r}'", op: op);
    }

    /// <summary>Reduces per-element losses as <paramref name="reduction"/> says.</summary>
    internal static Tensor Apply(Tensor losses, string reduction) => reduction switch
    {
        "sum" => F.Sum(losses),
        "mean" => F.Mean(losses),
        _ => losses,
    };
}

/// <summary>
/// <c>softmax(x, axis)</c> and <c>log_softmax(x, axis)</c>, written with exp, sum and logsumexp so both modes and
/// higher derivatives come for free. The max subtracted for stability is detached: it cancels mathematically.
/// </summary>
public sealed class SoftmaxOp : CompositeOp
{
    // Declared before the instances: static fields initialise in text order, and the constructor reads this one.
    private static readonly OpAttribute Axis = new("axis", AttrKind.Int, false, "the axis that sums to one (negative counts from the end)", "-1");

    public static readonly SoftmaxOp Softmax = new(log: false);
    public static readonly SoftmaxOp LogSoftmax = new(log: true);

    private readonly bool _log;

    private SoftmaxOp(bool log)
    {
        _log = log;
        Schema = log
            ? new OpSchema("log_softmax", "neural_net", "log(softmax(x)) along an axis, computed stably", [new OpInput("x")], [Axis],
                "same shape and dtype as x", true)
            : new OpSchema("softmax", "neural_net", "exp(x) / sum(exp(x)) along an axis, computed stably", [new OpInput("x")], [Axis],
                "same shape and dtype as x", true);
    }

    public override OpSchema Schema { get; }

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(3, 4)], Attributes.Empty),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("axis", 1))),
        new([ExampleInput.F(4, 2)], Attributes.Of(("axis", 0))),
        new([ExampleInput.F(5)], Attributes.Empty),
        new([ExampleInput.F()], Attributes.Empty),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        ExpectFloating(inputs[0]);
        ResolveAxis(inputs[0].Shape, attrs);
        return inputs[0];
    }

    /// <summary>The axis in [0, rank); a scalar is treated as a one-element vector (softmax of it is 1).</summary>
    private int ResolveAxis(Shape shape, Attributes attrs)
    {
        int axis = attrs.GetAxis("axis", -1);
        return shape.Rank == 0 ? Shape.Vector(1).NormalizeAxis(axis, Name) : shape.NormalizeAxis(axis, Name);
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        var x = inputs[0];
        InferType([x.Type], attrs);
        if (x.Rank == 0) return F.Reshape(Compute(F.Reshape(x, 1), 0), Shape.Scalar);
        return Compute(x, ResolveAxis(x.Shape, attrs));
    }

    private Tensor Compute(Tensor x, int axis)
    {
        if (x.ElementCount == 0) return F.Identity(x);
        int[] axes = [axis];
        if (_log) return x - F.LogSumExp(x, axes, keepDims: true);
        var shift = F.Detach(F.Max(x, axes, keepDims: true));
        // An infinite max would turn x - max into NaN everywhere; shifting by 0 there gives PyTorch's answers.
        shift = F.Where(F.Eq(F.Abs(shift), double.PositiveInfinity), F.ZerosLike(shift), shift);
        var e = F.Exp(x - shift);
        return e / F.Sum(e, axes, keepDims: true);
    }
}

/// <summary>
/// <c>cross_entropy(logits [N, C], labels [N] int64)</c>: the negative log-likelihood of each row's label under
/// softmax(logits), reduced by <c>reduction</c>. Picks each label's log-probability with a one-hot mask built
/// from a comparison, so it needs no gather op; differentiable in the logits only.
/// </summary>
public sealed class CrossEntropyOp : CompositeOp
{
    public static readonly CrossEntropyOp Instance = new();

    public override OpSchema Schema { get; } = new("cross_entropy", "neural_net",
        "softmax cross-entropy of logits [N, C] against int64 class labels [N]",
        [new OpInput("logits", "unnormalised scores, one row per sample"),
         new OpInput("labels", "the class of each row, in [0, C)", Differentiable: false, Domain: InputDomain.Index)],
        [LossReduction.Attribute], "a scalar (mean, sum) or [N] (none); the logits' dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(4, 3), new ExampleInput(new Shape(4), DType.Int64, InputDomain.Index, Bound: 3)], Attributes.Empty),
        new([ExampleInput.F(5, 2), new ExampleInput(new Shape(5), DType.Int64, InputDomain.Index, Bound: 2)], Attributes.Of(("reduction", "sum"))),
        new([ExampleInput.F(3, 4), new ExampleInput(new Shape(3), DType.Int64, InputDomain.Index, Bound: 4)], Attributes.Of(("reduction", "none"))),
        new([ExampleInput.F(1, 6), new ExampleInput(new Shape(1), DType.Int64, InputDomain.Index, Bound: 6)], Attributes.Empty),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (logits, labels) = (inputs[0], inputs[1]);
        ExpectFloating(logits, "logits");
        if (logits.Shape.Rank != 2)
            throw EngineException.ShapeMismatch($"'{Name}' needs logits of shape [N, C], got {logits.Shape}", op: Name);
        if (labels.DType != DType.Int64)
            throw EngineException.DTypeMismatch($"'{Name}' needs int64 labels, got {labels.DType.WireName()}", op: Name);
        if (labels.Shape.Rank != 1 || labels.Shape[0] != logits.Shape[0])
            throw EngineException.ShapeMismatch($"'{Name}' needs labels of shape [{logits.Shape[0]}] for logits {logits.Shape}, got {labels.Shape}", op: Name);
        var reduction = LossReduction.Parse(attrs, Name);
        return new TensorType(reduction == "none" ? labels.Shape : Shape.Scalar, logits.DType);
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        var (logits, labels) = (inputs[0], inputs[1]);
        InferType([logits.Type, labels.Type], attrs);
        int n = logits.Shape[0], classes = logits.Shape[1];
        if (scope.Backend.FindOutOfRange(labels, classes) is var i and >= 0)
        {
            long label = labels.ReadOnlySpan<long>()[(int)i];
            throw EngineException.InvalidTensor(
                $"label {label} at position {i} is out of range for {classes} classes (labels must be in [0, {classes}))",
                input: "labels").At(null, Name);
        }
        var logProbs = F.LogSoftmax(logits, axis: 1);
        var oneHot = F.Eq(F.Reshape(F.Arange(scope, classes, dtype: DType.Int64), 1, classes), F.Reshape(labels, n, 1));
        var losses = -F.Sum(logProbs * F.Cast(oneHot, logits.DType), [1]);
        return LossReduction.Apply(losses, LossReduction.Parse(attrs, Name));
    }
}

/// <summary><c>mse_loss(a, b)</c>: squared differences (broadcasting a and b), reduced by <c>reduction</c>.</summary>
public sealed class MseLossOp : CompositeOp
{
    public static readonly MseLossOp Instance = new();

    public override OpSchema Schema { get; } = new("mse_loss", "neural_net", "mean (or sum) of (a - b)^2",
        [new OpInput("a", Promoted: true), new OpInput("b", Promoted: true)], [LossReduction.Attribute],
        "a scalar (mean, sum) or the broadcast shape of a and b (none); their promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new([ExampleInput.F(3, 4), ExampleInput.F(3, 4)], Attributes.Empty),
        new([ExampleInput.F(2, 3), ExampleInput.F(3)], Attributes.Of(("reduction", "sum"))),
        new([ExampleInput.F(4), ExampleInput.F(4)], Attributes.Of(("reduction", "none"))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var dtype = DTypes.Promote(inputs[0].DType, inputs[1].DType);
        if (!dtype.IsFloating())
            throw EngineException.DTypeMismatch(
                $"'{Name}' needs float inputs, got {inputs[0].DType.WireName()} and {inputs[1].DType.WireName()}", op: Name);
        var shape = Shape.Broadcast(inputs[0].Shape, inputs[1].Shape, Name);
        return new TensorType(LossReduction.Parse(attrs, Name) == "none" ? shape : Shape.Scalar, dtype);
    }

    public override Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs)
    {
        InferType([inputs[0].Type, inputs[1].Type], attrs);
        return LossReduction.Apply(F.Square(inputs[0] - inputs[1]), LossReduction.Parse(attrs, Name));
    }
}

public static class NeuralNetOps
{
    internal static IEnumerable<Op> All => [SoftmaxOp.Softmax, SoftmaxOp.LogSoftmax, CrossEntropyOp.Instance, MseLossOp.Instance];
}

public static partial class F
{
    public static Tensor Softmax(Tensor x, int axis = -1) => Dispatcher.Apply(SoftmaxOp.Softmax, [x], Attributes.Of(("axis", axis)));

    public static Tensor LogSoftmax(Tensor x, int axis = -1) => Dispatcher.Apply(SoftmaxOp.LogSoftmax, [x], Attributes.Of(("axis", axis)));

    public static Tensor CrossEntropy(Tensor logits, Tensor labels, string reduction = "mean") =>
        Dispatcher.Apply(CrossEntropyOp.Instance, [logits, labels], Attributes.Of(("reduction", reduction)));

    public static Tensor MseLoss(Tensor a, Tensor b, string reduction = "mean") =>
        Dispatcher.Apply(MseLossOp.Instance, [a, b], Attributes.Of(("reduction", reduction)));
}
