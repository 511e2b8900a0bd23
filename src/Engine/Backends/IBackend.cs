using AutogradService.Engine.Graphs;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

/// <summary>
/// Where kernels run. Ops never touch memory themselves: every kernel call goes through a backend, so a GPU backend
/// slots in beside <see cref="CpuBackend"/> without changing an op or the autodiff code. The interface is split
/// into one partial file per op family, mirroring <c>Ops/</c>.
/// </summary>
public partial interface IBackend
{
    /// <summary>Short name used in requests (<c>cpu</c>, <c>gpu</c>).</summary>
    string Name { get; }

    /// <summary>What this device is, for <c>GET /v1/devices</c>, probes and metrics.</summary>
    DeviceInfo Describe();

    /// <summary>
    /// Charges <paramref name="bytes"/> to the scope's budget, then allocates them where this backend's kernels read
    /// them (nothing is allocated when the charge fails).
    /// </summary>
    internal Storage Allocate(ExecutionScope scope, long bytes);

    /// <summary>Writes host bytes (exactly the tensor's byte count) into a tensor: constants, copied values, shapes.</summary>
    void Upload(ReadOnlySpan<byte> source, Tensor output);

    /// <summary>The position of the first int64 index outside [0, <paramref name="bound"/>), or -1 when all are in range.</summary>
    long FindOutOfRange(Tensor indices, long bound);

    /// <summary>
    /// Writes a fused elementwise region's root value into <paramref name="output"/> (inputs: one full shape and
    /// single elements, one dtype), bit-identical to running its members one by one.
    /// </summary>
    internal void RunRegion(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output);

    /// <summary>
    /// A fused region's VJP in one pass, where this backend runs it so: the cotangent of each input that
    /// <paramref name="needs"/> one, in that input's shape (<paramref name="grad"/> has the output's shape or is one
    /// element). Null: the caller runs the members' own rules tile by tile (the CPU's way).
    /// </summary>
    internal Tensor?[]? RunRegionVjp(ExecutionScope scope, ElementwiseRegion region, ReadOnlySpan<Tensor> inputs, Tensor output, Tensor grad, bool[] needs) => null;

    /// <summary>
    /// Whether a recorded run fuses <paramref name="region"/> even when the tape has room for its members' values:
    /// where forward and VJP are each one pass, recomputing beats a pass per member. The CPU fuses recorded regions
    /// only to save memory (its per-member passes are as fast).
    /// </summary>
    internal bool FusesRecorded(ElementwiseRegion region) => false;

    /// <summary>Sets every element to <paramref name="value"/> (converted to the tensor's dtype).</summary>
    void Fill(Tensor output, double value);

    /// <summary>Copies same-shaped, same-dtype contents.</summary>
    void Copy(Tensor input, Tensor output);

    /// <summary>Converts element types (float to int truncates toward zero, anything to bool is "not zero").</summary>
    void Cast(Tensor input, Tensor output);
}

/// <summary>
/// What a fusable op computes per element: one unary or one binary kernel. A backend that runs a fused region as one
/// program (a device kernel interpreting the region's steps per element) reads the ops' steps, never their names.
/// </summary>
public readonly record struct ElementwiseStep(bool IsBinary, int Kernel)
{
    public static ElementwiseStep Of(UnaryKernel kernel) => new(false, (int)kernel);

    public static ElementwiseStep Of(BinaryKernel kernel) => new(true, (int)kernel);

    public override string ToString() => IsBinary ? ((BinaryKernel)Kernel).ToString() : ((UnaryKernel)Kernel).ToString();
}

/// <summary>Elementwise one-input kernels.</summary>
public enum UnaryKernel
{
    Neg, Abs, Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Square, Reciprocal,
    Sin, Cos, Tan, Tanh, Sigmoid, Relu, Softplus, Sign, LogicalNot, Erf,
}

/// <summary>Elementwise two-input kernels. Comparisons and logical ops write bool.</summary>
public enum BinaryKernel
{
    Add, Sub, Mul, Div, Pow, Maximum, Minimum,
    Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr,
}

/// <summary>How a reduction combines elements.</summary>
public enum ReduceKernel
{
    Sum, Prod, Max, Min,
}

public partial interface IBackend
{
    void Unary(UnaryKernel kernel, Tensor input, Tensor output);

    /// <summary>sin and cos of one floating input at once (the same values <see cref="Unary"/> gives each).</summary>
    void SinCos(Tensor input, Tensor sin, Tensor cos);

    /// <summary>Broadcasting binary op; inputs share a dtype (the dispatcher promotes), output has the broadcast shape.</summary>
    void Binary(BinaryKernel kernel, Tensor a, Tensor b, Tensor output);

    /// <summary>Broadcasting select: <c>output = condition ? a : b</c>.</summary>
    void Where(Tensor condition, Tensor a, Tensor b, Tensor output);

    /// <summary>Broadcasts <paramref name="input"/> to the output's shape.</summary>
    void BroadcastTo(Tensor input, Tensor output);

    /// <summary>
    /// Reduces over <paramref name="axes"/> (sorted, distinct, non-empty); the output holds the kept dims in order
    /// (its shape may have ones where keepdims asked, same element count).
    /// </summary>
    void Reduce(ReduceKernel kernel, Tensor input, int[] axes, Tensor output);
}
