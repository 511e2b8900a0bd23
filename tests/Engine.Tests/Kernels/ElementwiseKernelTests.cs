using System.Runtime.Intrinsics;
using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Kernels.KernelReference;

namespace AutogradService.Engine.Tests.Kernels;

/// <summary>
/// Every elementwise kernel against a scalar double reference, for every length from 0 to three 512-bit vectors
/// plus one, so the vector bodies and all the tail paths run; binary kernels also in each broadcast pattern the
/// shared loop specialises (scalar, row, column, outer, middle).
/// </summary>
public class ElementwiseKernelTests
{
    private static readonly int MaxLength = 3 * Vector512<float>.Count + 1;
    private static readonly IBackend Cpu = CpuBackend.Instance;

    public static IEnumerable<object[]> FloatUnary() =>
        from k in Enum.GetValues<UnaryKernel>()
        where k != UnaryKernel.LogicalNot
        from d in new[] { DType.Float32, DType.Float64 }
        select new object[] { k, d };

    public static IEnumerable<object[]> Binary() =>
        from k in Enum.GetValues<BinaryKernel>()
        from d in new[] { DType.Float32, DType.Float64, DType.Int64, DType.Bool }
        where Supported(k, d)
        select new object[] { k, d };

    private static bool Supported(BinaryKernel k, DType d) => d switch
    {
        DType.Bool => k is BinaryKernel.LogicalAnd or BinaryKernel.LogicalOr or BinaryKernel.Eq or BinaryKernel.Ne,
        DType.Int64 => k is not (BinaryKernel.Div or BinaryKernel.Pow or BinaryKernel.LogicalAnd or BinaryKernel.LogicalOr),
        _ => k is not (BinaryKernel.LogicalAnd or BinaryKernel.LogicalOr),
    };

    [Theory]
    [MemberData(nameof(FloatUnary))]
    public void UnaryMatchesReference(UnaryKernel kernel, DType dtype)
    {
        var random = new Random(1000 + (int)kernel * 7 + (int)dtype);
        using var scope = new ExecutionScope();
        for (int n = 0; n <= MaxLength; n++)
        {
            var xs = new double[n];
            for (int i = 0; i < n; i++) xs[i] = Representable(dtype, UnaryInput(kernel, random));
            var output = scope.Allocate(Shape.Vector(n), dtype);
            Cpu.Unary(kernel, Make(scope, dtype, Shape.Vector(n), xs), output);
            var ys = output.ToDoubles();
            for (int i = 0; i < n; i++)
                Close(UnaryReference(kernel, xs[i]), ys[i], dtype, $"{kernel}({xs[i]:R}) at length {n}");
        }
    }

    [Theory]
    [InlineData(UnaryKernel.Neg)]
    [InlineData(UnaryKernel.Abs)]
    [InlineData(UnaryKernel.Square)]
    [InlineData(UnaryKernel.Sign)]
    [InlineData(UnaryKernel.Relu)]
    public void Int64UnaryMatchesReference(UnaryKernel kernel)
    {
        var random = new Random((int)kernel);
        using var scope = new ExecutionScope();
        for (int n = 0; n <= MaxLength; n++)
        {
            var xs = new long[n];
            for (int i = 0; i < n; i++) xs[i] = random.Next(-1000, 1001);
            var output = scope.Allocate(Shape.Vector(n), DType.Int64);
            Cpu.Unary(kernel, scope.FromSpan<long>(xs), output);
            var ys = output.ToArray<long>();
            for (int i = 0; i < n; i++) Assert.Equal((long)UnaryReference(kernel, xs[i]), ys[i]);
        }
    }

    /// <summary>At the edges int64 arithmetic wraps as in PyTorch and NumPy (two's complement), and never throws.</summary>
    [Fact]
    public void Int64UnaryAtTheEdges_WrapsLikeTwosComplement()
    {
        using var scope = new ExecutionScope();
        long[] x = [long.MinValue, long.MaxValue, -1, 0];
        long[] Run(UnaryKernel kernel)
        {
            var output = scope.Allocate(Shape.Vector(x.Length), DType.Int64);
            Cpu.Unary(kernel, scope.FromSpan<long>(x), output);
            return output.ToArray<long>();
        }
        Assert.Equal([long.MinValue, long.MaxValue, 1, 0], Run(UnaryKernel.Abs));
        Assert.Equal([long.MinValue, long.MinValue + 1, 1, 0], Run(UnaryKernel.Neg));
        Assert.Equal([0, 1, 1, 0], Run(UnaryKernel.Square));
        Assert.Equal([-1, 1, -1, 0], Run(UnaryKernel.Sign));
    }

    [Fact]
    public void LogicalNotMatchesReference()
    {
        var random = new Random(3);
        using var scope = new ExecutionScope();
        for (int n = 0; n <= MaxLength; n++)
        {
            var xs = new bool[n];
            for (int i = 0; i < n; i++) xs[i] = random.Next(2) == 1;
            var output = scope.Allocate(Shape.Vector(n), DType.Bool);
            Cpu.Unary(UnaryKernel.LogicalNot, scope.FromSpan<bool>(xs), output);
            Assert.Equal(xs.Select(b => !b).ToArray(), output.ToArray<bool>());
        }
    }

    [Theory]
    [MemberData(nameof(Binary))]
    public void BinaryMatchesReferenceInEveryBroadcastPattern(BinaryKernel kernel, DType dtype)
    {
        var random = new Random(2000 + (int)kernel * 7 + (int)dtype);
        using var scope = new ExecutionScope();
        for (int n = 0; n <= MaxLength; n++)
        {
            foreach (var (sa, sb) in Patterns(n))
                CheckBinary(scope, random, kernel, dtype, new Shape(sa), new Shape(sb));
        }
    }

    /// <summary>Shape pairs covering each way the broadcast loop can cut blocks.</summary>
    private static IEnumerable<(int[], int[])> Patterns(int n)
    {
        yield return ([n], [n]);            // same shape: one contiguous block
        yield return ([n], []);             // scalar b
        yield return ([], [n]);             // scalar a
        yield return ([3, n], [n]);         // row broadcast of b
        yield return ([n], [3, n]);         // row broadcast of a
        yield return ([n, 3], [n, 1]);      // column broadcast of b
        yield return ([n, 1], [n, 3]);      // column broadcast of a
        yield return ([n, 1], [1, 3]);      // outer
        yield return ([2, n, 3], [2, 1, 3]); // a broadcast axis in the middle
        if (n == 0) yield return ([], []);
    }

    private static void CheckBinary(ExecutionScope scope, Random random, BinaryKernel kernel, DType dtype, Shape sa, Shape sb)
    {
        var xa = new double[sa.ElementCount];
        var xb = new double[sb.ElementCount];
        for (int i = 0; i < xa.Length; i++) xa[i] = Representable(dtype, BinaryInput(kernel, dtype, random, first: true));
        for (int i = 0; i < xb.Length; i++) xb[i] = Representable(dtype, BinaryInput(kernel, dtype, random, first: false));
        var shape = Shape.Broadcast(sa, sb);
        bool predicate = kernel >= BinaryKernel.Eq;
        var output = scope.Allocate(shape, predicate ? DType.Bool : dtype);
        Cpu.Binary(kernel, Make(scope, dtype, sa, xa), Make(scope, dtype, sb, xb), output);
        var ys = output.ToDoubles();
        for (long i = 0; i < ys.Length; i++)
        {
            double a = xa[BroadcastIndex(shape, sa, i)], b = xb[BroadcastIndex(shape, sb, i)];
            double expected = Representable(predicate ? DType.Bool : dtype, BinaryReference(kernel, a, b));
            Close(expected, ys[i], predicate ? DType.Bool : dtype, $"{kernel}({a:R}, {b:R}) for {sa} and {sb}, element {i}");
        }
    }

    private static double UnaryInput(UnaryKernel kernel, Random random)
    {
        double u = random.NextDouble();
        return kernel switch
        {
            UnaryKernel.Log or UnaryKernel.Sqrt or UnaryKernel.Rsqrt => 0.01 + 10 * u,
            UnaryKernel.Log1p => -0.9 + 10 * u,
            UnaryKernel.Reciprocal => (0.1 + 10 * u) * (random.Next(2) == 1 ? 1 : -1),
            UnaryKernel.Tan => -1.4 + 2.8 * u,
            UnaryKernel.Exp or UnaryKernel.Expm1 => -10 + 20 * u,
            // Exact zeros exercise the kinks of abs, relu and sign.
            UnaryKernel.Abs or UnaryKernel.Relu or UnaryKernel.Sign => random.Next(5) == 0 ? 0 : -6 + 12 * u,
            _ => -6 + 12 * u,
        };
    }

    private static double BinaryInput(BinaryKernel kernel, DType dtype, Random random, bool first)
    {
        if (dtype == DType.Bool) return random.Next(2);
        if (dtype == DType.Int64) return random.Next(-3, 4);
        double u = random.NextDouble();
        return kernel switch
        {
            BinaryKernel.Pow => first ? 0.5 + 1.5 * u : -2 + 4 * u,
            BinaryKernel.Div when !first => (0.5 + 1.5 * u) * (random.Next(2) == 1 ? 1 : -1),
            // A few distinct values, so comparisons and max/min meet ties.
            BinaryKernel.Add or BinaryKernel.Sub or BinaryKernel.Mul or BinaryKernel.Div => -6 + 12 * u,
            _ => (random.Next(5) - 2) * 0.5,
        };
    }

    internal static double UnaryReference(UnaryKernel kernel, double x) => kernel switch
    {
        UnaryKernel.Neg => -x,
        UnaryKernel.Abs => Math.Abs(x),
        UnaryKernel.Exp => Math.Exp(x),
        UnaryKernel.Log => Math.Log(x),
        UnaryKernel.Log1p => Log1p(x),
        UnaryKernel.Expm1 => Expm1(x),
        UnaryKernel.Sqrt => Math.Sqrt(x),
        UnaryKernel.Rsqrt => 1 / Math.Sqrt(x),
        UnaryKernel.Square => x * x,
        UnaryKernel.Reciprocal => 1 / x,
        UnaryKernel.Sin => Math.Sin(x),
        UnaryKernel.Cos => Math.Cos(x),
        UnaryKernel.Tan => Math.Tan(x),
        UnaryKernel.Tanh => Math.Tanh(x),
        UnaryKernel.Sigmoid => 1 / (1 + Math.Exp(-x)),
        UnaryKernel.Relu => Math.Max(x, 0),
        UnaryKernel.Softplus => Math.Max(x, 0) + Log1p(Math.Exp(-Math.Abs(x))),
        UnaryKernel.Sign => Math.Sign(x),
        UnaryKernel.Erf => ErfBySimpson(x),
        _ => throw new ArgumentOutOfRangeException(nameof(kernel)),
    };

    /// <summary>erf by Simpson's rule on 2/sqrt(pi) e^(-t^2): independent of the kernel's series, good to 1e-13 here.</summary>
    private static double ErfBySimpson(double x)
    {
        const int n = 4000;
        double h = x / n, sum = 1 + Math.Exp(-x * x);
        for (int i = 1; i < n; i++) sum += (i % 2 == 1 ? 4 : 2) * Math.Exp(-(i * h) * (i * h));
        return 2 / Math.Sqrt(Math.PI) * sum * h / 3;
    }

    private static double BinaryReference(BinaryKernel kernel, double a, double b) => kernel switch
    {
        BinaryKernel.Add => a + b,
        BinaryKernel.Sub => a - b,
        BinaryKernel.Mul => a * b,
        BinaryKernel.Div => a / b,
        BinaryKernel.Pow => Math.Pow(a, b),
        BinaryKernel.Maximum => Math.Max(a, b),
        BinaryKernel.Minimum => Math.Min(a, b),
        BinaryKernel.Eq => a == b ? 1 : 0,
        BinaryKernel.Ne => a != b ? 1 : 0,
        BinaryKernel.Lt => a < b ? 1 : 0,
        BinaryKernel.Le => a <= b ? 1 : 0,
        BinaryKernel.Gt => a > b ? 1 : 0,
        BinaryKernel.Ge => a >= b ? 1 : 0,
        BinaryKernel.LogicalAnd => a != 0 && b != 0 ? 1 : 0,
        BinaryKernel.LogicalOr => a != 0 || b != 0 ? 1 : 0,
        _ => throw new ArgumentOutOfRangeException(nameof(kernel)),
    };

    // Kahan's tricks: log(1 + x) and exp(x) - 1 to full precision from the plain functions.
    private static double Log1p(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }

    private static double Expm1(double x)
    {
        double u = Math.Exp(x);
        if (u == 1) return x;
        if (u - 1 == -1) return -1;
        return (u - 1) * x / Math.Log(u);
    }
}

/// <summary>
/// The float32 comparisons and the bool-to-float cast run 64 elements at a time: lengths up to five groups and a
/// tail, every operand pattern, and the values where comparisons are subtle (NaN, ±0, infinities, ties).
/// </summary>
public class WideComparisonTests
{
    private static readonly float[] Special = [float.NaN, 0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity, 0.5f, 1e-30f];

    private static float[] Values(int n, int seed)
    {
        var random = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = random.Next(4) == 0 ? Special[random.Next(Special.Length)] : (float)Math.Round(random.NextDouble() * 4 - 2, 1);
        return v;
    }

    private static bool Reference(BinaryKernel kernel, float x, float z) => kernel switch
    {
        BinaryKernel.Eq => x == z,
        BinaryKernel.Ne => x != z,
        BinaryKernel.Lt => x < z,
        BinaryKernel.Le => x <= z,
        BinaryKernel.Gt => x > z,
        _ => x >= z,
    };

    [Theory]
    [InlineData(BinaryKernel.Eq)]
    [InlineData(BinaryKernel.Ne)]
    [InlineData(BinaryKernel.Lt)]
    [InlineData(BinaryKernel.Le)]
    [InlineData(BinaryKernel.Gt)]
    [InlineData(BinaryKernel.Ge)]
    public void ComparisonsMatchTheScalarRule(BinaryKernel kernel)
    {
        foreach (int n in new[] { 1, 63, 64, 65, 127, 128, 200, 321 })
        {
            var a = Values(n, n);
            var b = Values(n, n + 1);
            foreach (var (aScalar, bScalar) in new[] { (false, false), (false, true), (true, false) })
            {
                var y = new bool[n];
                var x = aScalar ? a[..1] : a;
                var z = bScalar ? b[..1] : b;
                Engine.Kernels.Cpu.ElementwiseKernels.Predicate<float>(kernel, x, aScalar, z, bScalar, y);
                for (int i = 0; i < n; i++)
                {
                    float xi = aScalar ? a[0] : a[i], zi = bScalar ? b[0] : b[i];
                    Assert.True(Reference(kernel, xi, zi) == y[i], $"{kernel}({xi}, {zi}) at {i} of {n}");
                }
            }
        }
    }

    [Fact]
    public void BoolsCastToFloatAreZeroOrOne()
    {
        foreach (int n in new[] { 0, 1, 63, 64, 65, 200 })
        {
            var random = new Random(n);
            var bytes = new byte[n];
            for (int i = 0; i < n; i++) bytes[i] = (byte)random.Next(2);
            var y = new float[n];
            Engine.Kernels.Cpu.ElementwiseKernels.Convert<byte, float>(bytes, y);
            for (int i = 0; i < n; i++) Assert.Equal(bytes[i], y[i]);
        }
    }
}
