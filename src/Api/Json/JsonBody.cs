using System.Buffers;
using System.Text.Json;
using AutogradService.Api.Errors;
using AutogradService.Engine.Tensors;
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
    private byte[]? _skeleton;

    private JsonBody(JsonDocument document, byte[] rented, byte[]? skeleton, Dictionary<string, Dictionary<string, HostTensor>>? tensors) =>
        (_document, _rented, _skeleton, Tensors) = (document, rented, skeleton, tensors);

    public JsonElement RootElement => _document.RootElement;

    /// <summary>
    /// Tensor maps read straight from the body's bytes (see <see cref="TensorFieldsToRead"/>), by top-level field. In
    /// <see cref="RootElement"/> each of these fields is an empty object: the numbers never enter the document.
    /// </summary>
    public IReadOnlyDictionary<string, Dictionary<string, HostTensor>>? Tensors { get; }

    public static async Task<JsonBody> ReadAsync(HttpRequest request, CancellationToken cancellation, TensorFieldsToRead? tensors = null)
    {
        if (!request.HasJsonContentType())
            throw new ServiceException(ErrorCatalog.UnsupportedMediaType,
                $"the body must be JSON (content-type: application/json), got {(request.ContentType is { Length: > 0 } t ? $"'{Engine.EngineException.Clip(t, 60)}'" : "no content type")}");
        var reader = request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(cancellation);
            if (read.IsCompleted || read.IsCanceled)
            {
                try { return Parse(read.Buffer, tensors); }
                finally { reader.AdvanceTo(read.Buffer.End); }
            }
            // Keep everything buffered until the body ends (Kestrel's MaxRequestBodySize bounds it).
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    public static JsonBody Parse(ReadOnlySequence<byte> body, TensorFieldsToRead? tensors = null)
    {
        int length = checked((int)body.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        byte[]? skeleton = null;
        try
        {
            body.CopyTo(rented);
            var bytes = rented.AsMemory(0, length);
            if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
                throw JsonFields.Invalid("body", "is not valid UTF-8");
            Dictionary<string, Dictionary<string, HostTensor>>? read = null;
            var document = tensors is not null && TensorBodyReader.TryRead(bytes.Span, tensors, out read, out skeleton, out int skeletonLength)
                ? JsonDocument.Parse(skeleton.AsMemory(0, skeletonLength), JsonFields.Document)
                : JsonDocument.Parse(bytes, JsonFields.Document);
            if (bytes.Span.IndexOf("\\u"u8) >= 0 && !EscapesAreValid(bytes.Span))
            {
                document.Dispose();
                throw JsonFields.Invalid("body", "holds a \\u escape that is not valid UTF-16 (a lone surrogate)");
            }
            return new JsonBody(document, rented, skeleton, read);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(rented);
            if (skeleton is not null) ArrayPool<byte>.Shared.Return(skeleton);
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
        if (Interlocked.Exchange(ref _skeleton, null) is { } skeleton) ArrayPool<byte>.Shared.Return(skeleton);
    }
}
