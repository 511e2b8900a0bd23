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

    private JsonBody(JsonDocument document, byte[] rented, byte[]? skeleton, Dictionary<string, Dictionary<string, HostTensor>>? tensors,
        BinaryTensorBody.Segment? binary = null) =>
        (_document, _rented, _skeleton, Tensors, Binary) = (document, rented, skeleton, tensors, binary);

    /// <summary>
    /// The bytes after a framed body's JSON header, for a caller that reads its tensors itself (the Open Inference
    /// Protocol's lists): null unless the body was framed and read with <c>binary: true</c>.
    /// </summary>
    public BinaryTensorBody.Segment? Binary { get; }

    public JsonElement RootElement => _document.RootElement;

    /// <summary>
    /// Tensor maps read straight from the body's bytes (see <see cref="TensorFieldsToRead"/>), by top-level field. In
    /// <see cref="RootElement"/> each of these fields is an empty object: the numbers never enter the document.
    /// </summary>
    public IReadOnlyDictionary<string, Dictionary<string, HostTensor>>? Tensors { get; }

    /// <summary>Reads and parses the body, refusing a content type other than JSON unless the caller has already judged
    /// it (<paramref name="contentTypeChecked"/>: the Open Inference Protocol's bodies are JSON whatever the header says).</summary>
    public static async Task<JsonBody> ReadAsync(HttpRequest request, CancellationToken cancellation, TensorFieldsToRead? tensors = null,
        bool contentTypeChecked = false, bool binary = false)
    {
        // A framed body (JSON header, then raw tensor bytes) is octet-stream; only endpoints that read tensors take one:
        // as /v1 tensor maps (tensors), or handing the bytes to the caller (binary).
        bool framed = (tensors is not null || binary) && BinaryTensorBody.IsFramed(request);
        if (framed && !contentTypeChecked && !request.HasJsonContentType() &&
            !string.Equals(request.ContentType, BinaryTensorBody.ContentType, StringComparison.OrdinalIgnoreCase))
            throw new ServiceException(ErrorCatalog.UnsupportedMediaType,
                $"a body with {BinaryTensorBody.HeaderLength} must be {BinaryTensorBody.ContentType}, got {(request.ContentType is { Length: > 0 } ct ? $"'{Engine.EngineException.Clip(ct, 60)}'" : "no content type")}");
        if (!framed && !contentTypeChecked && !request.HasJsonContentType())
            throw new ServiceException(ErrorCatalog.UnsupportedMediaType,
                $"the body must be JSON (content-type: application/json), got {(request.ContentType is { Length: > 0 } t ? $"'{Engine.EngineException.Clip(t, 60)}'" : "no content type")}");
        var reader = request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(cancellation);
            if (read.IsCompleted || read.IsCanceled)
            {
                try
                {
                    return framed ? Parse(read.Buffer, tensors, BinaryTensorBody.JsonLength(request, read.Buffer.Length)) : Parse(read.Buffer, tensors);
                }
                finally { reader.AdvanceTo(read.Buffer.End); }
            }
            // Keep everything buffered until the body ends (Kestrel's MaxRequestBodySize bounds it).
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    /// <summary>
    /// Parses a body; with <paramref name="framedJsonLength"/>, a framed one (<see cref="BinaryTensorBody"/>): the
    /// first that many bytes are the JSON, the rest the tensors' bytes.
    /// </summary>
    public static JsonBody Parse(ReadOnlySequence<byte> body, TensorFieldsToRead? tensors = null, int? framedJsonLength = null)
    {
        int length = checked((int)body.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        byte[]? skeleton = null;
        try
        {
            body.CopyTo(rented);
            var bytes = rented.AsMemory(0, framedJsonLength ?? length);
            if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
                throw JsonFields.Invalid("body", "is not valid UTF-8");
            Dictionary<string, Dictionary<string, HostTensor>>? read = null;
            JsonDocument document;
            int skeletonLength;
            if (framedJsonLength is { } jsonLength && tensors is null)
            {
                CheckEscapes(bytes.Span);
                document = JsonDocument.Parse(bytes, JsonFields.Document);
                return new JsonBody(document, rented, null, null, new BinaryTensorBody.Segment(rented.AsMemory(jsonLength, length - jsonLength)));
            }
            if (framedJsonLength is { } framedLength)
            {
                CheckEscapes(bytes.Span); // before the framed read, which decodes names
                TensorBodyReader.ReadFramed(bytes.Span, new BinaryTensorBody.Segment(rented.AsMemory(framedLength, length - framedLength)), tensors!,
                    out var framed, out skeleton, out skeletonLength);
                read = framed;
                document = JsonDocument.Parse(skeleton is null ? bytes : skeleton.AsMemory(0, skeletonLength), JsonFields.Document);
                return new JsonBody(document, rented, skeleton, read);
            }
            document = tensors is not null && TensorBodyReader.TryRead(bytes.Span, tensors, out read, out skeleton, out skeletonLength)
                ? JsonDocument.Parse(skeleton.AsMemory(0, skeletonLength), JsonFields.Document)
                : JsonDocument.Parse(bytes, JsonFields.Document);
            try
            {
                CheckEscapes(bytes.Span);
            }
            catch
            {
                document.Dispose();
                throw;
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

    private static void CheckEscapes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IndexOf("\\u"u8) >= 0 && !EscapesAreValid(bytes))
            throw JsonFields.Invalid("body", "holds a \\u escape that is not valid UTF-16 (a lone surrogate)");
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
