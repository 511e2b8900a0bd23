using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Execution;

/// <summary>
/// How a streamed result tensor is cut into messages, the same for REST (NDJSON lines) and gRPC (<c>TensorChunk</c>s):
/// consecutive runs of whole elements, at most <see cref="ChunkBytes"/> of element bytes each.
/// </summary>
public static class ResultChunks
{
    /// <summary>Largest chunk of a streamed tensor, in bytes of raw elements.</summary>
    public const int ChunkBytes = 1 << 20;

    /// <summary>(first element, element count) of each chunk in order; an empty tensor is one empty chunk.</summary>
    public static IEnumerable<(int Start, int Count)> Of(HostTensor t)
    {
        int perChunk = Math.Max(1, ChunkBytes / t.DType.SizeOf());
        int total = (int)t.Shape.ElementCount;
        if (total == 0)
        {
            yield return (0, 0);
            yield break;
        }
        for (int start = 0; start < total; start += perChunk) yield return (start, Math.Min(perChunk, total - start));
    }
}
