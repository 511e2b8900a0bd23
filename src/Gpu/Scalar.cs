using AutogradService.Engine.Backends;

namespace AutogradService.Gpu;

/// <summary>
/// The elementwise rules the kernels apply per element, with the CPU backend's semantics: NaN propagates through
/// maximum/minimum and relu, sign keeps ±0 and NaN, max(+0, −0) is +0. Transcendentals come from
/// <see cref="DeviceMath"/>, the same on every backend.
/// </summary>
public static class Scalar
{
    /// <summary>Whether <see cref="Unary(int, float)"/> defines the op (the others run on the host).</summary>
    public static bool OnDevice(UnaryKernel op) => op is not UnaryKernel.LogicalNot;

    public static float Unary(int op, float x) => (UnaryKernel)op switch
    {
        UnaryKernel.Neg => -x,
        UnaryKernel.Abs => MathF.Abs(x),
        UnaryKernel.Sqrt => MathF.Sqrt(x),
        UnaryKernel.Rsqrt => 1f / MathF.Sqrt(x),
        UnaryKernel.Square => x * x,
        UnaryKernel.Reciprocal => 1f / x,
        UnaryKernel.Relu => Max(x, 0f),
        UnaryKernel.Sign => x > 0 ? 1f : x < 0 ? -1f : x,
        // Transcendentals in double, rounded once: within an ulp of the correctly rounded float.
        _ => (float)Unary(op, (double)x),
    };

    public static double Unary(int op, double x) => (UnaryKernel)op switch
    {
        UnaryKernel.Neg => -x,
        UnaryKernel.Abs => Math.Abs(x),
        UnaryKernel.Exp => DeviceMath.Exp(x),
        UnaryKernel.Log => DeviceMath.Log(x),
        UnaryKernel.Log1p => DeviceMath.Log1p(x),
        UnaryKernel.Expm1 => DeviceMath.Expm1(x),
        UnaryKernel.Sqrt => Math.Sqrt(x),
        UnaryKernel.Rsqrt => 1.0 / Math.Sqrt(x),
        UnaryKernel.Square => x * x,
        UnaryKernel.Reciprocal => 1.0 / x,
        UnaryKernel.Sin => DeviceMath.Sin(x),
        UnaryKernel.Cos => DeviceMath.Cos(x),
        UnaryKernel.Tan => DeviceMath.Tan(x),
        UnaryKernel.Tanh => DeviceMath.Tanh(x),
        UnaryKernel.Sigmoid => DeviceMath.Sigmoid(x),
        UnaryKernel.Relu => Max(x, 0.0),
        UnaryKernel.Softplus => DeviceMath.Softplus(x),
        UnaryKernel.Sign => x > 0 ? 1.0 : x < 0 ? -1.0 : x,
        UnaryKernel.Erf => DeviceMath.Erf(x),
        _ => double.NaN,
    };

    public static float Binary(int op, float a, float b) => (BinaryKernel)op switch
    {
        BinaryKernel.Add => a + b,
        BinaryKernel.Sub => a - b,
        BinaryKernel.Mul => a * b,
        BinaryKernel.Div => a / b,
        BinaryKernel.Pow => (float)DeviceMath.Pow(a, b),
        BinaryKernel.Maximum => Max(a, b),
        BinaryKernel.Minimum => Min(a, b),
        _ => float.NaN,
    };

    public static double Binary(int op, double a, double b) => (BinaryKernel)op switch
    {
        BinaryKernel.Add => a + b,
        BinaryKernel.Sub => a - b,
        BinaryKernel.Mul => a * b,
        BinaryKernel.Div => a / b,
        BinaryKernel.Pow => DeviceMath.Pow(a, b),
        BinaryKernel.Maximum => Max(a, b),
        BinaryKernel.Minimum => Min(a, b),
        _ => double.NaN,
    };

    public static bool Compare(int op, float a, float b) => Compare(op, (double)a, b);

    public static bool Compare(int op, double a, double b) => (BinaryKernel)op switch
    {
        BinaryKernel.Eq => a == b,
        BinaryKernel.Ne => a != b,
        BinaryKernel.Lt => a < b,
        BinaryKernel.Le => a <= b,
        BinaryKernel.Gt => a > b,
        _ => a >= b,
    };

    /// <summary>A reduction's step (sum, prod, max, min).</summary>
    public static float Combine(int op, float acc, float x) => (ReduceKernel)op switch
    {
        ReduceKernel.Sum => acc + x,
        ReduceKernel.Prod => acc * x,
        ReduceKernel.Max => Max(acc, x),
        _ => Min(acc, x),
    };

    public static double Combine(int op, double acc, double x) => (ReduceKernel)op switch
    {
        ReduceKernel.Sum => acc + x,
        ReduceKernel.Prod => acc * x,
        ReduceKernel.Max => Max(acc, x),
        _ => Min(acc, x),
    };

    // IEEE maximum/minimum as TensorPrimitives computes them: NaN wins, and +0 is above −0.
    private static float Max(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? a + b : a > b ? a : b > a ? b : a == 0 && (BitConverter.SingleToInt32Bits(a) < 0) ? b : a;

    private static float Min(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? a + b : a < b ? a : b < a ? b : a == 0 && (BitConverter.SingleToInt32Bits(a) >= 0) ? b : a;

    private static double Max(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? a + b : a > b ? a : b > a ? b : a == 0 && (BitConverter.DoubleToInt64Bits(a) < 0) ? b : a;

    private static double Min(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? a + b : a < b ? a : b < a ? b : a == 0 && (BitConverter.DoubleToInt64Bits(a) >= 0) ? b : a;
}
