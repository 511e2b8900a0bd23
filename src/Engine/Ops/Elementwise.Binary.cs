using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// A broadcasting two-input arithmetic op. Inputs are promoted to a common dtype by the dispatcher; each rule
/// returns cotangents in the broadcast shape and the engine sums them back to each input's shape.
/// </summary>
public sealed class BinaryOp : PrimitiveOp
{
    private readonly BinaryKernel _kernel;
    private readonly Func<VjpArgs, Tensor?[]> _vjp;
    private readonly Func<JvpArgs, Tensor?> _jvp;
    private readonly bool _floatOnly;
    private readonly BinaryReads _reads;

    internal BinaryOp(string name, BinaryKernel kernel, string summary, Func<VjpArgs, Tensor?[]> vjp, Func<JvpArgs, Tensor?> jvp,
        InputDomain domainA = InputDomain.Any, InputDomain domainB = InputDomain.Any, bool floatOnly = false, bool smooth = true,
        BinaryReads reads = BinaryReads.A | BinaryReads.B | BinaryReads.Output)
    {
        _reads = reads;
        _kernel = kernel;
        _vjp = vjp;
        _jvp = jvp;
        _floatOnly = floatOnly;
        Schema = new OpSchema(name, "elementwise", summary,
            [new OpInput("a", Promoted: true, Domain: domainA), new OpInput("b", Promoted: true, Domain: domainB)], [],
            "broadcast shape of a and b; their promoted dtype", true) { Smooth = smooth, InPlaceSafe = true };
    }

    public override OpSchema Schema { get; }

    public override ElementwiseStep? Step => ElementwiseStep.Of(_kernel);

    // Linear rules (g, ±g, g·b, g/b) give each input's cotangent elementwise from a broadcasting one.
    internal override bool TakesBroadcastCotangent => _kernel is BinaryKernel.Add or BinaryKernel.Sub or BinaryKernel.Mul or BinaryKernel.Div;

    // The same linear rules take a batch axis too, broadcast operands (a bias row, a scalar) included.
    internal override bool TakesBatchedCotangent(TapeNode node, long n) => TakesBroadcastCotangent;

    public override IReadOnlyList<OpExample> Examples
    {
        get
        {
            var (da, db) = (Schema.Inputs[0].Domain, Schema.Inputs[1].Domain);
            return
            [
                new(new ExampleInput(new Shape(2, 3), Domain: da), new ExampleInput(new Shape(2, 3), Domain: db)),
                new(new ExampleInput(new Shape(2, 3), Domain: da), new ExampleInput(new Shape(3), Domain: db)),
                new(new ExampleInput(new Shape(4, 1), Domain: da), new ExampleInput(new Shape(1, 3), Domain: db)),
                new(new ExampleInput(Shape.Scalar, Domain: da), new ExampleInput(new Shape(2, 2), Domain: db)),
            ];
        }
    }

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (a, b) = (inputs[0], inputs[1]);
        if (a.DType != b.DType)
            throw EngineException.DTypeMismatch($"'{Name}' inputs are {a.DType.WireName()} and {b.DType.WireName()}", op: Name);
        if (a.DType == DType.Bool || (_floatOnly && !a.DType.IsFloating()))
            throw EngineException.DTypeMismatch(
                $"'{Name}' needs {(_floatOnly ? "float32 or float64" : "numeric")} inputs, got {a.DType.WireName()} (cast first)", op: Name);
        return new TensorType(Shape.Broadcast(a.Shape, b.Shape, Name), a.DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Binary(_kernel, inputs[0], inputs[1], output);

    public override Tensor?[] Vjp(VjpArgs args) => _vjp(args);

    internal override bool VjpReadsInput(int input) => (_reads & (input == 0 ? BinaryReads.A : BinaryReads.B)) != 0;

    internal override bool VjpReadsOutput => (_reads & BinaryReads.Output) != 0;

    public override Tensor? Jvp(JvpArgs args) => _jvp(args);
}

/// <summary>Which values a binary op's rule reads (see <see cref="PrimitiveOp.VjpReadsInput"/>).</summary>
[Flags]
internal enum BinaryReads
{
    None = 0,
    A = 1,
    B = 2,
    Output = 4,
}

/// <summary>The arithmetic ops and their derivative rules.</summary>
public static class BinaryOps
{
    public static readonly BinaryOp Add = new("add", BinaryKernel.Add, "a + b",
        v => [v.Grad, v.Grad],
        j => Sum(j.Tangents[0], j.Tangents[1]), reads: BinaryReads.None);

    public static readonly BinaryOp Sub = new("sub", BinaryKernel.Sub, "a - b",
        v => [v.Grad, v.NeedsGrad(1) ? -v.Grad : null],
        j => j.Tangents[1] is { } tb ? (j.Tangents[0] is { } ta ? ta - tb : -tb) : j.Tangents[0], reads: BinaryReads.None);

    public static readonly BinaryOp Mul = new("mul", BinaryKernel.Mul, "a * b",
        v => [v.NeedsGrad(0) ? v.Grad * v.Inputs[1] : null, v.NeedsGrad(1) ? v.Grad * v.Inputs[0] : null],
        j => Sum(j.Tangents[0] is { } ta ? ta * j.Inputs[1] : null, j.Tangents[1] is { } tb ? j.Inputs[0] * tb : null),
        reads: BinaryReads.A | BinaryReads.B);

    public static readonly BinaryOp Div = new("div", BinaryKernel.Div, "a / b",
        v => [v.NeedsGrad(0) ? v.Grad / v.Inputs[1] : null, v.NeedsGrad(1) ? -v.Grad * v.Output / v.Inputs[1] : null],
        j => Sum(j.Tangents[0], j.Tangents[1] is { } tb ? -(j.Output * tb) : null) is { } n ? n / j.Inputs[1] : null,
        domainB: InputDomain.NonZero, floatOnly: true, reads: BinaryReads.B | BinaryReads.Output);

    public static readonly BinaryOp Pow = new("pow", BinaryKernel.Pow, "a ** b",
        v => [v.NeedsGrad(0) ? v.Grad * PowBase(v.Inputs[0], v.Inputs[1]) : null,
              v.NeedsGrad(1) ? v.Grad * PowExponent(v.Inputs[0], v.Output) : null],
        j => Sum(j.Tangents[0] is { } ta ? ta * PowBase(j.Inputs[0], j.Inputs[1]) : null,
                 j.Tangents[1] is { } tb ? tb * PowExponent(j.Inputs[0], j.Output) : null),
        domainA: InputDomain.Positive, floatOnly: true);

    public static readonly BinaryOp Maximum = new("maximum", BinaryKernel.Maximum, "elementwise max (ties share the gradient)",
        v => Select(v, F.Gt(v.Inputs[0], v.Inputs[1]), F.Eq(v.Inputs[0], v.Inputs[1])),
        j => SelectTangent(j, F.Gt(j.Inputs[0], j.Inputs[1]), F.Eq(j.Inputs[0], j.Inputs[1])),
        smooth: false);

    public static readonly BinaryOp Minimum = new("minimum", BinaryKernel.Minimum, "elementwise min (ties share the gradient)",
        v => Select(v, F.Lt(v.Inputs[0], v.Inputs[1]), F.Eq(v.Inputs[0], v.Inputs[1])),
        j => SelectTangent(j, F.Lt(j.Inputs[0], j.Inputs[1]), F.Eq(j.Inputs[0], j.Inputs[1])),
        smooth: false);

    internal static IEnumerable<Op> All => [Add, Sub, Mul, Div, Pow, Maximum, Minimum];

    private static Tensor? Sum(Tensor? a, Tensor? b) => a is null ? b : b is null ? a : a + b;

    /// <summary>d(a^b)/da = b * a^(b-1).</summary>
    private static Tensor PowBase(Tensor a, Tensor b) => b * F.Pow(a, b - 1.0);

    /// <summary>d(a^b)/db = a^b * log(a), taken as 0 where a is 0 (as PyTorch does).</summary>
    private static Tensor PowExponent(Tensor a, Tensor y)
    {
        var zero = F.Eq(a, 0.0);
        var safe = F.Where(zero, F.OnesLike(a), a);
        return F.Where(zero, F.ZerosLike(y), y * F.Log(safe));
    }

    /// <summary>Where a wins the gradient goes to a, where b wins to b, and ties split it evenly (PyTorch's rule).</summary>
    private static Tensor?[] Select(VjpArgs v, Tensor aWins, Tensor tie)
    {
        var share = F.Cast(aWins, v.Grad.DType) + 0.5 * F.Cast(tie, v.Grad.DType);
        return [v.NeedsGrad(0) ? v.Grad * share : null, v.NeedsGrad(1) ? v.Grad * (1.0 - share) : null];
    }

    private static Tensor? SelectTangent(JvpArgs j, Tensor aWins, Tensor tie)
    {
        var share = F.Cast(aWins, j.Output.DType) + 0.5 * F.Cast(tie, j.Output.DType);
        return Sum(j.Tangents[0] is { } ta ? ta * share : null, j.Tangents[1] is { } tb ? tb * (1.0 - share) : null);
    }
}

/// <summary>Comparisons and logical ops: bool out, no gradient.</summary>
public sealed class PredicateOp : PrimitiveOp
{
    private readonly BinaryKernel _kernel;
    private readonly bool _logical;

    internal PredicateOp(string name, BinaryKernel kernel, string summary)
    {
        _kernel = kernel;
        _logical = kernel is BinaryKernel.LogicalAnd or BinaryKernel.LogicalOr;
        var domain = _logical ? InputDomain.Bool : InputDomain.Any;
        Schema = new OpSchema(name, _logical ? "logical" : "comparison", summary,
            [new OpInput("a", Differentiable: false, Promoted: !_logical, Domain: domain),
             new OpInput("b", Differentiable: false, Promoted: !_logical, Domain: domain)], [],
            "broadcast shape of a and b; bool", false);
    }

    public override OpSchema Schema { get; }

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(new ExampleInput(new Shape(2, 3), _logical ? DType.Bool : DType.Float64, Schema.Inputs[0].Domain),
            new ExampleInput(new Shape(3), _logical ? DType.Bool : DType.Float64, Schema.Inputs[1].Domain)),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (a, b) = (inputs[0], inputs[1]);
        if (a.DType != b.DType)
            throw EngineException.DTypeMismatch($"'{Name}' inputs are {a.DType.WireName()} and {b.DType.WireName()}", op: Name);
        if (_logical && a.DType != DType.Bool)
            throw EngineException.DTypeMismatch($"'{Name}' needs bool inputs, got {a.DType.WireName()}", op: Name);
        if (!_logical && a.DType == DType.Bool && _kernel is not (BinaryKernel.Eq or BinaryKernel.Ne))
            throw EngineException.DTypeMismatch($"'{Name}' cannot order bool values", op: Name);
        return new TensorType(Shape.Broadcast(a.Shape, b.Shape, Name), DType.Bool);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Binary(_kernel, inputs[0], inputs[1], output);
}

public static class PredicateOps
{
    public static readonly PredicateOp Eq = new("eq", BinaryKernel.Eq, "a == b");
    public static readonly PredicateOp Ne = new("ne", BinaryKernel.Ne, "a != b");
    public static readonly PredicateOp Lt = new("lt", BinaryKernel.Lt, "a < b");
    public static readonly PredicateOp Le = new("le", BinaryKernel.Le, "a <= b");
    public static readonly PredicateOp Gt = new("gt", BinaryKernel.Gt, "a > b");
    public static readonly PredicateOp Ge = new("ge", BinaryKernel.Ge, "a >= b");
    public static readonly PredicateOp LogicalAnd = new("logical_and", BinaryKernel.LogicalAnd, "a and b (bool)");
    public static readonly PredicateOp LogicalOr = new("logical_or", BinaryKernel.LogicalOr, "a or b (bool)");

    internal static IEnumerable<Op> All => [Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr];
}

/// <summary><c>where(cond, a, b)</c>: picks from a where cond holds, else from b; differentiable in a and b.</summary>
public sealed class WhereOp : PrimitiveOp
{
    public override OpSchema Schema { get; } = new("where", "elementwise", "cond ? a : b, broadcasting all three",
        [new OpInput("cond", Differentiable: false, Domain: InputDomain.Bool), new OpInput("a", Promoted: true), new OpInput("b", Promoted: true)], [],
        "broadcast shape of cond, a and b; dtype of a and b", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(new ExampleInput(new Shape(2, 3), DType.Bool, InputDomain.Bool), ExampleInput.F(2, 3), ExampleInput.F(3)),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 3);
        if (inputs[0].DType != DType.Bool)
            throw EngineException.DTypeMismatch($"'where' needs a bool condition, got {inputs[0].DType.WireName()}", op: Name);
        if (inputs[1].DType != inputs[2].DType)
            throw EngineException.DTypeMismatch($"'where' branches are {inputs[1].DType.WireName()} and {inputs[2].DType.WireName()}", op: Name);
        var shape = Shape.Broadcast(Shape.Broadcast(inputs[0].Shape, inputs[1].Shape, Name), inputs[2].Shape, Name);
        return new TensorType(shape, inputs[1].DType);
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Where(inputs[0], inputs[1], inputs[2], output);

    public override Tensor?[] Vjp(VjpArgs v)
    {
        var zeros = F.ZerosLike(v.Grad);
        return [null, v.NeedsGrad(1) ? F.Where(v.Inputs[0], v.Grad, zeros) : null, v.NeedsGrad(2) ? F.Where(v.Inputs[0], zeros, v.Grad) : null];
    }

    public override Tensor? Jvp(JvpArgs j)
    {
        if (j.Tangents[1] is null && j.Tangents[2] is null) return null;
        var zeros = F.ZerosLike(j.Output);
        return F.Where(j.Inputs[0], j.Tangents[1] ?? zeros, j.Tangents[2] ?? zeros);
    }

    public static readonly WhereOp Instance = new();
}

public static partial class F
{
    public static Tensor Add(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Mul, a, b);
    public static Tensor Div(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Div, a, b);
    public static Tensor Pow(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Pow, a, b);
    public static Tensor Pow(Tensor a, double b) => Pow(a, Const(a, b));
    public static Tensor Maximum(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Maximum, a, b);
    public static Tensor Minimum(Tensor a, Tensor b) => Dispatcher.Apply(BinaryOps.Minimum, a, b);

    public static Tensor Eq(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Eq, a, b);
    public static Tensor Eq(Tensor a, double b) => Eq(a, Const(a, b));
    public static Tensor Ne(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Ne, a, b);
    public static Tensor Lt(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Lt, a, b);
    public static Tensor Lt(Tensor a, double b) => Lt(a, Const(a, b));
    public static Tensor Le(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Le, a, b);
    public static Tensor Gt(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Gt, a, b);
    public static Tensor Gt(Tensor a, double b) => Gt(a, Const(a, b));
    public static Tensor Ge(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.Ge, a, b);
    public static Tensor LogicalAnd(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.LogicalAnd, a, b);
    public static Tensor LogicalOr(Tensor a, Tensor b) => Dispatcher.Apply(PredicateOps.LogicalOr, a, b);

    public static Tensor Where(Tensor condition, Tensor a, Tensor b) => Dispatcher.Apply(WhereOp.Instance, condition, a, b);

    /// <summary>
    /// A scalar constant to combine with <paramref name="like"/>: its dtype when floating, so <c>x * 2.0</c> stays
    /// float32 for a float32 x; an integral value next to an int64 stays int64.
    /// </summary>
    public static Tensor Const(Tensor like, double value)
    {
        var dtype = like.DType.IsFloating() ? like.DType
            : like.DType == DType.Int64 && value == Math.Floor(value) ? DType.Int64
            : DType.Float32;
        return like.Scope.Scalar(value, dtype);
    }
}
