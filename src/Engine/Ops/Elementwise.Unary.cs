using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// An elementwise one-input op. It states one derivative, <c>dy/dx</c> as a function of x and y written with tensor
/// ops; both modes follow from it (VJP = g * dy/dx, JVP = t * dy/dx), as DiffSharp and JAX do.
/// </summary>
public sealed class UnaryOp : PrimitiveOp
{
    private readonly UnaryKernel _kernel;
    private readonly Func<Tensor, Tensor, Tensor?>? _derivative;
    private readonly bool _integers;
    private readonly bool _negated;
    private readonly Reads _reads;

    /// <param name="derivative">dy/dx from (x, y); null result means zero. A null function marks the op linear in a sign flip (neg).</param>
    /// <param name="negated">The derivative is minus what <paramref name="derivative"/> returns.</param>
    internal UnaryOp(string name, UnaryKernel kernel, string summary, Func<Tensor, Tensor, Tensor?>? derivative,
        InputDomain domain = InputDomain.Any, bool smooth = true, bool integers = false, bool differentiable = true,
        bool negated = false, Reads reads = Reads.X | Reads.Y)
    {
        _kernel = kernel;
        _reads = reads;
        _negated = negated;
        _derivative = derivative;
        _integers = integers;
        Domain = domain;
        Schema = new OpSchema(name, "elementwise", summary, [new OpInput("x", Domain: domain)], [],
            "same shape and dtype as x", differentiable) { Smooth = smooth, InPlaceSafe = true };
    }

    public override OpSchema Schema { get; }

    // Logical not is elementwise too, but bool: regions fuse float arithmetic only.
    public override ElementwiseStep? Step => _kernel == UnaryKernel.LogicalNot ? null : ElementwiseStep.Of(_kernel);

    internal override bool TakesBatchedCotangent(TapeNode node, long n) => true;

    public InputDomain Domain { get; }

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(new ExampleInput(new Shape(3, 4), Domain: Domain)),
        new(new ExampleInput(Shape.Scalar, Domain: Domain)),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0];
        if (_kernel == UnaryKernel.LogicalNot)
        {
            if (x.DType != DType.Bool) throw EngineException.DTypeMismatch($"'{Name}' needs a bool input, got {x.DType.WireName()}", op: Name);
            return x;
        }
        if (!x.DType.IsFloating() && !(_integers && x.DType == DType.Int64))
            throw EngineException.DTypeMismatch(
                $"'{Name}' needs a float32 or float64{(_integers ? " or int64" : "")} input, got {x.DType.WireName()}", op: Name);
        return x;
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Unary(_kernel, inputs[0], output);

    /// <summary>
    /// sin and cos: the op whose value is this op's derivative (cos for sin; sin, negated, for cos). Their kernels
    /// share all their work, so a recorded forward writes both and backward skips a transcendental pass.
    /// </summary>
    private UnaryOp? Partner => _kernel switch
    {
        UnaryKernel.Sin => UnaryOps.Cos,
        UnaryKernel.Cos => UnaryOps.Sin,
        _ => null,
    };

    internal override Tensor? ForwardRecorded(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        var x = inputs[0];
        if (Partner is null || !x.DType.IsFloating())
        {
            Forward(scope, inputs, attrs, output);
            return null;
        }
        Tensor partner;
        try
        {
            partner = scope.Allocate(x.Type);
        }
        catch (EngineException e) when (e.Code == ErrorCodes.MemoryLimitExceeded)
        {
            // No room to keep the derivative: backward recomputes it, as it would for any other op.
            Forward(scope, inputs, attrs, output);
            return null;
        }
        try
        {
            if (_kernel == UnaryKernel.Sin) scope.Backend.SinCos(x, output, partner);
            else scope.Backend.SinCos(x, partner, output);
        }
        catch
        {
            partner.Dispose();
            throw;
        }
        return partner;
    }

    internal override bool TakesOneElementCotangent => true;

    internal override bool VjpReadsInput(int input) => (_reads & Reads.X) != 0;

    internal override bool VjpReadsOutput => (_reads & Reads.Y) != 0;

    public override Tensor?[] Vjp(VjpArgs a) => [Scale(a.Grad, a.Inputs[0], a.Output, SavedDerivative(a))];

    public override Tensor? Jvp(JvpArgs a) => a.Tangents[0] is { } t ? Scale(t, a.Inputs[0], a.Output, null) : null;

    /// <summary>
    /// The partner's value the forward saved, recorded (under create_graph) as the partner op applied to x — which in
    /// turn knows its own derivative: this op's output. Null when there is none or it was released (then recomputed).
    /// </summary>
    private Tensor? SavedDerivative(VjpArgs a)
    {
        var x = a.Inputs[0];
        if (a.Saved is not { IsDisposed: false } saved || Partner is not { } partner || x.Tangent is not null) return null;
        Dispatcher.RecordComputed(partner, [x], saved, a.Output);
        return saved;
    }

    private Tensor? Scale(Tensor v, Tensor x, Tensor y, Tensor? known)
    {
        if (_derivative is null) return F.Neg(v);
        // A negated derivative (-sin x for cos) negates v instead: the same numbers (IEEE negation is exact), and when v
        // is a kept one-element cotangent the negation costs one element instead of a pass over x.
        if ((known ?? _derivative(x, y)) is not { } d) return null;
        // v · d with v a filled one-element 1 (the seed of a scalar loss, kept unbroadcast) is d itself: skipping the
        // multiply saves a pass over x (W6's first backward). Only for a freshly computed d (never x or y themselves),
        // and a v that carries no derivative of its own, so the recorded graph stays the same function.
        if (!_negated && IsConstantOne(v, d) && !ReferenceEquals(d, x) && !ReferenceEquals(d, y)) return d;
        return (_negated ? F.Neg(v) : v) * d;
    }

    private static bool IsConstantOne(Tensor v, Tensor d) =>
        v.ElementCount == 1 && !v.RequiresGrad && v.GradFn is null && v.Tangent is null && v.DType == d.DType &&
        v.Rank <= d.Rank && v.Constant == 1.0;
}

/// <summary>Which values a unary op's derivative reads: x, y (the output), both or neither.</summary>
[Flags]
internal enum Reads
{
    None = 0,
    X = 1,
    Y = 2,
}

/// <summary>The unary ops, each with its kernel and derivative.</summary>
public static class UnaryOps
{
    public static readonly UnaryOp Neg = new("neg", UnaryKernel.Neg, "-x", null, integers: true, reads: Reads.None);
    public static readonly UnaryOp Abs = new("abs", UnaryKernel.Abs, "|x|", (x, y) => F.Sign(x), smooth: false, integers: true, reads: Reads.X);
    public static readonly UnaryOp Exp = new("exp", UnaryKernel.Exp, "e^x", (x, y) => y, reads: Reads.Y);
    public static readonly UnaryOp Log = new("log", UnaryKernel.Log, "natural logarithm", (x, y) => F.Reciprocal(x), InputDomain.Positive, reads: Reads.X);
    public static readonly UnaryOp Log1p = new("log1p", UnaryKernel.Log1p, "log(1 + x), exact near 0", (x, y) => F.Reciprocal(x + 1.0), InputDomain.Positive, reads: Reads.X);
    public static readonly UnaryOp Expm1 = new("expm1", UnaryKernel.Expm1, "e^x - 1, exact near 0", (x, y) => y + 1.0, reads: Reads.Y);
    public static readonly UnaryOp Sqrt = new("sqrt", UnaryKernel.Sqrt, "square root", (x, y) => 0.5 / y, InputDomain.Positive, reads: Reads.Y);
    public static readonly UnaryOp Rsqrt = new("rsqrt", UnaryKernel.Rsqrt, "1 / sqrt(x)", (x, y) => -0.5 * y / x, InputDomain.Positive);
    public static readonly UnaryOp Square = new("square", UnaryKernel.Square, "x * x", (x, y) => 2.0 * x, integers: true, reads: Reads.X);
    public static readonly UnaryOp Reciprocal = new("reciprocal", UnaryKernel.Reciprocal, "1 / x", (x, y) => F.Square(y), InputDomain.NonZero, negated: true, reads: Reads.Y);
    // sin and cos read x and y: a create_graph backward records the saved partner over x, knowing y as its derivative.
    public static readonly UnaryOp Sin = new("sin", UnaryKernel.Sin, "sine", (x, y) => F.Cos(x));
    public static readonly UnaryOp Cos = new("cos", UnaryKernel.Cos, "cosine", (x, y) => F.Sin(x), negated: true);
    public static readonly UnaryOp Tan = new("tan", UnaryKernel.Tan, "tangent", (x, y) => 1.0 + F.Square(y), InputDomain.Unit, reads: Reads.Y);
    public static readonly UnaryOp Tanh = new("tanh", UnaryKernel.Tanh, "hyperbolic tangent", (x, y) => 1.0 - F.Square(y), reads: Reads.Y);
    public static readonly UnaryOp Sigmoid = new("sigmoid", UnaryKernel.Sigmoid, "1 / (1 + e^-x)", (x, y) => y * (1.0 - y), reads: Reads.Y);
    public static readonly UnaryOp Relu = new("relu", UnaryKernel.Relu, "max(x, 0)", (x, y) => F.Cast(F.Gt(x, 0.0), x.DType), smooth: false, integers: true, reads: Reads.X);
    public static readonly UnaryOp Softplus = new("softplus", UnaryKernel.Softplus, "log(1 + e^x), computed stably", (x, y) => F.Sigmoid(x), reads: Reads.X);
    public static readonly UnaryOp Sign = new("sign", UnaryKernel.Sign, "-1, 0 or 1 (derivative zero)", (x, y) => null, smooth: false, integers: true, reads: Reads.None);
    public static readonly UnaryOp Erf = new("erf", UnaryKernel.Erf, "the error function 2/sqrt(pi) ∫0^x e^(-t^2) dt", (x, y) => TwoOverSqrtPi * F.Exp(-F.Square(x)), reads: Reads.X);
    public static readonly UnaryOp LogicalNot = new("logical_not", UnaryKernel.LogicalNot, "not x (bool)", null, InputDomain.Bool, differentiable: false);

    internal static IEnumerable<Op> All =>
        [Neg, Abs, Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Square, Reciprocal, Sin, Cos, Tan, Tanh, Sigmoid, Relu, Softplus, Sign, Erf, LogicalNot];

    private const double TwoOverSqrtPi = 1.1283791670955126;
}

public static partial class F
{
    public static Tensor Neg(Tensor x) => Dispatcher.Apply(UnaryOps.Neg, x);
    public static Tensor Abs(Tensor x) => Dispatcher.Apply(UnaryOps.Abs, x);
    public static Tensor Exp(Tensor x) => Dispatcher.Apply(UnaryOps.Exp, x);
    public static Tensor Log(Tensor x) => Dispatcher.Apply(UnaryOps.Log, x);
    public static Tensor Log1p(Tensor x) => Dispatcher.Apply(UnaryOps.Log1p, x);
    public static Tensor Expm1(Tensor x) => Dispatcher.Apply(UnaryOps.Expm1, x);
    public static Tensor Sqrt(Tensor x) => Dispatcher.Apply(UnaryOps.Sqrt, x);
    public static Tensor Rsqrt(Tensor x) => Dispatcher.Apply(UnaryOps.Rsqrt, x);
    public static Tensor Square(Tensor x) => Dispatcher.Apply(UnaryOps.Square, x);
    public static Tensor Reciprocal(Tensor x) => Dispatcher.Apply(UnaryOps.Reciprocal, x);
    public static Tensor Sin(Tensor x) => Dispatcher.Apply(UnaryOps.Sin, x);
    public static Tensor Cos(Tensor x) => Dispatcher.Apply(UnaryOps.Cos, x);
    public static Tensor Tan(Tensor x) => Dispatcher.Apply(UnaryOps.Tan, x);
    public static Tensor Tanh(Tensor x) => Dispatcher.Apply(UnaryOps.Tanh, x);
    public static Tensor Sigmoid(Tensor x) => Dispatcher.Apply(UnaryOps.Sigmoid, x);
    public static Tensor Relu(Tensor x) => Dispatcher.Apply(UnaryOps.Relu, x);
    public static Tensor Softplus(Tensor x) => Dispatcher.Apply(UnaryOps.Softplus, x);
    public static Tensor Sign(Tensor x) => Dispatcher.Apply(UnaryOps.Sign, x);
    public static Tensor Erf(Tensor x) => Dispatcher.Apply(UnaryOps.Erf, x);
    public static Tensor LogicalNot(Tensor x) => Dispatcher.Apply(UnaryOps.LogicalNot, x);
}
