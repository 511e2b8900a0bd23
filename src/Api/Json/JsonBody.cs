using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AutogradService.Api.Json;

/// <summary>
/// Reads a REST body into a JSON document. System.Text.Json checks the syntax but not that strings are valid UTF-8
/// (that surfaces later, from whichever accessor first decodes the string), so the bytes are checked once, up front:
/// a malformed body is always <c>invalid_argument</c>, wherever the bad byte is.
/// </summary>
public static class JsonBody
{
    public static async Task<JsonDocument> ReadAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (!request.HasJsonContentType())
            throw new Errors.ServiceException(Errors.ErrorCatalog.UnsupportedMediaType,
                $"the body must be JSON (content-type: application/json), got {(request.ContentType is { Length: > 0 } t ? $"'{(t.Length <= 60 ? t : t[..60] + "...")}'" : "no content type")}");
        var reader = request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(cancellation);
            if (read.IsCompleted || read.IsCanceled)
            {
                try { return Parse(read.Buffer); }
                finally { reader.AdvanceTo(read.Buffer.End); }
            }
            // Keep everything buffered until the body ends (Kestrel's MaxRequestBodySize bounds it).
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    public static JsonDocument Parse(ReadOnlySequence<byte> body)
    {
        // The document keeps a reference to its input, so a multi-segment body is copied once into one array.
        ReadOnlyMemory<byte> bytes = body.IsSingleSegment ? body.First.ToArray() : body.ToArray();
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
            throw JsonFields.Invalid("body", "is not valid UTF-8");
        var document = JsonDocument.Parse(bytes, JsonFields.Document);
        if (bytes.Span.IndexOf("\\u"u8) >= 0) CheckEscapes(bytes.Span, document);
        return document;
    }

    /// <summary>
    /// A \u escape can spell a lone UTF-16 surrogate, which no string can hold: find one now rather than from
    /// whichever accessor decodes it first. Only bodies that contain an escape pay for this second pass.
    /// </summary>
    private static void CheckEscapes(ReadOnlySpan<byte> bytes, JsonDocument document)
    {
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = JsonFields.MaxDepth });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
                    reader.GetString();
            }
        }
        catch (InvalidOperationException)
        {
            document.Dispose();
            throw JsonFields.Invalid("body", "holds a \\u escape that is not valid UTF-16 (a lone surrogate)");
        }
    }
}
