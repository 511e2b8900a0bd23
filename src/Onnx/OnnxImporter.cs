using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using Google.Protobuf;
using Onnx;

namespace AutogradService.Onnx;

/// <summary>How a model is imported.</summary>
public sealed record OnnxImportOptions
{
    /// <summary>The graph limits (nodes and names counted over the imported graph, subgraphs included).</summary>
    public GraphLimits Limits { get; init; } = GraphLimits.Default;

    /// <summary>Sizes for symbolic dimensions (<c>dim_param</c>), e.g. <c>{"batch": 4}</c>; others stay unknown.</summary>
    public IReadOnlyDictionary<string, int>? Dims { get; init; }

    /// <summary>Bytes of values the import itself computes, in all (folded constants, ConstantOfShape, index tables).</summary>
    public long FoldBytes { get; init; } = 256L << 20;

    /// <summary>Largest model file accepted.</summary>
    public long MaxModelBytes { get; init; } = 512L << 20;
}

/// <summary>What a model is, beyond its graph: for <c>GET /v1/models/{name}</c>.</summary>
public sealed record OnnxModelSummary(
    long IrVersion,
    IReadOnlyDictionary<string, long> Opsets,
    string Producer,
    IReadOnlyList<string> Parameters,
    IReadOnlyDictionary<string, int> OpHistogram);

/// <summary>An imported model: the engine graph (initializers are its named constants) and its summary.</summary>
public sealed record OnnxImport(Graph Graph, OnnxModelSummary Summary);

/// <summary>
/// ONNX → the engine's graph IR. Every ONNX op becomes engine ops (<see cref="OnnxOps"/>), so every derivative comes
/// from the engine's own rules. Values whose contents are known at import (shape arithmetic, Constant nodes, integer
/// initializers) are folded by running the same engine ops on them; float initializers stay named constants, which
/// a client may differentiate by naming them in <c>wrt</c>. <c>If</c> and <c>Loop</c> become the IR's <c>if</c> and
/// <c>while</c>, so gradients flow through them.
/// </summary>
public static class OnnxImporter
{
    /// <summary>The ONNX opsets this importer is written and tested against (default domain).</summary>
    public const long MinOpset = 6, MaxOpset = 18;

    public static OnnxImport Import(ReadOnlyMemory<byte> bytes, OnnxImportOptions? options = null)
    {
        options ??= new OnnxImportOptions();
        if (bytes.Length > options.MaxModelBytes)
            throw EngineException.InvalidArgument($"the model has {bytes.Length} bytes, over the limit of {options.MaxModelBytes}");
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw EngineException.InvalidArgument($"the body is not an ONNX model (protobuf ModelProto): {EngineException.Clip(e.Message)}");
        }
        if (model.Graph is null || (model.Graph.Node.Count == 0 && model.Graph.Output.Count == 0))
            throw EngineException.InvalidArgument("the body is not an ONNX model: it has no graph");
        return new Builder(model, options).Run();
    }

    private sealed class Builder(ModelProto model, OnnxImportOptions options) : IImportContext
    {
        private readonly Dictionary<string, HostTensor> _constants = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _histogram = new(StringComparer.Ordinal);
        private readonly List<string> _parameters = [];
        private readonly GraphSizeGuard _guard = options.Limits.Guard();
        private readonly Dictionary<string, long> _opsets = new(StringComparer.Ordinal);
        private int _counter;
        private int _depth;
        private long _reserved;

        public long Opset { get; private set; }

        public OnnxImport Run()
        {
            foreach (var o in model.OpsetImport) _opsets[o.Domain ?? ""] = o.Version;
            Opset = _opsets.TryGetValue("", out var v) ? v : _opsets.TryGetValue("ai.onnx", out v) ? v : 1;
            if (Opset < MinOpset || Opset > MaxOpset)
                throw OnnxErrors.UnsupportedOp("(model)", "", Opset, model.Graph.Name ?? "",
                    $"opset {Opset} is outside what this importer supports ({MinOpset}-{MaxOpset}); convert the model (onnx.version_converter)");
            var (graph, _) = BuildGraph(model.Graph, null, isRoot: true, loopBody: null);
            var summary = new OnnxModelSummary(model.IrVersion, _opsets, model.ProducerName ?? "", _parameters,
                _histogram.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
                    .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
            return new OnnxImport(graph with { Constants = _constants }, summary);
        }

        /// <summary>
        /// One ONNX graph as an engine graph. The root's inputs are its non-initializer inputs; a subgraph's are given by
        /// <paramref name="loopBody"/> (a Loop body) or none (If branches read what they need from outside).
        /// </summary>
        private (Graph Graph, Val[] Outputs) BuildGraph(GraphProto g, GraphScope? parent, bool isRoot, IReadOnlyList<Val>? loopBody)
        {
            if (_depth > GraphLimits.MaxSubgraphDepth) throw GraphLimits.NestedTooDeep();
            var scope = new GraphScope(parent);
            var inputs = new List<Parameter>();
            var initialized = AddInitializers(g, scope);
            if (loopBody is not null)
            {
                if (g.Input.Count != loopBody.Count)
                    throw OnnxErrors.Invalid($"the Loop body '{g.Name}' declares {g.Input.Count} inputs where the loop carries {loopBody.Count - 2} values");
                for (int i = 0; i < g.Input.Count; i++)
                {
                    var vi = g.Input[i];
                    var name = Claim(vi.Name);
                    inputs.Add(new Parameter(name, loopBody[i].DType));
                    scope.Values[vi.Name] = new Val(name, loopBody[i].DType, loopBody[i].Dims);
                    scope.Local.Add(name);
                }
            }
            else if (isRoot)
            {
                foreach (var vi in g.Input)
                {
                    if (initialized.Contains(vi.Name)) continue; // an initializer listed as an input (IR < 4): its default stays
                    var (dtype, dims) = TypeOf(vi);
                    var name = Claim(vi.Name);
                    inputs.Add(new Parameter(name, dtype, dims));
                    scope.Values[vi.Name] = new Val(name, dtype, dims?.ToArray());
                    scope.Local.Add(name);
                }
            }
            else if (g.Input.Count > 0)
            {
                throw OnnxErrors.Invalid($"the If branch '{g.Name}' declares {g.Input.Count} inputs; branches take none");
            }

            foreach (var node in g.Node) ConvertNode(node, scope);

            var outputs = new List<string>();
            var values = new List<Val>();
            if (loopBody is not null)
            {
                // The engine's while carries the iteration count too: the body's first result is the next count.
                var next = Emit(scope, "add", Attributes.Empty, scope.Values[g.Input[0].Name], Val.Of(HostTensor.Scalar(1, DType.Int64)));
                outputs.Add(next.Name!);
                values.Add(next);
            }
            foreach (var o in g.Output)
            {
                var v = scope.Lookup(o.Name) ?? throw OnnxErrors.Invalid($"graph output '{o.Name}' is never computed");
                values.Add(v);
                var desired = SanitizedName(o.Name);
                if (v.Name == desired && scope.Local.Contains(desired))
                {
                    outputs.Add(desired);
                    continue;
                }
                // An output that is an input, a constant or an outer value gets its own node, so the name is this graph's.
                var name = v.Name == desired || _names.Contains(desired) ? Fresh() : Claim(o.Name);
                AddNode(scope, new Node("identity", [Materialize(v)], [name]));
                outputs.Add(name);
            }
            return (new Graph(inputs, scope.Nodes, outputs), values.ToArray());
        }

        /// <summary>Float initializers become named constants (parameters); the rest are import-time constants.</summary>
        private HashSet<string> AddInitializers(GraphProto g, GraphScope scope)
        {
            var initialized = new HashSet<string>(StringComparer.Ordinal);
            foreach (var init in g.Initializer)
            {
                initialized.Add(init.Name);
                var host = OnnxTensors.ToHost(init, $"initializer '{init.Name}'");
                if (host.DType.IsFloating())
                {
                    // A trainable parameter: a named constant of the engine graph, never folded, so `wrt` can name it.
                    var name = Claim(init.Name);
                    _constants[name] = host;
                    _parameters.Add(name);
                    scope.Values[init.Name] = new Val(name, host.DType, host.Shape.ToArray()) { Value = host };
                }
                else
                {
                    scope.Values[init.Name] = Val.Of(host);
                }
            }
            if (g.SparseInitializer.Count > 0) throw OnnxErrors.UnsupportedType("sparse", $"a sparse initializer of graph '{g.Name}'");
            return initialized;
        }

        public Val[] Inline(GraphProto g, GraphScope scope)
        {
            var inner = scope.Inner();
            AddInitializers(g, inner);
            foreach (var node in g.Node) ConvertNode(node, inner);
            return g.Output.Select(o => inner.Lookup(o.Name) ?? throw OnnxErrors.Invalid($"graph output '{o.Name}' is never computed")).ToArray();
        }

        private (DType, IReadOnlyList<int>?) TypeOf(ValueInfoProto vi)
        {
            var tt = vi.Type?.TensorType ?? throw OnnxErrors.UnsupportedType(vi.Type?.ValueCase.ToString() ?? "(none)", $"input '{vi.Name}'");
            var dtype = OnnxTensors.ToDType(tt.ElemType, $"input '{vi.Name}'");
            if (tt.Shape is null) return (dtype, null);
            var dims = new int[tt.Shape.Dim.Count];
            for (int i = 0; i < dims.Length; i++)
            {
                var d = tt.Shape.Dim[i];
                dims[i] = d.HasDimValue && d.DimValue >= 0 && d.DimValue <= int.MaxValue ? (int)d.DimValue
                    : d.HasDimParam && options.Dims?.TryGetValue(d.DimParam, out var fixedSize) == true ? fixedSize
                    : -1;
            }
            return (dtype, dims);
        }

        private void ConvertNode(NodeProto node, GraphScope scope)
        {
            _guard.Node();
            var domain = node.Domain ?? "";
            _histogram[node.OpType] = _histogram.GetValueOrDefault(node.OpType) + 1;
            var opset = _opsets.GetValueOrDefault(domain, Opset);
            var display = node.Output.Count > 0 && node.Output[0].Length > 0 ? node.Output[0] : node.Name ?? node.OpType;
            if (domain is not ("" or "ai.onnx"))
                throw OnnxErrors.UnsupportedOp(node.OpType, domain, opset, display, "is in a domain this importer does not know");
            if (!OnnxOps.Table.TryGetValue(node.OpType, out var convert))
                throw OnnxErrors.UnsupportedOp(node.OpType, domain, opset, display);

            var ins = new Val?[node.Input.Count];
            for (int i = 0; i < ins.Length; i++)
            {
                var name = node.Input[i];
                if (name.Length == 0) continue;
                ins[i] = scope.Lookup(name) ?? throw OnnxErrors.Invalid($"node '{display}' ({node.OpType}) reads '{name}', which nothing defines before it", display);
            }
            var ctx = new NodeContext(this, node, ins, scope, opset, display);
            Val[] outs;
            try
            {
                outs = convert(ctx);
            }
            catch (EngineException e) when (e.Code is not (ErrorCodes.UnsupportedOp or ErrorCodes.MemoryLimitExceeded))
            {
                throw new EngineException(e.Code, $"importing ONNX node '{display}' ({node.OpType}): {e.Detail}", display, node.OpType, e.Input, e);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException or IndexOutOfRangeException or FormatException)
            {
                // A malformed node (attribute lists of the wrong length, sizes past int range) is the model's fault, never a crash.
                throw new EngineException(ErrorCodes.InvalidGraph,
                    $"importing ONNX node '{display}' ({node.OpType}): the node is malformed (an attribute, size or index out of range)", display, node.OpType, inner: e);
            }
            for (int j = 0; j < node.Output.Count; j++)
            {
                var name = node.Output[j];
                if (name.Length == 0) continue;
                if (j >= outs.Length)
                    throw OnnxErrors.UnsupportedOp(node.OpType, domain, opset, display, $"output {j} ('{name}') is not supported");
                scope.Values[name] = Name(scope, outs[j], name);
            }
        }

        /// <summary>Gives a value made by this node's last engine node the ONNX name, so errors and intermediates read like the model.</summary>
        private Val Name(GraphScope scope, Val v, string onnxName)
        {
            if (v.Name is not { } current || !current.StartsWith(GeneratedPrefix, StringComparison.Ordinal) ||
                !scope.Producer.TryGetValue(current, out int index))
                return v;
            for (int k = index + 1; k < scope.Nodes.Count; k++)
                if (scope.Nodes[k].Inputs.Contains(current)) return v;
            var desired = SanitizedName(onnxName);
            if (_names.Contains(desired)) return v;
            Claim(onnxName);
            var node = scope.Nodes[index];
            scope.Nodes[index] = node with { Outputs = node.Outputs.Select(o => o == current ? desired : o).ToArray() };
            scope.Producer.Remove(current);
            scope.Producer[desired] = index;
            scope.Local.Add(desired);
            v.Name = desired;
            return v;
        }

        // ---- IImportContext: what converters use ----

        public Val Emit(GraphScope scope, string opName, Attributes attrs, params Val[] ins)
        {
            var op = OpRegistry.Default.Get(opName);
            if (ins.Length > 0 && Array.TrueForAll(ins, v => v.IsConst) && op.Schema.Category != "creation")
                return Fold(op, attrs, ins);
            var names = ins.Select(Materialize).ToArray();
            var output = Fresh();
            AddNode(scope, new Node(op.Name, names, [output], attrs.Count == 0 ? null : attrs));
            var (dtype, dims) = Infer(op, attrs, ins);
            return new Val(output, dtype, dims);
        }

        public Val[] EmitControlFlow(GraphScope scope, string op, Val[] inputs, Attributes attrs, IReadOnlyList<(DType DType, int[]? Dims)> types)
        {
            var outputs = types.Select(_ => Fresh()).ToArray();
            AddNode(scope, new Node(op, inputs.Select(Materialize).ToArray(), outputs, attrs));
            return outputs.Select((o, i) => new Val(o, types[i].DType, types[i].Dims)).ToArray();
        }

        public (Graph Graph, Val[] Outputs) Subgraph(GraphProto g, GraphScope parent, IReadOnlyList<Val>? loopInputs)
        {
            _depth++;
            try
            {
                return BuildGraph(g, parent, isRoot: false, loopInputs);
            }
            finally
            {
                _depth--;
            }
        }

        public Val Fold(Op op, Attributes attrs, params Val[] ins)
        {
            using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = options.FoldBytes, Cancellation = options.Limits.Cancellation });
            using (scope.NoGrad())
            {
                var tensors = ins.Select(v => v.Value!.ToTensor(scope)).ToArray();
                var result = Dispatcher.Apply(scope, op, tensors, attrs);
                Reserve(result.Shape.ElementCount * result.DType.SizeOf(), $"the folded value of '{op.Name}'");
                return Val.Of(HostTensor.From(result));
            }
        }

        private (DType, int[]?) Infer(Op op, Attributes attrs, Val[] ins)
        {
            var dtypes = Promoted(op.Schema, ins);
            if (Array.TrueForAll(ins, v => v.Shape is not null))
            {
                var types = ins.Select((v, i) => new TensorType(v.Shape!.Value, dtypes[i])).ToArray();
                var t = op.InferType(types, attrs);
                return (t.DType, t.Shape.ToArray());
            }
            if (Array.Exists(ins, v => v.Dims is null))
            {
                var guess = TryInfer(op, attrs, ins, dtypes, 1);
                return (guess?.DType ?? dtypes[0], null);
            }
            // Unknown sizes: infer with two stand-ins; sizes both agree on are known, the rest stay unknown.
            var one = TryInfer(op, attrs, ins, dtypes, 1);
            var two = TryInfer(op, attrs, ins, dtypes, 2);
            if (one is null) return (dtypes[0], null);
            var dims = one.Value.Shape.ToArray();
            if (two is null || two.Value.Shape.Rank != dims.Length) return (one.Value.DType, dims.Select(_ => -1).ToArray());
            for (int i = 0; i < dims.Length; i++) if (dims[i] != two.Value.Shape[i]) dims[i] = -1;
            return (one.Value.DType, dims);
        }

        private static TensorType? TryInfer(Op op, Attributes attrs, Val[] ins, DType[] dtypes, int standIn)
        {
            try
            {
                var types = ins.Select((v, i) => new TensorType(new Shape((v.Dims ?? []).Select(d => d < 0 ? standIn : d).ToArray()), dtypes[i])).ToArray();
                return op.InferType(types, attrs);
            }
            catch (EngineException)
            {
                return null;
            }
        }

        private static DType[] Promoted(OpSchema schema, Val[] ins)
        {
            var dtypes = ins.Select(v => v.DType).ToArray();
            var promoted = Enumerable.Range(0, ins.Length).Where(i => IsPromoted(schema, i)).ToArray();
            if (promoted.Length < 2) return dtypes;
            var common = DTypes.ResultType(promoted.Select(i => (ins[i].DType, ins[i].Dims is { Length: 0 })));
            foreach (var i in promoted) dtypes[i] = common;
            return dtypes;
        }

        public void Reserve(long bytes, string what)
        {
            _reserved += bytes;
            if (bytes > options.FoldBytes || _reserved > options.FoldBytes)
            {
                var e = new EngineException(ErrorCodes.MemoryLimitExceeded,
                    $"{what} needs {bytes} bytes at import, bringing the import's constants to {_reserved}, over the limit of {options.FoldBytes}");
                e.Facts["limit_bytes"] = options.FoldBytes;
                throw e;
            }
        }

        private static bool IsPromoted(OpSchema schema, int i)
        {
            var specs = schema.Inputs;
            return i < specs.Count ? specs[i].Promoted : specs.Count > 0 && specs[^1].Variadic && specs[^1].Promoted;
        }

        public string Materialize(Val v)
        {
            if (v.Name is { } name) return name;
            name = Fresh();
            _constants[name] = v.Value!;
            v.Name = name;
            return name;
        }

        private void AddNode(GraphScope scope, Node node)
        {
            scope.Nodes.Add(node);
            foreach (var o in node.Outputs)
            {
                scope.Producer[o] = scope.Nodes.Count - 1;
                scope.Local.Add(o);
            }
        }

        private const string GeneratedPrefix = "~";

        public string Fresh()
        {
            string name;
            do name = GeneratedPrefix + (++_counter).ToString(System.Globalization.CultureInfo.InvariantCulture);
            while (!_names.Add(name));
            _guard.Name(name);
            return name;
        }

        /// <summary>The engine name for an ONNX name: itself, unless it reads as a number or could clash with a generated one.</summary>
        private static string SanitizedName(string onnx) =>
            onnx.Length == 0 || GraphLiterals.IsLiteral(onnx) || onnx.StartsWith(GeneratedPrefix, StringComparison.Ordinal) || onnx.StartsWith("onnx:", StringComparison.Ordinal)
                ? "onnx:" + onnx
                : onnx;

        private string Claim(string onnx)
        {
            var name = SanitizedName(onnx);
            if (!_names.Add(name)) throw OnnxErrors.Invalid($"the name '{onnx}' is defined twice (ONNX graphs are single-assignment)");
            _guard.Name(name);
            return name;
        }
    }
}

/// <summary>A value during import: its engine name (null for a constant not yet used by a node), type and, when known, contents.</summary>
internal sealed class Val(string? name, DType dtype, int[]? dims)
{
    public string? Name { get; set; } = name;
    public DType DType { get; } = dtype;

    /// <summary>Sizes (-1 = unknown), or null when even the rank is unknown.</summary>
    public int[]? Dims { get; } = dims;

    /// <summary>The contents when known at import (a constant, or a parameter's initial value).</summary>
    public HostTensor? Value { get; init; }

    /// <summary>Whether ops on it may be computed at import: true for constants, false for parameters.</summary>
    public bool Foldable { get; init; }

    public bool IsConst => Foldable && Value is not null;

    /// <summary>
    /// For an int64 scalar or vector computed at run time from a symbolic shape (Shape → Gather → Unsqueeze → Concat):
    /// each element known at import, null where it is a symbolic size. Reshape turns one unknown element into -1.
    /// </summary>
    public long?[]? Known { get; set; }

    public Shape? Shape => Dims is not null && Array.TrueForAll(Dims, d => d >= 0) ? new Shape(Dims) : null;

    public int? Rank => Dims?.Length;

    public static Val Of(HostTensor t) => new(null, t.DType, t.Shape.ToArray()) { Value = t, Foldable = true };
}

/// <summary>One graph being built: its values by ONNX name, its engine nodes, and which node made each engine value.</summary>
internal sealed class GraphScope
{
    public GraphScope(GraphScope? parent)
    {
        Parent = parent;
        Nodes = [];
        Producer = new(StringComparer.Ordinal);
        Local = new(StringComparer.Ordinal);
    }

    private GraphScope(GraphScope outer, bool _)
    {
        Parent = outer;
        Nodes = outer.Nodes;
        Producer = outer.Producer;
        Local = outer.Local;
    }

    /// <summary>A scope for an inlined subgraph: its own ONNX names, the outer graph's nodes.</summary>
    public GraphScope Inner() => new(this, true);

    public GraphScope? Parent { get; }
    public Dictionary<string, Val> Values { get; } = new(StringComparer.Ordinal);
    public List<Node> Nodes { get; }
    public Dictionary<string, int> Producer { get; }

    /// <summary>Engine names defined in this graph (inputs and node outputs), as opposed to read from outside.</summary>
    public HashSet<string> Local { get; }

    public Val? Lookup(string onnx) => Values.TryGetValue(onnx, out var v) ? v : Parent?.Lookup(onnx);
}

/// <summary>What converters need from the importer.</summary>
internal interface IImportContext
{
    long Opset { get; }
    Val Emit(GraphScope scope, string op, Attributes attrs, params Val[] ins);
    Val[] EmitControlFlow(GraphScope scope, string op, Val[] inputs, Attributes attrs, IReadOnlyList<(DType DType, int[]? Dims)> types);
    (Graph Graph, Val[] Outputs) Subgraph(GraphProto g, GraphScope parent, IReadOnlyList<Val>? loopInputs);
    Val[] Inline(GraphProto g, GraphScope scope);
    Val Fold(Op op, Attributes attrs, params Val[] ins);
    string Materialize(Val v);
    string Fresh();

    /// <summary>Counts bytes the import computes (tables, folded constants) against <see cref="OnnxImportOptions.FoldBytes"/>.</summary>
    void Reserve(long bytes, string what);
}
