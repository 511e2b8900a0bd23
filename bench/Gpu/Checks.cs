using System.Reflection;
using AutogradService.Engine;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using AutogradService.Gpu;

namespace AutogradService.Bench.Gpu;

/// <summary>
/// The GPU checks run where the tests cannot (the GPU machine has no SDK): every one-tensor and two-tensor function
/// of <see cref="F"/>, reductions, movement, gather/scatter and products, in float32 and float64, on the GPU backend
/// against the CPU backend on the same inputs. Transcendentals may differ by a few ulp (the device's own polynomials),
/// sums and products by rounding order; movement, comparisons and integer results must match exactly.
/// </summary>
internal static class Checks
{
    public static (int Passed, int Failed) Run(GpuBackend backend, TextWriter log)
    {
        int passed = 0, failed = 0;
        void Record(string name, string? problem)
        {
            if (problem is null) passed++;
            else
            {
                failed++;
                log.WriteLine($"FAIL {name}: {problem}");
            }
        }

        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            foreach (var (name, run) in Cases())
            {
                string label = $"{name} {dtype.ToString().ToLowerInvariant()}";
                try
                {
                    using var gpu = new ExecutionScope(new ScopeOptions { Backend = backend });
                    using var cpu = new ExecutionScope();
                    double[] expected;
                    try
                    {
                        expected = run(cpu, dtype).ToDoubles();
                    }
                    catch (EngineException)
                    {
                        continue; // not defined for these inputs (a dtype or shape the op refuses): nothing to compare
                    }
                    var actual = run(gpu, dtype).ToDoubles();
                    Record(label, Compare(expected, actual, dtype));
                }
                catch (Exception e)
                {
                    Record(label, e.GetType().Name + ": " + e.Message);
                }
            }
        }
        return (passed, failed);
    }

    private static string? Compare(double[] expected, double[] actual, DType dtype)
    {
        if (expected.Length != actual.Length) return $"{actual.Length} elements, expected {expected.Length}";
        double eps = dtype == DType.Float32 ? 1.2e-7 : 2.3e-16;
        double scale = expected.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(1).Max();
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (e.Equals(a)) continue;
            // A few ulp of the element, or of the tensor's scale for sums whose terms cancel.
            if (Math.Abs(e - a) <= 64 * eps * Math.Max(Math.Abs(e), 1e-3 * Math.Max(scale, 1))) continue;
            return $"element {i}: {a:R}, expected {e:R}";
        }
        return null;
    }

    /// <summary>Calls an op by reflection, rethrowing its own exception (an op refusing its inputs is an EngineException).</summary>
    private static Tensor Invoke(MethodInfo method, params object[] inputs)
    {
        try
        {
            return (Tensor)method.Invoke(null, inputs)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    private static IEnumerable<(string Name, Func<ExecutionScope, DType, Tensor> Run)> Cases()
    {
        static Tensor Values(ExecutionScope s, DType dtype, int seed, params int[] shape)
        {
            var random = new Random(seed);
            var data = Enumerable.Range(0, shape.Aggregate(1, (p, d) => p * d)).Select(_ => 0.1 + random.NextDouble() * 1.8).ToArray();
            var t = s.FromSpan<double>(data, shape);
            return dtype == DType.Float64 ? t : F.Cast(t, dtype);
        }

        var methods = typeof(F).GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.ReturnType == typeof(Tensor));
        foreach (var m in methods.Where(m => m.GetParameters() is { Length: 1 } p && p[0].ParameterType == typeof(Tensor)))
            yield return (m.Name, (s, d) => Invoke(m, Values(s, d, 1, 3, 5)));
        foreach (var m in methods.Where(m => m.GetParameters() is { Length: 2 } p && p.All(q => q.ParameterType == typeof(Tensor))))
            yield return (m.Name + " broadcast", (s, d) => Invoke(m, Values(s, d, 1, 3, 5), Values(s, d, 2, 5)));
        yield return ("sum middle axis", (s, d) => F.Sum(Values(s, d, 3, 4, 100, 3), [1]));
        yield return ("max all", (s, d) => F.Max(Values(s, d, 3, 4, 7)));
        yield return ("transpose", (s, d) => F.Transpose(Values(s, d, 4, 2, 3, 4), [2, 0, 1]));
        yield return ("concat", (s, d) => F.Concat([Values(s, d, 5, 2, 3), Values(s, d, 6, 2, 1)], 1));
        yield return ("slice stepped", (s, d) => F.SliceAxis(Values(s, d, 7, 9, 4), 0, 1, 8, 3));
        yield return ("gather", (s, d) => F.Gather(Values(s, d, 8, 5, 3), s.FromArray(new long[] { 4, -1, 0, 0 }, 4), 0));
        yield return ("scatter_add", (s, d) => F.ScatterAdd(Values(s, d, 9, 4, 3), s.FromArray(new long[] { 1, 1, 0, 3 }, 4), 0, 5));
        yield return ("where", (s, d) => F.Where(F.Gt(Values(s, d, 10, 3, 1), Values(s, d, 11, 4)), Values(s, d, 12, 3, 4), Values(s, d, 13, 4)));
        yield return ("matmul 67x45x33", (s, d) => F.MatMul(Values(s, d, 14, 67, 45), Values(s, d, 15, 45, 33)));
        yield return ("matmul batched transposed", (s, d) => F.MatMul(Values(s, d, 16, 3, 20, 17), F.Transpose(Values(s, d, 17, 3, 19, 17), [0, 2, 1])));
    }
}
