using AutogradService.Engine.Ops;

namespace AutogradService.Engine.Tensors;

/// <summary>Infix arithmetic, so derivative rules read like the math (all recorded through <see cref="F"/>).</summary>
public sealed partial class Tensor
{
    public static Tensor operator +(Tensor a, Tensor b) => F.Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => F.Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => F.Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => F.Div(a, b);
    public static Tensor operator -(Tensor a) => F.Neg(a);

    public static Tensor operator +(Tensor a, double b) => F.Add(a, F.Const(a, b));
    public static Tensor operator +(double a, Tensor b) => F.Add(F.Const(b, a), b);
    public static Tensor operator -(Tensor a, double b) => F.Sub(a, F.Const(a, b));
    public static Tensor operator -(double a, Tensor b) => F.Sub(F.Const(b, a), b);
    public static Tensor operator *(Tensor a, double b) => F.Mul(a, F.Const(a, b));
    public static Tensor operator *(double a, Tensor b) => F.Mul(F.Const(b, a), b);
    public static Tensor operator /(Tensor a, double b) => F.Div(a, F.Const(a, b));
    public static Tensor operator /(double a, Tensor b) => F.Div(F.Const(b, a), b);
}
