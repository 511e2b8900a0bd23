using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

/// <summary>
/// A content hash of a graph: SHA-256 over a canonical serialization of its inputs, nodes (in the given order),
/// attributes (sorted by name), outputs and constants (sorted by name, raw little-endian bytes), subgraphs included.
/// Equal content gives equal hashes whatever object holds it, so the plan cache recognises a graph a client sends
/// again. Graphs are treated as immutable: a graph object's hash is remembered.
/// </summary>
public static class GraphHash
{
    private static readonly ConditionalWeakTable<Graph, string> Remembered = new();

    /// <summary>Lower-case hex SHA-256.</summary>
    public static string Compute(Graph graph)
    {
        if (Remembered.TryGetValue(graph, out var known)) return known;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var writer = new Writer(sha);
        writer.Graph(graph, 0);
        var hash = Convert.ToHexStringLower(sha.GetHashAndReset());
        Remembered.AddOrUpdate(graph, hash);
        return hash;
    }

    private sealed class Writer(IncrementalHash sha)
    {
        private readonly byte[] _scratch = new byte[8];

        public void Graph(Graph g, int depth)
        {
            if (depth > GraphLimits.MaxSubgraphDepth) throw GraphLimits.NestedTooDeep();
            Tag('G');
            Int(g.Inputs?.Count ?? -1);
            foreach (var p in g.Inputs ?? [])
            {
                String(p?.Name);
                Int(p is null ? -1 : (int)p.DType);
                Int(p?.AnyDType == true ? 1 : 0);
                Ints(p?.Shape);
            }
            Int(g.Nodes?.Count ?? -1);
            foreach (var n in g.Nodes ?? [])
            {
                Tag('N');
                String(n?.Op?.ToLowerInvariant());
                String(n?.Name);
                Strings(n?.Inputs);
                Strings(n?.Outputs);
                var attrs = n?.Attributes ?? Attributes.Empty;
                Int(attrs.Count);
                foreach (var key in attrs.Keys.Order(StringComparer.Ordinal))
                {
                    String(key);
                    Attr(attrs[key], depth);
                }
            }
            Strings(g.Outputs);
            var constants = g.ConstantValues;
            Int(constants.Count);
            foreach (var key in constants.Keys.Order(StringComparer.Ordinal))
            {
                String(key);
                Tensor(constants[key]);
            }
        }

        private void Attr(AttrValue v, int depth)
        {
            Int((int)v.Kind);
            switch (v.Value)
            {
                case long l: Long(l); break;
                case double d: Long(BitConverter.DoubleToInt64Bits(d)); break;
                case bool b: Int(b ? 1 : 0); break;
                case string s: String(s); break;
                case long[] ls: Int(ls.Length); foreach (var l in ls) Long(l); break;
                case double[] ds: Int(ds.Length); foreach (var d in ds) Long(BitConverter.DoubleToInt64Bits(d)); break;
                case HostTensor t: Tensor(t); break;
                case Graph g: Graph(g, depth + 1); break;
                default: String(v.Value?.ToString()); break;
            }
        }

        private void Tensor(HostTensor? t)
        {
            if (t is null)
            {
                Int(-1);
                return;
            }
            Int((int)t.DType);
            Ints(t.Shape.ToArray());
            var bytes = t.Data switch
            {
                float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
                double[] d => MemoryMarshal.AsBytes(d.AsSpan()),
                long[] l => MemoryMarshal.AsBytes(l.AsSpan()),
                bool[] b => MemoryMarshal.AsBytes(b.AsSpan()),
                _ => [],
            };
            Long(bytes.Length);
            // Tensor data is little-endian on every platform .NET runs on here; hash it as it lies.
            sha.AppendData(bytes);
        }

        private void Tag(char c) => Int(c);

        private void Int(int v)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_scratch, v);
            sha.AppendData(_scratch, 0, 4);
        }

        private void Long(long v)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_scratch, v);
            sha.AppendData(_scratch, 0, 8);
        }

        private void String(string? s)
        {
            if (s is null)
            {
                Int(-1);
                return;
            }
            var bytes = Encoding.UTF8.GetBytes(s);
            Int(bytes.Length);
            sha.AppendData(bytes);
        }

        private void Strings(IReadOnlyList<string>? list)
        {
            Int(list?.Count ?? -1);
            foreach (var s in list ?? []) String(s);
        }

        private void Ints(IReadOnlyList<int>? list)
        {
            Int(list?.Count ?? -1);
            foreach (var d in list ?? []) Int(d);
        }
    }
}
