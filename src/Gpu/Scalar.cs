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

    /// <summary>
    /// The cotangent a unary op passes back, <c>g · dy/dx</c>, per element: the rules of <c>UnaryOps</c> (a negated
    /// rule negates g, as there), for a fused region's backward. Float32 rules compute in float32, as the CPU's tensor
    /// ops do; their transcendentals come from double, rounded once.
    /// </summary>
    public static float UnaryVjp(int op, float x, float y, float g) => (UnaryKernel)op switch
    {
        UnaryKernel.Neg => -g,
        UnaryKernel.Abs => g * Unary((int)UnaryKernel.Sign, x),
        UnaryKernel.Exp => g * y,
        UnaryKernel.Log => g * (1f / x),
        UnaryKernel.Log1p => g * (1f / (x + 1f)),
        UnaryKernel.Expm1 => g * (y + 1f),
        UnaryKernel.Sqrt => g * (0.5f / y),
        UnaryKernel.Rsqrt => g * (-0.5f * y / x),
        UnaryKernel.Square => g * (2f * x),
        UnaryKernel.Reciprocal => -g * (y * y),
        UnaryKernel.Sin => g * (float)DeviceMath.Cos(x),
        UnaryKernel.Cos => -g * (float)DeviceMath.Sin(x),
        UnaryKernel.Tan => g * (1f + y * y),
        UnaryKernel.Tanh => g * (1f - y * y),
        UnaryKernel.Sigmoid => g * (y * (1f - y)),
        UnaryKernel.Relu => g * (x > 0 ? 1f : 0f),
        UnaryKernel.Softplus => g * (float)DeviceMath.Sigmoid(x),
        UnaryKernel.Sign => 0,
        UnaryKernel.Erf => g * (TwoOverSqrtPiF * (float)DeviceMath.Exp(-(x * x))),
        _ => float.NaN,
    };

    public static double UnaryVjp(int op, double x, double y, double g) => (UnaryKernel)op switch
    {
        UnaryKernel.Neg => -g,
        UnaryKernel.Abs => g * Unary((int)UnaryKernel.Sign, x),
        UnaryKernel.Exp => g * y,
        UnaryKernel.Log => g * (1.0 / x),
        UnaryKernel.Log1p => g * (1.0 / (x + 1.0)),
        UnaryKernel.Expm1 => g * (y + 1.0),
        UnaryKernel.Sqrt => g * (0.5 / y),
        UnaryKernel.Rsqrt => g * (-0.5 * y / x),
        UnaryKernel.Square => g * (2.0 * x),
        UnaryKernel.Reciprocal => -g * (y * y),
        UnaryKernel.Sin => g * DeviceMath.Cos(x),
        UnaryKernel.Cos => -g * DeviceMath.Sin(x),
        UnaryKernel.Tan => g * (1.0 + y * y),
        UnaryKernel.Tanh => g * (1.0 - y * y),
        UnaryKernel.Sigmoid => g * (y * (1.0 - y)),
        UnaryKernel.Relu => g * (x > 0 ? 1.0 : 0.0),
        UnaryKernel.Softplus => g * DeviceMath.Sigmoid(x),
        UnaryKernel.Sign => 0,
        UnaryKernel.Erf => g * (TwoOverSqrtPi * DeviceMath.Exp(-(x * x))),
        _ => double.NaN,
    };

    /// <summary>
    /// The cotangents a binary op passes back to a and b, given y = a op b and the cotangent g: the rules of
    /// <c>BinaryOps</c> per element (pow's exponent share is 0 where a is 0; maximum and minimum split ties evenly).
    /// </summary>
    public static void BinaryPartials(int op, float a, float b, float y, float g, out float da, out float db)
    {
        switch ((BinaryKernel)op)
        {
            case BinaryKernel.Add: (da, db) = (g, g); break;
            case BinaryKernel.Sub: (da, db) = (g, -g); break;
            case BinaryKernel.Mul: (da, db) = (g * b, g * a); break;
            case BinaryKernel.Div: (da, db) = (g / b, -g * y / b); break;
            case BinaryKernel.Pow: (da, db) = (g * (b * (float)DeviceMath.Pow(a, b - 1f)), g * (a == 0 ? 0f : y * (float)DeviceMath.Log(a))); break;
            case BinaryKernel.Maximum or BinaryKernel.Minimum:
                bool wins = (BinaryKernel)op == BinaryKernel.Maximum ? a > b : a < b;
                float share = (wins ? 1f : 0f) + 0.5f * (a == b ? 1f : 0f);
                (da, db) = (g * share, g * (1f - share));
                break;
            default: (da, db) = (float.NaN, float.NaN); break;
        }
    }

    public static void BinaryPartials(int op, double a, double b, double y, double g, out double da, out double db)
    {
        switch ((BinaryKernel)op)
        {
            case BinaryKernel.Add: (da, db) = (g, g); break;
            case BinaryKernel.Sub: (da, db) = (g, -g); break;
            case BinaryKernel.Mul: (da, db) = (g * b, g * a); break;
            case BinaryKernel.Div: (da, db) = (g / b, -g * y / b); break;
            case BinaryKernel.Pow: (da, db) = (g * (b * DeviceMath.Pow(a, b - 1.0)), g * (a == 0 ? 0.0 : y * DeviceMath.Log(a))); break;
            case BinaryKernel.Maximum or BinaryKernel.Minimum:
                bool wins = (BinaryKernel)op == BinaryKernel.Maximum ? a > b : a < b;
                double share = (wins ? 1.0 : 0.0) + 0.5 * (a == b ? 1.0 : 0.0);
                (da, db) = (g * share, g * (1.0 - share));
                break;
            default: (da, db) = (double.NaN, double.NaN); break;
        }
    }

    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const float TwoOverSqrtPiF = 1.1283791670955126f;

    /// <summary>Whether an int64 map runs on the device (the others are not defined for int64: the host refuses them).</summary>
    public static bool OnDeviceInt64(UnaryKernel op) => op is UnaryKernel.Neg or UnaryKernel.Abs or UnaryKernel.Square or UnaryKernel.Sign or UnaryKernel.Relu;

    public static long Unary(int op, long x) => (UnaryKernel)op switch
    {
        UnaryKernel.Neg => -x,
        UnaryKernel.Abs => x < 0 ? -x : x, // |long.MinValue| wraps to itself
        UnaryKernel.Square => x * x,
        UnaryKernel.Sign => x > 0 ? 1 : x < 0 ? -1 : 0,
        _ => x > 0 ? x : 0, // relu
    };

    public static long Binary(int op, long a, long b) => (BinaryKernel)op switch
    {
        BinaryKernel.Add => a + b,
        BinaryKernel.Sub => a - b,
        BinaryKernel.Mul => a * b,
        BinaryKernel.Maximum => a > b ? a : b,
        _ => a < b ? a : b, // minimum
    };

    public static bool Compare(int op, long a, long b) => (BinaryKernel)op switch
    {
        BinaryKernel.Eq => a == b,
        BinaryKernel.Ne => a != b,
        BinaryKernel.Lt => a < b,
        BinaryKernel.Le => a <= b,
        BinaryKernel.Gt => a > b,
        _ => a >= b,
    };

    public static bool Logical(int op, bool a, bool b) => (BinaryKernel)op switch
    {
        BinaryKernel.LogicalAnd => a && b,
        BinaryKernel.LogicalOr => a || b,
        BinaryKernel.Eq => a == b,
        _ => a != b,
    };

    public static long Combine(int op, long acc, long x) => (ReduceKernel)op switch
    {
        ReduceKernel.Sum => acc + x,
        ReduceKernel.Prod => acc * x,
        ReduceKernel.Max => acc > x ? acc : x,
        _ => acc < x ? acc : x,
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
