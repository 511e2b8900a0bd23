using System.Linq.Expressions;
using System.Reflection;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>
/// Engine functions some workloads need that land on other branches (<c>F.Dot</c>, <c>F.MatMul</c>). They are found by
/// name once and compiled into plain delegates, so this project builds against any engine revision, runs what it can,
/// and reports the rest as "op missing" instead of failing. A compiled delegate costs a direct call: no boxing, no
/// per-call allocation, nothing to distort the figures.
/// </summary>
internal static class OptionalOps
{
    /// <summary><c>F.Dot(a, b)</c>, or null before the linear-algebra ops exist.</summary>
    public static readonly Func<Tensor, Tensor, Tensor>? Dot = Binary("Dot");

    /// <summary><c>F.MatMul(a, b)</c> with its optional flags at their defaults, or null before it exists.</summary>
    public static readonly Func<Tensor, Tensor, Tensor>? MatMul = Binary("MatMul");

    private static Func<Tensor, Tensor, Tensor>? Binary(string name)
    {
        foreach (var method in typeof(F).GetMethods(BindingFlags.Public | BindingFlags.Static))
        {
            if (method.Name != name || method.ReturnType != typeof(Tensor)) continue;
            var ps = method.GetParameters();
            if (ps.Length < 2 || ps[0].ParameterType != typeof(Tensor) || ps[1].ParameterType != typeof(Tensor)) continue;
            bool restOptional = true;
            for (int i = 2; i < ps.Length; i++) restOptional &= ps[i].HasDefaultValue;
            if (!restOptional) continue;

            var a = Expression.Parameter(typeof(Tensor), "a");
            var b = Expression.Parameter(typeof(Tensor), "b");
            var args = new Expression[ps.Length];
            args[0] = a;
            args[1] = b;
            for (int i = 2; i < ps.Length; i++) args[i] = Expression.Constant(ps[i].DefaultValue, ps[i].ParameterType);
            return Expression.Lambda<Func<Tensor, Tensor, Tensor>>(Expression.Call(method, args), a, b).Compile();
        }
        return null;
    }
}
