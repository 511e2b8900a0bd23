using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AutogradService.Api.Tests.Properties;

/// <summary>
/// A JSON document as a mutable tree that can say what System.Text.Json's own types cannot: duplicate keys, numbers
/// kept as their raw text (<c>1e400</c>, <c>-0</c>, <c>9223372036854775808</c>), and strings written with raw escapes
/// (a lone surrogate <c>\ud800</c>). Request mutations work on it; <see cref="Write"/> gives the body sent.
/// </summary>
public abstract class JsonTree
{
    public sealed class Obj(List<KeyValuePair<string, JsonTree>> members) : JsonTree
    {
        public List<KeyValuePair<string, JsonTree>> Members { get; } = members;
    }

    public sealed class Arr(List<JsonTree> items) : JsonTree
    {
        public List<JsonTree> Items { get; } = items;
    }

    /// <summary>A number, or any raw token (written as is).</summary>
    public sealed class Raw(string text) : JsonTree
    {
        public string Text { get; } = text;
    }

    /// <summary>A string; <see cref="Escaped"/> is written between the quotes as given (already escaped).</summary>
    public sealed class Str(string escaped) : JsonTree
    {
        public string Escaped { get; } = escaped;

        public static Str Of(string value) => new(JsonEncodedText.Encode(value, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString());
    }

    public static JsonTree Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return From(doc.RootElement);
    }

    private static JsonTree From(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => new Obj(e.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, From(p.Value))).ToList()),
        JsonValueKind.Array => new Arr(e.EnumerateArray().Select(From).ToList()),
        JsonValueKind.String => Str.Of(e.GetString()!),
        _ => new Raw(e.GetRawText()),
    };

    public JsonTree Clone() => this switch
    {
        Obj o => new Obj(o.Members.Select(m => KeyValuePair.Create(m.Key, m.Value.Clone())).ToList()),
        Arr a => new Arr(a.Items.Select(i => i.Clone()).ToList()),
        _ => this, // leaves are immutable
    };

    public string Write()
    {
        var sb = new StringBuilder();
        Write(sb);
        return sb.ToString();
    }

    private void Write(StringBuilder sb)
    {
        switch (this)
        {
            case Obj o:
                sb.Append('{');
                for (int i = 0; i < o.Members.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    sb.Append('"').Append(Str.Of(o.Members[i].Key).Escaped).Append("\":");
                    o.Members[i].Value.Write(sb);
                }
                sb.Append('}');
                break;
            case Arr a:
                sb.Append('[');
                for (int i = 0; i < a.Items.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    a.Items[i].Write(sb);
                }
                sb.Append(']');
                break;
            case Str s:
                sb.Append('"').Append(s.Escaped).Append('"');
                break;
            case Raw r:
                sb.Append(r.Text);
                break;
        }
    }

    /// <summary>Every node below the root, with the container holding it, in document order.</summary>
    public List<(JsonTree Node, JsonTree Parent, int Index)> Descendants()
    {
        var all = new List<(JsonTree, JsonTree, int)>();
        void Walk(JsonTree t)
        {
            switch (t)
            {
                case Obj o:
                    for (int i = 0; i < o.Members.Count; i++)
                    {
                        all.Add((o.Members[i].Value, o, i));
                        Walk(o.Members[i].Value);
                    }
                    break;
                case Arr a:
                    for (int i = 0; i < a.Items.Count; i++)
                    {
                        all.Add((a.Items[i], a, i));
                        Walk(a.Items[i]);
                    }
                    break;
            }
        }
        Walk(this);
        return all;
    }

    /// <summary>Puts <paramref name="value"/> where the <paramref name="index"/>th child of <paramref name="parent"/> was.</summary>
    public static void Replace(JsonTree parent, int index, JsonTree value)
    {
        if (parent is Obj o) o.Members[index] = KeyValuePair.Create(o.Members[index].Key, value);
        else ((Arr)parent).Items[index] = value;
    }

    public static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
