using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// The one loop behind every broadcasting kernel. The output is cut into contiguous blocks over the longest
/// trailing run of dimensions in which each input is either fully present (contiguous) or fully broadcast (one
/// value); inside a block a kernel sees plain spans or a scalar, which keeps the common patterns (same shape,
/// scalar, row, column) vectorised.
/// </summary>
internal sealed class BroadcastLoop
{
    private readonly int[] _outerDims;
    private readonly long[][] _outerStrides;

    public BroadcastLoop(Shape output, params Shape[] inputs)
    {
        int rank = output.Rank;
        var padded = new int[inputs.Length][];
        for (int k = 0; k < inputs.Length; k++)
        {
            padded[k] = new int[rank];
            int off = rank - inputs[k].Rank;
            for (int i = 0; i < rank; i++) padded[k][i] = i < off ? 1 : inputs[k][i - off];
        }

        // Find the longest suffix where each input is consistently full or consistently broadcast.
        var mode = new int[inputs.Length]; // 0 = undecided, 1 = full, 2 = broadcast
        int split = rank;
        for (int i = rank - 1; i >= 0; i--)
        {
            if (output[i] == 1) { split = i; continue; }
            bool ok = true;
            var next = (int[])mode.Clone();
            for (int k = 0; k < inputs.Length; k++)
            {
                int m = padded[k][i] == output[i] ? 1 : 2;
                if (next[k] == 0) next[k] = m;
                else if (next[k] != m) { ok = false; break; }
            }
            if (!ok) break;
            mode = next;
            split = i;
        }

        long block = 1;
        for (int i = split; i < rank; i++) block *= output[i];
        BlockLength = checked((int)block);
        InputIsScalar = new bool[inputs.Length];
        for (int k = 0; k < inputs.Length; k++) InputIsScalar[k] = mode[k] == 2 || (mode[k] == 0 && IsOneSuffix(padded[k], split));

        _outerDims = output.Dims[..split].ToArray();
        _outerStrides = new long[inputs.Length][];
        for (int k = 0; k < inputs.Length; k++)
        {
            var strides = new long[rank];
            long s = 1;
            for (int i = rank - 1; i >= 0; i--)
            {
                strides[i] = padded[k][i] == 1 ? 0 : s;
                s *= padded[k][i];
            }
            _outerStrides[k] = strides[..split];
        }
        long count = 1;
        foreach (var d in _outerDims) count *= d;
        BlockCount = output.ElementCount == 0 ? 0 : count;
    }

    /// <summary>Elements per block (the output offset of block b is b * BlockLength).</summary>
    public int BlockLength { get; }

    public long BlockCount { get; }

    /// <summary>Whether input k holds a single value across a block (else a contiguous run of BlockLength).</summary>
    public bool[] InputIsScalar { get; }

    /// <summary>Element offset of each input at the start of block <paramref name="block"/>.</summary>
    public void Offsets(long block, Span<long> offsets)
    {
        offsets.Clear();
        for (int i = _outerDims.Length - 1; i >= 0; i--)
        {
            long idx = block % _outerDims[i];
            block /= _outerDims[i];
            for (int k = 0; k < offsets.Length; k++) offsets[k] += idx * _outerStrides[k][i];
        }
    }

    private static bool IsOneSuffix(int[] dims, int from)
    {
        for (int i = from; i < dims.Length; i++) if (dims[i] != 1) return false;
        return true;
    }
}
