using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.PyTorch;

/// <summary>Generators for movement, linear-algebra, neural-network and bookkeeping ops.</summary>
internal static partial class OpGenerators
{
    private static readonly string[] AxisNames = ["axis", "dim", "axes"];

    private static void AddMovement(Dictionary<string, OpGenerator> t)
    {
        t["reshape"] = (b, op) =>
        {
            var x = b.PickAny();
            var dims = RandomFactorization(b, (int)x.Shape.ElementCount);
            if (dims.Length > 0 && b.Rng.Next(3) == 0) dims[b.Rng.Next(dims.Length)] = -1;
            return b.Emit(op, [x], new CallAttrs().Set("shape", dims));
        };
        t["broadcast_to"] = (b, op) =>
        {
            var x = b.PickAny();
            var dims = x.Dims.Select(d => d == 1 ? (long)b.Rng.Next(1, 5) : d).ToList();
            if (x.Rank < 4 && b.Rng.Next(2) == 0) dims.Insert(0, b.Rng.Next(1, 4));
            return b.Emit(op, [x], new CallAttrs().Set("shape", dims.ToArray()));
        };
        t["transpose"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 2) ?? throw new RejectedException("no value of rank 2 or more");
            var perm = Enumerable.Range(0, x.Rank).Select(a => (long)a).OrderBy(_ => b.Rng.Next()).ToArray();
            return b.Emit(op, [x], new CallAttrs().Set("perm", perm, "perm", "axes", "dims"));
        };
        t["squeeze"] = (b, op) =>
        {
            var x = b.Pick(v => v.Dims.Contains(1)) ?? throw new RejectedException("no value with a size-1 axis");
            var ones = Enumerable.Range(0, x.Rank).Where(a => x.Dims[a] == 1).Select(a => (long)a).ToList();
            bool single = b.AttributeOf(op, "axes", "axis", "dims", "dim")?.Kind == AttrKind.Int;
            var axes = ones.Where(_ => b.Rng.Next(2) == 0).ToList();
            if (axes.Count == 0 || single) axes = [ones[b.Rng.Next(ones.Count)]];
            return b.Emit(op, [x], new CallAttrs().Set("axes", axes.ToArray(), "axes", "axis", "dims", "dim"));
        };
        t["unsqueeze"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank < 4) ?? throw new RejectedException("no value of rank below 4");
            long axis = b.Rng.Next(-(x.Rank + 1), x.Rank + 1);
            return b.Emit(op, [x], new CallAttrs().Set("axis", axis, "axis", "axes", "dim"));
        };
        t["concat"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1) ?? throw new RejectedException("no value of rank 1 or more");
            int axis = b.Rng.Next(x.Rank);
            var parts = new List<Value> { x };
            for (int n = b.Rng.Next(1, 3); n > 0; n--)
            {
                var fits = b.Pick(v => v != x && v.DType == x.DType && v.Rank == x.Rank &&
                    Enumerable.Range(0, x.Rank).All(a => a == axis || v.Dims[a] == x.Dims[a]));
                if (fits is not null && b.Rng.Next(3) != 0) parts.Add(fits);
                else if (b.Rng.Next(3) == 0) parts.Add(x);
                else
                {
                    var dims = x.Dims;
                    dims[axis] = b.Rng.Next(1, 4);
                    parts.Add(b.AddFloatInput(new Shape(dims)));
                }
            }
            return b.Emit(op, parts.ToArray(), new CallAttrs().Set("axis", (long)(axis - (b.Rng.Next(2) == 0 ? x.Rank : 0)), AxisNames));
        };
        t["stack"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank < 4) ?? throw new RejectedException("no value of rank below 4");
            var parts = new List<Value> { x };
            for (int n = b.Rng.Next(1, 3); n > 0; n--)
            {
                var same = b.Pick(v => v != x && v.DType == x.DType && v.Shape == x.Shape);
                parts.Add(same is not null && b.Rng.Next(3) != 0 ? same : b.Rng.Next(3) == 0 ? x : b.AddFloatInput(x.Shape));
            }
            long axis = b.Rng.Next(-(x.Rank + 1), x.Rank + 1);
            return b.Emit(op, parts.ToArray(), new CallAttrs().Set("axis", axis, AxisNames));
        };
        t["slice"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1 && v.Dims.Any(d => d > 1)) ?? throw new RejectedException("nothing to slice");
            bool single = b.SchemaOf(op) is { } s && s.Attributes.All(a => a.Name != "starts");
            var axes = Enumerable.Range(0, x.Rank).Where(a => x.Dims[a] > 1 && b.Rng.Next(2) == 0).ToList();
            if (axes.Count == 0 || single) axes = [Enumerable.Range(0, x.Rank).First(a => x.Dims[a] > 1)];
            var starts = axes.Select(a => (long)b.Rng.Next(x.Dims[a])).ToArray();
            var ends = axes.Select((a, k) => (long)b.Rng.Next((int)starts[k] + 1, x.Dims[a] + 1)).ToArray();
            var attrs = new CallAttrs();
            if (single)
            {
                attrs.EngineOnly("axis", (long)axes[0], AxisNames).EngineOnly("start", starts[0], "start", "begin").EngineOnly("end", ends[0], "end", "stop");
                attrs.Hint("axes", new[] { (long)axes[0] }).Hint("starts", starts).Hint("ends", ends);
            }
            else
            {
                attrs.Set("axes", axes.Select(a => (long)a).ToArray()).Set("starts", starts).Set("ends", ends, "stops", "ends");
            }
            return b.Emit(op, [x], attrs);
        };
        t["gather"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1) ?? throw new RejectedException("no value of rank 1 or more");
            int axis = b.Rng.Next(x.Rank);
            var indices = b.AddIndexInput(new Shape(b.Rng.Next(1, 6)), x.Dims[axis]);
            return b.Emit(op, [x, indices], new CallAttrs().Set("axis", (long)axis, AxisNames));
        };
        t["flatten"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1) ?? throw new RejectedException("no value of rank 1 or more");
            var attrs = new CallAttrs();
            var start = b.AttributeOf(op, "start_axis", "start_dim", "start");
            if (start is not null || b.SchemaOf(op) is null)
            {
                long s = b.Rng.Next(x.Rank);
                attrs.Set("start", s, start?.Name ?? "start");
                var end = b.AttributeOf(op, "end_axis", "end_dim", "end");
                if (end is not null || b.SchemaOf(op) is null)
                    attrs.Set("end", (long)b.Rng.Next((int)s, x.Rank), end?.Name ?? "end");
            }
            else if (b.AttributeOf(op, "axis") is not null)
            {
                attrs.Set("onnx_axis", (long)b.Rng.Next(x.Rank + 1), "axis");
            }
            return b.Emit(op, [x], attrs);
        };
    }

    private static void AddLinearAlgebra(Dictionary<string, OpGenerator> t)
    {
        t["dot"] = (b, op) =>
        {
            var x = Vector(b);
            var y = b.Pick(v => v != x && v.Rank == 1 && v.Dims[0] == x.Dims[0]) ?? (b.Rng.Next(3) == 0 ? x : b.AddFloatInput(x.Shape));
            return b.Emit(op, [x, y]);
        };
        t["outer"] = (b, op) =>
        {
            var x = Vector(b);
            var y = b.Rng.Next(3) == 0 ? x : b.Pick(v => v.Rank == 1) ?? b.AddFloatInput(new Shape(b.Rng.Next(1, 6)));
            return b.Emit(op, [x, y]);
        };
        t["matmul"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1) ?? throw new RejectedException("no value of rank 1 or more");
            int k = x.Dims[^1];
            var batch = x.Rank > 2 ? x.Dims[..^2] : [];
            var y = b.Pick(v => v.Rank == 1 ? v.Dims[0] == k
                : v.Rank >= 2 && v.Dims[^2] == k && Shape.TryBroadcast(new Shape(batch), new Shape(v.Dims[..^2])) is not null);
            if (y is null || b.Rng.Next(3) == 0)
            {
                int form = b.Rng.Next(3);
                int m = b.Rng.Next(1, 5);
                int[] dims = form == 0 ? [k] : form == 1 ? [k, m] : [.. batch.Length > 0 ? batch : [b.Rng.Next(1, 4)], k, m];
                y = b.AddFloatInput(new Shape(dims));
            }
            return b.Emit(op, [x, y]);
        };
    }

    private static void AddNeural(Dictionary<string, OpGenerator> t)
    {
        foreach (var op in new[] { "softmax", "log_softmax" })
            t[op] = (b, op) =>
            {
                var x = b.Pick(v => v.Rank >= 1) ?? throw new RejectedException("no value of rank 1 or more");
                long axis = b.Rng.Next(-x.Rank, x.Rank);
                return b.Emit(op, [x], new CallAttrs().Set("axis", axis, AxisNames));
            };
        t["cross_entropy"] = (b, op) =>
        {
            var x = b.Pick(v => v.Rank >= 1 && v.Dims[^1] > 1) ?? throw new RejectedException("no value with classes");
            var logits = x.Rank == 2 ? x : b.Emit("reshape", [x], new CallAttrs().Set("shape", new long[] { -1, x.Dims[^1] }));
            int n = logits.Dims[0], classes = logits.Dims[1];
            var schema = b.SchemaOf(op);
            bool indices = schema is null || schema.Inputs.Count < 2 || schema.Inputs[1].Domain == InputDomain.Index || !schema.Inputs[1].Differentiable;
            Value target;
            if (indices)
            {
                target = b.AddIndexInput(new Shape(n), classes);
            }
            else
            {
                // Soft targets: rows of positive weights summing to 1, held constant.
                var weights = new double[n * classes];
                for (int i = 0; i < weights.Length; i++) weights[i] = 0.1 + b.Rng.NextDouble();
                for (int r = 0; r < n; r++)
                {
                    double s = 0;
                    for (int c = 0; c < classes; c++) s += weights[r * classes + c];
                    for (int c = 0; c < classes; c++) weights[r * classes + c] /= s;
                }
                int next = 0;
                target = b.AddFloatInput(logits.Shape, wrt: false, sample: () => weights[next++]);
            }
            return b.Emit(op, [logits, target], new CallAttrs().Hint("reduction", "mean"));
        };
        t["mse_loss"] = (b, op) =>
        {
            var x = b.PickAny();
            var y = b.Pick(v => v != x && v.Shape == x.Shape && v.DType == x.DType) ?? b.AddFloatInput(x.Shape);
            return b.Rng.Next(2) == 0 ? b.Emit(op, [x, y], new CallAttrs().Hint("reduction", "mean"))
                : b.Emit(op, [y, x], new CallAttrs().Hint("reduction", "mean"));
        };
    }

    private static void AddOther(Dictionary<string, OpGenerator> t)
    {
        t["identity"] = (b, op) => b.Emit(op, [b.PickAny()]);
        t["detach"] = (b, op) => b.Emit(op, [b.PickAny()]);
        // Casting a float64 program down to float32 would make its float64 tolerance meaningless; only widen.
        t["cast"] = (b, op) => b.Emit(op, [b.PickAny()],
            new CallAttrs().Set("dtype", b.DType == DType.Float32 && b.Rng.Next(3) == 0 ? "float32" : "float64"));
    }

    /// <summary>A rank-1 value: one from the pool, or a value flattened by reshape.</summary>
    private static Value Vector(ProgramBuilder b) =>
        b.Pick(v => v.Rank == 1) ?? b.Emit("reshape", [b.PickAny()], new CallAttrs().Set("shape", new long[] { -1 }));

    /// <summary>A random shape of rank 0–4 with the given element count.</summary>
    private static long[] RandomFactorization(ProgramBuilder b, int count)
    {
        var dims = new List<long>();
        int left = count;
        for (int p = 2; p <= left; p++)
            while (left % p == 0)
            {
                dims.Add(p);
                left /= p;
            }
        // Merge random neighbours until at most 4 dims remain, then shuffle and sprinkle ones.
        while (dims.Count > 4 || (dims.Count > 1 && b.Rng.Next(3) == 0))
        {
            int i = b.Rng.Next(dims.Count - 1);
            dims[i] *= dims[i + 1];
            dims.RemoveAt(i + 1);
        }
        dims = dims.OrderBy(_ => b.Rng.Next()).ToList();
        while (dims.Count < 4 && b.Rng.Next(4) == 0) dims.Insert(b.Rng.Next(dims.Count + 1), 1);
        return dims.ToArray();
    }
}
