using System.Globalization;
using System.Text;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.PyTorch;

/// <summary>
/// How engine and PyTorch numbers are compared. An element passes when
/// <c>|engine − torch| ≤ tol · max(1, |torch|)</c>: a relative test for magnitudes of 1 and more, an absolute one
/// below. A purely relative test near zero would ask for digits neither library has, since small values here mostly
/// come from cancellation (a sum of terms of order 1). tol is 1e-4 for float32 programs (about 800 float32 ulps of
/// headroom for a few chained roundings on each side) and 1e-10 for float64 programs. NaN must meet NaN and an
/// infinity the same infinity. Shapes and dtypes must match exactly.
/// </summary>
internal static class Comparison
{
    public static double Tolerance(DType dtype) => dtype == DType.Float32 ? 1e-4 : 1e-10;

    /// <summary>Problems found comparing one tensor; <paramref name="worst"/> tracks the largest error / allowance.</summary>
    public static List<string> Check(string what, TensorResult engine, TensorResult torch, double tol, ref double worst)
    {
        var problems = new List<string>();
        if (!engine.Shape.SequenceEqual(torch.Shape))
        {
            problems.Add($"{what}: shape {engine.ShapeText} in the engine, {torch.ShapeText} in torch");
            return problems;
        }
        if (engine.DType != torch.DType) problems.Add($"{what}: dtype {engine.DType} in the engine, {torch.DType} in torch");

        var bad = new List<int>();
        for (int i = 0; i < engine.Data.Length; i++)
        {
            double e = engine.Data[i], t = torch.Data[i];
            if (double.IsNaN(e) || double.IsNaN(t) || double.IsInfinity(e) || double.IsInfinity(t))
            {
                if (!e.Equals(t)) bad.Add(i);
                continue;
            }
            double ratio = Math.Abs(e - t) / (tol * Math.Max(1, Math.Abs(t)));
            worst = Math.Max(worst, ratio);
            if (ratio > 1) bad.Add(i);
        }
        if (bad.Count > 0)
        {
            var sb = new StringBuilder($"{what}: {bad.Count} of {engine.Data.Length} element(s) differ beyond tol {tol:g2}·max(1,|torch|)");
            foreach (var i in bad.Take(6))
                sb.Append(CultureInfo.InvariantCulture, $"\n      [{i}] engine {engine.Data[i]:R}  torch {torch.Data[i]:R}  diff {engine.Data[i] - torch.Data[i]:g3}");
            if (engine.Data.Length <= 24)
            {
                sb.Append("\n      engine ").Append(Format(engine.Data));
                sb.Append("\n      torch  ").Append(Format(torch.Data));
            }
            problems.Add(sb.ToString());
        }
        return problems;
    }

    /// <summary>Everything that differs between the engine's and torch's results of one case.</summary>
    public static List<string> Compare(DiffCase c, Result engine, Result torch, ref double worst)
    {
        if (torch.Error is not null) return [$"torch failed: {torch.Error}"];
        if (engine.Error is not null) return [$"the engine failed: {engine.Error}"];
        double tol = Tolerance(c.DType);
        var problems = Check($"value of {c.Output}", engine.Value!, torch.Value!, tol, ref worst);
        var wrt = c.Wrt.ToArray();
        if (engine.Grads.Length != wrt.Length || torch.Grads.Length != wrt.Length)
        {
            problems.Add($"gradient count: engine {engine.Grads.Length}, torch {torch.Grads.Length}, expected {wrt.Length}");
            return problems;
        }
        for (int i = 0; i < wrt.Length; i++)
            problems.AddRange(Check($"gradient w.r.t. {wrt[i].Name}", engine.Grads[i], torch.Grads[i], tol, ref worst));
        return problems;
    }

    public static string Format(double[] data) =>
        "[" + string.Join(", ", data.Select(v => v.ToString("G9", CultureInfo.InvariantCulture))) + "]";
}
