using System.Text;

namespace AutogradService.Engine.Graphs;

internal enum TokenKind
{
    Identifier,
    Number,
    String,
    Symbol,
    Newline,
    End,
}

/// <summary>A token with its 1-based position. <see cref="Text"/> is the symbol, name, number text or string contents.</summary>
internal readonly record struct Token(TokenKind Kind, string Text, int Line, int Column)
{
    public bool Is(string symbol) => Kind == TokenKind.Symbol && Text == symbol;

    public string Describe() => Kind switch
    {
        TokenKind.Newline => "end of line",
        TokenKind.End => "end of program",
        TokenKind.String => $"string \"{Text}\"",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Reads program text one token at a time (nothing is kept but the position, so memory does not grow with the
/// text). Newlines end statements except inside parentheses or brackets (as in Python); <c>#</c> starts a comment to
/// the end of the line. Identifiers are interned in the caller's name set, so a name read a million times is one
/// string. After the last token it returns a Newline, then End forever.
/// </summary>
internal sealed class ProgramLexer(string text, HashSet<string> names)
{
    private static readonly string[] Symbols = ["**", "+", "-", "*", "/", "@", "=", "(", ")", ",", "[", "]"];

    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _names = names.GetAlternateLookup<ReadOnlySpan<char>>();
    private int _line = 1, _lineStart, _depth, _i;
    private bool _ended;

    /// <summary>Tokens read so far (for periodic checks by the caller).</summary>
    public long Count { get; private set; }

    public Token Next()
    {
        Count++;
        while (_i < text.Length)
        {
            char c = text[_i];
            int column = _i - _lineStart + 1;
            if (c == '\n')
            {
                var newline = new Token(TokenKind.Newline, "\n", _line, column);
                _i++;
                _line++;
                _lineStart = _i;
                if (_depth == 0) return newline;
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                _i++;
                continue;
            }
            if (c == '#')
            {
                while (_i < text.Length && text[_i] != '\n') _i++;
                continue;
            }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = _i;
                while (_i < text.Length && (char.IsAsciiLetterOrDigit(text[_i]) || text[_i] == '_')) _i++;
                return new Token(TokenKind.Identifier, Intern(text.AsSpan(start, _i - start)), _line, column);
            }
            if (char.IsAsciiDigit(c) || (c == '.' && _i + 1 < text.Length && char.IsAsciiDigit(text[_i + 1])))
                return new Token(TokenKind.Number, ReadNumber(column), _line, column);
            if (c is '"' or '\'')
                return new Token(TokenKind.String, ReadString(column), _line, column);
            var symbol = Symbol() ?? throw ProgramParser.Error(_line, column, $"unexpected character '{c}'");
            if (symbol is "(" or "[") _depth++;
            else if (symbol is ")" or "]") _depth = Math.Max(0, _depth - 1);
            _i += symbol.Length;
            return new Token(TokenKind.Symbol, symbol, _line, column);
        }
        int endColumn = text.Length - _lineStart + 1;
        if (_ended) return new Token(TokenKind.End, "", _line, endColumn);
        _ended = true;
        return new Token(TokenKind.Newline, "\n", _line, endColumn);
    }

    private string Intern(ReadOnlySpan<char> name)
    {
        if (_names.TryGetValue(name, out var known)) return known;
        var s = name.ToString();
        names.Add(s);
        return s;
    }

    private string? Symbol()
    {
        foreach (var s in Symbols)
            if (string.CompareOrdinal(text, _i, s, 0, s.Length) == 0) return s;
        return null;
    }

    private string ReadNumber(int column)
    {
        int start = _i;
        while (_i < text.Length && char.IsAsciiDigit(text[_i])) _i++;
        if (_i < text.Length && text[_i] == '.')
        {
            _i++;
            while (_i < text.Length && char.IsAsciiDigit(text[_i])) _i++;
        }
        if (_i < text.Length && text[_i] is 'e' or 'E')
        {
            int mark = _i++;
            if (_i < text.Length && text[_i] is '+' or '-') _i++;
            if (_i >= text.Length || !char.IsAsciiDigit(text[_i]))
                throw ProgramParser.Error(_line, column + (mark - start), "an exponent needs digits");
            while (_i < text.Length && char.IsAsciiDigit(text[_i])) _i++;
        }
        if (_i < text.Length && (char.IsAsciiLetter(text[_i]) || text[_i] == '_'))
            throw ProgramParser.Error(_line, column + (_i - start), $"unexpected '{text[_i]}' after the number {text[start.._i]}");
        return text[start.._i];
    }

    private string ReadString(int column)
    {
        char quote = text[_i++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_i >= text.Length || text[_i] == '\n') throw ProgramParser.Error(_line, column, "the string is not closed");
            char c = text[_i++];
            if (c == quote) return sb.ToString();
            if (c == '\\' && _i < text.Length)
            {
                char e = text[_i++];
                sb.Append(e switch { 'n' => '\n', 't' => '\t', _ => e });
                continue;
            }
            sb.Append(c);
        }
    }
}
