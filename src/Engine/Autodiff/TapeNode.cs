using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>
/// One recorded application of a primitive op: what reverse mode needs to send a cotangent from the output back to
/// the inputs. The tape is the graph these nodes form through their inputs' own nodes; <see cref="Sequence"/> is
/// the recording order, so processing nodes by decreasing sequence is a valid reverse topological order.
/// </summary>
public sealed class TapeNode
{
    private static long s_next;
    private Tensor[]? _inputs;

    internal TapeNode(PrimitiveOp op, Tensor[] inputs, Attributes attrs, Tensor output)
    {
        Op = op;
        _inputs = inputs;
        Attrs = attrs;
        Output = output;
        Sequence = Interlocked.Increment(ref s_next);
    }

    public PrimitiveOp Op { get; }
    public Attributes Attrs { get; }
    public long Sequence { get; }

    /// <summary>
    /// The value this node produced. A strong reference costs nothing in lifetime: the node is reachable only through
    /// its output's <see cref="Tensor.GradFn"/> (and the scope tracks every tensor anyway), while a weak one cost a GC
    /// handle per recorded op.
    /// </summary>
    internal Tensor Output { get; }

    /// <summary>
    /// A tensor the op's VJP wants besides its inputs and output, set when the node is recorded: what the forward pass
    /// computed alongside (sin saves cos x), or what is already known (a cos recorded by sin's VJP knows sin x is
    /// sin's output). Counted in its <see cref="Tensor.TapeUses"/> like an input, dropped with them.
    /// </summary>
    internal Tensor? Saved { get; private set; }

    internal void Save(Tensor saved)
    {
        Saved = saved;
        saved.TapeUses++;
        saved.DataUses++;
    }

    /// <summary>True once a backward pass without retain_graph has run through this node.</summary>
    public bool IsFreed => _inputs is null;

    public Tensor[] Inputs => _inputs ?? throw EngineException.GraphFreed(Op.Name);

    /// <summary>The inputs, or null once freed (for walking the graph without throwing).</summary>
    internal Tensor[]? InputsOrNull => _inputs;

    /// <summary>Drops the saved tensors (PyTorch frees saved buffers the same way after backward).</summary>
    internal void Free()
    {
        if (_inputs is null) return;
        for (int i = 0; i < _inputs.Length; i++)
        {
            _inputs[i].TapeUses--;
            if (Op.VjpReadsInput(i)) _inputs[i].DataUses--;
        }
        if (Op.VjpReadsOutput) Output.DataUses--;
        _inputs = null;
        if (Saved is { } saved)
        {
            saved.TapeUses--;
            saved.DataUses--;
        }
        Saved = null;
    }

    public override string ToString() => $"{Op.Name}#{Sequence}";
}
