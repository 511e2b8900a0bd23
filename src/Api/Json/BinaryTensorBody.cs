using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text.Json;
using AutogradService.Api.Errors;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;
using Microsoft.AspNetCore.Http;

namespace AutogradService.Api.Json;

/// <summary>
/// The binary tensor framing of the KServe / Triton binary tensor data extension, in one place for every endpoint
/// that takes or gives tensors as raw bytes (the /v1 transforms, and the Open Inference Protocol's /v2 infer).
/// A body is a JSON header followed by raw tensor bytes; the header's length in bytes is the HTTP header
/// <c>Inference-Header-Content-Length</c>. A tensor in the header that carries
/// <c>"parameters": {"binary_data_size": N}</c> instead of data owns the next N bytes after the header (tensors take
/// their bytes in the order they appear in the header), as little-endian elements (<see cref="HostTensor.LittleEndianBytes"/>).
/// Answers are framed the same way when the client asks for them.
/// </summary>
public static class BinaryTensorBody
{
    /// <summary>The HTTP header giving the JSON header's length in bytes, on requests and binary answers.</summary>
    public const string HeaderLength = "Inference-Header-Content-Length";

    /// <summary>Content type of a framed body (the JSON header alone is not the body's type).</summary>
    public const string ContentType = "application/octet-stream";

    /// <summary>The tensor parameter that says a tensor's bytes follow the header.</summary>
    public const string SizeParameter = "binary_data_size";

    /// <summary>Whether a request is framed: it says how long its JSON header is.</summary>
    public static bool IsFramed(HttpRequest request) => request.Headers.ContainsKey(HeaderLength);

    /// <summary>Whether the client accepts a framed answer (<c>Accept: application/octet-stream</c>).</summary>
    public static bool AcceptsFramed(HttpRequest request) =>
        request.Headers.Accept.Any(a => a is not null && a.Contains(ContentType, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The JSON header's length from <see cref="HeaderLength"/>, checked against the body: one decimal integer,
    /// at least 2 (the smallest JSON object) and at most the body's length.
    /// </summary>
    public static int JsonLength(HttpRequest request, long bodyLength)
    {
        var values = request.Headers[HeaderLength];
        if (values.Count != 1 || !long.TryParse(values[0], NumberStyles.None, CultureInfo.InvariantCulture, out long length))
            throw Framing($"the {HeaderLength} header must be one decimal integer, got '{EngineException.Clip(values.ToString(), 40)}'");
        if (length < 2 || length > bodyLength)
            throw Framing($"the {HeaderLength} header says the JSON header is {length} bytes, but the body has {bodyLength}");
        return (int)length;
    }

    /// <summary>The raw bytes after the JSON header, handed out to tensors in header order.</summary>
    public sealed class Segment(ReadOnlyMemory<byte> bytes)
    {
        private int _taken;

        public int Remaining => bytes.Length - _taken;

        /// <summary>
        /// Reads the next tensor's <paramref name="size"/> bytes: the size must be exactly what the shape and dtype
        /// need, and that many bytes must be left.
        /// </summary>
        public HostTensor Take(string name, DType dtype, Shape shape, long size)
        {
            long expected = shape.ElementCount * dtype.SizeOf();
            if (size != expected)
                throw Bad(name, $"{SizeParameter} is {size}, but shape {shape} of {dtype.WireName()} needs {expected} bytes");
            if (size > Remaining)
                throw Bad(name, $"{SizeParameter} is {size}, but only {Remaining} bytes of binary data are left after the tensors before it");
            var tensor = HostTensor.FromLittleEndian(dtype, shape, bytes.Span.Slice(_taken, (int)size));
            _taken += (int)size;
            return tensor;
        }

        /// <summary>Every byte must belong to a tensor: extra bytes mean the header and the data disagree.</summary>
        public void CheckAllTaken()
        {
            if (Remaining != 0)
                throw Framing($"{Remaining} bytes of binary data follow the last tensor that has {SizeParameter}");
        }
    }

    /// <summary>
    /// Reads one binary tensor, <c>{"dtype", "shape", "parameters": {"binary_data_size": N}}</c>, whose first token the
    /// reader is on, taking its bytes from <paramref name="segment"/>; the reader ends on the value's last token.
    /// Returns null when the value is not a binary tensor (no <c>parameters</c>): read it as JSON.
    /// </summary>
    public static HostTensor? TryRead(ref Utf8JsonReader reader, string name, Segment segment)
    {
        if (reader.TokenType != JsonTokenType.StartObject) return null;
        var look = reader;
        look.Read();
        bool hasParameters = false;
        while (look.TokenType == JsonTokenType.PropertyName)
        {
            if (look.ValueTextEquals("parameters"u8)) hasParameters = true;
            look.Read();
            look.Skip();
            look.Read();
        }
        if (!hasParameters) return null;

        DType dtype = DType.Float32;
        long[]? dims = null;
        long? size = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            reader.Read();
            switch (field)
            {
                case "dtype":
                    dtype = reader.TokenType == JsonTokenType.String ? DTypes.Parse(reader.GetString()!) : throw Bad(name, "dtype must be a string");
                    break;
                case "shape":
                    if (reader.TokenType != JsonTokenType.StartArray) throw Bad(name, "shape must be an array of integers");
                    var list = new List<long>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long d) || list.Count == Shape.MaxRank)
                            throw Bad(name, $"shape must be at most {Shape.MaxRank} integers");
                        list.Add(d);
                    }
                    dims = list.ToArray();
                    break;
                case "parameters":
                    if (reader.TokenType != JsonTokenType.StartObject) throw Bad(name, "parameters must be an object");
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        bool isSize = reader.ValueTextEquals(SizeParameter);
                        reader.Read();
                        if (!isSize)
                        {
                            reader.Skip(); // other extensions' parameters are not ours to judge
                            continue;
                        }
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long n) || n < 0)
                            throw Bad(name, $"{SizeParameter} must be an integer ≥ 0");
                        size = n;
                    }
                    break;
                case "data" or "b64":
                    throw Bad(name, $"a tensor with {SizeParameter} takes its values from the binary data, not from '{field}'");
                default:
                    throw Bad(name, $"'{EngineException.Clip(field)}' is not a tensor field (dtype, shape, parameters)");
            }
        }
        if (size is null) throw Bad(name, $"parameters must hold {SizeParameter}");
        if (dims is null) throw Bad(name, "a binary tensor needs a shape");
        try
        {
            return segment.Take(name, dtype, Shape.FromLongs(dims), size.Value);
        }
        catch (EngineException e) when (e.Input is null)
        {
            throw Bad(name, e.Detail);
        }
    }

    /// <summary>Collects the tensors of a framed answer while its JSON header is written, in header order.</summary>
    public sealed class Answer
    {
        private readonly List<HostTensor> _tensors = [];

        /// <summary>Writes a tensor's header entry, <c>{dtype, shape, parameters: {binary_data_size}}</c>, and queues its bytes.</summary>
        public void Write(Utf8JsonWriter w, HostTensor t)
        {
            w.WriteStartObject();
            w.WriteString("dtype", t.DType.WireName());
            w.WriteStartArray("shape");
            foreach (var d in t.Shape.Dims) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteStartObject("parameters");
            w.WriteNumber(SizeParameter, t.ByteCount);
            w.WriteEndObject();
            w.WriteEndObject();
            _tensors.Add(t);
        }

        /// <summary>Queues a tensor's bytes for a header entry written by the caller in its own protocol's form; returns the byte count it must name.</summary>
        public long Add(HostTensor t)
        {
            _tensors.Add(t);
            return t.ByteCount;
        }

        /// <summary>
        /// Sends the answer: <paramref name="header"/> (the JSON written with <see cref="Write"/>) and then every queued
        /// tensor's bytes straight from its array, flushing per tensor.
        /// </summary>
        public async Task SendAsync(HttpResponse response, ReadOnlyMemory<byte> header, CancellationToken cancellation)
        {
            response.ContentType = ContentType;
            response.Headers[HeaderLength] = header.Length.ToString(CultureInfo.InvariantCulture);
            long total = header.Length;
            foreach (var t in _tensors) total += t.ByteCount;
            response.ContentLength = total;
            PipeWriter pipe = response.BodyWriter;
            await pipe.WriteAsync(header, cancellation);
            foreach (var t in _tensors)
            {
                pipe.Write(t.LittleEndianBytes); // copied once, from the tensor's array into the pipe's pooled memory
                await pipe.FlushAsync(cancellation);
            }
        }
    }

    private static EngineException Bad(string name, string message) =>
        EngineException.InvalidTensor($"tensor '{EngineException.Clip(name)}': {message}", EngineException.Clip(name));

    private static EngineException Framing(string message) => JsonFields.Invalid("body", message);
}
