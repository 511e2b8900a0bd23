using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Ops;

/// <summary>Values a test (or a client) should feed an input so the op is defined and smooth there.</summary>
public enum InputDomain
{
    Any,
    Positive,
    NonZero,
    /// <summary>Open interval (-1, 1).</summary>
    Unit,
    /// <summary>Integer indices in [0, n) where n is the example's <see cref="ExampleInput.Bound"/>.</summary>
    Index,
    Bool,
}

/// <summary>One input of an op as the catalog describes it.</summary>
public sealed record OpInput(string Name, string Description = "", bool Variadic = false, bool Differentiable = true,
    bool Promoted = false, InputDomain Domain = InputDomain.Any);

/// <summary>One attribute of an op as the catalog describes it.</summary>
public sealed record OpAttribute(string Name, AttrKind Kind, bool Required, string Description, string? Default = null);

/// <summary>What an op is, for the registry, validation and <c>GET /v1/ops</c>.</summary>
public sealed record OpSchema(
    string Name,
    string Category,
    string Summary,
    IReadOnlyList<OpInput> Inputs,
    IReadOnlyList<OpAttribute> Attributes,
    string OutputRule,
    bool Differentiable)
{
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>False for ops whose derivative jumps (sign, relu at 0, max ties): skipped by second-order checks.</summary>
    public bool Smooth { get; init; } = true;

    /// <summary>
    /// The kernel may write its output over an input of the output's exact shape and dtype (every element is read
    /// before the same element is written, and nothing else is read after it). The interpreter uses this to reuse a
    /// dying input's buffer when nothing is recorded. Only elementwise ops with same-dtype outputs declare it.
    /// </summary>
    public bool InPlaceSafe { get; init; }
}

/// <summary>An input of an <see cref="OpExample"/>: its type, the domain to sample it from, and an index bound.</summary>
public sealed record ExampleInput(Shape Shape, DType DType = DType.Float64, InputDomain Domain = InputDomain.Any, int Bound = 0)
{
    public static ExampleInput F(params int[] shape) => new(new Shape(shape));
    public static ExampleInput Positive(params int[] shape) => new(new Shape(shape), Domain: InputDomain.Positive);
}

/// <summary>A valid call of an op. Every op lists some; the generic derivative checks run them all.</summary>
public sealed record OpExample(IReadOnlyList<ExampleInput> Inputs, Attributes Attrs)
{
    public OpExample(params ExampleInput[] inputs) : this(inputs, Attributes.Empty)
    {
    }
}

/// <summary>
/// An operation. Its one place holds its description, its shape and dtype rule, and how it computes and
/// differentiates. Primitive ops run a kernel and state their VJP and JVP; composite ops are written in terms of
/// other ops and so are differentiated for free.
/// </summary>
public abstract class Op
{
    public abstract OpSchema Schema { get; }

    public string Name => Schema.Name;

    /// <summary>Valid calls, used by the catalog and by the generic derivative checks.</summary>
    public virtual IReadOnlyList<OpExample> Examples => [];

    /// <summary>The output's shape and dtype, or an <see cref="EngineException"/> naming what is wrong.</summary>
    public abstract TensorType InferType(ReadOnlySpan<TensorType> inputs, Attributes attrs);

    /// <summary>
    /// Floating-point operations of one call, for the plan's estimate, from the (partly known) types of the inputs and
    /// the output; null when a size it needs is unknown. The default counts one per output element.
    /// </summary>
    public virtual long? Flops(IReadOnlyList<InferredType> inputs, InferredType output, Attributes attrs) => output.ElementCount;

    /// <summary>
    /// For an op whose output element depends only on the same element of the inputs (after broadcasting), computed
    /// by one backend kernel that gives the same bits on any sub-range: that kernel. Such ops may run fused, tile by
    /// tile on the CPU or as one program per element on a device (<see cref="Graphs.ElementwiseRegion"/>); null for
    /// every other op.
    /// </summary>
    public virtual ElementwiseStep? Step => null;

    /// <summary>Whether the op may join a fused elementwise region (it has a <see cref="Step"/>).</summary>
    public bool Fusable => Step is not null;

    public override string ToString() => Name;

    /// <summary>Checks the input count against the schema (for ops without variadic inputs).</summary>
    protected void ExpectInputs(ReadOnlySpan<TensorType> inputs, int count)
    {
        if (inputs.Length != count)
            throw EngineException.InvalidGraph($"'{Name}' takes {count} input(s), got {inputs.Length}", op: Name);
    }

    /// <summary>Requires a floating dtype (for math that has no integer meaning).</summary>
    protected void ExpectFloating(TensorType t, string input = "x")
    {
        if (!t.DType.IsFloating())
            throw EngineException.DTypeMismatch($"'{Name}' needs a float32 or float64 {input}, got {t.DType.WireName()}", op: Name);
    }
}

/// <summary>An op run by a backend kernel, with its reverse-mode (VJP) and forward-mode (JVP) rules.</summary>
public abstract class PrimitiveOp : Op
{
    /// <summary>Writes the result into <paramref name="output"/> (already shaped by <see cref="Op.InferType"/>).</summary>
    public abstract void Forward(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output);

    /// <summary>
    /// The forward when a tape node will be recorded for this call. An op may also return a tensor its VJP will want
    /// and that the same pass computes almost for free (sin's pass also yields cos x); the node keeps it and the VJP
    /// finds it in <see cref="VjpArgs.Saved"/>. The default runs <see cref="Forward"/> and saves nothing.
    /// </summary>
    internal virtual Tensor? ForwardRecorded(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs, Tensor output)
    {
        Forward(scope, inputs, attrs, output);
        return null;
    }

    /// <summary>
    /// Whether the VJP takes a one-element cotangent standing for its broadcast to the output's shape (a full sum's),
    /// sparing reverse mode a pass and a buffer. Elementwise unary rules do; binary ones are judged by reverse mode.
    /// </summary>
    internal virtual bool TakesOneElementCotangent => false;

    /// <summary>
    /// Whether the VJP gives the right cotangents for a cotangent that broadcasts to the output, provided every input
    /// that needs one has the output's shape (no rule must sum a broadcast away): linear rules like add's and mul's.
    /// Reverse mode then skips materializing the broadcast.
    /// </summary>
    internal virtual bool TakesBroadcastCotangent => TakesOneElementCotangent;

    /// <summary>
    /// Whether this call's VJP stays right for cotangents carrying an extra leading batch axis of <paramref name="n"/>
    /// rows, so one backward pass serves many cotangents (batched Jacobians and VJPs, <see cref="Autodiff.Derivatives"/>).
    /// Elementwise rules do: they multiply the cotangent by values shaped like the output, and the batch axis broadcasts.
    /// </summary>
    internal virtual bool TakesBatchedCotangent(Autodiff.TapeNode node, long n) => false;

    /// <summary>
    /// Input <paramref name="i"/>'s batched cotangent [n, ...input] from the output's [n, ...output]; called only where
    /// <see cref="TakesBatchedCotangent"/> said yes. The default runs <see cref="Vjp"/> on the batch and sums a broadcast
    /// operand's cotangent back to its shape, the batch axis kept.
    /// </summary>
    internal virtual Tensor BatchedVjp(Autodiff.TapeNode node, Tensor g, int i, long n) => Autodiff.Derivatives.ElementwiseBatchedVjp(node, g, i, n);

    /// <summary>
    /// Whether the VJP reads input <paramref name="input"/>'s contents (not just its shape and dtype), as PyTorch's
    /// saved tensors say. A recorded run may free a value no recorded rule reads once the forward is done with it.
    /// Unsure means true: a value freed too early fails loudly ("was released"), never silently.
    /// </summary>
    internal virtual bool VjpReadsInput(int input) => true;

    /// <summary>Whether the VJP reads the output's contents (exp's rule does: its derivative is the output).</summary>
    internal virtual bool VjpReadsOutput => true;

    /// <summary>
    /// Input cotangents from the output cotangent, written with tensor ops (<see cref="F"/>) so the backward pass can
    /// itself be recorded. Null means zero. A result may have the broadcast shape; the engine sums it back.
    /// </summary>
    public virtual Tensor?[] Vjp(VjpArgs args) =>
        throw new InvalidOperationException($"op '{Name}' declares itself differentiable but has no VJP rule");

    /// <summary>The output tangent from input tangents (null = zero), written with tensor ops. Null means zero.</summary>
    public virtual Tensor? Jvp(JvpArgs args) =>
        throw new InvalidOperationException($"op '{Name}' declares itself differentiable but has no JVP rule");
}

/// <summary>An op defined by other ops: no kernel, no derivative rules of its own.</summary>
public abstract class CompositeOp : Op
{
    public abstract Tensor Expand(ExecutionScope scope, ReadOnlySpan<Tensor> inputs, Attributes attrs);
}

/// <summary>What a VJP rule sees: the op's inputs, its output, the output's cotangent and which inputs need one.</summary>
public readonly struct VjpArgs(Tensor[] inputs, Tensor output, Tensor grad, Attributes attrs, bool[] needsGrad, Tensor? saved = null)
{
    public Tensor[] Inputs { get; } = inputs;
    public Tensor Output { get; } = output;
    public Tensor Grad { get; } = grad;
    public Attributes Attrs { get; } = attrs;

    /// <summary>What the op's forward saved for it (see <see cref="PrimitiveOp.ForwardRecorded"/>), if anything.</summary>
    public Tensor? Saved { get; } = saved;
    public bool NeedsGrad(int input) => needsGrad[input];
    public ExecutionScope Scope => Output.Scope;
}

/// <summary>What a JVP rule sees: the op's inputs, its output and each input's tangent (null = zero).</summary>
public readonly struct JvpArgs(Tensor[] inputs, Tensor output, Tensor?[] tangents, Attributes attrs)
{
    public Tensor[] Inputs { get; } = inputs;
    public Tensor Output { get; } = output;
    public Tensor?[] Tangents { get; } = tangents;
    public Attributes Attrs { get; } = attrs;
    public ExecutionScope Scope => Output.Scope;
}
