using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

public sealed partial record PlanEstimates
{
    /// <summary>
    /// Replays what <see cref="Interpreter"/> allocates and frees in an unrecorded run (evaluate), step for step:
    /// the caller's inputs resident; constants and number literals made at their first read and kept; fused
    /// elementwise regions charging only their root's value; each op's
    /// output charged unless it is a view (shares its input's bytes) or written over a dying input (same rules as
    /// the interpreter); promotion casts charged during their op; values freed after their last read, bytes shared
    /// by views freed when the last sharer goes; kept outputs never freed. Branches: every path through the
    /// <c>if</c> nodes is replayed (up to <see cref="MaxPaths"/>) and the dearest counts. Not modelled, so
    /// <see cref="Complete"/> is false: a composite op's inner values (counted as its output only, a lower bound
    /// while it runs), loops (cond, one body pass, cond), and unknown sizes or dtypes (counted as zero).
    /// </summary>
    private sealed class MemoryReplay
    {
        private const int MaxPaths = 64;

        private readonly bool[] _prefix;
        private readonly List<bool> _choices = [];
        private readonly Dictionary<HostTensor, Value> _constants = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<(long Bits, DType DType), Value> _literals = new();
        private long _live;
        private long _peak;
        private bool _complete = true;

        private MemoryReplay(bool[] prefix) => _prefix = prefix;

        /// <summary>The peak over every branch path, and whether the replay is exact.</summary>
        public static (long Peak, bool Complete) Peak(PlannedGraph root)
        {
            long peak = 0;
            bool complete = true;
            var pending = new Stack<bool[]>();
            pending.Push([]);
            for (int runs = 0; pending.TryPop(out var prefix); runs++)
            {
                if (runs == MaxPaths)
                {
                    complete = false; // too many paths: the dearest may be among those not tried
                    break;
                }
                var replay = new MemoryReplay(prefix);
                replay.Run(root);
                peak = Math.Max(peak, replay._peak);
                complete &= replay._complete;
                // Each choice taken by default (then) past the prefix has an untried alternative (else).
                for (int d = prefix.Length; d < replay._choices.Count; d++)
                    pending.Push([.. replay._choices.Take(d), !replay._choices[d]]);
            }
            return (peak, complete);
        }

        private sealed class Buffer(long bytes)
        {
            public long Bytes { get; } = bytes;
            public int Refs { get; set; } = 1;
        }

        /// <summary>A tensor of the run: its bytes (shared by views), and the interpreter's bookkeeping for it.</summary>
        private sealed class Value(Buffer buffer, InferredType type)
        {
            public Buffer Buffer { get; } = buffer;
            public InferredType Type { get; } = type;
            public bool Releasable { get; set; }
            public int Binds { get; set; }
        }

        private sealed class Frame(PlannedGraph graph, Frame? parent, Dictionary<string, int> remaining)
        {
            public PlannedGraph Graph { get; } = graph;
            public Frame? Parent { get; } = parent;
            public Dictionary<string, Value> Values { get; } = new(StringComparer.Ordinal);
            public Dictionary<string, int> Remaining { get; } = remaining;
        }

        private void Run(PlannedGraph root)
        {
            // The caller's inputs are in the scope before the run starts.
            var args = new Value[root.InputTypes.Count];
            for (int i = 0; i < args.Length; i++) args[i] = new Value(Charge(root.InputTypes[i]), root.InputTypes[i]);
            RunGraph(root, null, args, root.Liveness, root.Graph.Outputs);
        }

        private Value[] RunGraph(PlannedGraph g, Frame? parent, Value[] args, Liveness liveness, IReadOnlyList<string> results)
        {
            var remaining = new Dictionary<string, int>(liveness.Uses, StringComparer.Ordinal);
            var frame = new Frame(g, parent, remaining);
            for (int i = 0; i < args.Length; i++)
            {
                frame.Values[g.Graph.Inputs[i].Name] = args[i];
                Bind(args[i]);
            }
            var regions = ReferenceEquals(liveness, g.Liveness) ? g.Regions : null;
            for (int k = 0; k < g.Order.Count; k++)
            {
                if (!liveness.Needed[k] || regions?.IsDeferred(k) == true) continue;
                var node = g.Order[k];
                if (regions?.RootAt(k) is { } region)
                {
                    RunRegion(frame, region);
                    continue;
                }
                switch (node.Kind)
                {
                    case NodeKind.While: RunWhile(frame, node); break;
                    case NodeKind.If: RunIf(frame, node); break;
                    default: RunOp(frame, node); break;
                }
                ReadsDone(frame, node);
            }
            var output = new Value[results.Count];
            for (int i = 0; i < output.Length; i++)
            {
                output[i] = Lookup(frame, results[i]);
                Bind(output[i]);
            }
            foreach (var v in frame.Values.Values) Unbind(v);
            return output;
        }

        private void ReadsDone(Frame frame, PlannedNode node)
        {
            foreach (var name in Liveness.ReadsOf(node))
            {
                if (!frame.Remaining.TryGetValue(name, out int left) || !frame.Values.TryGetValue(name, out var v)) continue;
                frame.Remaining[name] = --left;
                if (left > 0) continue;
                frame.Values.Remove(name);
                Unbind(v);
            }
        }

        /// <summary>
        /// A fused region (<c>Interpreter.RunRegion</c>): when its planned inputs tile, only the root's value is charged
        /// (tile buffers belong to the workers' own scopes); otherwise its members one by one, at the root's position.
        /// </summary>
        private void RunRegion(Frame frame, ElementwiseRegion region)
        {
            var g = frame.Graph;
            var inputs = new Value[region.Inputs.Length];
            var types = new TensorType[inputs.Length];
            bool known = true;
            for (int i = 0; i < inputs.Length; i++)
            {
                inputs[i] = Lookup(frame, region.Inputs[i]);
                known &= inputs[i].Type.IsKnown;
                if (known) types[i] = inputs[i].Type.ToTensorType();
            }
            if (!known) _complete = false; // the run decides on actual sizes: replayed unfused
            if (known && RegionRunner.OutputType(types) is { } type)
            {
                var output = new Value(Charge(InferredType.From(type)), g.Order[region.Root].OutputTypes[0]) { Releasable = true };
                frame.Values[g.Order[region.Root].Outputs[0]] = output;
                Bind(output);
                foreach (int k in region.Members) ReadsDone(frame, g.Order[k]);
                return;
            }
            foreach (int k in region.Members)
            {
                RunOp(frame, g.Order[k]);
                ReadsDone(frame, g.Order[k]);
            }
        }

        private void RunOp(Frame frame, PlannedNode node)
        {
            var inputs = ResolveInputs(frame, node);
            var op = node.Op!;
            var type = node.OutputTypes[0];
            Buffer buffer;
            if (op is ViewOp)
            {
                buffer = inputs[0].Buffer;
                buffer.Refs++;
            }
            else
            {
                var casts = PromotionCasts(op.Schema, inputs);
                if (FindReusable(frame, node, inputs, type) is { } reuse)
                {
                    buffer = reuse.Buffer;
                    buffer.Refs++;
                }
                else
                {
                    buffer = Charge(type);
                }
                if (op is CompositeOp) _complete = false; // its inner values come and go unseen
                foreach (var cast in casts) Drop(cast);
            }
            var output = new Value(buffer, type) { Releasable = true };
            frame.Values[node.Outputs[0]] = output;
            Bind(output);
        }

        /// <summary>The interpreter's choice (<c>Interpreter.FindReusable</c>) on planned types.</summary>
        private static Value? FindReusable(Frame frame, PlannedNode node, Value[] inputs, InferredType type)
        {
            if (node.Op is not PrimitiveOp { Schema.InPlaceSafe: true }) return null;
            foreach (var v in inputs)
                if (v.Type.DType != inputs[0].Type.DType) return null; // promoted: no reuse
            for (int i = 0; i < inputs.Length; i++)
            {
                var v = inputs[i];
                var name = node.Inputs[i];
                if (node.Literals[i] is not null || !v.Releasable || v.Binds != 1 || v.Buffer.Refs != 1) continue;
                if (!frame.Values.TryGetValue(name, out var bound) || !ReferenceEquals(bound, v)) continue;
                int reads = 0;
                for (int j = 0; j < node.Inputs.Count; j++)
                    if (node.Literals[j] is null && node.Inputs[j] == name) reads++;
                if (frame.Remaining.GetValueOrDefault(name) != reads) continue;
                if (v.Type.IsKnown && v.Type.Equals(type)) return v;
            }
            return null;
        }

        /// <summary>The casts the dispatcher makes when promoted inputs' dtypes differ (freed when the op returns).</summary>
        private List<Buffer> PromotionCasts(OpSchema schema, Value[] inputs)
        {
            var operands = new List<(DType, bool)>();
            bool differ = false;
            for (int i = 0; i < inputs.Length; i++)
            {
                if (!GraphLiterals.SpecAt(schema, i).Promoted) continue;
                var t = inputs[i].Type;
                if (t.DType is not { } d || t.Rank is not { } rank)
                {
                    _complete = false;
                    return [];
                }
                differ |= operands.Count > 0 && d != operands[0].Item1;
                operands.Add((d, rank == 0));
            }
            if (!differ) return [];
            var common = DTypes.ResultType(operands);
            var casts = new List<Buffer>();
            for (int i = 0; i < inputs.Length; i++)
            {
                var t = inputs[i].Type;
                if (!GraphLiterals.SpecAt(schema, i).Promoted || t.DType == common) continue;
                casts.Add(Charge(new InferredType(common, t.Dims)));
            }
            return casts;
        }

        private void RunIf(Frame frame, PlannedNode node)
        {
            var inputs = ResolveInputs(frame, node);
            int choice = _choices.Count;
            bool then = choice < _prefix.Length ? _prefix[choice] : true;
            _choices.Add(then);
            var branch = then ? node.Then! : node.Else!;
            var results = RunGraph(branch, frame, inputs[1..], branch.Liveness, branch.Graph.Outputs);
            for (int j = 0; j < results.Length; j++) frame.Values[node.Outputs[j]] = results[j];
        }

        private void RunWhile(Frame frame, PlannedNode node)
        {
            _complete = false; // the trip count is known only at run time: cond, one body pass, cond
            var carried = ResolveInputs(frame, node);
            foreach (var v in carried) Bind(v);
            for (int pass = 0; ; pass++)
            {
                Unbind(RunGraph(node.Cond!, frame, carried, node.Cond!.Liveness, node.Cond!.Graph.Outputs)[0]);
                if (pass == 1) break;
                var next = RunGraph(node.Body!, frame, carried, node.Body!.Liveness, node.Body!.Graph.Outputs);
                foreach (var v in carried) Unbind(v);
                carried = next;
            }
            for (int j = 0; j < carried.Length; j++) frame.Values[node.Outputs[j]] = carried[j];
        }

        private Value[] ResolveInputs(Frame frame, PlannedNode node)
        {
            int n = node.Inputs.Count;
            var values = new Value[n];
            bool dtypesKnown = true;
            for (int i = 0; i < n; i++)
            {
                if (node.Literals[i] is not null) continue;
                values[i] = Lookup(frame, node.Inputs[i]);
                dtypesKnown &= values[i].Type.DType is not null;
            }
            for (int i = 0; i < n; i++)
            {
                if (node.Literals[i] is not { } literal) continue;
                // A literal takes its siblings' dtype: known here only when theirs are.
                if (!dtypesKnown) _complete = false;
                values[i] = Literal(literal, node.InputTypes[i].DType ?? DType.Float32);
            }
            return values;
        }

        private Value Lookup(Frame frame, string name)
        {
            for (var f = frame; f is not null; f = f.Parent)
            {
                if (f.Values.TryGetValue(name, out var v)) return v;
                if (f.Graph.Graph.ConstantValues.TryGetValue(name, out var host))
                {
                    if (!_constants.TryGetValue(host, out v))
                    {
                        var type = InferredType.From(host.Type);
                        _constants[host] = v = new Value(Charge(type), type);
                    }
                    f.Values[name] = v;
                    Bind(v);
                    return v;
                }
            }
            _complete = false; // validation rules this out
            return new Value(new Buffer(0), InferredType.Unknown);
        }

        private Value Literal(double value, DType dtype)
        {
            var key = (BitConverter.DoubleToInt64Bits(value), dtype);
            if (!_literals.TryGetValue(key, out var v))
            {
                var type = new InferredType(dtype, []);
                _literals[key] = v = new Value(Charge(type), type);
            }
            return v;
        }

        private Buffer Charge(InferredType type)
        {
            long bytes = 0;
            if (type.ByteCount is { } b) bytes = b;
            else _complete = false;
            _live += bytes;
            _peak = Math.Max(_peak, _live);
            return new Buffer(bytes);
        }

        private void Drop(Buffer buffer)
        {
            if (--buffer.Refs == 0) _live -= buffer.Bytes;
        }

        private static void Bind(Value v) => v.Binds++;

        private void Unbind(Value v)
        {
            if (v.Binds == 0) return;
            if (--v.Binds > 0 || !v.Releasable) return;
            v.Releasable = false;
            Drop(v.Buffer);
        }
    }
}
