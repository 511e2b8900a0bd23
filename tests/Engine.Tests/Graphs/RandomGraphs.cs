using System.Text;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>
/// Random straight-line programs over a few broadcast-compatible shapes, for property tests: elementwise ops (with
/// literals, broadcasting and float32 → float64 promotion), comparisons and where, reductions, matrix products,
/// transposes and reshapes (views), and composite ops. Every program is valid by construction; the same seed gives
/// the same program.
/// </summary>
internal sealed class RandomGraphs
{
    // The shapes values take, with R rows and C columns: a matrix, its transpose, a row, a column and a scalar.
    private enum Form { Full, Transposed, Row, Column, Scalar }

    private sealed record Value(string Name, Form Form, DType DType);

    private static readonly string[] Unary = ["exp", "sin", "tanh", "neg", "abs", "sigmoid", "square", "relu", "cos"];
    private static readonly string[] Binary = ["+", "-", "*", "maximum", "minimum"];

    private readonly Random _random;
    private readonly List<Value> _values = [];
    private readonly StringBuilder _text = new();

    private RandomGraphs(int seed, int rows, int columns)
    {
        _random = new Random(seed);
        Rows = rows;
        Columns = columns;
    }

    public int Rows { get; }
    public int Columns { get; }
    public string Program => _text.ToString();
    public List<string> Outputs { get; } = [];

    /// <summary>
    /// A program of <paramref name="nodes"/> assignments over inputs x [R, C], y [C], z [R, 1], w [C, C] (float32)
    /// and d [C] (float64); one to three of its values are the outputs.
    /// </summary>
    public static RandomGraphs Make(int seed, int rows, int columns, int nodes)
    {
        var g = new RandomGraphs(seed, rows, columns);
        g._values.AddRange([new("x", Form.Full, DType.Float32), new("y", Form.Row, DType.Float32), new("z", Form.Column, DType.Float32),
            new("d", Form.Row, DType.Float64)]);
        for (int i = 0; i < nodes; i++) g.AddNode($"v{i}");
        int outputs = 1 + g._random.Next(3);
        var made = g._values.Where(v => v.Name.StartsWith('v')).Select(v => v.Name).ToList();
        for (int i = 0; i < outputs && made.Count > 0; i++)
        {
            // Favour late values, as real graphs' outputs are.
            var name = made[made.Count - 1 - Math.Min(made.Count - 1, g._random.Next(made.Count / 2 + 1))];
            if (!g.Outputs.Contains(name)) g.Outputs.Add(name);
        }
        return g;
    }

    /// <summary>The inputs <paramref name="graph"/> declares, allocated in <paramref name="scope"/> with values fixed by the seed.</summary>
    public Dictionary<string, Tensor> Feed(ExecutionScope scope, Graph graph, int seed)
    {
        var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var input in graph.Inputs)
        {
            feed[input.Name] = input.Name switch
            {
                "x" => MemoryTestKit.Floats(scope, seed, Rows, Columns),
                "y" => MemoryTestKit.Floats(scope, seed + 1, Columns),
                "z" => MemoryTestKit.Floats(scope, seed + 2, Rows, 1),
                "w" => MemoryTestKit.Floats(scope, seed + 3, Columns, Columns),
                _ => scope.FromArray(MemoryTestKit.Uniform(Columns, seed + 4).Select(v => (double)v).ToArray()),
            };
        }
        return feed;
    }

    private Value Pick(Func<Value, bool>? where = null)
    {
        var choices = where is null ? _values : _values.Where(where).ToList();
        return choices[_random.Next(choices.Count)];
    }

    private void AddNode(string name)
    {
        Value made;
        switch (_random.Next(10))
        {
            case 0 or 1:
            {
                var a = Pick();
                made = Emit(name, $"{Unary[_random.Next(Unary.Length)]}({a.Name})", a.Form, a.DType);
                break;
            }
            case 2 or 3:
            {
                var a = Pick();
                var b = Pick(v => Broadcasts(a.Form, v.Form));
                var op = Binary[_random.Next(Binary.Length)];
                var text = op.Length == 1 ? $"{a.Name} {op} {b.Name}" : $"{op}({a.Name}, {b.Name})";
                made = Emit(name, text, Wider(a.Form, b.Form), Promote(a.DType, b.DType));
                break;
            }
            case 4:
            {
                var a = Pick();
                made = Emit(name, $"{a.Name} * {0.5 + _random.Next(4)} + {_random.Next(3)}", a.Form, a.DType);
                break;
            }
            case 5:
            {
                var a = Pick(v => v.Form == Form.Full);
                var b = Pick(v => Broadcasts(a.Form, v.Form) && v.DType == a.DType);
                made = Emit(name, $"where({a.Name} > {b.Name}, {a.Name}, {b.Name})", Form.Full, a.DType);
                break;
            }
            case 6:
            {
                var a = Pick(v => v.Form == Form.Full);
                (string text, Form form) = _random.Next(4) switch
                {
                    0 => ($"sum({a.Name}, axes=[0])", Form.Row),
                    1 => ($"sum({a.Name}, axes=[1], keepdims=true)", Form.Column),
                    2 => ($"max({a.Name})", Form.Scalar),
                    _ => ($"mean({a.Name}, axes=[0])", Form.Row),
                };
                made = Emit(name, text, form, a.DType);
                break;
            }
            case 7:
            {
                var a = Pick(v => v.Form == Form.Full && v.DType == DType.Float32);
                made = Emit(name, $"{a.Name} @ w", Form.Full, DType.Float32);
                break;
            }
            case 8:
            {
                var a = Pick(v => v.Form is Form.Full or Form.Transposed);
                bool full = a.Form == Form.Full;
                (int r, int c) = full ? (Columns, Rows) : (Rows, Columns);
                made = _random.Next(2) == 0
                    ? Emit(name, $"transpose({a.Name})", full ? Form.Transposed : Form.Full, a.DType)
                    : Emit(name, $"reshape({a.Name}, shape=[{r}, {c}])", full ? Form.Transposed : Form.Full, a.DType);
                break;
            }
            default:
            {
                var a = Pick(v => v.Form == Form.Full);
                (string text, Form form) = _random.Next(3) switch
                {
                    0 => ($"softmax({a.Name}, axis=1)", Form.Full),
                    1 => ($"logsumexp({a.Name}, axes=[1], keepdims=true)", Form.Column),
                    _ => ($"norm({a.Name})", Form.Scalar),
                };
                made = Emit(name, text, form, a.DType);
                break;
            }
        }
        _values.Add(made);
    }

    private Value Emit(string name, string expression, Form form, DType dtype)
    {
        _text.Append(name).Append(" = ").AppendLine(expression);
        return new Value(name, form, dtype);
    }

    private static bool Broadcasts(Form a, Form b) => a == b || a == Form.Scalar || b == Form.Scalar ||
        (a, b) is (Form.Full, Form.Row) or (Form.Row, Form.Full) or (Form.Full, Form.Column) or (Form.Column, Form.Full);

    private static Form Wider(Form a, Form b) => a == Form.Scalar ? b : b == Form.Scalar ? a : a is Form.Row or Form.Column ? b : a;

    private static DType Promote(DType a, DType b) => a == DType.Float64 || b == DType.Float64 ? DType.Float64 : DType.Float32;
}
