using System.Buffers;
using System.Text.Json;
using AutogradService.Api.Errors;
using Microsoft.AspNetCore.Http;

namespace AutogradService.Api.Json;

/// <summary>
/// A REST body parsed as JSON, over a pooled copy of its bytes (returned on dispose, so large bodies do not churn the
/// large-object heap). System.Text.Json checks the syntax but not that strings are valid UTF-8 or that \u escapes
/// spell valid UTF-16 (that surfaces later, from whichever accessor first decodes the string), so both are checked
/// once, up front: a malformed body is always <c>invalid_argument</c>, wherever the bad byte is.
/// </summary>
public sealed class JsonBody : IDisposable
{
    private readonly JsonDocument _document;
    private byte[]? _rented;

    private JsonBody(JsonDocument document, byte[] rented) => (_document, _rented) = (document, rented);

    public JsonElement RootElement => _document.RootElement;

    /// <summary>Reads and parses the body, refusing a content type other than JSON unless the caller has already
    /// judged it (<paramref name="contentTypeChecked"/>: the Open Inference Protocol's bodies are JSON whatever the header says).</summary>
    public static async Task<JsonBody> ReadAsync(HttpRequest request, CancellationToken cancellation, bool contentTypeChecked = false)
    {
        if (!contentTypeChecked && !request.HasJsonContentType())
            throw new ServiceException(ErrorCatalog.UnsupportedMediaType,
                $"the body must be JSON (content-type: application/json), got {(request.ContentType is { Length: > 0 } t ? $"'{Engine.EngineException.Clip(t, 60)}'" : "no content type")}");
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

    public static JsonBody Parse(ReadOnlySequence<byte> body)
    {
        int length = checked((int)body.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            body.CopyTo(rented);
            var bytes = rented.AsMemory(0, length);
            if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
                throw JsonFields.Invalid("body", "is not valid UTF-8");
            var document = JsonDocument.Parse(bytes, JsonFields.Document);
            if (bytes.Span.IndexOf("\\u"u8) >= 0 && !EscapesAreValid(bytes.Span))
            {
                document.Dispose();
                throw JsonFields.Invalid("body", "holds a \\u escape that is not valid UTF-16 (a lone surrogate)");
            }
            return new JsonBody(document, rented);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(rented);
            throw;
        }
    }

    /// <summary>Decodes every escaped string once; only bodies that contain an escape pay for this second pass.</summary>
    private static bool EscapesAreValid(ReadOnlySpan<byte> bytes)
    {
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = JsonFields.MaxDepth });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
                    reader.GetString();
            }
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // a lone surrogate: no string can hold it
        }
    }

    public void Dispose()
    {
        _document.Dispose();
        if (Interlocked.Exchange(ref _rented, null) is { } rented) ArrayPool<byte>.Shared.Return(rented);
    }
}
