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
        var maps = new List<(string Field, long Start, long End, Dictionary<string, HostTensor>? Map)>();
        try
        {
            var reader = new Utf8JsonReader(body, TensorReader.Options);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
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
                    if (field is not null) maps.Add((field, 0, 0, null)); // not an object: the general reader refuses it
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
                    if (whole && TensorReader.TryRead(ref reader, fields.MaxElements, out var tensor))
                    {
                        map[name] = tensor!;
                        continue;
                    }
                    whole = false;
                    reader = before;
                    reader.Skip();
                }
                maps.Add((field, start, reader.BytesConsumed, whole ? map : null));
            }
            while (reader.Read()) { } // anything after the body's object is a syntax error, thrown here
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false; // malformed JSON, or a name with a lone surrogate: the document parse reports it
        }

        // A field given twice is left to the document, which decides which one counts.
        var taken = maps.Where(m => m.Map is not null && maps.Count(o => o.Field == m.Field) == 1).ToList();
        if (taken.Count == 0) return false;
        skeleton = ArrayPool<byte>.Shared.Rent(body.Length);
        int at = 0, from = 0;
        foreach (var (_, start, end, _) in taken)
        {
            body[from..(int)start].CopyTo(skeleton.AsSpan(at));
            at += (int)start - from;
            "{}"u8.CopyTo(skeleton.AsSpan(at));
            at += 2;
            from = (int)end;
        }
        body[from..].CopyTo(skeleton.AsSpan(at));
        skeletonLength = at + body.Length - from;
        tensors = taken.ToDictionary(m => m.Field, m => m.Map!, StringComparer.Ordinal);
        return true;
    }
}
