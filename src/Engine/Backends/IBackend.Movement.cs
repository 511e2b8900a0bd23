using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Strided slice: output[i] = input[starts + i · steps] per axis, for every axis of the input. Steps are non-zero
    /// (negative walks backwards); the output's shape gives the count along each axis, and every index read is in range.
    /// </summary>
    void Slice(Tensor input, int[] starts, int[] steps, Tensor output);

    /// <summary>The transpose of <see cref="Slice"/>: output = 0 except output[starts + i · steps] = source[i].</summary>
    void SliceScatter(Tensor source, int[] starts, int[] steps, Tensor output);

    /// <summary>
    /// Joins same-dtype inputs along <paramref name="axis"/> of the output: with outer = the product of the output's
    /// dims before the axis, each input supplies ElementCount / outer contiguous elements per outer step, in input
    /// order. Serves concat (inputs with the output's rank) and stack (inputs one rank lower).
    /// </summary>
    void Concat(ReadOnlySpan<Tensor> inputs, int axis, Tensor output);

    /// <summary>
    /// output = input's slices along <paramref name="axis"/> picked by int64 <paramref name="indices"/>; the output's
    /// shape is input[:axis] + indices + input[axis+1:]. Negative indices count from the end; any other out-of-range
    /// index is an <see cref="EngineException"/> (invalid_tensor) naming it.
    /// </summary>
    void Gather(Tensor input, Tensor indices, int axis, Tensor output);

    /// <summary>
    /// The transpose of <see cref="Gather"/>: output = 0, then each slice of <paramref name="source"/> is added at
    /// its index along <paramref name="axis"/> of the output (repeated indices add up). Numeric dtypes only.
    /// </summary>
    void ScatterAdd(Tensor source, Tensor indices, int axis, Tensor output);
}
