using System.Text;

namespace AutogradService.Engine.Graphs;

internal enum TokenKind
{
    Identifier,
    Number,
    String,
    Symbol,
    Newline,
    /// <summary>A line indented deeper than the one before: a block opens.</summary>
    Indent,
    /// <summary>A line indented less: one block closes (several lines of dedent give several tokens).</summary>
    Dedent,
    End,
}

/// <summary>A token with its 1-based position. <see cref="Text"/> is the symbol, name, number text or string contents.</summary>
internal readonly record struct Token(TokenKind Kind, string Text, int Line, int Column)
{
    public bool Is(string symbol) => Kind == TokenKind.Symbol && Text == symbol;

    public string Describe() => Kind switch
    {
        TokenKind.Newline => "end of line",
        TokenKind.Indent => "an indented block",
        TokenKind.Dedent => "the end of an indented block",
        TokenKind.End => "end of program",
        TokenKind.String => $"string \"{Text}\"",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Reads program text one token at a time (nothing is kept but the position and the stack of open indentation
/// levels, so memory does not grow with the text). As in Python: newlines end statements except inside parentheses
/// or brackets; <c>#</c> starts a comment to the end of the line; blank and comment-only lines are skipped; a line
/// indented deeper than the one before opens a block (<see cref="TokenKind.Indent"/>) and each level it returns from
/// closes one (<see cref="TokenKind.Dedent"/>). The first line's indentation is the program's margin, so a program
/// pasted with a common indent parses as written. Identifiers are interned in the caller's name set, so a name read a
/// million times is one string. After the last token it returns a Newline, a Dedent per open block, then End forever.
/// </summary>
internal sealed class ProgramLexer(string text, HashSet<string> names)
{
    // Longest first, so "**=" is not read as "**" and "=".
    private static readonly string[] Symbols =
    [
        "**=", "**", "<=", ">=", "==", "!=", "->", "+=", "-=", "*=", "/=", "@=",
        "+", "-", "*", "/", "@", "=", "(", ")", ",", "[", "]", ":", ".", "<", ">",
    ];

    private const int TabWidth = 8;

    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _names = names.GetAlternateLookup<ReadOnlySpan<char>>();
    private readonly List<int> _indents = [];
    private int _line = 1, _lineStart, _depth, _i, _pendingDedents;
    private bool _atLineStart = true, _ended;
    private TokenKind _lastKind = TokenKind.Newline;

    /// <summary>Tokens read so far (for periodic checks by the caller).</summary>
    public long Count { get; private set; }

    /// <summary>The deepest indentation nesting allowed: past it a program is refused before any block is parsed.</summary>
    public const int MaxIndentLevels = 64;

    public Token Next()
    {
        var t = Read();
        _lastKind = t.Kind;
        return t;
    }

    private Token Read()
    {
        Count++;
        if (_pendingDedents > 0)
        {
            _pendingDedents--;
            return new Token(TokenKind.Dedent, "", _line, _i - _lineStart + 1);
        }
        if (_atLineStart && _depth == 0 && Indentation() is { } block) return block;
        while (_i < text.Length)
        {
            char c = text[_i];
            int column = _i - _lineStart + 1;
            if (c == '\n')
            {
                var newline = new Token(TokenKind.Newline, "\n", _line, column);
                NewLine();
                if (_depth > 0) continue;
                _atLineStart = true;
                return newline;
            }
            if (char.IsWhiteSpace(c))
            {
                _i++;
                continue;
            }
            if (c == '#')
            {
                SkipComment();
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
            var symbol = Symbol() ?? throw ProgramParser.Error(text, _line, column, $"unexpected character '{c}'");
            if (symbol is "(" or "[") _depth++;
            else if (symbol is ")" or "]") _depth = Math.Max(0, _depth - 1);
            _i += symbol.Length;
            return new Token(TokenKind.Symbol, symbol, _line, column);
        }
        int endColumn = text.Length - _lineStart + 1;
        if (!_ended)
        {
            _ended = true;
            _atLineStart = false;
            _pendingDedents = Math.Max(0, _indents.Count - 1);
            // The last statement ends here unless its newline was already read.
            if (_lastKind != TokenKind.Newline || Count == 1) return new Token(TokenKind.Newline, "\n", _line, endColumn);
        }
        if (_pendingDedents > 0)
        {
            _pendingDedents--;
            return new Token(TokenKind.Dedent, "", _line, endColumn);
        }
        return new Token(TokenKind.End, "", _line, endColumn);
    }

    /// <summary>
    /// At the start of a line: skips blank and comment-only lines, then compares the next line's indentation with
    /// the open levels. Returns an Indent or the first Dedent, or null when the level is unchanged.
    /// </summary>
    private Token? Indentation()
    {
        _atLineStart = false;
        while (_i < text.Length)
        {
            int width = 0;
            while (_i < text.Length && text[_i] is ' ' or '\t' or '\r' or '\f')
            {
                width = text[_i] == '\t' ? (width / TabWidth + 1) * TabWidth : text[_i] == ' ' ? width + 1 : width;
                _i++;
            }
            if (_i < text.Length && text[_i] == '#') SkipComment();
            if (_i < text.Length && text[_i] == '\n')
            {
                NewLine();
                continue;
            }
            if (_i >= text.Length) return null; // trailing blank lines: the end closes every block
            int column = _i - _lineStart + 1;
            if (_indents.Count == 0)
            {
                _indents.Add(width); // the first line sets the margin
                return null;
            }
            if (width == _indents[^1]) return null;
            if (width > _indents[^1])
            {
                if (_indents.Count > MaxIndentLevels)
                    throw ProgramParser.Error(text, _line, column, $"the program nests blocks more than {MaxIndentLevels} deep");
                _indents.Add(width);
                return new Token(TokenKind.Indent, "", _line, column);
            }
            int closed = 0;
            while (_indents.Count > 1 && _indents[^1] > width)
            {
                _indents.RemoveAt(_indents.Count - 1);
                closed++;
            }
            if (_indents[^1] != width)
                throw ProgramParser.Error(text, _line, column, _indents.Count == 1 && width < _indents[0] && closed == 0
                    ? "this line is indented less than the program's first line"
                    : "the indentation does not match any enclosing block");
            _pendingDedents = closed - 1;
            return new Token(TokenKind.Dedent, "", _line, column);
        }
        return null;
    }

    private void NewLine()
    {
        _i++;
        _line++;
        _lineStart = _i;
    }

    private void SkipComment()
    {
        while (_i < text.Length && text[_i] != '\n') _i++;
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
                throw ProgramParser.Error(text, _line, column + (mark - start), "an exponent needs digits");
            while (_i < text.Length && char.IsAsciiDigit(text[_i])) _i++;
        }
        if (_i < text.Length && (char.IsAsciiLetter(text[_i]) || text[_i] == '_'))
            throw ProgramParser.Error(text, _line, column + (_i - start), $"unexpected '{text[_i]}' after the number {text[start.._i]}");
        return text[start.._i];
    }

    private string ReadString(int column)
    {
        char quote = text[_i++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_i >= text.Length || text[_i] == '\n') throw ProgramParser.Error(text, _line, column, "the string is not closed");
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
