using System.Globalization;
using System.Text;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>A parsed program: its graph, and for each assigned name the value holding its last assignment.</summary>
public sealed record ParsedProgram(Graph Graph, IReadOnlyDictionary<string, string> Assigned);

/// <summary>
/// The text form of a graph (api.md, "program"): a small, Python-shaped language, compiled to a graph with control
/// flow the way TorchScript compiles its Python subset.
/// <list type="bullet">
/// <item>Either plain statements (the inputs are the names read before they are assigned; the value assigned last is
/// the output unless <c>outputs</c> names others), or one <c>def f(a, b):</c> whose parameters are the inputs and
/// whose final <c>return x, y</c> gives the outputs.</item>
/// <item>Statements: <c>name = expr</c>, <c>a, b = x, y</c>, <c>b *= 2</c> (and <c>+= -= /= **= @=</c>),
/// <c>while</c>, <c>if</c> / <c>elif</c> / <c>else</c>, <c>pass</c>; <c>import</c> lines are accepted and
/// ignored.</item>
/// <item>Expressions with Python's precedence: <c>or</c>, <c>and</c>, <c>not</c>, comparisons
/// <c>&lt; &lt;= &gt; &gt;= == !=</c> (chained ones too), <c>+ -</c>, <c>* / @</c>, unary minus, <c>**</c> (right
/// associative, binding tighter than unary minus on its left); calls of registered ops with keyword attributes;
/// framework spellings (<c>np.linalg.norm(b)</c>, <c>tf.reduce_sum(b)</c>, <c>b.sum()</c>, <c>x.T</c>: see
/// <see cref="ProgramNames"/>); number literals, <c>True</c>, <c>False</c>; <c>#</c> comments.</item>
/// </list>
/// Loops and branches lower to the IR's <c>while</c> and <c>if</c> nodes, so every transform differentiates through
/// them for any trip count. A loop carries the variables its body assigns that exist before it; a branch yields the
/// variables either side assigns that exist before it or that both sides assign. Number literals stay weakly typed
/// node inputs (see <see cref="GraphLiterals"/>); a statement assigning just a number makes a float32 scalar constant.
/// Every error is <c>invalid_graph</c> with "line L, column C", the source line and a caret.
/// </summary>
public sealed class ProgramParser
{
    private readonly string _text;
    private readonly ProgramLexer _lexer;
    private readonly Token[] _lookahead = new Token[3];
    private int _buffered;
    private readonly OpRegistry _registry;
    private readonly GraphSizeGuard _guard;
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
    // Value names to rename when the graph is built: loop placeholders that turned out not to be carried (to the
    // enclosing value they stand for) and each variable's final top-level value (to the variable's own name).
    private readonly Dictionary<string, string> _renames = new(StringComparer.Ordinal);
    private readonly List<Parameter> _inputs = [];
    private readonly HashSet<string> _inputNames = new(StringComparer.Ordinal);
    private readonly Block _root = new(null, BlockKind.Root, "the program", 0);
    private int _temp;
    private int _depth;
    private int _line = 1; // the statement being parsed, recorded on its nodes
    private bool _function;

    private ProgramParser(string text, OpRegistry registry, GraphLimits limits)
    {
        _text = text;
        _registry = registry;
        _guard = limits.Guard();
        // A first pass collects every identifier (fresh names must avoid them all) and checks the name limits. It
        // keeps only the distinct names, never the tokens.
        var scan = new ProgramLexer(text, _taken);
        for (var t = scan.Next(); t.Kind != TokenKind.End; t = scan.Next())
        {
            if (t.Kind == TokenKind.Identifier) _guard.CheckLength(t.Text, $"the name at line {t.Line}, column {t.Column}");
            if (_taken.Count > limits.MaxNames)
                throw Error(t, $"the program uses more than {limits.MaxNames} distinct names, its limit");
            if ((scan.Count & 4095) == 0) _guard.ThrowIfCancelled();
        }
        _lexer = new ProgramLexer(text, _taken);
    }

    /// <summary>Parses <paramref name="text"/>; syntax errors are <c>invalid_graph</c> with "line L, column C".</summary>
    public static Graph Parse(string text, IReadOnlyList<string>? outputs = null, OpRegistry? registry = null, GraphLimits? limits = null) =>
        ParseProgram(text, outputs, registry, limits).Graph;

    /// <summary>
    /// Parses and also reports, for each assigned top-level name, the graph value holding its final assignment (a
    /// session binds those names after running the program).
    /// </summary>
    public static ParsedProgram ParseProgram(string text, IReadOnlyList<string>? outputs = null, OpRegistry? registry = null,
        GraphLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new ProgramParser(text, registry ?? OpRegistry.Default, limits ?? GraphLimits.Default).Build(outputs);
    }

    private ParsedProgram Build(IReadOnlyList<string>? asked)
    {
        var results = ParseTopLevel();
        // A variable's final top-level value takes the variable's own name, unless an input already has it.
        foreach (var name in _root.Assigned)
        {
            var value = _root.Bindings[name];
            if (value != name && !_inputNames.Contains(name)) _renames[value] = name;
        }
        var outputs = asked is { Count: > 0 } ? asked.Select(o => _root.Bindings.GetValueOrDefault(o, o)).ToArray() : results;
        var graph = Materialize(_root, outputs, _inputs);
        var assigned = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in _root.Assigned) assigned[name] = Final(_root.Bindings[name]);
        return new ParsedProgram(graph, assigned);
    }

    // ---- errors ----

    internal static EngineException Error(string text, int line, int column, string message)
    {
        var source = SourceLine(text, line);
        var excerpt = source is null ? "" : $"\n  {source}\n  {new string(' ', Math.Clamp(column - 1, 0, source.Length))}^";
        return EngineException.InvalidGraph($"program syntax error at line {line}, column {column}: {message}{excerpt}");
    }

    private EngineException Error(Token at, string message) => Error(_text, at.Line, at.Column, message);

    /// <summary>Line <paramref name="line"/> of the text (tabs as spaces, clipped), for the caret under an error.</summary>
    private static string? SourceLine(string text, int line)
    {
        int start = 0;
        for (int l = 1; l < line; l++)
        {
            start = text.IndexOf('\n', start) + 1;
            if (start == 0) return null;
        }
        int end = text.IndexOf('\n', start);
        var s = text[start..(end < 0 ? text.Length : end)].TrimEnd('\r').Replace('\t', ' ');
        return s.Length > 200 ? s[..200] : s;
    }

    // ---- tokens ----

    private Token Peek(int ahead = 0)
    {
        while (_buffered <= ahead) _lookahead[_buffered++] = _lexer.Next();
        return _lookahead[ahead];
    }

    private Token Next()
    {
        var t = Peek();
        for (int i = 1; i < _buffered; i++) _lookahead[i - 1] = _lookahead[i];
        _buffered--;
        return t;
    }

    private Token Expect(string symbol, string context)
    {
        var t = Next();
        return t.Is(symbol) ? t : throw Error(t, $"expected '{symbol}' {context}, found {t.Describe()}");
    }

    private bool IsKeyword(Token t, string keyword) => t.Kind == TokenKind.Identifier && t.Text == keyword;

    private void EndOfStatement(string what)
    {
        var end = Next();
        if (end.Kind != TokenKind.Newline) throw Error(end, $"expected the end of the line after {what}, found {end.Describe()}");
    }

    // ---- statements ----

    /// <summary>The program's outputs: the def's returned values, or the value assigned last.</summary>
    private IReadOnlyList<string> ParseTopLevel()
    {
        IReadOnlyList<string>? returned = null;
        Token? def = null;
        while (Peek().Kind != TokenKind.End)
        {
            var t = Peek();
            if (t.Kind == TokenKind.Newline)
            {
                Next();
                continue;
            }
            if (t.Kind == TokenKind.Indent) throw Error(t, "unexpected indent");
            if (IsKeyword(t, "import") || IsKeyword(t, "from"))
            {
                SkipImport();
                continue;
            }
            if (IsKeyword(t, "def"))
            {
                if (def is not null) throw Error(t, $"a program defines one function; '{def.Value.Text}' at line {def.Value.Line} is already it");
                if (_root.Assigned.Count > 0) throw Error(t, "statements before 'def' are not part of the function; put them inside it");
                def = t;
                returned = ParseFunction();
                continue;
            }
            if (def is not null) throw Error(t, "nothing may follow the function: its 'return' gives the outputs");
            ParseStatement(_root);
        }
        if (returned is not null) return returned;
        if (_root.Assigned.Count == 0) throw Error(Peek(), "the program assigns nothing (write lines like 'y = 2 * x', or a 'def' that returns)");
        return [_root.Bindings[_root.LastAssigned!]];
    }

    private void SkipImport()
    {
        var start = Next();
        while (Peek().Kind is not (TokenKind.Newline or TokenKind.End))
        {
            var t = Next();
            if (t.Kind == TokenKind.Identifier || t.Is(".") || t.Is(",") || t.Is("(") || t.Is(")") || t.Is("*")) continue;
            throw Error(t, $"unexpected {t.Describe()} in the {start.Text} line");
        }
        Next();
    }

    private IReadOnlyList<string> ParseFunction()
    {
        _function = true;
        Next(); // def
        var name = Next();
        if (name.Kind != TokenKind.Identifier) throw Error(name, $"expected the function's name after 'def', found {name.Describe()}");
        Expect("(", "after the function's name");
        while (!Peek().Is(")"))
        {
            var p = Next();
            if (p.Kind != TokenKind.Identifier || ProgramNames.Keywords.Contains(p.Text))
                throw Error(p, $"expected a parameter name, found {p.Describe()}");
            if (!_inputNames.Add(p.Text)) throw Error(p, $"parameter '{p.Text}' is named twice");
            _guard.Name(p.Text);
            _inputs.Add(new Parameter(p.Text) { AnyDType = true });
            _root.Bindings[p.Text] = p.Text;
            if (Peek().Is(":")) SkipAnnotation();
            if (Peek().Is(")")) break;
            Expect(",", "between parameters");
        }
        Expect(")", "to close the parameter list");
        if (Peek().Is("->"))
        {
            Next();
            SkipAnnotation(skipColon: false);
        }
        Expect(":", "after the function's signature");
        EndOfStatement("':'");
        var indent = Next();
        if (indent.Kind != TokenKind.Indent) throw Error(indent, "expected the function's body, indented");
        IReadOnlyList<string>? returned = null;
        while (Peek().Kind != TokenKind.Dedent)
        {
            var t = Peek();
            if (returned is not null) throw Error(t, "'return' must be the function's last statement");
            if (IsKeyword(t, "return"))
            {
                _line = t.Line;
                Next();
                returned = ParseReturn();
                continue;
            }
            ParseStatement(_root);
        }
        Next(); // dedent
        return returned ?? throw Error(Peek(), $"function '{name.Text}' has no 'return': nothing would be computed");
    }

    /// <summary>Type annotations (<c>a: Tensor</c>, <c>-&gt; Tensor</c>) are accepted and ignored: values carry their types.</summary>
    private void SkipAnnotation(bool skipColon = true)
    {
        if (skipColon) Next();
        var t = Next();
        if (t.Kind != TokenKind.Identifier) throw Error(t, $"expected a type name, found {t.Describe()}");
        while (Peek().Is(".") && Peek(1).Kind == TokenKind.Identifier)
        {
            Next();
            Next();
        }
    }

    private IReadOnlyList<string> ParseReturn()
    {
        var values = new List<(Token At, Operand Value)>();
        do
        {
            var at = Peek();
            values.Add((at, ParseExpression(_root)));
        }
        while (Peek().Is(",") && Next().Is(","));
        EndOfStatement("the return");
        var outputs = new List<string>();
        foreach (var (at, value) in values)
        {
            var name = Materialized(_root, value, "result");
            // A returned expression (not a variable) is named "result" in the response.
            if (value.Variable is null && values.Count == 1 && !_taken.Contains("result") && !_renames.ContainsKey(name))
            {
                _taken.Add("result");
                _renames[name] = "result";
            }
            outputs.Add(name);
        }
        return outputs;
    }

    private void ParseStatement(Block block)
    {
        var t = Peek();
        _line = t.Line;
        if (t.Kind == TokenKind.Identifier)
        {
            switch (t.Text)
            {
                case "while":
                    ParseWhile(block);
                    return;
                case "if":
                    ParseIf(block);
                    return;
                case "pass":
                    Next();
                    EndOfStatement("'pass'");
                    return;
                case "return":
                    throw Error(t, _function ? "'return' must be the function's last statement (no early returns)" : "'return' outside a function");
                case "for":
                    throw Error(t, "for loops are not supported; write a while loop");
                case "break" or "continue":
                    throw Error(t, $"'{t.Text}' is not supported; put the condition in the while test");
                case "def":
                    throw Error(t, "functions cannot be nested; a program defines one function");
                case "import" or "from":
                    throw Error(t, "imports belong at the top of the program");
            }
        }
        if (t.Kind == TokenKind.Indent) throw Error(t, "unexpected indent");
        ParseAssignment(block);
    }

    private void ParseAssignment(Block block)
    {
        var targets = new List<Token>();
        while (true)
        {
            var target = Next();
            if (target.Kind != TokenKind.Identifier || ProgramNames.Keywords.Contains(target.Text))
                throw Error(target, $"expected an assignment 'name = expression', found {target.Describe()}");
            targets.Add(target);
            if (!Peek().Is(",")) break;
            Next();
        }
        var op = Next();
        string? augmented = op.Text switch
        {
            "+=" => "add", "-=" => "sub", "*=" => "mul", "/=" => "div", "**=" => "pow", "@=" => "matmul", _ => null,
        };
        if (op.Kind != TokenKind.Symbol || (op.Text != "=" && augmented is null))
            throw Error(op, targets.Count == 1 && op.Kind is TokenKind.Newline
                ? $"expected an assignment 'name = expression', found {targets[0].Describe()} alone"
                : $"expected '=' after {string.Join(", ", targets.Select(x => x.Text))}, found {op.Describe()}");
        if (augmented is not null && targets.Count > 1) throw Error(op, $"'{op.Text}' assigns one name");

        var values = new List<Operand>();
        do values.Add(ParseExpression(block));
        while (Peek().Is(",") && Next().Is(","));
        if (Peek().Kind is not (TokenKind.Newline or TokenKind.End))
            throw Error(Peek(), $"unexpected {Peek().Describe()} after the expression");
        Next();
        if (values.Count != targets.Count)
            throw Error(targets[0], $"{targets.Count} name(s) but {values.Count} value(s) on the right");
        if (augmented is not null)
            values[0] = Emit(block, augmented, [new Operand(Read(block, targets[0]), null), values[0]], Attributes.Empty);

        // All right sides are evaluated before any name is bound (a, b = b, a swaps).
        var names = new string[targets.Count];
        for (int i = 0; i < targets.Count; i++) names[i] = Materialized(block, values[i], targets[i].Text, copyVariables: true);
        for (int i = 0; i < targets.Count; i++) Assign(block, targets[i].Text, names[i]);
    }

    /// <summary>
    /// A value name holding <paramref name="value"/> in <paramref name="block"/>: a fresh node output is renamed
    /// after the variable; a literal becomes a constant; another variable's value gets its own copy when asked
    /// (<c>c = b</c>: each assignment is its own value).
    /// </summary>
    private string Materialized(Block block, Operand value, string stem, bool copyVariables = false)
    {
        var name = Fresh(stem);
        if (value.Literal is { } v)
        {
            _guard.Name(name);
            block.Constants[name] = value.Bool is { } b ? HostTensor.FromDoubles(DType.Bool, Shape.Scalar, [b ? 1 : 0]) : HostTensor.Scalar(v);
            return name;
        }
        if (value.Node is { } node)
        {
            // A fresh node's output is read by nothing yet: it writes straight into the new name.
            node.Outputs[0] = name;
            return name;
        }
        if (!copyVariables) return value.Name!;
        _guard.Node();
        block.Nodes.Add(new PendingNode("identity", [value.Name!], [name]) { Line = _line });
        return name;
    }

    private void Assign(Block block, string variable, string value)
    {
        block.Bindings[variable] = value;
        block.Unavailable.Remove(variable);
        if (block.AssignedSet.Add(variable)) block.Assigned.Add(variable);
        block.LastAssigned = variable;
    }

    private void ParseWhile(Block block)
    {
        var at = Next(); // while
        var cond = new Block(block, BlockKind.Loop, $"the while loop at line {at.Line}", block.Depth + 1);
        using var level = Enter(at, cond);
        var test = ParseExpression(cond);
        var condOut = Materialized(cond, test, "cond");
        var body = new Block(block, BlockKind.Loop, cond.What, block.Depth + 1);
        ParseSuite(body, "while");

        // Carried: what the body assigns that exists before the loop, in order of first assignment.
        var carried = body.Assigned.Where(v => body.Imports.ContainsKey(v) || Defined(block, v)).ToList();
        foreach (var v in body.Assigned.Except(carried))
            block.Unavailable[v] = $"'{v}' is assigned only inside {cond.What}; assign it before the loop so it has a value when the loop runs no times";
        if (carried.Count == 0)
            throw Error(at, "the loop assigns no variable that exists before it, so its test could never change");
        var initial = carried.Select(v => body.Imports.TryGetValue(v, out var p) ? body.ImportSources[p] : Read(block, v, at)).ToList();
        SettleImports(cond, carried);
        SettleImports(body, carried);

        var outputs = carried.Select(Fresh).ToArray();
        _guard.Node();
        block.Nodes.Add(new PendingNode(ControlFlow.While, initial, outputs, $"while@{at.Line}")
        {
            Line = at.Line,
            Subgraphs = { ["cond"] = (cond, [condOut]), ["body"] = (body, carried.Select(v => body.Bindings[v]).ToList()) },
        });
        for (int i = 0; i < carried.Count; i++) Assign(block, carried[i], outputs[i]);
    }

    /// <summary>
    /// A loop block's parameters become the carried variables, in order (a placeholder for each, read or not);
    /// placeholders of variables the loop does not carry read the enclosing value directly instead.
    /// </summary>
    private void SettleImports(Block loop, List<string> carried)
    {
        var parameters = new List<string>();
        foreach (var v in carried) parameters.Add(loop.Imports.TryGetValue(v, out var p) ? p : Fresh(v));
        var isCarried = carried.ToHashSet(StringComparer.Ordinal);
        foreach (var (v, p) in loop.Imports)
            if (!isCarried.Contains(v)) _renames[p] = loop.ImportSources[p];
        loop.Params.Clear();
        loop.Params.AddRange(parameters);
    }

    private void ParseIf(Block block)
    {
        var at = Next(); // if or elif
        var test = ParseExpression(block);
        var condition = Materialized(block, test, "cond");
        var what = $"the if at line {at.Line}";
        var then = new Block(block, BlockKind.Branch, what, block.Depth + 1);
        var otherwise = new Block(block, BlockKind.Branch, what, block.Depth + 1);
        using (Enter(at, then)) ParseSuite(then, at.Text);
        using (Enter(at, otherwise))
        {
            if (IsKeyword(Peek(), "elif")) ParseIf(otherwise); // elif is an if inside the else branch
            else if (IsKeyword(Peek(), "else"))
            {
                Next();
                ParseSuite(otherwise, "else");
            }
        }

        var assigned = then.Assigned.Concat(otherwise.Assigned.Where(v => !then.AssignedSet.Contains(v))).ToList();
        var yielded = assigned.Where(v => Defined(block, v) || (then.AssignedSet.Contains(v) && otherwise.AssignedSet.Contains(v))).ToList();
        foreach (var v in assigned.Except(yielded))
            block.Unavailable[v] = $"'{v}' is assigned on only one side of {what}; assign it on both sides or before the if";
        if (yielded.Count == 0) return; // nothing the branches compute is seen after them

        var outputs = yielded.Select(Fresh).ToArray();
        string Out(Block branch, string v) => branch.AssignedSet.Contains(v) ? branch.Bindings[v] : Read(branch, v, at);
        _guard.Node();
        block.Nodes.Add(new PendingNode(ControlFlow.If, [condition], outputs, $"if@{at.Line}")
        {
            Line = at.Line,
            Subgraphs =
            {
                ["then"] = (then, yielded.Select(v => Out(then, v)).ToList()),
                ["else"] = (otherwise, yielded.Select(v => Out(otherwise, v)).ToList()),
            },
        });
        for (int i = 0; i < yielded.Count; i++) Assign(block, yielded[i], outputs[i]);
    }

    /// <summary><c>:</c>, end of line, then an indented block of statements.</summary>
    private void ParseSuite(Block block, string keyword)
    {
        Expect(":", $"after the {keyword} {(keyword == "else" ? "keyword" : "condition")}");
        var end = Next();
        if (end.Kind != TokenKind.Newline)
            throw Error(end, $"expected the end of the line after ':' (the {keyword} block goes on the lines below, indented), found {end.Describe()}");
        var indent = Next();
        if (indent.Kind != TokenKind.Indent) throw Error(indent, $"expected an indented block after '{keyword}'");
        while (Peek().Kind != TokenKind.Dedent) ParseStatement(block);
        Next();
    }

    private GraphSizeGuard.Level Enter(Token at, Block block)
    {
        if (block.Depth > GraphLimits.MaxSubgraphDepth)
            throw Error(at, $"blocks are nested more than {GraphLimits.MaxSubgraphDepth} deep, the limit (elif counts as a nested if)");
        return _guard.Subgraph();
    }

    // ---- names ----

    /// <summary>True when <paramref name="variable"/> has a value in <paramref name="block"/> or around it (creates nothing).</summary>
    private static bool Defined(Block? block, string variable)
    {
        for (var b = block; b is not null; b = b.Parent)
        {
            if (b.Bindings.ContainsKey(variable)) return true;
            if (b.Unavailable.ContainsKey(variable)) return false;
        }
        return false;
    }

    private string Read(Block block, Token name) => Read(block, name.Text, name);

    /// <summary>
    /// The value <paramref name="variable"/> has in <paramref name="block"/>. Outside a function, a name never
    /// assigned is an input. A loop block reads an enclosing value through a placeholder parameter, because the loop
    /// may turn out to carry it (<see cref="SettleImports"/>).
    /// </summary>
    private string Read(Block block, string variable, Token at)
    {
        if (block.Bindings.TryGetValue(variable, out var bound)) return bound;
        if (block.Unavailable.TryGetValue(variable, out var why)) throw Error(at, why);
        if (block.Parent is null)
        {
            if (_function)
                throw Error(at, $"name '{variable}' is not defined{ProgramNames.Suggest(variable, _root.Bindings.Keys)}");
            _guard.Name(variable);
            _inputNames.Add(variable);
            _inputs.Add(new Parameter(variable) { AnyDType = true });
            block.Bindings[variable] = variable;
            return variable;
        }
        var outer = Read(block.Parent, variable, at);
        if (block.Kind != BlockKind.Loop)
        {
            block.Bindings[variable] = outer;
            return outer;
        }
        var placeholder = Fresh(variable);
        block.Imports[variable] = placeholder;
        block.ImportSources[placeholder] = outer;
        block.Bindings[variable] = placeholder;
        return placeholder;
    }

    /// <summary>A name no identifier of the program uses: <c>mul_3</c>, <c>y_1</c>.</summary>
    private string Fresh(string stem)
    {
        string name;
        do name = $"{stem}_{++_temp}";
        while (!_taken.Add(name));
        return name;
    }

    private string Final(string name)
    {
        // Renames chain outward (a placeholder to an enclosing value, that value to its variable); each link is
        // made once, so the chain ends.
        while (_renames.TryGetValue(name, out var next)) name = next;
        return name;
    }

    // ---- expressions ----

    /// <summary>
    /// An expression's result: a value name (with the node that made it, when fresh, and the variable it is, when a
    /// variable) or a number literal.
    /// </summary>
    private readonly record struct Operand(string? Name, double? Literal, PendingNode? Node = null, string? Variable = null, bool? Bool = null)
    {
        public string AsInput => Name ?? GraphLiterals.Format(Literal!.Value);
    }

    private Operand ParseExpression(Block block)
    {
        var left = ParseAnd(block);
        while (IsKeyword(Peek(), "or"))
        {
            Next();
            left = Emit(block, "logical_or", [left, ParseAnd(block)], Attributes.Empty);
        }
        return left;
    }

    private Operand ParseAnd(Block block)
    {
        var left = ParseNot(block);
        while (IsKeyword(Peek(), "and"))
        {
            Next();
            left = Emit(block, "logical_and", [left, ParseNot(block)], Attributes.Empty);
        }
        return left;
    }

    private Operand ParseNot(Block block)
    {
        if (!IsKeyword(Peek(), "not")) return ParseComparison(block);
        var at = Next();
        return Nested(at, () => Emit(block, "logical_not", [ParseNot(block)], Attributes.Empty));
    }

    private static readonly Dictionary<string, string> Comparisons = new(StringComparer.Ordinal)
    {
        ["<"] = "lt", ["<="] = "le", [">"] = "gt", [">="] = "ge", ["=="] = "eq", ["!="] = "ne",
    };

    /// <summary><c>a &lt; b &lt; c</c> is <c>a &lt; b and b &lt; c</c>, as in Python.</summary>
    private Operand ParseComparison(Block block)
    {
        var left = ParseArithmetic(block);
        Operand? result = null;
        while (Peek().Kind == TokenKind.Symbol && Comparisons.TryGetValue(Peek().Text, out var op))
        {
            Next();
            var right = ParseArithmetic(block);
            var test = Emit(block, op, [left, right], Attributes.Empty);
            result = result is { } r ? Emit(block, "logical_and", [r, test], Attributes.Empty) : test;
            left = right;
        }
        return result ?? left;
    }

    private Operand ParseArithmetic(Block block)
    {
        var left = ParseTerm(block);
        while (Peek().Is("+") || Peek().Is("-"))
        {
            var op = Next().Text == "+" ? "add" : "sub";
            left = Emit(block, op, [left, ParseTerm(block)], Attributes.Empty);
        }
        return left;
    }

    private Operand ParseTerm(Block block)
    {
        var left = ParseUnary(block);
        while (Peek().Is("*") || Peek().Is("/") || Peek().Is("@"))
        {
            var op = Next().Text switch { "*" => "mul", "/" => "div", _ => "matmul" };
            left = Emit(block, op, [left, ParseUnary(block)], Attributes.Empty);
        }
        return left;
    }

    /// <summary>Every nesting (parentheses, call arguments, signs, <c>**</c> chains) passes here: its depth is counted.</summary>
    private Operand Nested(Token at, Func<Operand> parse)
    {
        if (++_depth > GraphLimits.MaxExpressionDepth)
            throw Error(at, $"the expression is nested more than {GraphLimits.MaxExpressionDepth} deep, the limit");
        try
        {
            return parse();
        }
        finally
        {
            _depth--;
        }
    }

    private Operand ParseUnary(Block block) => Nested(Peek(), () =>
    {
        if (Peek().Is("-"))
        {
            Next();
            var operand = ParseUnary(block);
            return operand.Literal is { } v && operand.Bool is null ? new Operand(null, -v) : Emit(block, "neg", [operand], Attributes.Empty);
        }
        if (Peek().Is("+"))
        {
            Next();
            return ParseUnary(block);
        }
        return ParsePower(block);
    });

    private Operand ParsePower(Block block)
    {
        var b = ParsePostfix(block);
        if (!Peek().Is("**")) return b;
        Next();
        return Emit(block, "pow", [b, ParseUnary(block)], Attributes.Empty);
    }

    /// <summary>
    /// A primary, then its methods, attributes and indexes: <c>b.norm()</c>, <c>x.sum(axis=0)</c>, <c>x.T</c>,
    /// <c>x.shape[0]</c>, <c>x[-1]</c>.
    /// </summary>
    private Operand ParsePostfix(Block block)
    {
        var value = ParsePrimary(block);
        while (Peek().Is(".") || Peek().Is("["))
        {
            if (Next().Is("["))
            {
                value = ParseIndex(block, value);
                continue;
            }
            var member = Next();
            if (member.Kind != TokenKind.Identifier) throw Error(member, $"expected a method or attribute name after '.', found {member.Describe()}");
            if (member.Text is "T" or "shape" && !Peek().Is("("))
            {
                value = Emit(block, member.Text == "T" ? "transpose" : "shape", [value], Attributes.Empty);
                continue;
            }
            if (!Peek().Is("(")) throw Error(member, $"unknown attribute '.{member.Text}' (methods are called: '.{member.Text}()')");
            value = ParseCall(block, member, value);
        }
        return value;
    }

    /// <summary><c>x[k]</c> for an integer <c>k</c> (negative counts from the end): x's k-th element along axis 0.</summary>
    private Operand ParseIndex(Block block, Operand value)
    {
        var at = Peek();
        var (index, integral) = ParseAttrNumber(Next());
        if (!integral) throw Error(at, "an index must be an integer literal like x[0] or x[-1]");
        Expect("]", "to close the index");
        return ParseIndexOf(block, value, (long)index);
    }

    private Operand ParseIndexOf(Block block, Operand value, long index)
    {
        long stop = index == -1 ? long.MaxValue : index + 1;
        var row = Emit(block, "slice", [value],
            Attributes.Of(("axes", new long[] { 0 }), ("starts", new[] { index }), ("stops", new[] { stop })));
        return Emit(block, "squeeze", [row], Attributes.Of(("axes", new long[] { 0 })));
    }

    private Operand ParsePrimary(Block block)
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Number:
                return new Operand(null, ParseNumber(t));
            case TokenKind.Identifier when t.Text is "True" or "False":
                return new Operand(null, t.Text == "True" ? 1 : 0, Bool: t.Text == "True");
            case TokenKind.Identifier when ProgramNames.Keywords.Contains(t.Text):
                throw Error(t, $"expected a value, found the keyword '{t.Text}'");
            case TokenKind.Identifier when Peek().Is("("):
                return ParseCall(block, t, null);
            case TokenKind.Identifier when Peek().Is(".") && ProgramNames.IsNamespace(t.Text) && !Defined(block, t.Text):
                return ParseQualifiedCall(block, t);
            case TokenKind.Identifier:
                return new Operand(Read(block, t), null, Variable: t.Text);
            case TokenKind.Symbol when t.Text == "(":
                var inner = ParseExpression(block); // its ParseUnary counts the level
                Expect(")", "to close the parenthesis");
                return inner with { Variable = null };
            default:
                throw Error(t, $"expected a value, a call or '(', found {t.Describe()}");
        }
    }

    /// <summary><c>np.linalg.norm(b)</c>, <c>jax.lax.stop_gradient(y)</c>: the module path is dropped.</summary>
    private Operand ParseQualifiedCall(Block block, Token module)
    {
        var name = module;
        while (Peek().Is("."))
        {
            Next();
            name = Next();
            if (name.Kind != TokenKind.Identifier) throw Error(name, $"expected a name after '.', found {name.Describe()}");
            if (!Peek().Is(".")) break;
            if (!ProgramNames.IsNamespace(name.Text)) throw Error(name, $"unknown module '{name.Text}' in '{module.Text}.{name.Text}'");
        }
        if (!Peek().Is("(")) throw Error(name, $"'{name.Text}' must be called: '{name.Text}(...)'");
        return ParseCall(block, name, null);
    }

    /// <summary>
    /// A call of a registered op (or a framework spelling of one). For a method call, <paramref name="self"/> is
    /// the value before the dot and is the first argument.
    /// </summary>
    private Operand ParseCall(Block block, Token name, Operand? self)
    {
        if (name.Text == "len" && self is null && !_registry.TryGet("len", out _))
        {
            // len(x) is x.shape[0], as in Python.
            Expect("(", "after 'len'");
            var x = ParseExpression(block);
            Expect(")", "to close the call of 'len'");
            return ParseIndexOf(block, Emit(block, "shape", [x], Attributes.Empty), 0);
        }
        var op = ProgramNames.Resolve(_registry, name.Text)
            ?? throw Error(name, $"unknown {(self is null ? "op" : "method")} '{name.Text}'{ProgramNames.Suggest(name.Text, ProgramNames.Known(_registry))}");
        Expect("(", "after the op name");
        var args = new List<Operand>();
        if (self is { } s) args.Add(s);
        var attrs = new List<KeyValuePair<string, AttrValue>>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (!Peek().Is(")"))
        {
            if (Peek().Kind == TokenKind.Identifier && Peek(1).Is("="))
            {
                var key = Next();
                Next(); // '='
                var (attr, value) = ProgramNames.Keyword(op.Schema, key.Text, ParseAttribute());
                if (!keys.Add(attr)) throw Error(key, $"attribute '{key.Text}' is given twice");
                // tensordot(x, y, axes=1) contracts one axis: a matrix product.
                bool contraction = name.Text == "tensordot" && attr is "axes" or "axis";
                if (contraction && (value.Kind != AttrKind.Int || (long)value.Value != 1))
                    throw Error(key, "tensordot is supported with axes=1 (a matrix product) only");
                if (!contraction) attrs.Add(KeyValuePair.Create(attr, value));
            }
            else
            {
                if (attrs.Count > 0) throw Error(Peek(), "a positional argument cannot follow keyword attributes");
                args.Add(ParseExpression(block));
            }
            if (Peek().Is(")")) break;
            Expect(",", "between arguments");
        }
        Expect(")", $"to close the call of '{name.Text}'");
        return Emit(block, op.Name, args, new Attributes(attrs));
    }

    private AttrValue ParseAttribute()
    {
        var t = Peek();
        if (t.Is("[") || t.Is("("))
        {
            var close = t.Text == "[" ? "]" : ")";
            Next();
            var items = new List<(double Value, bool Integral)>();
            if (!Peek().Is(close))
            {
                while (true)
                {
                    items.Add(ParseAttrNumber(Next()));
                    if (Peek().Is(close)) break;
                    Expect(",", "between list items");
                    if (Peek().Is(close)) break; // (0,) is a one-item tuple
                }
            }
            Expect(close, "to close the list");
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

    private double ParseNumber(Token t)
    {
        var v = double.Parse(t.Text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return double.IsFinite(v) ? v : throw Error(t, $"the number {t.Text} is out of range");
    }

    private Operand Emit(Block block, string op, List<Operand> args, Attributes attrs)
    {
        _guard.Node();
        var output = Fresh(op);
        // A bool literal has no literal form in node inputs: it becomes a constant.
        var inputs = args.Select(a => a.Bool is not null ? Materialized(block, a, "flag") : a.AsInput).ToList();
        var node = new PendingNode(op, inputs, [output]) { Attrs = attrs.Count == 0 ? null : attrs, Line = _line };
        block.Nodes.Add(node);
        return new Operand(output, null, node);
    }

    // ---- building the graph ----

    private Graph Materialize(Block block, IReadOnlyList<string> outputs, IReadOnlyList<Parameter>? inputs = null)
    {
        var parameters = inputs ?? block.Params.Select(p => new Parameter(Final(p)) { AnyDType = true }).ToArray();
        var nodes = new List<Node>(block.Nodes.Count);
        foreach (var n in block.Nodes)
        {
            Attributes? attrs = n.Attrs;
            foreach (var (attr, (sub, subOutputs)) in n.Subgraphs)
                attrs = (attrs ?? Attributes.Empty).With(attr, AttrValue.Graph(Materialize(sub, subOutputs)));
            nodes.Add(new Node(n.Op, n.Inputs.Select(Final).ToArray(), n.Outputs.Select(Final).ToArray(), attrs, n.Name) { Line = n.Line });
        }
        var constants = block.Constants.Count == 0 ? null : block.Constants.ToDictionary(kv => Final(kv.Key), kv => kv.Value, StringComparer.Ordinal);
        return new Graph(parameters, nodes, outputs.Select(Final).ToArray(), constants);
    }

    private enum BlockKind
    {
        Root,
        Loop,
        Branch,
    }

    /// <summary>A graph being built: the program, a loop's test or body, or a branch.</summary>
    private sealed class Block(Block? parent, BlockKind kind, string what, int depth)
    {
        public Block? Parent { get; } = parent;
        public BlockKind Kind { get; } = kind;
        public string What { get; } = what;
        public int Depth { get; } = depth;
        public List<PendingNode> Nodes { get; } = [];
        public List<string> Params { get; } = [];
        public Dictionary<string, HostTensor> Constants { get; } = new(StringComparer.Ordinal);

        /// <summary>Each variable's current value here.</summary>
        public Dictionary<string, string> Bindings { get; } = new(StringComparer.Ordinal);

        /// <summary>Variables assigned in this block, in order of first assignment.</summary>
        public List<string> Assigned { get; } = [];
        public HashSet<string> AssignedSet { get; } = new(StringComparer.Ordinal);
        public string? LastAssigned { get; set; }

        /// <summary>Loop blocks: enclosing variables read here, and the placeholder parameter standing for each.</summary>
        public Dictionary<string, string> Imports { get; } = new(StringComparer.Ordinal);

        /// <summary>Loop blocks: each placeholder's enclosing value.</summary>
        public Dictionary<string, string> ImportSources { get; } = new(StringComparer.Ordinal);

        /// <summary>Variables assigned only in a nested block, so without a value here, and why.</summary>
        public Dictionary<string, string> Unavailable { get; } = new(StringComparer.Ordinal);
    }

    private sealed class PendingNode(string op, List<string> inputs, string[] outputs, string? name = null)
    {
        public string Op { get; } = op;
        public List<string> Inputs { get; } = inputs;
        public string[] Outputs { get; } = outputs;
        public string? Name { get; } = name;
        public Attributes? Attrs { get; init; }
        public int? Line { get; init; }
        public Dictionary<string, (Block Block, List<string> Outputs)> Subgraphs { get; } = new(StringComparer.Ordinal);
    }
}
