using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.PyTorch;

/// <summary>Adds one call of <c>op</c> (plus any steps that prepare its operands) to the program; returns its value.</summary>
internal delegate Value OpGenerator(ProgramBuilder b, string op);

/// <summary>
/// How to call each op validly at random, keyed by op name. An op takes part in the differential test as soon as it
/// is registered in the engine and has an entry here. Entries pick operands from the values so far (or add inputs),
/// keep arguments in the op's smooth domain and away from kinks by looking at the actual values, and reject (so
/// another op is tried) when they cannot. This file: elementwise ops and reductions; OpGenerators.Shapes.cs: the rest.
/// </summary>
internal static partial class OpGenerators
{
    public static IReadOnlyDictionary<string, OpGenerator> Table { get; } = Build();

    private static Dictionary<string, OpGenerator> Build()
    {
        var t = new Dictionary<string, OpGenerator>(StringComparer.Ordinal);
        AddElementwise(t);
        AddReductions(t);
        AddMovement(t);
        AddLinearAlgebra(t);
        AddNeural(t);
        AddOther(t);
        return t;
    }

    private static void AddElementwise(Dictionary<string, OpGenerator> t)
    {
        foreach (var op in new[] { "neg", "square", "sin", "cos" })
            t[op] = Unary((b, x) => x);
        // Where tanh and sigmoid saturate their derivatives come from cancellation (1 − y²), so rounding differences
        // of one ulp in y decide the digits: keep them out of that region.
        t["tanh"] = Unary((b, x) => b.Bounded(x, 3));
        t["sigmoid"] = Unary((b, x) => b.Bounded(x, 6));
        t["exp"] = Unary((b, x) => b.Bounded(x, 3));
        t["expm1"] = Unary((b, x) => b.Bounded(x, 3));
        t["log"] = Unary((b, x) => b.Positive(x));
        t["log1p"] = Unary((b, x) => b.Positive(x));
        t["sqrt"] = Unary((b, x) => b.Positive(x));
        t["rsqrt"] = Unary((b, x) => b.Positive(x));
        t["reciprocal"] = Unary((b, x) => b.AwayFromZero(x));
        // tan's poles are at ±π/2.
        t["tan"] = Unary((b, x) => b.Bounded(x, 1.2));
        // PyTorch's softplus returns x itself above 20 (its threshold); stay below, where both compute log1p(exp(x)).
        t["softplus"] = Unary((b, x) => b.Bounded(x, 15));
        t["erf"] = Unary((b, x) => b.Bounded(x, 3));
        foreach (var op in new[] { "abs", "relu", "sign" })
            t[op] = Unary((b, x) => AwayFromKink(b, x));

        foreach (var op in new[] { "add", "sub", "mul" })
            t[op] = (b, op) => Binary(b, op, b.PickAny(), (b, p) => p);
        t["div"] = (b, op) => Binary(b, op, b.PickAny(), (b, p) => p is Value v ? b.AwayFromZero(v) : p);
        t["pow"] = (b, op) =>
        {
            var x = b.Positive(b.PickAny(), 0.2);
            if (b.Rng.Next(2) == 0) return b.Emit(op, [x, Pick(b, 2.0, 3.0, 0.5, -1.0, 1.5, -0.5, -2.0)]);
            return Binary(b, op, x, (b, p) => p is Value v ? b.Bounded(v, 2) : p, literalFirst: false);
        };
        foreach (var op in new[] { "maximum", "minimum" })
            t[op] = (b, op) =>
            {
                var x = b.PickAny();
                var partner = b.Partner(x, p => MinAbsDiff(x, p) >= ProgramBuilder.KinkMargin);
                object other = partner is not null && b.Rng.Next(4) != 0 ? partner : Literal(b, x);
                return b.Rng.Next(2) == 0 ? b.Emit(op, [x, other]) : b.Emit(op, [other, x]);
            };
        t["where"] = (b, op) =>
        {
            var x = b.PickAny();
            var other = b.Partner(x) ?? b.AddFloatInput(b.CompatibleShape(x.Shape));
            var cond = b.AddBoolInput(b.CompatibleShape(Shape.Broadcast(x.Shape, other.Shape)));
            return b.Rng.Next(2) == 0 ? b.Emit(op, [cond, x, other]) : b.Emit(op, [cond, other, x]);
        };
    }

    private static void AddReductions(Dictionary<string, OpGenerator> t)
    {
        foreach (var op in new[] { "sum", "mean", "logsumexp" })
            t[op] = (b, op) => { var x = b.PickAny(); return b.Emit(op, [x], ReduceAttrs(b, x.Rank)); };

        t["prod"] = (b, op) =>
        {
            var x = b.AwayFromZero(b.PickAny(), 0.3);
            var attrs = ReduceAttrs(b, x.Rank);
            // Long products leave the range where float32 comparisons mean something.
            if (Groups.Size(x.Shape, Axes(attrs)) > 8) throw new RejectedException("prod over too many elements");
            return b.Emit(op, [x], attrs);
        };

        foreach (var op in new[] { "max", "min" })
            t[op] = (b, op) =>
            {
                var x = b.PickAny();
                var attrs = ReduceAttrs(b, x.Rank);
                double[] data = op == "max" ? x.Data : Array.ConvertAll(x.Data, v => -v);
                if (Groups.TopGap(x.Shape, Axes(attrs), data) < ProgramBuilder.KinkMargin) throw new RejectedException($"{op} has a near tie");
                return b.Emit(op, [x], attrs);
            };

        t["norm"] = (b, op) =>
        {
            var x = b.PickAny();
            var attrs = ReduceAttrs(b, x.Rank);
            double ord = Pick(b, 2.0, 2.0, 1.0, double.PositiveInfinity);
            var axes = Axes(attrs);
            if (ord == 1) x = AwayFromKink(b, x);
            var abs = Array.ConvertAll(x.Data, Math.Abs);
            if (ord == 2 && Groups.Norms(x.Shape, axes, x.Data).Min() < ProgramBuilder.KinkMargin)
                throw new RejectedException("norm of a near-zero group");
            if (double.IsInfinity(ord) && (Groups.TopGap(x.Shape, axes, abs) < ProgramBuilder.KinkMargin || abs.Min() < ProgramBuilder.KinkMargin))
                throw new RejectedException("inf-norm has a near tie or zero");
            return b.Emit(op, [x], attrs.Set("ord", ord));
        };
    }

    // ---- shared pieces ----

    private static OpGenerator Unary(Func<ProgramBuilder, Value, Value> prepare) =>
        (b, op) => b.Emit(op, [prepare(b, b.PickAny())]);

    /// <summary>
    /// A two-input call: the partner is a literal, a broadcast-compatible value, or a new input of a compatible
    /// shape; <paramref name="prepare"/> adapts it (e.g. away from zero for a divisor). Operands are sometimes swapped.
    /// </summary>
    private static Value Binary(ProgramBuilder b, string op, Value x, Func<ProgramBuilder, object, object> prepare, bool literalFirst = true)
    {
        int roll = b.Rng.Next(10);
        object partner = roll < 2 ? Literal(b, null)
            : roll < 7 && b.Partner(x) is { } p ? p
            : b.AddFloatInput(b.CompatibleShape(x.Shape));
        partner = prepare(b, partner);
        bool swap = b.Rng.Next(2) == 0 && (literalFirst || partner is Value) && op != "pow";
        if (op == "div" && swap && x.MinAbs() < 0.2) swap = false;
        return swap ? b.Emit(op, [partner, x]) : b.Emit(op, [x, partner]);
    }

    /// <summary>A literal in ±[0.5, 2], chosen (when <paramref name="avoid"/> is given) at least the kink margin from its values.</summary>
    private static double Literal(ProgramBuilder b, Value? avoid)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            double c = Math.Round(b.RandomValue(), 2);
            if (avoid is null || avoid.Data.All(v => Math.Abs(v - c) >= ProgramBuilder.KinkMargin)) return c;
        }
        throw new RejectedException("no literal away from the values");
    }

    /// <summary>x when it keeps clear of 0; else x shifted by a literal that keeps it clear.</summary>
    public static Value AwayFromKink(ProgramBuilder b, Value x)
    {
        if (x.MinAbs() >= ProgramBuilder.KinkMargin) return x;
        for (int attempt = 0; attempt < 20; attempt++)
        {
            double c = Math.Round(2 * b.Rng.NextDouble() - 1, 2);
            if (x.Data.All(v => Math.Abs(v + c) >= ProgramBuilder.KinkMargin)) return b.Emit("add", [x, c]);
        }
        throw new RejectedException($"{x.Name} cannot be moved away from 0");
    }

    private static T Pick<T>(ProgramBuilder b, params T[] options) => options[b.Rng.Next(options.Length)];

    private static CallAttrs ReduceAttrs(ProgramBuilder b, int rank)
    {
        var attrs = new CallAttrs();
        if (b.RandomAxes(rank) is { } axes) attrs.Set("axes", axes);
        return attrs.Set("keepdims", b.Rng.Next(2) == 0);
    }

    private static long[]? Axes(CallAttrs attrs) => attrs.Canonical.TryGetValue("axes", out var a) ? (long[])a : null;

    /// <summary>The smallest |a - b| over the broadcast of the two values.</summary>
    private static double MinAbsDiff(Value a, Value b)
    {
        double min = double.PositiveInfinity;
        foreach (var (i, j) in Groups.BroadcastPairs(a.Shape, b.Shape))
            min = Math.Min(min, Math.Abs(a.Data[i] - b.Data[j]));
        return min;
    }
}

/// <summary>Index arithmetic for the generators' checks: reduction groups and broadcast element pairs.</summary>
internal static class Groups
{
    /// <summary>For each element, the index of the reduction group it falls in (axes null = all).</summary>
    public static int[] Of(Shape shape, long[]? axes, out int count)
    {
        int rank = shape.Rank;
        var reduced = new bool[rank];
        for (int a = 0; a < rank; a++) reduced[a] = axes is null || axes.Any(x => (x % rank + rank) % rank == a);
        var dims = shape.ToArray();
        var result = new int[shape.ElementCount];
        var index = new int[rank];
        count = 1;
        for (int a = 0; a < rank; a++) if (!reduced[a]) count *= dims[a];
        for (int flat = 0; flat < result.Length; flat++)
        {
            int g = 0;
            for (int a = 0; a < rank; a++) if (!reduced[a]) g = g * dims[a] + index[a];
            result[flat] = g;
            for (int a = rank - 1; a >= 0 && ++index[a] == dims[a]; a--) index[a] = 0;
        }
        return result;
    }

    public static long Size(Shape shape, long[]? axes)
    {
        Of(shape, axes, out int count);
        return count == 0 ? 0 : shape.ElementCount / count;
    }

    /// <summary>The smallest gap between the largest and second-largest value of any group (infinite for singletons).</summary>
    public static double TopGap(Shape shape, long[]? axes, double[] data)
    {
        var groups = Of(shape, axes, out int count);
        var first = Enumerable.Repeat(double.NegativeInfinity, count).ToArray();
        var second = (double[])first.Clone();
        for (int i = 0; i < data.Length; i++)
        {
            int g = groups[i];
            if (data[i] > first[g]) (second[g], first[g]) = (first[g], data[i]);
            else if (data[i] > second[g]) second[g] = data[i];
        }
        double gap = double.PositiveInfinity;
        for (int g = 0; g < count; g++) gap = Math.Min(gap, first[g] - second[g]);
        return gap;
    }

    public static double[] Norms(Shape shape, long[]? axes, double[] data)
    {
        var groups = Of(shape, axes, out int count);
        var sums = new double[count];
        for (int i = 0; i < data.Length; i++) sums[groups[i]] += data[i] * data[i];
        return Array.ConvertAll(sums, Math.Sqrt);
    }

    /// <summary>Flat indices (into a, into b) of each element of their broadcast.</summary>
    public static IEnumerable<(int A, int B)> BroadcastPairs(Shape a, Shape b)
    {
        var o = Shape.Broadcast(a, b);
        int rank = o.Rank;
        var od = o.ToArray();
        int[] Strides(Shape s)
        {
            var st = new int[rank];
            int acc = 1;
            for (int k = rank - 1; k >= 0; k--)
            {
                int si = k - (rank - s.Rank);
                int d = si >= 0 ? s[si] : 1;
                st[k] = d == 1 ? 0 : acc;
                acc *= d;
            }
            return st;
        }
        var sa = Strides(a);
        var sb = Strides(b);
        var index = new int[rank];
        for (long flat = 0; flat < o.ElementCount; flat++)
        {
            int ia = 0, ib = 0;
            for (int k = 0; k < rank; k++)
            {
                ia += index[k] * sa[k];
                ib += index[k] * sb[k];
            }
            yield return (ia, ib);
            for (int k = rank - 1; k >= 0 && ++index[k] == od[k]; k--) index[k] = 0;
        }
    }
}
