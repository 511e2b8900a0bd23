using AutogradService.Engine.Kernels.Cpu;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public sealed unsafe partial class CpuBackend
{
    public void MatMul(Tensor a, Tensor b, Tensor output, bool transposeA, bool transposeB)
    {
        switch (a.DType)
        {
            case DType.Float32:
                MatMulKernels.MatMul(a.ReadOnlySpan<float>(), a.Shape.Dims, transposeA, b.ReadOnlySpan<float>(), b.Shape.Dims, transposeB, output.Span<float>());
                break;
            case DType.Float64:
                MatMulKernels.MatMul(a.ReadOnlySpan<double>(), a.Shape.Dims, transposeA, b.ReadOnlySpan<double>(), b.Shape.Dims, transposeB, output.Span<double>());
                break;
            case DType.Int64:
                MatMulKernels.MatMul(a.ReadOnlySpan<long>(), a.Shape.Dims, transposeA, b.ReadOnlySpan<long>(), b.Shape.Dims, transposeB, output.Span<long>());
                break;
            default: throw new NotSupportedException("bool matrices are cast before multiplying");
        }
    }

    public void Transpose(Tensor input, int[] perm, Tensor output)
    {
        var inStrides = input.Shape.Strides();
        var srcStrides = new long[perm.Length];
        for (int d = 0; d < perm.Length; d++) srcStrides[d] = inStrides[perm[d]];
        MovementKernels.StridedCopy((byte*)input.Pointer, 0, srcStrides, input.ElementCount, (byte*)output.Pointer, 0,
            output.Shape.Strides(), output.ElementCount, output.Shape.Dims, input.DType.SizeOf());
    }
}
