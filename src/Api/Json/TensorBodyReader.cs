using System.Buffers;
using System.Text.Json;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>Top-level fields of a body that hold maps of tensors (a transform's inputs, seeds...), read by <see cref="TensorBodyReader"/>.</summary>
public sealed record TensorFieldsToRead(IReadOnlySet<string> Fields, long MaxElements);

/// <summary>
/// Reads a body's tensor maps in one pass over its UTF-8 bytes, before any document is built, and leaves a skeleton
/// of the body (the same bytes with each map read replaced by <c>{}</c>) for the rest of the request's fields. A map
/// is taken only if every tensor in it takes <see cref="TensorReader"/>'s fast path and its field appears once;
/// otherwise its bytes stay in the skeleton and the general reader reads it, words its errors and keeps their order.
/// A body that is not well-formed JSON is left whole, so its syntax error is reported as before.
/// </summary>
public static class TensorBodyReader
{
    /// <summary>
    /// True when at least one map was read: <paramref name="skeleton"/> (pooled; the caller returns it) holds the
    /// skeleton's <paramref name="skeletonLength"/> bytes. False: parse the body as it is.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> body, TensorFieldsToRead fields, out Dictionary<string, Dictionary<string, HostTensor>>? tensors,
        out byte[]? skeleton, out int skeletonLength)
    {
        tensors = null;
        skeleton = null;
        skeletonLength = 0;
        List<Map> maps;
        try
        {
            maps = ReadMaps(body, fields, binary: null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false; // malformed JSON, or a name with a lone surrogate: the document parse reports it
        }
        // A field given twice is left to the document, which decides which one counts.
        var taken = maps.Where(m => m.Tensors is not null && maps.Count(o => o.Field == m.Field) == 1).ToList();
        if (taken.Count == 0) return false;
        (skeleton, skeletonLength) = Skeleton(body, taken);
        tensors = taken.ToDictionary(m => m.Field, m => m.Tensors!, StringComparer.Ordinal);
        return true;
    }

    /// <summary>
    /// The JSON header of a framed body (<see cref="BinaryTensorBody"/>): tensors with <c>binary_data_size</c> take
    /// their bytes from <paramref name="binary"/>, in header order, and every byte must be taken. Here the maps are
    /// always read in this pass (the binary bytes belong to the header's order), so a bad tensor is refused at once,
    /// in the general reader's words, and a map given twice is refused.
    /// </summary>
    public static void ReadFramed(ReadOnlySpan<byte> header, BinaryTensorBody.Segment binary, TensorFieldsToRead fields,
        out Dictionary<string, Dictionary<string, HostTensor>> tensors, out byte[]? skeleton, out int skeletonLength)
    {
        var maps = ReadMaps(header, fields, binary);
        binary.CheckAllTaken();
        foreach (var m in maps)
        {
            if (maps.Count(o => o.Field == m.Field) > 1) throw JsonFields.Invalid(m.Field, "is given twice");
        }
        var taken = maps.Where(m => m.Tensors is not null).ToList();
        tensors = taken.ToDictionary(m => m.Field, m => m.Tensors!, StringComparer.Ordinal);
        (skeleton, skeletonLength) = taken.Count == 0 ? (null, 0) : Skeleton(header, taken);
    }

    private sealed record Map(string Field, long Start, long End, Dictionary<string, HostTensor>? Tensors);

    /// <summary>
    /// One pass over the body's top level: each tensor map's tensors and where the map's bytes are. Without
    /// <paramref name="binary"/> a map with a tensor off the fast path is not taken (null); with it, such a tensor
    /// is read by the general reader on the spot.
    /// </summary>
    private static List<Map> ReadMaps(ReadOnlySpan<byte> body, TensorFieldsToRead fields, BinaryTensorBody.Segment? binary)
    {
        var maps = new List<Map>();
        var reader = new Utf8JsonReader(body, TensorReader.Options);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            while (reader.Read()) { }
            return maps;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string? field = null;
            foreach (var f in fields.Fields)
            {
                if (reader.ValueTextEquals(f)) field = f;
            }
            reader.Read();
            if (field is null || reader.TokenType != JsonTokenType.StartObject)
            {
                if (field is not null) maps.Add(new Map(field, 0, 0, null)); // not an object: the general reader refuses it
                reader.Skip();
                continue;
            }
            long start = reader.TokenStartIndex;
            var map = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            bool whole = true;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                var before = reader;
                if (binary is not null && BinaryTensorBody.TryRead(ref reader, name, binary) is { } framed)
                {
                    map[name] = framed;
                    continue;
                }
                reader = before;
                if (whole && TensorReader.TryRead(ref reader, fields.MaxElements, body.Length, out var tensor))
                {
                    map[name] = tensor!;
                    continue;
                }
                reader = before;
                long tensorStart = reader.TokenStartIndex;
                reader.Skip();
                if (binary is null)
                {
                    whole = false;
                    continue;
                }
                using var single = JsonDocument.Parse(body[(int)tensorStart..(int)reader.BytesConsumed].ToArray(), JsonFields.Document);
                map[name] = TensorJson.Read(single.RootElement, name, fields.MaxElements);
            }
            maps.Add(new Map(field, start, reader.BytesConsumed, whole ? map : null));
        }
        while (reader.Read()) { } // anything after the body's object is a syntax error, thrown here
        return maps;
    }

    /// <summary>The body with each taken map's bytes replaced by <c>{}</c>, in a pooled buffer.</summary>
    private static (byte[] Skeleton, int Length) Skeleton(ReadOnlySpan<byte> body, List<Map> taken)
    {
        var skeleton = ArrayPool<byte>.Shared.Rent(body.Length);
        int at = 0, from = 0;
        foreach (var m in taken)
        {
            body[from..(int)m.Start].CopyTo(skeleton.AsSpan(at));
            at += (int)m.Start - from;
            "{}"u8.CopyTo(skeleton.AsSpan(at));
            at += 2;
            from = (int)m.End;
        }
        body[from..].CopyTo(skeleton.AsSpan(at));
        return (skeleton, at + body.Length - from);
    }
}
