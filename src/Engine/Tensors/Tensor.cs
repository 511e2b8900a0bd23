using System.Runtime.CompilerServices;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Memory;

namespace AutogradService.Engine.Tensors;

/// <summary>
/// A dense row-major tensor in pooled native memory, owned by an <see cref="ExecutionScope"/>, carrying the
/// autograd facts PyTorch keeps on a tensor: whether it requires a gradient, the tape node that produced it,
/// its accumulated gradient, and (in forward mode) its tangent. Contents never change after an op writes them,
/// which is what lets views share storage and the tape keep inputs without copying.
/// </summary>
public sealed unsafe partial class Tensor : IDisposable
{
    private readonly Storage _storage;
    private bool _disposed;

    internal Tensor(ExecutionScope scope, Shape shape, DType dtype, Storage storage)
    {
        Scope = scope;
        Shape = shape;
        DType = dtype;
        _storage = storage;
        scope.Track(this);
    }

    public ExecutionScope Scope { get; }
    public Shape Shape { get; }
    public DType DType { get; }
    public TensorType Type => new(Shape, DType);
    public int Rank => Shape.Rank;
    public long ElementCount => Shape.ElementCount;
    public long ByteCount => ElementCount * DType.SizeOf();
    public bool IsDisposed => _disposed;

    /// <summary>Creation order within the scope (see <see cref="ExecutionScope.NextSerial"/>).</summary>
    internal long Serial { get; set; }

    /// <summary>A name for diagnostics and for intermediates a caller asks about.</summary>
    public string? Name { get; set; }

    /// <summary>True for leaves the caller differentiates against, and for every value computed from one while recording.</summary>
    public bool RequiresGrad { get; internal set; }

    /// <summary>The recorded op that produced this tensor; null for leaves and constants.</summary>
    public TapeNode? GradFn { get; internal set; }

    public bool IsLeaf => GradFn is null;

    /// <summary>How many recorded, not yet freed nodes keep this tensor as an input: while above zero, backward may read it.</summary>
    internal int TapeUses { get; set; }

    /// <summary>How many of those nodes' rules read this tensor's contents (<see cref="Ops.PrimitiveOp.VjpReadsInput"/>): at zero the bytes may go while the object stays on the tape.</summary>
    internal int DataUses { get; set; }

    /// <summary>The gradient accumulated into this leaf by <see cref="ReverseMode.Backward"/>.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>
    /// The value every element holds, for tensors made by filling (seeds, literals): a rule may ask this instead of
    /// reading contents that may live on a device (or, on the meta backend, nowhere).
    /// </summary>
    internal double? Constant { get; set; }

    /// <summary>The forward-mode tangent riding along with this value, when one is being propagated.</summary>
    public Tensor? Tangent { get; set; }

    /// <summary>Marks a leaf as a variable to differentiate against (PyTorch's <c>requires_grad_()</c>).</summary>
    public Tensor RequireGrad(bool requires = true)
    {
        if (!IsLeaf)
            throw EngineException.InvalidArgument("only leaf tensors can change requires_grad; use detach() for a computed value");
        if (requires && !DType.IsFloating())
            throw EngineException.NotDifferentiable($"a {DType.WireName()} tensor cannot require a gradient", Name);
        RequiresGrad = requires;
        return this;
    }

    public nint Pointer
    {
        get
        {
            ThrowIfDisposed();
            return _storage.HostPointer;
        }
    }

    public Span<T> Span<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        if (DTypes.Of<T>() != DType)
            throw new InvalidOperationException($"tensor is {DType.WireName()}, not {typeof(T).Name}");
        return new Span<T>((void*)_storage.HostPointer, checked((int)ElementCount));
    }

    public ReadOnlySpan<T> ReadOnlySpan<T>() where T : unmanaged => Span<T>();

    public Span<byte> Bytes()
    {
        ThrowIfDisposed();
        return new Span<byte>((void*)_storage.HostPointer, checked((int)ByteCount));
    }

    public T[] ToArray<T>() where T : unmanaged => Span<T>().ToArray();

    /// <summary>Every element widened to double (bool as 0/1), for inspection and tests.</summary>
    public double[] ToDoubles()
    {
        ThrowIfDisposed();
        var result = new double[ElementCount];
        switch (DType)
        {
            case DType.Float32: { var s = Span<float>(); for (int i = 0; i < s.Length; i++) result[i] = s[i]; break; }
            case DType.Float64: Span<double>().CopyTo(result); break;
            case DType.Int64: { var s = Span<long>(); for (int i = 0; i < s.Length; i++) result[i] = s[i]; break; }
            case DType.Bool: { var s = Span<bool>(); for (int i = 0; i < s.Length; i++) result[i] = s[i] ? 1 : 0; break; }
        }
        return result;
    }

    /// <summary>The single element of a tensor with one element, widened to double.</summary>
    public double ToScalar()
    {
        if (ElementCount != 1)
            throw EngineException.ShapeMismatch($"expected a tensor with one element, got shape {Shape}");
        ThrowIfDisposed();
        // Read the one element directly: W2's loop test calls this every iteration.
        return DType switch
        {
            DType.Float32 => Span<float>()[0],
            DType.Float64 => Span<double>()[0],
            DType.Int64 => Span<long>()[0],
            _ => Span<bool>()[0] ? 1 : 0,
        };
    }

    /// <summary>A tensor of another shape sharing this storage (same element count). Not recorded.</summary>
    internal Tensor View(Shape shape)
    {
        ThrowIfDisposed();
        if (shape.ElementCount != ElementCount)
            throw EngineException.ShapeMismatch($"cannot view {Shape} as {shape}");
        Scope.ReserveTensor();
        _storage.AddRef();
        return new Tensor(Scope, shape, DType, _storage);
    }

    /// <summary>The bytes behind this tensor, for the backend that made them (a device backend reaches its buffers here).</summary>
    internal Storage Storage
    {
        get
        {
            ThrowIfDisposed();
            return _storage;
        }
    }

    /// <summary>True when no other tensor (a view, or the tensor a view was made of) shares this tensor's bytes.</summary>
    internal bool OwnsStorageAlone => !_disposed && _storage.RefCount == 1;

    /// <summary>Gives the storage back (shared storage survives until its last view goes).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _storage.Release();
        Scope.Untrack();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed()
    {
        if (_disposed)
            throw EngineException.InvalidArgument($"tensor {Name ?? Shape.ToString()} was released and can no longer be read");
    }

    public override string ToString()
    {
        var values = ElementCount <= 16 && !_disposed && _storage.HoldsValues ? " " + string.Join(", ", ToDoubles()) : "";
        return $"Tensor({Type}{values})";
    }
}
