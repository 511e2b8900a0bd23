using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>
/// <c>matmul(a, b)</c> with NumPy semantics: a rank-1 a is promoted to [1, k] and a rank-1 b to [k, 1], and the
/// promoted dims are dropped from the result; leading (batch) dims broadcast. The optional <c>transpose_a</c> /
/// <c>transpose_b</c> flags (matrix operands only) multiply by a transpose without copying one, which is what the
/// VJP uses.
/// </summary>
public sealed class MatMulOp : PrimitiveOp
{
    // Products read both factors, never the product.
    internal override bool VjpReadsOutput => false;

    public static readonly MatMulOp Instance = new();

    /// <summary>Un-transposed products with a matrix operand take a batch axis on the cotangent (rank ≤ 2, bounded sizes).</summary>
    internal override bool TakesBatchedCotangent(TapeNode node, long n)
    {
        var (a, b) = (node.Inputs[0], node.Inputs[1]);
        return !node.Attrs.GetBool("transpose_a", false) && !node.Attrs.GetBool("transpose_b", false) &&
               a.Rank <= 2 && b.Rank <= 2 && (a.Rank == 2 || b.Rank == 2) &&
               n * a.ElementCount <= Derivatives.MaxBatchedElements && n * b.ElementCount <= Derivatives.MaxBatchedElements;
    }

    internal override Tensor BatchedVjp(TapeNode node, Tensor g, int i, long n)
    {
        var (a, b) = (node.Inputs[0], node.Inputs[1]);
        if (i == 0)
        {
            // C = A·B: dA = G·Bᵀ per batch row; with a vector B (C = A·b) it is the outer product g ⊗ b.
            if (b.Rank == 1) return F.Reshape(g, Derivatives.Batched(n, new Shape(a.Shape[0], 1))) * b;
            var ga = F.MatMul(a.Rank == 1 ? F.Reshape(g, Derivatives.Batched(n, new Shape(1, b.Shape[1]))) : g, b, transposeB: true);
            return F.Reshape(ga, Derivatives.Batched(n, a.Shape));
        }
        // dB = Aᵀ·G per batch row; with a vector B that is G·A, and with a vector A it is a ⊗ g.
        if (b.Rank == 1) return F.MatMul(F.Reshape(g, new Shape(checked((int)n), a.Shape[0])), a);
        if (a.Rank == 1) return F.Reshape(a, new Shape(a.Shape[0], 1)) * F.Reshape(g, Derivatives.Batched(n, new Shape(1, b.Shape[1])));
        return F.MatMul(a, g, transposeA: true);
    }

    /// <summary>2·(output elements)·K, K the contracted size: a's last dimension, or its second-to-last under transpose_a.</summary>
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs)
    {
        var a = inputs[0].Dims;
        if (output.ElementCount is not { } n || a is not { Count: > 0 }) return null;
        int k = a.Count >= 2 && attrs.GetBool("transpose_a", false) ? a[^2] : a[^1];
        return k < 0 ? null : 2 * Math.Max(n, 1) * k;
    }

    public override OpSchema Schema { get; } = new("matmul", "linalg", "matrix product (NumPy matmul: batched, broadcasting, vectors promoted)",
        [new OpInput("a", Promoted: true), new OpInput("b", Promoted: true)],
        [new OpAttribute("transpose_a", AttrKind.Bool, false, "use a's last two dims transposed (rank >= 2 only)", "false"),
         new OpAttribute("transpose_b", AttrKind.Bool, false, "use b's last two dims transposed (rank >= 2 only)", "false")],
        "broadcast batch dims + [m, n] (m or n dropped for a vector operand); the promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(ExampleInput.F(2, 3), ExampleInput.F(3, 4)),
        new(ExampleInput.F(3), ExampleInput.F(3, 2)),
        new(ExampleInput.F(2, 3), ExampleInput.F(3)),
        new(ExampleInput.F(3), ExampleInput.F(3)),
        new(ExampleInput.F(2, 1, 2, 3), ExampleInput.F(3, 3, 2)),
        new(ExampleInput.F(2, 3, 4), ExampleInput.F(4)),
        new([ExampleInput.F(3, 2), ExampleInput.F(3, 4)], Attributes.Of(("transpose_a", true))),
        new([ExampleInput.F(2, 2, 3), ExampleInput.F(4, 3)], Attributes.Of(("transpose_b", true))),
        new([ExampleInput.F(3, 2), ExampleInput.F(2, 4, 3)], Attributes.Of(("transpose_a", true), ("transpose_b", true))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (a, b) = (inputs[0], inputs[1]);
        LinearAlgebraOps.ExpectNumeric(Name, a, b);
        return new TensorType(ResultShape(a.Shape, b.Shape, attrs.GetBool("transpose_a", false), attrs.GetBool("transpose_b", false), Name), a.DType);
    }

    internal static Shape ResultShape(Shape a, Shape b, bool ta, bool tb, string op)
    {
        if (a.Rank == 0 || b.Rank == 0)
            throw EngineException.ShapeMismatch($"{op}: {a} @ {b}: operands need rank 1 or more (use mul to scale by a scalar)", op: op);
        if ((ta && a.Rank < 2) || (tb && b.Rank < 2))
            throw EngineException.InvalidGraph($"{op}: {a} @ {b}: transpose_a/transpose_b apply to matrices (rank >= 2) only", op: op);
        ReadOnlySpan<int> ad = a.Dims, bd = b.Dims;
        int ka = a.Rank == 1 ? ad[0] : ta ? ad[^2] : ad[^1];
        int kb = b.Rank == 1 ? bd[0] : tb ? bd[^1] : bd[^2];
        if (ka != kb)
            throw EngineException.ShapeMismatch($"{op}: {a} @ {b}: inner dims {ka} and {kb} differ", op: op);
        var aBatch = new Shape(ad[..Math.Max(a.Rank - 2, 0)].ToArray());
        var bBatch = new Shape(bd[..Math.Max(b.Rank - 2, 0)].ToArray());
        var batch = Shape.TryBroadcast(aBatch, bBatch)
            ?? throw EngineException.ShapeMismatch($"{op}: {a} @ {b}: batch dims {aBatch} and {bBatch} do not broadcast", op: op);
        var dims = new List<int>(batch.ToArray());
        if (a.Rank >= 2) dims.Add(ta ? ad[^1] : ad[^2]);
        if (b.Rank >= 2) dims.Add(tb ? bd[^2] : bd[^1]);
        if (dims.Count > Shape.MaxRank)
            throw EngineException.InvalidGraph($"{op}: {a} @ {b}: the result would have rank {dims.Count}, over {Shape.MaxRank}", op: op);
        return new Shape(dims.ToArray());
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.MatMul(inputs[0], inputs[1], output, attrs.GetBool("transpose_a", false), attrs.GetBool("transpose_b", false));

    /// <summary>
    /// With C = op(A)·op(B): d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G, each transposed back when its flag is set.
    /// Vectors are lifted to matrices first; batch dims a or b broadcast over are summed back, then the lift is undone.
    /// </summary>
    public override Tensor?[] Vjp(VjpArgs v)
    {
        var (a, b) = (v.Inputs[0], v.Inputs[1]);
        bool ta = v.Attrs.GetBool("transpose_a", false), tb = v.Attrs.GetBool("transpose_b", false);
        var a2 = a.Rank == 1 ? F.Reshape(a, 1, a.Shape[0]) : a;
        var b2 = b.Rank == 1 ? F.Reshape(b, b.Shape[0], 1) : b;
        var g = F.Reshape(v.Grad, ResultShape(a2.Shape, b2.Shape, ta, tb, Name));
        Tensor? da = null, db = null;
        if (v.NeedsGrad(0))
            da = Unlift(ta ? F.MatMul(b2, g, tb, true) : F.MatMul(g, b2, false, !tb), a2.Shape, a.Shape);
        if (v.NeedsGrad(1))
            db = Unlift(tb ? F.MatMul(g, a2, true, ta) : F.MatMul(a2, g, !ta, false), b2.Shape, b.Shape);
        return [da, db];
    }

    private static Tensor Unlift(Tensor d, Shape lifted, Shape original) => F.Reshape(F.SumToShape(d, lifted), original);

    public override Tensor? Jvp(JvpArgs j) => LinearAlgebraOps.Bilinear(this, j);
}

/// <summary><c>dot(a, b)</c>: the inner product of two vectors of the same length, a scalar.</summary>
public sealed class DotOp : PrimitiveOp
{
    // Products read both factors, never the product.
    internal override bool VjpReadsOutput => false;

    public static readonly DotOp Instance = new();

    /// <summary>A multiply and an add per element pair.</summary>
    public override long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => 2 * inputs[0].ElementCount;

    public override OpSchema Schema { get; } = new("dot", "linalg", "inner product of two vectors",
        [new OpInput("a", Promoted: true), new OpInput("b", Promoted: true)], [], "a scalar; the promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples => [new(ExampleInput.F(4), ExampleInput.F(4)), new(ExampleInput.F(1), ExampleInput.F(1))];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (a, b) = (inputs[0], inputs[1]);
        LinearAlgebraOps.ExpectNumeric(Name, a, b);
        if (a.Shape.Rank != 1 || b.Shape.Rank != 1)
            throw EngineException.ShapeMismatch($"{Name}: {a.Shape} · {b.Shape}: both operands must be vectors (use matmul for matrices)", op: Name);
        if (a.Shape[0] != b.Shape[0])
            throw EngineException.ShapeMismatch($"{Name}: {a.Shape} · {b.Shape}: lengths {a.Shape[0]} and {b.Shape[0]} differ", op: Name);
        return new TensorType(Shape.Scalar, a.DType);
    }

    // [1, k] · [k, 1] in the kernel's vector conventions.
    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.MatMul(inputs[0], inputs[1], output, false, false);

    public override Tensor?[] Vjp(VjpArgs v) =>
        [v.NeedsGrad(0) ? v.Grad * v.Inputs[1] : null, v.NeedsGrad(1) ? v.Grad * v.Inputs[0] : null];

    public override Tensor? Jvp(JvpArgs j) => LinearAlgebraOps.Bilinear(this, j);
}

/// <summary><c>outer(a, b)</c>: the [m, n] matrix of products a[i]·b[j] of two vectors.</summary>
public sealed class OuterOp : PrimitiveOp
{
    // Products read both factors, never the product.
    internal override bool VjpReadsOutput => false;

    public static readonly OuterOp Instance = new();

    public override OpSchema Schema { get; } = new("outer", "linalg", "outer product of two vectors",
        [new OpInput("a", Promoted: true), new OpInput("b", Promoted: true)], [], "[len(a), len(b)]; the promoted dtype", true);

    public override IReadOnlyList<OpExample> Examples => [new(ExampleInput.F(3), ExampleInput.F(2)), new(ExampleInput.F(1), ExampleInput.F(4))];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 2);
        var (a, b) = (inputs[0], inputs[1]);
        LinearAlgebraOps.ExpectNumeric(Name, a, b);
        if (a.Shape.Rank != 1 || b.Shape.Rank != 1)
            throw EngineException.ShapeMismatch($"{Name}: {a.Shape} ⊗ {b.Shape}: both operands must be vectors", op: Name);
        return new TensorType(new Shape(a.Shape[0], b.Shape[0]), a.DType);
    }

    // A vector a is [1, m] and b is [n, 1] to the kernel, so both transposed give [m, 1] · [1, n].
    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.MatMul(inputs[0], inputs[1], output, true, true);

    public override Tensor?[] Vjp(VjpArgs v) =>
        [v.NeedsGrad(0) ? F.MatMul(v.Grad, v.Inputs[1]) : null, v.NeedsGrad(1) ? F.MatMul(v.Inputs[0], v.Grad) : null];

    public override Tensor? Jvp(JvpArgs j) => LinearAlgebraOps.Bilinear(this, j);
}

/// <summary><c>transpose(x, perm=[...])</c> (alias <c>permute</c>): output axis d is input axis perm[d]; default reverses the axes.</summary>
public sealed class TransposeOp : PrimitiveOp
{
    public static readonly TransposeOp Instance = new();

    public override OpSchema Schema { get; } = new("transpose", "movement", "permutes the axes (default: reversed)",
        [new OpInput("x")], [new OpAttribute("perm", AttrKind.Ints, false, "a permutation of the axes (negative counts from the end)", "reversed")],
        "x's dims permuted; x's dtype", true) { Aliases = ["permute"] };

    public override IReadOnlyList<OpExample> Examples =>
    [
        new(ExampleInput.F(2, 3)),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("perm", new[] { 2, 0, 1 }))),
        new([ExampleInput.F(2, 3, 4)], Attributes.Of(("perm", new[] { 0, -1, 1 }))),
    ];

    public override TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs)
    {
        ExpectInputs(inputs, 1);
        var x = inputs[0];
        var perm = Perm(x.Shape, attrs, Name);
        var dims = new int[perm.Length];
        for (int d = 0; d < perm.Length; d++) dims[d] = x.Shape[perm[d]];
        return new TensorType(new Shape(dims), x.DType);
    }

    internal static int[] Perm(Shape shape, Attributes attrs, string op)
    {
        var given = attrs.GetAxes("perm");
        int rank = shape.Rank;
        if (given is null)
        {
            var reversed = new int[rank];
            for (int d = 0; d < rank; d++) reversed[d] = rank - 1 - d;
            return reversed;
        }
        if (given.Length != rank)
            throw EngineException.InvalidGraph($"perm [{string.Join(", ", given)}] has {given.Length} entries but x has shape {shape}", op: op);
        var perm = new int[rank];
        var seen = new bool[rank];
        for (int d = 0; d < rank; d++)
        {
            perm[d] = shape.NormalizeAxis(given[d], op);
            if (seen[perm[d]])
                throw EngineException.InvalidGraph($"perm [{string.Join(", ", given)}] is not a permutation of the axes of {shape}", op: op);
            seen[perm[d]] = true;
        }
        return perm;
    }

    public override void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output) =>
        scope.Backend.Transpose(inputs[0], Perm(inputs[0].Shape, attrs, Name), output);

    internal override bool VjpReadsInput(int input) => false;

    internal override bool VjpReadsOutput => false;

    public override Tensor?[] Vjp(VjpArgs v)
    {
        var perm = Perm(v.Inputs[0].Shape, v.Attrs, Name);
        var inverse = new int[perm.Length];
        for (int d = 0; d < perm.Length; d++) inverse[perm[d]] = d;
        return [F.Transpose(v.Grad, inverse)];
    }

    public override Tensor? Jvp(JvpArgs j) =>
        j.Tangents[0] is { } t ? F.Transpose(t, Perm(j.Inputs[0].Shape, j.Attrs, Name)) : null;
}

public static class LinearAlgebraOps
{
    internal static IEnumerable<Op> All => [DotOp.Instance, MatMulOp.Instance, OuterOp.Instance, TransposeOp.Instance];

    internal static void ExpectNumeric(string op, TensorType a, TensorType b)
    {
        if (a.DType != b.DType)
            throw EngineException.DTypeMismatch($"'{op}' inputs are {a.DType.WireName()} and {b.DType.WireName()}", op: op);
        if (a.DType == DType.Bool)
            throw EngineException.DTypeMismatch($"'{op}' needs numeric inputs, got bool (cast first)", op: op);
    }

    /// <summary>The JVP of any op linear in each input separately: f(ta, b) + f(a, tb).</summary>
    internal static Tensor? Bilinear(PrimitiveOp op, JvpArgs j)
    {
        var (a, b) = (j.Inputs[0], j.Inputs[1]);
        var left = j.Tangents[0] is { } ta ? Dispatcher.Apply(op, [ta, b], j.Attrs) : null;
        var right = j.Tangents[1] is { } tb ? Dispatcher.Apply(op, [a, tb], j.Attrs) : null;
        return left is null ? right : right is null ? left : left + right;
    }
}

public static partial class F
{
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        // Cached: every matmul VJP asks for a transposed operand.
        var attrs = transposeA ? (transposeB ? BothTransposed : ATransposed) : transposeB ? BTransposed : Attributes.Empty;
        return Dispatcher.Apply(MatMulOp.Instance, [a, b], attrs);
    }

    private static readonly Attributes ATransposed = Attributes.Of(("transpose_a", true));
    private static readonly Attributes BTransposed = Attributes.Of(("transpose_b", true));
    private static readonly Attributes BothTransposed = Attributes.Of(("transpose_a", true), ("transpose_b", true));

    public static Tensor Dot(Tensor a, Tensor b) => Dispatcher.Apply(DotOp.Instance, a, b);

    public static Tensor Outer(Tensor a, Tensor b) => Dispatcher.Apply(OuterOp.Instance, a, b);

    /// <summary>Permutes axes so output axis d is input axis perm[d]; with no perm, reverses them.</summary>
    public static Tensor Transpose(Tensor x, params int[] perm) =>
        Dispatcher.Apply(TransposeOp.Instance, [x], perm.Length == 0 ? Attributes.Empty : Attributes.Of(("perm", perm)));
}
