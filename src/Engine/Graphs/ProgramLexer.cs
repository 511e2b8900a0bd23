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
/// Splits program text into tokens. Newlines end statements except inside parentheses or brackets (as in
/// Python); <c>#</c> starts a comment to the end of the line.
/// </summary>
internal static class ProgramLexer
{
    private static readonly string[] Symbols = ["**", "+", "-", "*", "/", "@", "=", "(", ")", ",", "[", "]"];

    public static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        int line = 1, lineStart = 0, depth = 0, i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            int column = i - lineStart + 1;
            if (c == '\n')
            {
                if (depth == 0) tokens.Add(new Token(TokenKind.Newline, "\n", line, column));
                i++;
                line++;
                lineStart = i;
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            if (c == '#')
            {
                while (i < text.Length && text[i] != '\n') i++;
                continue;
            }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = i;
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_')) i++;
                tokens.Add(new Token(TokenKind.Identifier, text[start..i], line, column));
                continue;
            }
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
            {
                tokens.Add(new Token(TokenKind.Number, ReadNumber(text, ref i, line, column), line, column));
                continue;
            }
            if (c is '"' or '\'')
            {
                tokens.Add(new Token(TokenKind.String, ReadString(text, ref i, line, column), line, column));
                continue;
            }
            var symbol = Symbols.FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0)
                ?? throw ProgramParser.Error(line, column, $"unexpected character '{c}'");
            if (symbol is "(" or "[") depth++;
            else if (symbol is ")" or "]") depth = Math.Max(0, depth - 1);
            tokens.Add(new Token(TokenKind.Symbol, symbol, line, column));
            i += symbol.Length;
        }
        tokens.Add(new Token(TokenKind.Newline, "\n", line, text.Length - lineStart + 1));
        tokens.Add(new Token(TokenKind.End, "", line, text.Length - lineStart + 1));
        return tokens;
    }

    private static string ReadNumber(string text, ref int i, int line, int column)
    {
        int start = i;
        while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
        if (i < text.Length && text[i] == '.')
        {
            i++;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
        }
        if (i < text.Length && text[i] is 'e' or 'E')
        {
            int mark = i++;
            if (i < text.Length && text[i] is '+' or '-') i++;
            if (i >= text.Length || !char.IsAsciiDigit(text[i]))
                throw ProgramParser.Error(line, column + (mark - start), "an exponent needs digits");
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
        }
        if (i < text.Length && (char.IsAsciiLetter(text[i]) || text[i] == '_'))
            throw ProgramParser.Error(line, column + (i - start), $"unexpected '{text[i]}' after the number {text[start..i]}");
        return text[start..i];
    }

    private static string ReadString(string text, ref int i, int line, int column)
    {
        char quote = text[i++];
        var sb = new StringBuilder();
        while (true)
        {
            if (i >= text.Length || text[i] == '\n') throw ProgramParser.Error(line, column, "the string is not closed");
            char c = text[i++];
            if (c == quote) return sb.ToString();
            if (c == '\\' && i < text.Length)
            {
                char e = text[i++];
                sb.Append(e switch { 'n' => '\n', 't' => '\t', _ => e });
                continue;
            }
            sb.Append(c);
        }
    }
}
