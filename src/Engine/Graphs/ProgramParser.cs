using System.Globalization;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>A parsed program: its graph, and for each assigned name the value holding its last assignment.</summary>
public sealed record ParsedProgram(Graph Graph, IReadOnlyDictionary<string, string> Assigned);

/// <summary>
/// The text form of a graph (api.md, "program"): one assignment a line, infix <c>+ - * / ** @</c> with Python's
/// precedence (<c>**</c> binds tightest and to the right, <c>-x**2</c> is <c>-(x**2)</c>), unary minus, calls of any
/// registered op with keyword attributes (<c>sum(x, axes=[0], keepdims=true)</c>), number literals and <c>#</c>
/// comments. Inputs are the names read before they are assigned, declared float32 of any shape but accepting any
/// dtype; the value assigned last is the output unless <c>outputs</c> names others. A name may be assigned again:
/// earlier values get fresh names. Number literals stay weakly typed node inputs (see <see cref="GraphLiterals"/>);
/// a line assigning just a number makes a float32 scalar constant.
/// </summary>
public sealed class ProgramParser
{
    private readonly ProgramLexer _lexer;
    private readonly Token[] _lookahead = new Token[2];
    private int _buffered;
    private readonly OpRegistry _registry;
    private readonly GraphSizeGuard _guard;
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _assignments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _assignedSoFar = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _bindings = new(StringComparer.Ordinal);
    private readonly List<Parameter> _inputs = [];
    private readonly HashSet<string> _inputNames = new(StringComparer.Ordinal);
    private readonly List<Node> _nodes = [];
    private readonly Dictionary<string, HostTensor> _constants = new(StringComparer.Ordinal);
    private int _temp;
    private int _depth;

    private ProgramParser(string text, OpRegistry registry, GraphLimits limits)
    {
        _registry = registry;
        _guard = limits.Guard();
        // A first pass collects every identifier (fresh names must avoid them all) and counts assignments, so the
        // last assignment of a name can keep the name itself. It keeps only the distinct names, never the tokens.
        var scan = new ProgramLexer(text, _taken);
        Token previous = new(TokenKind.Newline, "\n", 1, 1), current = scan.Next();
        while (current.Kind != TokenKind.End)
        {
            var next = scan.Next();
            if (previous.Kind == TokenKind.Newline && current.Kind == TokenKind.Identifier && next.Is("="))
                _assignments[current.Text] = _assignments.GetValueOrDefault(current.Text) + 1;
            if (current.Kind == TokenKind.Identifier) _guard.CheckLength(current.Text, $"the name at line {current.Line}, column {current.Column}");
            if (_taken.Count > limits.MaxNames)
                throw Error(current, $"the program uses more than {limits.MaxNames} distinct names, its limit");
            if ((scan.Count & 4095) == 0) _guard.ThrowIfCancelled();
            (previous, current) = (current, next);
        }
        _lexer = new ProgramLexer(text, _taken);
    }

    /// <summary>Parses <paramref name="text"/>; syntax errors are <c>invalid_graph</c> with "line L, column C".</summary>
    public static Graph Parse(string text, IReadOnlyList<string>? outputs = null, OpRegistry? registry = null, GraphLimits? limits = null) =>
        ParseProgram(text, outputs, registry, limits).Graph;

    /// <summary>
    /// Parses and also reports, for each assigned name, the graph value holding its final assignment (a session
    /// binds those names after running the program).
    /// </summary>
    public static ParsedProgram ParseProgram(string text, IReadOnlyList<string>? outputs = null, OpRegistry? registry = null,
        GraphLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new ProgramParser(text, registry ?? OpRegistry.Default, limits ?? GraphLimits.Default);
        var last = parser.ParseProgram();
        var outs = outputs is { Count: > 0 }
            ? outputs.Select(o => parser._bindings.GetValueOrDefault(o, o)).ToArray()
            : [last];
        return new ParsedProgram(new Graph(parser._inputs, parser._nodes, outs, parser._constants), parser._bindings);
    }

    internal static EngineException Error(int line, int column, string message) =>
        EngineException.InvalidGraph($"program syntax error at line {line}, column {column}: {message}");

    private static EngineException Error(Token at, string message) => Error(at.Line, at.Column, message);

    private Token Peek(int ahead = 0)
    {
        while (_buffered <= ahead) _lookahead[_buffered++] = _lexer.Next();
        return _lookahead[ahead];
    }

    private Token Next()
    {
        var t = Peek();
        _lookahead[0] = _lookahead[1];
        _buffered--;
        return t;
    }

    private Token Expect(string symbol, string context)
    {
        var t = Next();
        return t.Is(symbol) ? t : throw Error(t, $"expected '{symbol}' {context}, found {t.Describe()}");
    }

    /// <summary>Returns the value assigned last.</summary>
    private string ParseProgram()
    {
        string? last = null;
        while (Peek().Kind != TokenKind.End)
        {
            if (Peek().Kind == TokenKind.Newline)
            {
                Next();
                continue;
            }
            last = ParseStatement();
            var end = Next();
            if (end.Kind != TokenKind.Newline)
                throw Error(end, $"expected the end of the line after the assignment, found {end.Describe()}");
        }
        return last ?? throw Error(Peek(), "the program assigns nothing (write lines like 'y = 2 * x')");
    }

    private string ParseStatement()
    {
        var target = Next();
        if (target.Kind != TokenKind.Identifier || !Peek().Is("="))
            throw Error(target, $"expected an assignment 'name = expression', found {target.Describe()}");
        Next(); // '='
        var name = target.Text;
        var value = ParseExpression();
        if (Peek().Kind is not (TokenKind.Newline or TokenKind.End))
            throw Error(Peek(), $"unexpected {Peek().Describe()} after the expression");

        // Named after the parse: the right side may have made the name an input (x = x + 1).
        int k = _assignedSoFar[name] = _assignedSoFar.GetValueOrDefault(name) + 1;
        bool isInput = _inputNames.Contains(name);
        var valueName = k == _assignments[name] && !isInput ? name : Fresh(name);
        if (value.Literal is { } v)
        {
            _constants[valueName] = HostTensor.Scalar(v, DType.Float32);
            _taken.Add(valueName);
        }
        else if (value.Node is { } node && ReferenceEquals(_nodes[^1], node))
        {
            // The expression's own node writes straight into the assigned name.
            _nodes[^1] = node with { Outputs = [valueName] };
        }
        else
        {
            _guard.Node();
            _nodes.Add(new Node("identity", [value.Name!], [valueName]));
        }
        _bindings[name] = valueName;
        return valueName;
    }

    /// <summary>An expression's result: a value name (with the node that made it, when fresh) or a number literal.</summary>
    private readonly record struct Operand(string? Name, double? Literal, Node? Node = null)
    {
        public string AsInput => Name ?? GraphLiterals.Format(Literal!.Value);
    }

    private Operand ParseExpression()
    {
        var left = ParseTerm();
        while (Peek().Is("+") || Peek().Is("-"))
        {
            var op = Next().Text == "+" ? "add" : "sub";
            left = Emit(op, [left, ParseTerm()], Attributes.Empty);
        }
        return left;
    }

    private Operand ParseTerm()
    {
        var left = ParseUnary();
        while (Peek().Is("*") || Peek().Is("/") || Peek().Is("@"))
        {
            var op = Next().Text switch { "*" => "mul", "/" => "div", _ => "matmul" };
            left = Emit(op, [left, ParseUnary()], Attributes.Empty);
        }
        return left;
    }

    /// <summary>Every nesting (parentheses, call arguments, signs, <c>**</c> chains) passes here: its depth is counted.</summary>
    private Operand ParseUnary()
    {
        if (++_depth > GraphLimits.MaxExpressionDepth)
            throw Error(Peek(), $"the expression is nested more than {GraphLimits.MaxExpressionDepth} deep, the limit");
        try
        {
            if (Peek().Is("-"))
            {
                Next();
                var operand = ParseUnary();
                return operand.Literal is { } v ? new Operand(null, -v) : Emit("neg", [operand], Attributes.Empty);
            }
            if (Peek().Is("+"))
            {
                Next();
                return ParseUnary();
            }
            return ParsePower();
        }
        finally
        {
            _depth--;
        }
    }

    private Operand ParsePower()
    {
        var b = ParsePrimary();
        if (!Peek().Is("**")) return b;
        Next();
        return Emit("pow", [b, ParseUnary()], Attributes.Empty);
    }

    private Operand ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Number:
                return new Operand(null, ParseNumber(t));
            case TokenKind.Identifier when Peek().Is("("):
                return ParseCall(t);
            case TokenKind.Identifier:
                return new Operand(Read(t.Text), null);
            case TokenKind.Symbol when t.Text == "(":
                var inner = ParseExpression();
                Expect(")", "to close the parenthesis");
                return inner;
            default:
                throw Error(t, $"expected a value, a call or '(', found {t.Describe()}");
        }
    }

    /// <summary>The current value of a name; a name not assigned yet is an input.</summary>
    private string Read(string name)
    {
        if (_bindings.TryGetValue(name, out var bound)) return bound;
        if (_inputNames.Add(name)) _inputs.Add(new Parameter(name) { AnyDType = true });
        return name;
    }

    private Operand ParseCall(Token name)
    {
        if (!_registry.TryGet(name.Text, out var op))
            throw Error(name, $"unknown op '{name.Text}'");
        Expect("(", "after the op name");
        var args = new List<Operand>();
        var attrs = new List<KeyValuePair<string, AttrValue>>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        if (!Peek().Is(")"))
        {
            while (true)
            {
                if (Peek().Kind == TokenKind.Identifier && Peek(1).Is("="))
                {
                    var key = Next();
                    Next(); // '='
                    if (!keys.Add(key.Text)) throw Error(key, $"attribute '{key.Text}' is given twice");
                    attrs.Add(KeyValuePair.Create(key.Text, ParseAttribute()));
                }
                else
                {
                    if (attrs.Count > 0) throw Error(Peek(), "a positional argument cannot follow keyword attributes");
                    args.Add(ParseExpression());
                }
                if (Peek().Is(")")) break;
                Expect(",", "between arguments");
            }
        }
        Expect(")", $"to close the call of '{name.Text}'");
        return Emit(op.Name, args, new Attributes(attrs));
    }

    private AttrValue ParseAttribute()
    {
        var t = Peek();
        if (t.Is("["))
        {
            Next();
            var items = new List<(double Value, bool Integral)>();
            if (!Peek().Is("]"))
            {
                while (true)
                {
                    items.Add(ParseAttrNumber(Next()));
                    if (Peek().Is("]")) break;
                    Expect(",", "between list items");
                }
            }
            Expect("]", "to close the list");
            return items.TrueForAll(x => x.Integral)
                ? AttrValue.Ints(items.Select(x => (long)x.Value).ToArray())
                : AttrValue.Floats(items.Select(x => x.Value).ToArray());
        }
        Next();
        if (t.Kind == TokenKind.String) return AttrValue.String(t.Text);
        if (t.Kind == TokenKind.Identifier && t.Text is "true" or "True") return AttrValue.Bool(true);
        if (t.Kind == TokenKind.Identifier && t.Text is "false" or "False") return AttrValue.Bool(false);
        var (value, integral) = ParseAttrNumber(t);
        return integral ? AttrValue.Int((long)value) : AttrValue.Float(value);
    }

    /// <summary>A number in an attribute: optional minus, digits, or inf / nan.</summary>
    private (double Value, bool Integral) ParseAttrNumber(Token t)
    {
        double sign = 1;
        if (t.Is("-"))
        {
            sign = -1;
            t = Next();
        }
        if (t.Kind == TokenKind.Identifier && t.Text.ToLowerInvariant() is "inf" or "infinity") return (sign * double.PositiveInfinity, false);
        if (t.Kind == TokenKind.Identifier && t.Text.ToLowerInvariant() == "nan") return (double.NaN, false);
        if (t.Kind != TokenKind.Number)
            throw Error(t, $"an attribute value must be a number, true/false, a quoted string or a [list], found {t.Describe()}");
        double v = sign * ParseNumber(t);
        bool integral = !t.Text.Contains('.') && !t.Text.Contains('e') && !t.Text.Contains('E') && Math.Abs(v) < 9e15;
        return (v, integral);
    }

    private static double ParseNumber(Token t)
    {
        var v = double.Parse(t.Text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return double.IsFinite(v) ? v : throw Error(t, $"the number {t.Text} is out of range");
    }

    private Operand Emit(string op, List<Operand> args, Attributes attrs)
    {
        _guard.Node();
        var output = Fresh(op);
        var node = new Node(op, args.Select(a => a.AsInput).ToArray(), [output], attrs.Count == 0 ? null : attrs);
        _nodes.Add(node);
        return new Operand(output, null, node);
    }

    /// <summary>A name no identifier of the program uses: <c>mul_3</c>, <c>y_1</c>.</summary>
    private string Fresh(string stem)
    {
        string name;
        do name = $"{stem}_{++_temp}";
        while (!_taken.Add(name));
        return name;
    }
}
