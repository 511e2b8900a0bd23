using System.Text.Json;
using AutogradService.Engine;

namespace AutogradService.Api.Json;

/// <summary>
/// Typed reads of request fields that fail with <c>invalid_argument</c> naming the field (as a JSON path, e.g.
/// <c>limits.timeout_ms</c>) and saying what was expected, instead of letting <see cref="JsonElement"/>'s accessors
/// throw. Every REST body goes through these, so a field of the wrong type or range is the client's error, never a 500.
/// </summary>
public static class JsonFields
{
    /// <summary>How deeply a request body may nest: 16 levels of subgraphs (4 JSON levels each) plus a rank-8 tensor inside.</summary>
    public const int MaxDepth = 128;

    /// <summary>Options every REST body is parsed with.</summary>
    public static readonly JsonDocumentOptions Document = new() { MaxDepth = MaxDepth };

    public static EngineException Invalid(string path, string message)
    {
        path = EngineException.Clip(path, 120);
        var e = EngineException.InvalidArgument($"'{path}' {message}");
        e.Facts["field"] = path;
        return e;
    }

    public static EngineException WrongType(string path, string expected, JsonElement got) =>
        Invalid(path, $"must be {expected}, got {Describe(got)}");

    /// <summary>The JSON kind of a value, for messages ("a number", "an array").</summary>
    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a bool",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    /// <summary>The body must be an object holding only the named fields.</summary>
    public static void ExpectObject(JsonElement e, string path, IReadOnlySet<string> known)
    {
        if (e.ValueKind != JsonValueKind.Object) throw WrongType(path, "an object", e);
        foreach (var p in e.EnumerateObject())
        {
            if (!known.Contains(p.Name))
                throw Invalid(Join(path, p.Name), $"is not a field here (known: {string.Join(", ", known.Order(StringComparer.Ordinal))})");
        }
    }

    /// <summary>The field's value, or null when absent or JSON null.</summary>
    public static JsonElement? Get(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string? String(JsonElement obj, string name, string path) => Get(obj, name) is { } v ? AsString(v, Join(path, name)) : null;

    public static string RequiredString(JsonElement obj, string name, string path) =>
        String(obj, name, path) ?? throw Invalid(Join(path, name), "is required (a string)");

    public static string AsString(JsonElement v, string path) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw WrongType(path, "a string", v);

    public static bool? Bool(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw WrongType(Join(path, name), "true or false", v),
    };

    /// <summary>An integer field in [min, max]; JSON numbers like 1e3 count when they are whole.</summary>
    public static long? Integer(JsonElement obj, string name, string path, long min = long.MinValue, long max = long.MaxValue) =>
        Get(obj, name) is { } v ? AsInteger(v, Join(path, name), min, max) : null;

    public static long AsInteger(JsonElement v, string path, long min = long.MinValue, long max = long.MaxValue)
    {
        if (v.ValueKind != JsonValueKind.Number) throw WrongType(path, "an integer", v);
        long value;
        if (!v.TryGetInt64(out value))
        {
            // Exponent forms (1e3) and whole decimals (2.0) are integers too, within double's exact range.
            if (!v.TryGetDouble(out double d) || d != Math.Floor(d) || Math.Abs(d) > 9.007199254740992e15)
                throw Invalid(path, $"must be an integer between {min} and {max}, got {v.GetRawText()}");
            value = (long)d;
        }
        if (value < min || value > max) throw Invalid(path, $"must be between {min} and {max}, got {value}");
        return value;
    }

    /// <summary>A finite or infinite double (JSON numbers out of double's range are refused, not rounded to infinity).</summary>
    public static double AsDouble(JsonElement v, string path)
    {
        if (v.ValueKind != JsonValueKind.Number) throw WrongType(path, "a number", v);
        if (!v.TryGetDouble(out double d) || !double.IsFinite(d)) throw Invalid(path, $"is out of range for a double: {Clip(v.GetRawText())}");
        return d;
    }

    /// <summary>A list of names: a string, or an array of strings.</summary>
    public static List<string>? Names(JsonElement obj, string name, string path)
    {
        if (Get(obj, name) is not { } v) return null;
        var at = Join(path, name);
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) throw WrongType(at, "a name or a list of names", v);
        var names = new List<string>(v.GetArrayLength());
        int i = 0;
        foreach (var item in v.EnumerateArray()) names.Add(AsString(item, $"{at}[{i++}]"));
        return names;
    }

    /// <summary>An object field (null when absent); anything else is refused.</summary>
    public static JsonElement? Object(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } v => v,
        { } v => throw WrongType(Join(path, name), "an object", v),
    };

    public static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private static string Clip(string s) => EngineException.Clip(s);
}
