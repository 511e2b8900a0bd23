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
        return JsonDocument.Parse(bytes, JsonFields.Document);
    }
}
