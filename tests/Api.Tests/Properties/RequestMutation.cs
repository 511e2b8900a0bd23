using System.Text.Json;
using CsCheck;
using static AutogradService.Api.Tests.Properties.JsonTree;

namespace AutogradService.Api.Tests.Properties;

public enum MutationKind
{
    DropField,
    DuplicateField,
    Retype,
    ExtremeNumber,
    Dimensions,
    DeepNesting,
    LongName,
    RenameKey,
    ProgramText,
    BigData,
}

/// <summary>
/// One change to a valid request: a kind and two choices (which node, which replacement), applied deterministically
/// so a generated case is reproduced by its seed alone. Kinds follow the classes of hostile input in docs/RELIABILITY.md:
/// dropped, duplicated and retyped fields, extreme numbers, huge/negative/zero dimensions, deep nesting, long and odd
/// names, broken program text, oversized data.
/// </summary>
public readonly record struct RequestMutation(MutationKind Kind, uint Where, uint What)
{
    public static Gen<RequestMutation> Gen { get; } = CsCheck.Gen.Select(
        CsCheck.Gen.Int[0, Enum.GetValues<MutationKind>().Length - 1], CsCheck.Gen.UInt, CsCheck.Gen.UInt,
        (kind, where, what) => new RequestMutation((MutationKind)kind, where, what));

    /// <summary>One to three mutations.</summary>
    public static Gen<RequestMutation[]> Several { get; } = Gen.Array[1, 3];

    private static readonly string[] Extremes =
    [
        "0", "-0", "-1", "0.5", "1e308", "1e400", "-1e400", "1e-400", "9223372036854775807", "9223372036854775808",
        "-9223372036854775809", "9007199254740993", "2147483647", "2147483648", "-2147483649", "4294967296", "1e10", "65536",
        "123456789012345678901234567890",
    ];

    private static readonly string[] DimensionLists =
    [
        "[0]", "[-1]", "[-2]", "[0,0]", "[2147483648]", "[65536,65536,65536,65536]", "[1,1,1,1,1,1,1,1,1]", "[]", "[4096,4096]",
        "[1e3]", "[\"2\"]", "[3.5]", "[9223372036854775807]", "[1,-1]", "[268435456]", "[3,0,1000000000]",
    ];

    private static readonly JsonTree[] Replacements =
    [
        new Raw("0"), new Raw("-1"), new Raw("true"), new Raw("null"), Str.Of("x"), Str.Of(""), new Arr([]), new Obj([]),
        new Arr([new Raw("5")]), new Arr([Str.Of("x"), Str.Of("x")]), Str.Of("NaN"), new Raw("1.5"), Str.Of("float64"),
    ];

    /// <summary>Odd names; the last is a lone surrogate escape, which is not valid Unicode (see <see cref="InvalidUnicode"/>).</summary>
    private static readonly Str[] Names =
    [
        Str.Of(new string('a', 1024)), Str.Of(new string('a', 1025)), Str.Of(new string('n', 70_000)), Str.Of(""), Str.Of("\0"),
        Str.Of("名前"), Str.Of("a\nb"), Str.Of("\"'"), Str.Of("__proto__"), Str.Of(" "), Str.Of("../../etc/passwd"), Str.Of("x y = 2"),
        new Str("x\\ud800"),
    ];

    private static readonly string[] ProgramTokens =
    [
        "(", ")", "**", "@", "-", "[", "]", ",", "=", "\n", "#", "1e400", "0", "x", "y = ", "sum(", "reshape(x, shape=[-1, 0])",
        "zeros(shape=[65536, 65536])", "slice(x, starts=[0], stops=[9223372036854775807])", "matmul(x, x)", "exp(", "while(",
        "gather(x, x)", "pad(x, pads=[100000000])", "concat(x, x, axis=99)", "transpose(x, perm=[5])", "axes=[-9]",
    ];

    /// <summary>Whether a body carries a lone surrogate escape (how <see cref="Names"/> writes invalid Unicode).</summary>
    public static bool InvalidUnicode(string body) => body.Contains("\\ud800", StringComparison.Ordinal);

    public void Apply(JsonTree root)
    {
        var nodes = root.Descendants();
        switch (Kind)
        {
            case MutationKind.DropField when Pick(Objects(root, nodes)) is { Members.Count: > 0 } o:
                o.Members.RemoveAt((int)(What % (uint)o.Members.Count));
                break;
            case MutationKind.DuplicateField when Pick(Objects(root, nodes)) is { Members.Count: > 0 } o:
            {
                var member = o.Members[(int)(What % (uint)o.Members.Count)];
                o.Members.Add(KeyValuePair.Create(member.Key, (What & 1) == 0 ? member.Value.Clone() : Replacements[What % (uint)Replacements.Length]));
                break;
            }
            case MutationKind.Retype when nodes.Count > 0:
            {
                var (_, parent, index) = nodes[(int)(Where % (uint)nodes.Count)];
                Replace(parent, index, Replacements[What % (uint)Replacements.Length].Clone());
                break;
            }
            case MutationKind.ExtremeNumber when Choose(nodes, n => n is Raw { Text: not ("true" or "false" or "null") }) is { } at:
                Replace(at.Parent, at.Index, new Raw(Extremes[What % (uint)Extremes.Length]));
                break;
            case MutationKind.Dimensions when (Choose(nodes, n => n is Arr, key: "shape") ?? Choose(nodes, n => n is Arr)) is { } at:
                Replace(at.Parent, at.Index, Parse(DimensionLists[What % (uint)DimensionLists.Length]));
                break;
            case MutationKind.DeepNesting when nodes.Count > 0:
            {
                var (node, parent, index) = nodes[(int)(Where % (uint)nodes.Count)];
                int[] depths = [2, 16, 17, 63, 64, 65, 127, 128, 129, 2000];
                var nested = node;
                for (int i = depths[What % (uint)depths.Length]; i > 0; i--)
                    nested = (What & 1) == 0 ? new Arr([nested]) : new Obj([KeyValuePair.Create("a", nested)]);
                Replace(parent, index, nested);
                break;
            }
            case MutationKind.LongName when Choose(nodes, n => n is Str) is { } at:
                Replace(at.Parent, at.Index, Names[What % (uint)Names.Length]);
                break;
            case MutationKind.RenameKey when Pick(Objects(root, nodes)) is { Members.Count: > 0 } o:
            {
                int i = (int)(What % (uint)o.Members.Count);
                var name = Names[(What >> 8) % (uint)Names.Length];
                o.Members[i] = KeyValuePair.Create(name.Escaped.Contains('\\') ? "x" + new string('k', 3000) : Unescape(name), o.Members[i].Value);
                break;
            }
            case MutationKind.ProgramText when Choose(nodes, n => n is Str, key: "program") is { } at:
                Replace(at.Parent, at.Index, Str.Of(MutateProgram(Unescape((Str)at.Node))));
                break;
            case MutationKind.BigData when (Choose(nodes, n => n is Arr, key: "data") ?? Choose(nodes, n => n is Arr)) is { } at:
            {
                int[] sizes = [1000, 100_000, 300_000];
                int n = sizes[What % (uint)sizes.Length];
                Replace(at.Parent, at.Index, new Arr(Enumerable.Range(0, n).Select(i => (JsonTree)new Raw((i % 7).ToString())).ToList()));
                break;
            }
        }
    }

    private string MutateProgram(string text)
    {
        uint at = Where % (uint)(text.Length + 1);
        var token = ProgramTokens[What % (uint)ProgramTokens.Length];
        return ((What >> 8) % 5) switch
        {
            0 => text.Insert((int)at, token),
            1 => text.Remove((int)at, (int)Math.Min((What >> 12) % 16, (uint)(text.Length - at))),
            2 => string.Join("\n", Enumerable.Repeat(text, 1 + (int)((What >> 12) % 200))),
            3 => text + "\nq = " + new string('(', 1 + (int)((What >> 12) % 150)) + "x" + new string(')', 1 + (int)((What >> 12) % 150)),
            _ => text + "\n" + token + "x)",
        };
    }

    private T? Pick<T>(List<T> items) where T : class => items.Count == 0 ? null : items[(int)(Where % (uint)items.Count)];

    private static List<Obj> Objects(JsonTree root, List<(JsonTree Node, JsonTree Parent, int Index)> nodes) =>
        (root is Obj r ? [r] : new List<Obj>()).Concat(nodes.Select(n => n.Node).OfType<Obj>()).ToList();

    /// <summary>A node that satisfies <paramref name="match"/> (and, when given, is the value of <paramref name="key"/>).</summary>
    private (JsonTree Node, JsonTree Parent, int Index)? Choose(List<(JsonTree Node, JsonTree Parent, int Index)> nodes, Func<JsonTree, bool> match, string? key = null)
    {
        var found = nodes.Where(n => match(n.Node) && (key is null || n.Parent is Obj o && o.Members[n.Index].Key == key)).ToList();
        return found.Count == 0 ? null : found[(int)(Where % (uint)found.Count)];
    }

    private static string Unescape(Str s) => JsonSerializer.Deserialize<string>("\"" + s.Escaped + "\"")!;

    public override string ToString() => $"{Kind}({Where}, {What})";
}
