using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text.Json;
using csFastFloat;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Json;

/// <summary>
/// The fast path for JSON tensors: reads a tensor's tokens straight from UTF-8 bytes (a <see cref="Utf8JsonReader"/>)
/// into its typed array, parsing each number from its bytes; no document tree, no double[] in between, nothing
/// allocated per element. It takes the well-formed shapes clients send and answers false for anything else (an
/// error, an empty or scalar data field, a repeated field, dtype after b64...): the caller then reads the value with
/// <see cref="TensorJson"/>'s general reader, which accepts the same tensors and words every error, so errors stay
/// exactly what they were. Whatever this path accepts, the general one reads to the same tensor.
/// </summary>
public static class TensorReader
{
    /// <summary>Reader options matching the documents REST bodies are parsed with.</summary>
    public static readonly JsonReaderOptions Options = new() { MaxDepth = JsonFields.MaxDepth };

    /// <summary>
    /// Reads one tensor whose first token <paramref name="reader"/> is on. True: the tensor, and the reader on the
    /// value's last token. False: nothing read that counts (the reader is somewhere inside the value); restore a copy
    /// taken before the call to read the value again. Syntax errors throw <see cref="JsonException"/> as usual.
    /// The reader's whole input is <paramref name="inputLength"/> bytes: a declared shape is allocated up front only
    /// when the bytes left could hold that many values (two bytes each at least), so a short body cannot claim a large array.
    /// </summary>
    public static bool TryRead(ref Utf8JsonReader reader, long maxElements, long inputLength, out HostTensor? tensor)
    {
        tensor = null;
        try
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.Number or JsonTokenType.String:
                    if (!TryLeaf(ref reader, out float f)) return false;
                    tensor = new HostTensor(DType.Float32, Shape.Scalar, new[] { f });
                    return true;
                case JsonTokenType.True or JsonTokenType.False:
                    tensor = new HostTensor(DType.Bool, Shape.Scalar, new[] { reader.TokenType == JsonTokenType.True });
                    return true;
                case JsonTokenType.StartArray:
                    return TryNested(ref reader, maxElements, out tensor);
                case JsonTokenType.StartObject:
                    return TryObject(ref reader, maxElements, inputLength, out tensor);
                default:
                    return false;
            }
        }
        catch (EngineException)
        {
            return false; // a shape or dtype the general reader will refuse in words
        }
    }

    /// <summary>A nested array; its shape is the lengths of the arrays, which must be the same at every depth.</summary>
    private static bool TryNested(ref Utf8JsonReader reader, long maxElements, out HostTensor? tensor)
    {
        tensor = null;
        Span<int> dims = stackalloc int[Shape.MaxRank];
        Span<int> counts = stackalloc int[Shape.MaxRank];
        Span<bool> known = stackalloc bool[Shape.MaxRank];
        known.Clear();
        int depth = 1, rank = -1;
        counts[0] = 0;
        bool isBool = false;
        var floats = new PooledList<float>();
        var bools = new PooledList<bool>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartArray:
                        if (depth >= Shape.MaxRank || (rank >= 0 && depth >= rank)) return false;
                        counts[depth - 1]++;
                        counts[depth++] = 0;
                        break;
                    case JsonTokenType.EndArray:
                        int n = counts[depth - 1];
                        if (n == 0) return false; // empty arrays fix the rank early: the general reader's rules
                        if (known[depth - 1] ? n != dims[depth - 1] : false) return false;
                        dims[depth - 1] = n;
                        known[depth - 1] = true;
                        if (--depth == 0)
                        {
                            if (rank < 0) return false;
                            var shape = new Shape(dims[..rank].ToArray());
                            long total = isBool ? bools.Count : floats.Count;
                            if (shape.ElementCount != total) return false;
                            tensor = isBool ? new HostTensor(DType.Bool, shape, bools.ToArray()) : new HostTensor(DType.Float32, shape, floats.ToArray());
                            return true;
                        }
                        break;
                    case JsonTokenType.Number or JsonTokenType.String or JsonTokenType.True or JsonTokenType.False:
                        bool leafIsBool = reader.TokenType is JsonTokenType.True or JsonTokenType.False;
                        if (rank < 0)
                        {
                            rank = depth;
                            isBool = leafIsBool;
                        }
                        else if (depth != rank || leafIsBool != isBool)
                        {
                            return false;
                        }
                        counts[depth - 1]++;
                        if ((isBool ? bools.Count : floats.Count) >= maxElements) return false;
                        if (isBool)
                        {
                            bools.Add(reader.TokenType == JsonTokenType.True);
                        }
                        else
                        {
                            if (!TryLeaf(ref reader, out float f)) return false;
                            floats.Add(f);
                        }
                        break;
                    default:
                        return false;
                }
            }
            return false;
        }
        finally
        {
            floats.Dispose();
            bools.Dispose();
        }
    }

    /// <summary><c>{dtype, shape, data}</c> or <c>{dtype, shape, b64}</c>, fields in any order.</summary>
    private static bool TryObject(ref Utf8JsonReader reader, long maxElements, long inputLength, out HostTensor? tensor)
    {
        tensor = null;
        DType dtype = DType.Float32;
        Shape? shape = null;
        bool hasDtype = false, hasPayload = false, payloadIsB64 = false, deferred = false;
        Utf8JsonReader payload = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dtype"u8))
            {
                if (hasDtype || !reader.Read() || reader.TokenType != JsonTokenType.String) return false;
                if (!DTypes.TryParse(reader.GetString(), out dtype)) return false;
                hasDtype = true;
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                if (shape is not null || !reader.Read() || !TryShape(ref reader, out var s)) return false;
                if (s.ElementCount > maxElements) return false;
                shape = s;
            }
            else if (reader.ValueTextEquals("data"u8) || reader.ValueTextEquals("b64"u8))
            {
                if (hasPayload) return false;
                hasPayload = true;
                payloadIsB64 = reader.ValueTextEquals("b64"u8);
                if (!reader.Read()) return false;
                if (hasDtype && (!payloadIsB64 || shape is not null))
                {
                    // The usual order (dtype and shape first): read the values now, in one pass.
                    if (!TryPayload(ref reader, payloadIsB64, dtype, shape, maxElements, inputLength, out tensor)) return false;
                }
                else
                {
                    payload = reader;
                    deferred = true;
                    reader.Skip();
                }
            }
            else
            {
                return false;
            }
        }
        if (reader.TokenType != JsonTokenType.EndObject || !hasPayload) return false;
        if (deferred && !TryPayload(ref payload, payloadIsB64, dtype, shape, maxElements, inputLength, out tensor)) return false;
        if (tensor is null) return false;
        if (shape is { } declared)
        {
            if (declared.ElementCount != tensor.Shape.ElementCount) return false;
            if (!declared.Equals(tensor.Shape)) tensor = new HostTensor(tensor.DType, declared, tensor.Data);
        }
        return true;
    }

    private static bool TryShape(ref Utf8JsonReader reader, out Shape shape)
    {
        shape = default;
        if (reader.TokenType != JsonTokenType.StartArray) return false;
        Span<long> dims = stackalloc long[Shape.MaxRank];
        int rank = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (rank == Shape.MaxRank || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out dims[rank++])) return false;
        }
        shape = Shape.FromLongs(dims[..rank].ToArray());
        return true;
    }

    private static bool TryPayload(ref Utf8JsonReader reader, bool isB64, DType dtype, Shape? shape, long maxElements, long inputLength, out HostTensor? tensor)
    {
        if (isB64) return TryBase64(ref reader, dtype, shape, out tensor);
        tensor = null;
        if (reader.TokenType != JsonTokenType.StartArray) return false;
        // Values take two bytes at least ("0,"): a shape the rest of the input cannot fill is read into a list that
        // grows with what is really there (and then refused for not filling the shape).
        if (shape is { } claimed && claimed.ElementCount > (inputLength - reader.BytesConsumed) / 2 + 1) shape = null;
        return dtype switch
        {
            DType.Float32 => TryData<float>(ref reader, dtype, shape, maxElements, out tensor),
            DType.Float64 => TryData<double>(ref reader, dtype, shape, maxElements, out tensor),
            DType.Int64 => TryData<long>(ref reader, dtype, shape, maxElements, out tensor),
            _ => TryData<bool>(ref reader, dtype, shape, maxElements, out tensor),
        };
    }

    /// <summary>
    /// Flat (or nested, flattened) values of a typed tensor: straight into the tensor's array when the shape is known,
    /// else into a pooled list copied once to an array of the exact length.
    /// </summary>
    private static bool TryData<T>(ref Utf8JsonReader reader, DType dtype, Shape? shape, long maxElements, out HostTensor? tensor)
        where T : unmanaged
    {
        tensor = null;
        int depth = 1;
        if (shape is { } known)
        {
            var result = HostTensor.Uninitialized(dtype, known);
            var span = ((T[])result.Data).AsSpan();
            int at = 0;
            while (reader.Read())
            {
                var token = reader.TokenType;
                if (token == JsonTokenType.StartArray) { depth++; continue; }
                if (token == JsonTokenType.EndArray)
                {
                    if (--depth > 0) continue;
                    if (at != span.Length) return false;
                    tensor = result;
                    return true;
                }
                if (at == span.Length || !TryLeaf(ref reader, out span[at])) return false;
                at++;
            }
            return false;
        }
        var list = new PooledList<T>();
        try
        {
            while (reader.Read())
            {
                var token = reader.TokenType;
                if (token == JsonTokenType.StartArray) { depth++; continue; }
                if (token == JsonTokenType.EndArray)
                {
                    if (--depth > 0) continue;
                    tensor = new HostTensor(dtype, Shape.Vector(list.Count), list.ToArray());
                    return true;
                }
                if (list.Count >= maxElements || !TryLeaf(ref reader, out T value)) return false;
                list.Add(value);
            }
            return false;
        }
        finally
        {
            list.Dispose();
        }
    }

    /// <summary>One element, converted as the general reader converts it (through double, except int64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryLeaf<T>(ref Utf8JsonReader reader, out T value) where T : unmanaged
    {
        value = default;
        if (typeof(T) == typeof(long))
        {
            long l;
            switch (reader.TokenType)
            {
                case JsonTokenType.True: l = 1; break;
                case JsonTokenType.False: l = 0; break;
                case JsonTokenType.Number:
                    if (!reader.TryGetInt64(out l))
                    {
                        // Whole numbers written as decimals (3.0, 1e3), within double's exact range.
                        if (!reader.TryGetDouble(out double d) || d != Math.Floor(d) || Math.Abs(d) > 9.007199254740992e15) return false;
                        l = (long)d;
                    }
                    break;
                default: return false;
            }
            value = Unsafe.As<long, T>(ref l);
            return true;
        }
        double v;
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                // The reader has checked the number's syntax; fast_float (Eisel-Lemire, correctly rounded like the
                // reader's own parser) reads it in about half the time, which is most of a large body's decode.
                if (reader.HasValueSequence || !FastDoubleParser.TryParseDouble(reader.ValueSpan, out int used, out v) ||
                    used != reader.ValueSpan.Length || !double.IsFinite(v)) return false;
                break;
            case JsonTokenType.True: v = 1; break;
            case JsonTokenType.False: v = 0; break;
            case JsonTokenType.String:
                if (reader.ValueTextEquals("NaN"u8)) v = double.NaN;
                else if (reader.ValueTextEquals("Infinity"u8) || reader.ValueTextEquals("inf"u8)) v = double.PositiveInfinity;
                else if (reader.ValueTextEquals("-Infinity"u8) || reader.ValueTextEquals("-inf"u8)) v = double.NegativeInfinity;
                else return false;
                break;
            default: return false;
        }
        if (typeof(T) == typeof(float)) { float f = (float)v; value = Unsafe.As<float, T>(ref f); }
        else if (typeof(T) == typeof(double)) value = Unsafe.As<double, T>(ref v);
        else { bool b = v != 0; value = Unsafe.As<bool, T>(ref b); }
        return true;
    }

    /// <summary>
    /// b64 decoded from the token's own bytes straight into the tensor's array, sized before allocating (a short
    /// string cannot claim a large tensor). Escaped strings and bools take the general path.
    /// </summary>
    private static bool TryBase64(ref Utf8JsonReader reader, DType dtype, Shape? shape, out HostTensor? tensor)
    {
        tensor = null;
        if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped || reader.HasValueSequence || dtype == DType.Bool || shape is not { } known)
            return false;
        var text = reader.ValueSpan;
        long expected = known.ElementCount * dtype.SizeOf();
        if (text.Length != (expected + 2) / 3 * 4) return false;
        var result = HostTensor.Uninitialized(dtype, known);
        var status = Base64.DecodeFromUtf8(text, result.WritableBytes, out int consumed, out int written);
        if (status != OperationStatus.Done || consumed != text.Length || written != expected) return false;
        tensor = result;
        return true;
    }

    /// <summary>A growable list over pooled arrays, for values whose count is known only at the end.</summary>
    private struct PooledList<T>
    {
        private T[]? _items;
        public int Count { get; private set; }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(T item)
        {
            if (_items is null || Count == _items.Length) Grow();
            _items![Count++] = item;
        }

        private void Grow()
        {
            var bigger = ArrayPool<T>.Shared.Rent(Math.Max(1024, (_items?.Length ?? 0) * 2));
            if (_items is not null)
            {
                _items.AsSpan(0, Count).CopyTo(bigger);
                ArrayPool<T>.Shared.Return(_items);
            }
            _items = bigger;
        }

        public readonly T[] ToArray() => _items is null ? [] : _items.AsSpan(0, Count).ToArray();

        public void Dispose()
        {
            if (_items is not null) ArrayPool<T>.Shared.Return(_items);
            _items = null;
        }
    }
}
