using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Batched matrix product <c>output = op(a) · op(b)</c> over row-major operands of one numeric dtype, where op
    /// transposes the last two dims when its flag is set. Leading (batch) dims broadcast as in NumPy; a rank-1
    /// <paramref name="a"/> is the matrix [1, k] and a rank-1 <paramref name="b"/> is [k, 1] before the flags apply.
    /// The output holds batch × m × n elements in row-major order (its shape may drop the promoted unit dims).
    /// </summary>
    void MatMul(Tensor a, Tensor b, Tensor output, bool transposeA, bool transposeB);

    /// <summary>
    /// Permutes axes: output dim d is input dim <c>perm[d]</c> (any dtype).
    /// </summary>
    void Transpose(Tensor input, int[] perm, Tensor output);
}
