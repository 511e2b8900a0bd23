using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public sealed unsafe partial class CpuBackend
{
    public void Slice(Tensor input, int[] starts, int[] steps, Tensor output)
    {
        if (output.ElementCount == 0) return;
        var (strides, start) = Stepped(input.Shape, starts, steps);
        MovementKernels.StridedCopy((byte*)input.Pointer, start, strides, input.ElementCount, (byte*)output.Pointer, 0,
            output.Shape.Strides(), output.ElementCount, output.Shape.Dims, input.DType.SizeOf());
    }

    public void SliceScatter(Tensor source, int[] starts, int[] steps, Tensor output)
    {
        output.Bytes().Clear();
        if (source.ElementCount == 0) return;
        var (strides, start) = Stepped(output.Shape, starts, steps);
        MovementKernels.StridedCopy((byte*)source.Pointer, 0, source.Shape.Strides(), source.ElementCount, (byte*)output.Pointer, start,
            strides, output.ElementCount, source.Shape.Dims, source.DType.SizeOf());
    }

    /// <summary>Element strides of a slice of <paramref name="shape"/> and the offset of its first element.</summary>
    private static (long[] Strides, long Start) Stepped(Shape shape, int[] starts, int[] steps)
    {
        var strides = shape.Strides();
        long start = 0;
        for (int d = 0; d < strides.Length; d++)
        {
            start += starts[d] * strides[d];
            strides[d] *= steps[d];
        }
        return (strides, start);
    }

    public void Concat(ReadOnlySpan<Tensor> inputs, int axis, Tensor output)
    {
        long outer = 1;
        for (int d = 0; d < axis; d++) outer *= output.Shape[d];
        if (outer == 0 || output.ElementCount == 0) return;
        var pointers = new nint[inputs.Length];
        var bytes = new long[inputs.Length];
        var chunks = new long[inputs.Length];
        for (int j = 0; j < inputs.Length; j++)
        {
            pointers[j] = inputs[j].Pointer;
            bytes[j] = inputs[j].ByteCount;
            chunks[j] = bytes[j] / outer;
        }
        MovementKernels.Concat(pointers, bytes, chunks, outer, (byte*)output.Pointer, output.ByteCount);
    }

    public void Gather(Tensor input, Tensor indices, int axis, Tensor output)
    {
        var (outer, n, inner) = AroundAxis(input.Shape, axis);
        MovementKernels.Gather((byte*)input.Pointer, input.ByteCount, outer, n, inner * input.DType.SizeOf(), indices.ReadOnlySpan<long>(),
            indices.Shape.Dims, axis, (byte*)output.Pointer, output.ByteCount);
    }

    public void ScatterAdd(Tensor source, Tensor indices, int axis, Tensor output)
    {
        var (outer, n, inner) = AroundAxis(output.Shape, axis);
        var ix = indices.ReadOnlySpan<long>();
        var dims = indices.Shape.Dims;
        switch (source.DType)
        {
            case DType.Float32: MovementKernels.ScatterAdd(source.ReadOnlySpan<float>(), outer, n, (int)inner, ix, dims, axis, output.Span<float>()); break;
            case DType.Float64: MovementKernels.ScatterAdd(source.ReadOnlySpan<double>(), outer, n, (int)inner, ix, dims, axis, output.Span<double>()); break;
            case DType.Int64: MovementKernels.ScatterAdd(source.ReadOnlySpan<long>(), outer, n, (int)inner, ix, dims, axis, output.Span<long>()); break;
            default: throw new NotSupportedException("scatter_add needs a numeric dtype");
        }
    }

    /// <summary>A shape seen as [outer, n, inner] around one axis.</summary>
    private static (long Outer, int N, long Inner) AroundAxis(Shape shape, int axis)
    {
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Rank; d++) inner *= shape[d];
        return (outer, shape[axis], inner);
    }
}
